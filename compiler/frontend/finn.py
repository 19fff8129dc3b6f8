"""The FINN-ONNX dialect: FINN's datatype annotations, MultiThreshold on a raw graph input, and
TopK (k = 1) as the argmax at the end.

FINN types tensors by annotation, not by element type: a graph input that FINN feeds UINT8
pixels is a float32 tensor with ``finn_datatype`` UINT8 in the graph's
``quantization_annotation``, and a streamlined weight matrix is a float initializer of
integers annotated INT2 or BIPOLAR. An annotated input is read as integer codes; a
MultiThreshold on it, after scalar float pre-processing such as ``(x + 1) / 2``, becomes an
integer threshold node whose thresholds are found by running the float32 pre-processing and
the comparison over every code the annotation allows, so it agrees with qonnx's float32
execution exactly.
"""

from __future__ import annotations

import re

import numpy as np
import onnx
from qfab.compiler.frontend.importer import handles
from qfab.compiler.frontend.values import Const, FloatIn, Real
from qfab.compiler.ir import Acc
from qfab.numerics import IntFormat, width_for

from qfab.errors import QfabError

# The widest annotated input whose every code is tried when thresholds are derived from it.
MAX_ENUMERATED_BITS = 16
# Elementwise float32 pre-processing the IR's quantize node and the enumeration both run.
_PRE_OPS = {"Mul": np.multiply, "Add": np.add, "Sub": np.subtract, "Div": np.divide,
            "Relu": np.maximum}


def annotations(model: onnx.ModelProto) -> dict[str, str]:
    """{tensor name: FINN datatype name} from the graph's quantization annotations."""
    found = {}
    for qa in model.graph.quantization_annotation:
        for kv in qa.quant_parameter_tensor_names:
            if kv.key == "finn_datatype":
                found[qa.tensor_name] = kv.value
    return found


def datatype_range(name: str, where: str) -> tuple[int, int, bool] | None:
    """(lo, hi, bipolar) of the integers a FINN datatype holds; None for FLOAT32."""
    name = name.upper()
    if name == "FLOAT32":
        return None
    if name == "BIPOLAR":
        return -1, 1, True
    if name == "BINARY":
        return 0, 1, False
    if name == "TERNARY":
        return -1, 1, False
    m = re.fullmatch(r"(U?)INT(\d+)", name)
    if m and 1 <= int(m.group(2)) <= 32:
        fmt = IntFormat(bits=int(m.group(2)), signed=not m.group(1))
        return fmt.min, fmt.max, False
    raise QfabError(f"{where}: FINN datatype {name!r} is not supported; supported: FLOAT32, "
                    "BIPOLAR, BINARY, TERNARY, INTn, UINTn")


def input_format(name: str, where: str) -> tuple[IntFormat, int, int, bool] | None:
    """The codes format of an annotated graph input: (format, lo, hi, bipolar)."""
    r = datatype_range(name, where)
    if r is None:
        return None
    lo, hi, bipolar = r
    width, signed = width_for(lo, hi)
    fmt = IntFormat(bits=max(width, 2) if signed else width, signed=signed)
    return fmt, lo, hi, bipolar


def annotated_weight(value: np.ndarray, datatype: str, name: str) -> Const | None:
    """A float initializer FINN annotated with an integer datatype, as integer codes."""
    r = datatype_range(datatype, f"initializer {name!r}")
    if r is None:
        return None
    lo, hi, bipolar = r
    v = np.asarray(value)
    if v.dtype.kind == "f" and (np.any(v != np.round(v)) or v.min(initial=lo) < lo
                                or v.max(initial=hi) > hi or bipolar and np.any(v == 0)):
        raise QfabError(f"initializer {name!r}: values outside its FINN datatype {datatype}")
    codes = v.astype(np.int64)
    fmt = input_format(datatype, name)[0]
    return Const(v, codes=codes, fmt=fmt, scale=np.float32(1), zero_point=np.zeros((), np.int64))


