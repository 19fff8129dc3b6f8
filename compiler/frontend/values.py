"""What an ONNX tensor is while the importer walks the graph.

The importer interprets the ONNX graph abstractly: each ONNX tensor becomes one of these
values, and only integer work reaches the IR. Dequantized tensors stay symbolic (``Real``), so a
DequantizeLinear -> Conv -> QuantizeLinear chain becomes conv + requant with no float op.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from qfab.compiler.ir import Format


@dataclass
class Const:
    """A constant. ``codes`` is set when it came from quantized data (DequantizeLinear of an
    initializer, a QONNX Quant of weights): real = (value(codes) - zero_point) * scale."""

    value: np.ndarray
    codes: np.ndarray | None = None
    fmt: Format | None = None
    scale: np.ndarray | None = None
    zero_point: np.ndarray | None = None
    axis: int = 1


@dataclass
class FloatIn:
    """A float graph input, with elementwise float32 ops still to apply before quantizing."""

    tensor: str
    shape: tuple[int, ...]
    pre: list[tuple[str, np.ndarray]] = field(default_factory=list)


@dataclass
class Codes:
    """The raw integer codes of an IR tensor (what QuantizeLinear produces)."""

    tensor: str


@dataclass
class Real:
    """The real number an IR tensor stands for (see ir.Tensor), clamped to [lo, hi] by
    Relu/Clip that are not yet folded into a requantizer."""

    tensor: str
    lo: float = -np.inf
    hi: float = np.inf


@dataclass
class Sum:
    """Add of two quantized tensors, waiting for the quantizer that fixes its output scale."""

    a: Real
    b: Real


@dataclass
class Cat:
    """Concat of quantized tensors with different quantization, waiting for the quantizer
    that every input is requantized to (QDQ: Q(concat(DQ(a), DQ(b))))."""

    parts: list[Real]
    axis: int


@dataclass
class Float:
    """A float32 IR tensor computed at the input boundary: the scale a dynamic quantizer
    derives from its input (DynamicQuantizeLinear's y_scale), times a constant ``factor``."""

    tensor: str
    factor: np.ndarray = field(default_factory=lambda: np.ones((), np.float32))


@dataclass
class Scaled:
    """Real ``real`` (an integer tensor of scale 1) times the run-time scale ``scale``: what
    onnxruntime's quantize_dynamic writes after MatMulInteger (Cast, then Mul)."""

    real: Real
    scale: Float


@dataclass
class Stat:
    """A float32 scalar the graph computes at run time from a float graph input, kept as an
    expression (nested tuples ``(op, *args)``, constants as floats, leaves
    ``("ReduceMin"|"ReduceMax", input)``), until a quantizer shows what it is: the
    ``_expanded`` body of DynamicQuantizeLinear."""

    expr: tuple


Value = Const | FloatIn | Codes | Real | Sum | Cat | Float | Stat | Scaled
