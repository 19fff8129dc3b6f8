"""The integer IR: a graph of typed integer ops.

Every tensor carries its shape (dimension 0 is the batch) and its number format. Float scales
survive only as metadata: the real number a tensor stands for is

    real = (value(code) - zero_point) * scale + bias,  value(code) = to_fixed(code) * 2**lsb

where value() is the exact number the format gives a code (an integer for IntFormat, a
minifloat's value for MinifloatFormat, an accumulator's integer times its 2**lsb) and
scale, zero_point and bias broadcast along ``axis``.
The only ops that touch floats are ``quantize`` (graph input -> codes), ``dynamic_quantize``
(graph input -> uint8 codes, with the float32 scale and the zero point it computes from the
data, as ONNX's DynamicQuantizeLinear) and ``dequantize`` (codes -> graph output; after a
dynamic quantizer, times its run-time scale, a second input); everything between them is
integer arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from qfab.numerics import FixedFormat, IntFormat, MinifloatFormat

from qfab.errors import QfabError


@dataclass(frozen=True)
class Acc:
    """An exact accumulator: a signed integer of ``bits`` bits (0 until range analysis),
    standing for ``value * 2**lsb_exponent``."""

    bits: int = 0
    lsb_exponent: int = 0
    signed: bool = True

    def __str__(self) -> str:
        return f"acc{self.bits or '?'}" + (f"*2^{self.lsb_exponent}" if self.lsb_exponent else "")


Format = IntFormat | FixedFormat | MinifloatFormat | Acc


@dataclass
class Tensor:
    """A value in the graph. ``fmt`` None means float32 (graph inputs and outputs only)."""

    name: str
    shape: tuple[int, ...]
    fmt: Format | None
    scale: np.ndarray = field(default_factory=lambda: np.ones((), np.float64))
    zero_point: np.ndarray = field(default_factory=lambda: np.zeros((), np.int64))
    bias: np.ndarray = field(default_factory=lambda: np.zeros((), np.float64))
    axis: int = 1

    @property
    def is_float(self) -> bool:
        return self.fmt is None

    @property
    def unit(self) -> np.ndarray:
        """The real weight of one step of the exact fixed-point value (``to_fixed``)."""
        return np.asarray(self.scale, np.float64) * 2.0 ** self.fmt.lsb_exponent

    def broadcast(self, param: np.ndarray) -> np.ndarray:
        """``param`` (a scalar, one value per channel of ``axis``, or an array of this
        tensor's rank, as blocked quantization gives) shaped to broadcast here."""
        param = np.asarray(param)
        if param.ndim == 0 or param.size == 1:
            return param.reshape(())
        if param.ndim == len(self.shape) and param.ndim > 1:
            return param
        shape = [1] * len(self.shape)
        shape[self.axis] = param.size
        return param.reshape(shape)


@dataclass
class Node:
    """One op. ``attrs`` hold constants: integer weights, dyadic multipliers, shapes."""

    op: str
    name: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Graph:
    tensors: dict[str, Tensor] = field(default_factory=dict)
    nodes: list[Node] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    name: str = "model"

    def add_tensor(self, t: Tensor) -> Tensor:
        if t.name in self.tensors:
            raise ValueError(f"tensor {t.name!r} defined twice")
        self.tensors[t.name] = t
        return t

    def fresh(self, base: str) -> str:
        name, i = base, 0
        while name in self.tensors:
            i += 1
            name = f"{base}_{i}"
        return name

    def add_node(self, op: str, name: str, inputs: list[str], outputs: list[Tensor],
                 **attrs: Any) -> Node:
        for t in outputs:
            self.add_tensor(t)
        node = Node(op, name, list(inputs), [t.name for t in outputs], attrs)
        self.nodes.append(node)
        return node

    def rename(self, old: str, new: str) -> None:
        if new in self.tensors:
            raise ValueError(f"tensor {new!r} already exists")
        t = self.tensors.pop(old)
        t.name = new
        self.tensors[new] = t
        for n in self.nodes:
            n.inputs = [new if i == old else i for i in n.inputs]
            n.outputs = [new if o == old else o for o in n.outputs]
        for names in (self.inputs, self.outputs):
            names[:] = [new if i == old else i for i in names]

    def producer(self, tensor: str) -> Node | None:
        for n in self.nodes:
            if tensor in n.outputs:
                return n
        return None

    def consumers(self, tensor: str) -> list[Node]:
        return [n for n in self.nodes if tensor in n.inputs]

    def compute_nodes(self) -> list[Node]:
        return [n for n in self.nodes if n.op in MAC_OPS]


MAC_OPS = ("conv", "dense")
# The attributes every node of an op carries (passes may add more; dyadic adds mult/shift).
REQUIRED_ATTRS = {
    "quantize": ("pre", "saturate"), "dequantize": ("lo", "hi"),
    "dynamic_quantize": ("qmin", "qmax"),
    "conv": ("weight", "bias", "x_zero_point", "strides", "pads", "dilations", "group"),
    "dense": ("weight", "bias", "x_zero_point"),
    "requant": ("in_zero_point", "scale", "offset", "zero_point", "lo", "hi", "rounding"),
    "threshold": ("thresholds", "base", "in_zero_point"), "clamp": ("lo", "hi"),
    "maxpool": ("kernel", "strides", "pads"), "sumpool": ("kernel", "strides", "pads",
                                                          "x_zero_point"),
    "globalsum": ("x_zero_point",),
    "add": ("scale_a", "scale_b", "a_zero_point", "b_zero_point", "zero_point", "lo", "hi"),
    "reshape": ("shape",), "transpose": ("perm",), "concat": ("axis",), "argmax": ("axis",),
    "softmax": ("table", "fine", "shift", "num", "zero_point", "lo", "hi"),
    "lookup": ("table", "in_min", "lo", "hi"),
    "upsample": ("scale",),
}
ELEMENTWISE_OPS = ("requant", "threshold", "clamp", "add")
OPS = ("quantize", "dynamic_quantize", "dequantize", "conv", "dense", "requant", "threshold",
       "clamp", "maxpool", "sumpool", "globalsum", "add", "reshape", "transpose", "concat",
       "argmax", "softmax", "lookup", "upsample")
FLOAT_OPS = ("quantize", "dynamic_quantize", "dequantize")


def verify(g: Graph) -> None:
    """Check the invariants every pass keeps; raise AssertionError naming the node."""
    defined = set(g.inputs)
    for name in g.inputs:
        assert name in g.tensors, f"graph input {name!r} has no tensor"
    for n in g.nodes:
        assert n.op in OPS, f"node {n.name}: unknown op {n.op!r}"
        for i in n.inputs:
            assert i in defined, f"node {n.name}: input {i!r} used before it is defined"
        for o in n.outputs:
            assert o in g.tensors, f"node {n.name}: output {o!r} has no tensor"
            assert o not in defined, f"node {n.name}: output {o!r} defined twice"
            defined.add(o)
        ins = [g.tensors[i] for i in n.inputs]
        outs = [g.tensors[o] for o in n.outputs]
        if n.op == "quantize":
            assert ins[0].is_float and not outs[0].is_float, f"node {n.name}: quantize types"
        elif n.op == "dequantize":
            assert outs[0].is_float and not ins[0].is_float, f"node {n.name}: dequantize types"
        elif n.op == "dynamic_quantize":
            _verify_dynamic_quantize(n, ins, outs)
            outs = outs[:1]  # the scale and zero point are scalars
        else:
            for t in ins + outs:
                assert not t.is_float, f"node {n.name} ({n.op}): float tensor {t.name!r}"
        if n.op == "dequantize" and len(ins) == 2:  # times a run-time scale (dynamic.py)
            assert ins[1].is_float and ins[1].shape == () and "factor" in n.attrs, \
                f"node {n.name}: dequantize scale input"
        for t in (ins[:1] if n.op in MAC_OPS + ("dequantize",) else ins) + outs:
            assert t.shape and all(d > 0 for d in t.shape), f"tensor {t.name!r}: shape {t.shape}"
        _verify_op(n, ins, outs)
    for name in g.outputs:
        assert name in defined, f"graph output {name!r} is never computed"


def _verify_op(n: Node, ins: list[Tensor], outs: list[Tensor]) -> None:
    """Per-op invariants: attributes present, shapes consistent, accumulators typed."""
    missing = [k for k in REQUIRED_ATTRS.get(n.op, ()) if k not in n.attrs]
    assert not missing, f"node {n.name} ({n.op}): missing attributes {missing}"
    a = n.attrs
    if n.op in MAC_OPS:
        w = a["weight"]
        # A second input is a zero point computed at run time (a scalar of integer codes).
        assert len(ins) == 1 or len(ins) == 2 and ins[1].shape == () and isinstance(
            ins[1].fmt, IntFormat) and a["x_zero_point"] == 0, f"node {n.name}: zero point input"
        assert isinstance(outs[0].fmt, Acc), f"node {n.name}: {n.op} output is not an Acc"
        if n.op == "dense":
            assert w.ndim == 2 and w.shape[1] == ins[0].shape[-1] and \
                w.shape[0] == outs[0].shape[-1], f"node {n.name}: weight {w.shape} vs shapes"
        else:
            assert w.ndim == 4 and w.shape[0] == outs[0].shape[1] and \
                w.shape[1] * a["group"] == ins[0].shape[1], f"node {n.name}: weight {w.shape}"
    if n.op in ELEMENTWISE_OPS:
        for t in ins:
            assert t.shape == outs[0].shape, f"node {n.name}: shape {t.shape} -> {outs[0].shape}"
    if n.op in ("requant", "clamp", "add") and a["lo"] is not None and a["hi"] is not None:
        assert a["lo"] <= a["hi"], f"node {n.name}: empty output range [{a['lo']}, {a['hi']}]"


def _verify_dynamic_quantize(n: Node, ins: list[Tensor], outs: list[Tensor]) -> None:
    assert len(ins) == 1 and len(outs) == 3, f"node {n.name}: dynamic_quantize arity"
    x, y, scale, zp = ins[0], *outs
    assert x.is_float and scale.is_float, f"node {n.name}: dynamic_quantize reads float, " \
        "gives a float scale"
    assert isinstance(y.fmt, IntFormat) and y.fmt == zp.fmt, f"node {n.name}: codes and " \
        "zero point must share an integer format"
    assert (y.fmt.min, y.fmt.max) == (n.attrs["qmin"], n.attrs["qmax"]), \
        f"node {n.name}: range [{n.attrs['qmin']}, {n.attrs['qmax']}] is not {y.fmt}'s"
    assert y.shape == x.shape and scale.shape == zp.shape == (), \
        f"node {n.name}: shapes {x.shape} -> {y.shape}, {scale.shape}, {zp.shape}"


def clipped_range(lo: int, hi: int, clip_lo: int, clip_hi: int) -> tuple[int, int]:
    """The range of ``clip(y, clip_lo, clip_hi)`` for y in lo..hi: never empty; when the
    ranges lie apart (a ReLU's zero point above a Clip's top) the Clip's bound nearest."""
    if lo > clip_hi:
        return clip_hi, clip_hi
    if hi < clip_lo:
        return clip_lo, clip_lo
    return max(lo, clip_lo), min(hi, clip_hi)


def unsupported(what: str, node: str, supported: tuple[str, ...] | list[str]) -> QfabError:
    return QfabError(f"{what} (node {node!r}); supported: {', '.join(sorted(supported))}")