def read_annotations(imp) -> None:
    """Record annotated graph inputs (``imp.input_types``) and turn annotated float
    initializers into integer weights."""
    for name, datatype in annotations(imp.model).items():
        v = imp.values.get(name)
        if isinstance(v, Const) and v.codes is None:
            w = annotated_weight(v.value, datatype, name)
            if w is not None:
                imp.values[name] = w
        elif name in (i.name for i in imp.model.graph.input):
            fmt = input_format(datatype, f"graph input {name!r}")
            if fmt is not None:
                imp.input_types[name] = fmt


def _codes_of_input(imp, node, v: FloatIn, scale: float = 1.0, zp: int = 0) -> str:
    """The IR tensor of the annotated input's codes (reshaped as the pre-processing does),
    standing for ``(code - zp) * scale``: one quantize node, however many layers read it."""
    fmt, lo, hi, bipolar = imp.input_types[v.tensor]
    name = v.tensor + "_codes"
    shape = pre_shape(v, imp.graph.tensors[v.tensor].shape)
    if name in imp.graph.tensors:
        t = imp.tensor(name)
        if t.shape != shape or float(t.scale) != scale or int(t.zero_point) != zp:
            raise imp.error(node, f"the annotated input {v.tensor!r} is read by layers that "
                                  "pre-process it differently")
        return name
    t = imp.new_tensor(name, shape, fmt, scale=np.float64(scale), zero_point=np.int64(zp))
    reshapes = [(op, c) for op, c in v.pre if op == "Reshape"]
    imp.graph.add_node("quantize", name, [v.tensor], [t], pre=reshapes, saturate=True, lo=lo,
                       hi=hi, rounding="half_even", bipolar=bipolar)
    return name


def _unannotated(imp, node, v: FloatIn) -> QfabError:
    return imp.error(node, f"input {v.tensor!r} is float (not quantized); annotate it with a "
                           "finn_datatype (UINT8, INT8, BIPOLAR, ...) in the graph's "
                           "quantization_annotation, or quantize it (Quant, QuantizeLinear)")


def annotated_real(imp, node, v: FloatIn) -> Real:
    """An annotated input, after scalar Mul/Div/Add/Sub, as the real ``(code - zp) * scale``."""
    if v.tensor not in imp.input_types:
        raise _unannotated(imp, node, v)
    scale, offset = 1.0, 0.0
    for op, c in v.pre:
        c = np.asarray(c, np.float64)
        if op == "Reshape":
            continue
        if c.size != 1 or op not in ("Mul", "Div", "Add", "Sub"):
            raise imp.error(node, f"{op} on the annotated input {v.tensor!r} before this "
                                  "layer: only scalar Mul/Div/Add/Sub fold into it")
        c = float(c.reshape(()))
        scale, offset = {"Mul": (scale * c, offset * c), "Div": (scale / c, offset / c),
                         "Add": (scale, offset + c), "Sub": (scale, offset - c)}[op]
    zp = -offset / scale if scale else 0.5
    if scale <= 0 or zp != round(zp):
        raise imp.error(node, f"the pre-processing of {v.tensor!r} is x * {scale:g} + "
                              f"{offset:g}: a layer reads it only with a positive scale and an "
                              "integer zero point; put a quantizer before the layer")
    return Real(_codes_of_input(imp, node, v, scale, int(round(zp))))


def pre_shape(v: FloatIn, shape: tuple[int, ...]) -> tuple[int, ...]:
    for op, c in v.pre:
        if op == "Reshape":
            shape = (shape[0],) + tuple(int(d) for d in np.asarray(c)[1:])
    return shape


def _run_pre(v: FloatIn, x: np.ndarray) -> np.ndarray:
    """The input's float32 pre-processing on ``x`` [values, C], per-channel constants
    broadcast along C, as qonnx runs it."""
    x = np.asarray(x, np.float32)
    for op, c in v.pre:
        if op == "Reshape":
            continue
        c = np.asarray(c, np.float32)
        x = _PRE_OPS[op](x, c.reshape(-1) if c.size > 1 else c.reshape(())).astype(np.float32)
    return x


def threshold_input(imp, node, v: FloatIn, count_fn, channels: int, n_thresholds: int):
    """A quantizer on the annotated input as integer thresholds on its codes.

    ``count_fn(real [values, C]) -> int [values, C]`` is how many of the quantizer's
    ``n_thresholds`` thresholds each float32 value reaches. Every code the annotation allows
    is run through the pre-processing and the quantizer; the integer threshold ``j`` is the
    smallest code reaching ``j + 1`` of them (one past the largest code if none does).
    Returns the codes tensor and the thresholds [C, n_thresholds]."""
    if v.tensor not in imp.input_types:
        raise _unannotated(imp, node, v)
    fmt, lo, hi, bipolar = imp.input_types[v.tensor]
    if fmt.bits > MAX_ENUMERATED_BITS:
        raise imp.error(node, f"thresholds on a {fmt} input: annotated inputs of at most "
                              f"{MAX_ENUMERATED_BITS} bits")
    consts = [c for op, c in v.pre if op != "Reshape"]
    if any(np.size(c) not in (1, channels) for c in consts):
        raise imp.error(node, "pre-processing of the input by a constant that is neither a "
                              "scalar nor one value a channel")
    name = _codes_of_input(imp, node, v)
    codes = np.array([-1, 1]) if bipolar else np.arange(lo, hi + 1)
    x = np.broadcast_to(codes[:, None], (codes.size, channels)).astype(np.float32)
    count = np.asarray(count_fn(_run_pre(v, x)), np.int64)
    if np.any(np.diff(count, axis=0) < 0):
        raise imp.error(node, f"the quantizer decreases as the input {v.tensor!r} grows (a "
                              "negative pre-processing scale); thresholds need it increasing")
    reached = count[:, :, None] >= np.arange(1, n_thresholds + 1)  # [values, C, T]
    first = np.where(reached.any(axis=0), reached.argmax(axis=0), codes.size)
    return name, np.append(codes, codes[-1] + 1)[first]


def argmax_output(imp, node, r: Real, axis: int) -> str:
    """TopK(k=1)'s indices: the IR's argmax over the real scores (ties to the lower index,
    as ONNX's TopK orders equal values)."""
    t = imp.tensor(r.tensor)
    axis = axis % len(t.shape)
    if axis != t.axis and len(t.shape) > 1 and t.shape[axis] > 1:
        raise imp.error(node, f"TopK along axis {axis}: only along the channel axis")
    if r.lo > -np.inf or r.hi < np.inf:
        name = imp.materialize(r, node.name)
        t = imp.tensor(name)
    shape = list(t.shape)
    classes = shape[axis]
    shape[axis] = 1
    width, _ = width_for(0, max(classes - 1, 1))
    out = imp.new_tensor(node.output[1], shape, IntFormat(bits=width, signed=False),
                         axis=t.axis)
    imp.graph.add_node("argmax", node.name, [t.name], [out], axis=axis)
    return out.name


@handles("TopK")
def TopK(imp, node):
    k = imp.const(node, 1, "K")
    if k is None or int(np.asarray(k).reshape(-1)[0]) != 1:
        raise imp.error(node, "only k = 1 (the argmax) is supported")
    if not int(imp.attr(node, "largest", 1)):
        raise imp.error(node, "largest = 0 (an argmin) is not supported")
    v = imp.value(node, 0)
    if not isinstance(v, Real):
        raise imp.error(node, f"input {node.input[0]!r} must be the model's quantized scores")
    src = imp.tensor(v.tensor)
    if np.any(np.asarray(src.scale) <= 0) and not isinstance(src.fmt, Acc):
        raise imp.error(node, "scores with a non-positive scale")
    if len(node.output) < 2 or not node.output[1]:
        raise imp.error(node, "TopK without an indices output")
    if node.output[0] and imp.uses[node.output[0]]:
        raise imp.error(node, "TopK's values output is used; qfab gives only the indices "
                              "(the scores are the tensor before TopK)")
    from qfab.compiler.frontend.values import Codes

    return [None, Codes(argmax_output(imp, node, v, int(imp.attr(node, "axis", -1))))]
