"""The import boundary: a model is checked once, before any handler reads it.

onnx's checker (with the custom domains qfab reads made known to it) and qfab's own semantic
checks: the opset and every node's domain are known, every quantizer scale is finite,
positive and normal, zero points have the right type and lie in range, integer attributes
are integral and in range, window attributes fit the weights, graph inputs have positive,
bounded shapes. So handlers may assume well-formed attributes, finite positive scales and
in-range zero points (DESIGN.md). Every failure is a ``QfabError`` of one line naming the
node and the attribute or input.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
from google.protobuf.message import Message
from onnx import numpy_helper

from qfab.errors import QfabError

STANDARD_DOMAINS = ("", "ai.onnx")
# onnxruntime's oldest supported opset; older ones give several ops other meanings.
MIN_OPSET = 7
MAX_OPSET = onnx.defs.onnx_opset_version()
MIN_IR_VERSION = 3

QONNX_OPS = frozenset({"Quant", "IntQuant", "BipolarQuant", "Trunc", "FloatQuant",
                       "MultiThreshold", "XnorPopcountMatMul", "Im2Col", "MaxPoolNHWC",
                       "QuantAvgPool2d", "DebugMarker", "GenericPartition"})
# Ops qfab reads from each non-standard domain. A node of another domain, or of an op its
# domain lacks, is an error: it is never read as the standard op of the same name (the
# channels-last Conv of qonnx.custom_op.channels_last is not ONNX's Conv).
CUSTOM_DOMAIN_OPS: dict[str, frozenset[str]] = {
    "qonnx.custom_op.general": QONNX_OPS,
    "finn.custom_op.general": QONNX_OPS,  # FINN's name for the same ops
    "finn": QONNX_OPS,  # older FINN exports (qonnx reads it as its general domain)
    "onnx.brevitas": QONNX_OPS,  # older Brevitas exports (qonnx aliases it too)
    # Rewritten into standard ops before validation (channels_last.py); a node left here
    # was one the rewrite could not read.
    "qonnx.custom_op.channels_last": frozenset({"Conv", "MaxPool", "BatchNormalization"}),
    "com.microsoft": frozenset({
        "QLinearAdd", "QLinearMul", "QGemm", "QLinearConcat", "QLinearAveragePool",
        "QLinearGlobalAveragePool", "QLinearLeakyRelu", "QLinearSigmoid", "QLinearSoftmax",
        "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeMatMul", "MatMulIntegerToFloat"}),
}

# Per-sample elements of a graph input, and the largest dimension: far above any model qfab
# can build, low enough that the planner's buffers fit in memory.
MAX_DIM = 1 << 16
MAX_INPUT_ELEMENTS = 1 << 26


def validate_model(model: onnx.ModelProto) -> None:
    """Raise ``QfabError`` (one line) when ``model`` is not a well-formed model qfab reads."""
    _check_text(model)
    if not model.HasField("graph") or not (model.graph.node or model.graph.output):
        raise QfabError("the model has no graph (an empty or truncated file?)")
    if not MIN_IR_VERSION <= model.ir_version <= onnx.IR_VERSION:
        raise QfabError(f"ir_version {model.ir_version} is outside {MIN_IR_VERSION}.."
                        f"{onnx.IR_VERSION} (what this onnx reads)")
    _check_opsets(model)
    _check_domains(model.graph)
    _run_checker(model)
    graph = model.graph
    if not graph.output:
        raise QfabError("the graph has no outputs")
    consts = _constants(graph)
    for inp in graph.input:
        if inp.name not in consts:
            _check_input(inp)
    producers = {o: node for node in graph.node for o in node.output}
    for node in graph.node:
        check = NODE_CHECKS.get(node.op_type)
        if check is not None:
            check(_Node(node, consts, producers))


# ---- the model as a whole ------------------------------------------------------------------

def _check_text(model: onnx.ModelProto) -> None:
    """Every string is valid UTF-8: protobuf hands an invalid one back as bytes (a byte
    flipped in a name), which would fail in whichever handler first read it."""
    def walk(msg) -> None:
        for field, value in msg.ListFields():
            if field.type == field.TYPE_STRING:
                values = [value] if isinstance(value, str | bytes) else value
                if any(not isinstance(v, str) for v in values):
                    raise QfabError(f"a {type(msg).__name__} field {field.name!r} is not valid "
                                    "UTF-8 (a corrupt file?)")
            elif field.type == field.TYPE_MESSAGE:
                for item in [value] if isinstance(value, Message) else value:
                    walk(item)

    walk(model)


def _check_opsets(model: onnx.ModelProto) -> None:
    versions = {o.domain: o.version for o in model.opset_import}
    standard = [versions[d] for d in STANDARD_DOMAINS if d in versions]
    if not standard:
        raise QfabError("the model imports no opset of the standard ONNX domain "
                        "(opset_import is missing)")
    if not MIN_OPSET <= standard[0] <= MAX_OPSET:
        raise QfabError(f"opset {standard[0]} of the standard ONNX domain is outside "
                        f"{MIN_OPSET}..{MAX_OPSET} (what qfab reads)")


def _check_domains(graph: onnx.GraphProto) -> None:
    for node in graph.node:
        if not node.op_type.isidentifier():  # a flipped byte: the error line must stay one
            raise QfabError(f"node {node.name!r}: op type {node.op_type!r} is not a name (a "
                            "corrupt file?)")
        if node.domain in STANDARD_DOMAINS:
            continue
        ops = CUSTOM_DOMAIN_OPS.get(node.domain)
        if ops is None:
            raise QfabError(f"{node.op_type} node {node.name!r}: domain {node.domain!r} is not "
                            f"one qfab reads ({', '.join(sorted(CUSTOM_DOMAIN_OPS))}, and the "
                            "standard domain)")
        if node.op_type not in ops:
            raise QfabError(f"{node.op_type} node {node.name!r}: domain {node.domain!r} has no "
                            f"op {node.op_type} qfab reads")


def _run_checker(model: onnx.ModelProto) -> None:
    """onnx's checker, told the custom domains qfab reads: real QONNX models use them
    without importing them (TFC_2W2A's onnx.brevitas)."""
    checked = onnx.ModelProto()
    checked.CopyFrom(model)
    used = {n.domain for n in model.graph.node} - set(STANDARD_DOMAINS)
    imported = {o.domain for o in model.opset_import}
    checked.opset_import.extend(onnx.helper.make_opsetid(d, 1) for d in sorted(used - imported))
    # A graph output without a shape is common (onnx.helper's shape=None) and harmless: the
    # importer computes every shape itself.
    for info in (*checked.graph.input, *checked.graph.output, *checked.graph.value_info):
        if info.type.HasField("tensor_type") and not info.type.tensor_type.HasField("shape"):
            info.type.tensor_type.shape.SetInParent()
    try:
        onnx.checker.check_model(checked)
    except onnx.checker.ValidationError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise QfabError(f"not a valid ONNX model: {first}") from None


def _constants(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    """Initializers and Constant node outputs, as arrays (a corrupt one is an error here)."""
    consts: dict[str, np.ndarray] = {}
    for init in graph.initializer:
        consts[init.name] = _array(init, f"initializer {init.name!r}")
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute:
            a = node.attribute[0]
            if a.type == onnx.AttributeProto.TENSOR:
                consts[node.output[0]] = _array(a.t, f"Constant node {node.name!r}")
    return consts


def _array(tensor: onnx.TensorProto, what: str) -> np.ndarray:
    if any(d < 0 for d in tensor.dims):
        raise QfabError(f"{what}: negative dimension in shape {list(tensor.dims)}")
    try:
        return numpy_helper.to_array(tensor)
    except Exception as e:  # a size that does not match the data, an unknown type, ...
        raise QfabError(f"{what}: unreadable tensor data ({type(e).__name__})") from None


def _check_input(inp: onnx.ValueInfoProto) -> None:
    tt = inp.type.tensor_type
    if not tt.HasField("shape") or not tt.shape.dim:
        raise QfabError(f"graph input {inp.name!r} has no shape (rank 0 or unknown); qfab "
                        "needs a batch dimension and static sizes")
    elements = 1
    for i, d in enumerate(tt.shape.dim):
        if not d.HasField("dim_value"):
            continue  # symbolic: the importer allows it for the batch only
        if not 1 <= d.dim_value <= MAX_DIM:
            raise QfabError(f"graph input {inp.name!r}: dimension {i} is {d.dim_value}; sizes "
                            f"must be in 1..{MAX_DIM}")
        elements *= d.dim_value if i else 1
    if elements > MAX_INPUT_ELEMENTS:
        raise QfabError(f"graph input {inp.name!r}: {elements} elements a sample, more than "
                        f"{MAX_INPUT_ELEMENTS}")


# ---- one node ------------------------------------------------------------------------------

class _Node:
    """A node with the constants it reads, and checks that raise one-line errors."""

    def __init__(self, node: onnx.NodeProto, consts: dict[str, np.ndarray],
                 producers: dict[str, onnx.NodeProto]):
        self.node = node
        self.consts = consts
        self.producers = producers
        self.attrs = {a.name: a for a in node.attribute}

    def fail(self, message: str) -> QfabError:
        return QfabError(f"{self.node.op_type} node {self.node.name!r}: {message}")

    def const(self, i: int) -> np.ndarray | None:
        """Input ``i`` when it is a constant (None when absent or computed)."""
        n = self.node
        if i >= len(n.input) or not n.input[i]:
            return None
        return self.consts.get(n.input[i])

    def source_shape(self, i: int) -> list[int] | None:
        """The shape of input ``i`` when it is a constant, or a constant seen through
        shape-keeping quantizers (a DequantizeLinear or Quant of weights)."""
        if not self.has_input(i):
            return None
        name = self.node.input[i]
        for _ in range(4):
            if name in self.consts:
                return list(self.consts[name].shape)
            producer = self.producers.get(name)
            if producer is None or producer.op_type not in _SHAPE_KEEPING or not producer.input:
                return None
            name = producer.input[0]
        return None

    def has_input(self, i: int) -> bool:
        return i < len(self.node.input) and bool(self.node.input[i])

    def int_attr(self, name: str, default: int | None, lo: int, hi: int | None = None):
        """An attribute that must be an integer in lo..hi (a float one must be integral)."""
        a = self.attrs.get(name)
        if a is None:
            return default
        if a.type == onnx.AttributeProto.INT:
            v = a.i
        elif a.type == onnx.AttributeProto.FLOAT and np.isfinite(a.f) and a.f == int(a.f):
            v = int(a.f)
        else:
            raise self.fail(f"attribute {name} must be an integer (got "
                            f"{onnx.helper.get_attribute_value(a)!r})")
        if v < lo or (hi is not None and v > hi):
            raise self.fail(f"attribute {name} = {v} is outside {lo}.."
                            f"{'' if hi is None else hi}")
        return v

    def flag(self, name: str, default: int) -> int:
        return self.int_attr(name, default, 0, 1)

    def ints_attr(self, name: str, lo: int, length: int | None = None) -> list[int] | None:
        a = self.attrs.get(name)
        if a is None:
            return None
        if a.type != onnx.AttributeProto.INTS:
            raise self.fail(f"attribute {name} must be a list of integers")
        v = list(a.ints)
        if length is not None and len(v) != length:
            raise self.fail(f"attribute {name} = {v} needs {length} values")
        if any(x < lo for x in v):
            raise self.fail(f"attribute {name} = {v}: every value must be >= {lo}")
        return v

    def float_attr(self, name: str) -> None:
        a = self.attrs.get(name)
        if a is not None and a.type == onnx.AttributeProto.FLOAT and not np.isfinite(a.f):
            raise self.fail(f"attribute {name} = {a.f} is not finite")

    def string_attr(self, name: str, allowed: tuple[str, ...]) -> None:
        a = self.attrs.get(name)
        if a is None:
            return
        v = a.s.decode("utf-8", "replace") if a.type == onnx.AttributeProto.STRING else None
        if v not in allowed:
            raise self.fail(f"attribute {name} = {v!r} is not one of {', '.join(allowed)}")

    def scale(self, i: int, what: str = "scale") -> np.ndarray | None:
        """A quantizer scale: finite, positive and normal in its own float type."""
        s = self.const(i)
        if s is None:
            return None
        if s.dtype.kind != "f" or s.size == 0:
            raise self.fail(f"{what} {self.node.input[i]!r} must be a non-empty float tensor "
                            f"(got {s.dtype}, shape {list(s.shape)})")
        tiny = np.finfo(s.dtype).smallest_normal
        bad = ~(np.isfinite(s) & (s >= tiny))
        if bad.any():
            v = s.reshape(-1)[np.argmax(bad.reshape(-1))]
            kind = ("not finite" if not np.isfinite(v) else "not positive" if v <= 0
                    else f"subnormal in {s.dtype}")
            raise self.fail(f"{what} {self.node.input[i]!r} = {v} is {kind}; scales must be "
                            "finite, positive and normal")
        return s

    def integral(self, i: int, what: str, lo: float, hi: float | None = None) -> int | None:
        """A scalar input that must hold an integer in lo..hi (QONNX bit widths)."""
        v = self.const(i)
        if v is None:
            return None
        if v.size != 1 or v.dtype.kind not in "fiu":
            raise self.fail(f"{what} {self.node.input[i]!r} must be a scalar number")
        x = float(v.reshape(-1)[0])
        if not np.isfinite(x) or x != int(x) or x < lo or (hi is not None and x > hi):
            rng = f"{lo:g}..{'' if hi is None else f'{hi:g}'}"
            raise self.fail(f"{what} {self.node.input[i]!r} = {x:g} must be an integer in {rng}")
        return int(x)

    def finite(self, i: int, what: str) -> None:
        v = self.const(i)
        if v is not None and v.dtype.kind == "f" and not np.all(np.isfinite(v)):
            raise self.fail(f"{what} {self.node.input[i]!r} holds a value that is not finite")


# ---- QDQ and QOperator ---------------------------------------------------------------------

# Zero point element types ONNX allows a quantizer's output (QuantizeLinear's T2 up to opset
# 25); DequantizeLinear also reads int32.
_Q_TYPES = {np.dtype(t) for t in ("int8", "uint8", "int16", "uint16")}


def _is_quantized_dtype(dtype: np.dtype, *, dequantize: bool) -> bool:
    from qfab.compiler.frontend import dtypes

    if dtype in _Q_TYPES or dtype == np.dtype("int32"):
        return dequantize or dtype != np.dtype("int32")
    try:
        return dtypes.is_quantized_type(onnx.helper.np_dtype_to_tensor_dtype(dtype))
    except (KeyError, ValueError, TypeError):
        return False


def _per_axis(n: _Node, data: int, scale: np.ndarray | None, zp: np.ndarray | None,
              param_axis: bool = True) -> None:
    """Scale and zero point agree in shape; a 1-D scale runs along ``axis`` of the data."""
    if scale is not None and zp is not None and zp.size != 1 and zp.shape != scale.shape:
        raise n.fail(f"zero point shape {list(zp.shape)} differs from the scale's "
                     f"{list(scale.shape)}")
    x = n.const(data)
    if scale is None or scale.size == 1 or x is None or not param_axis:
        return
    block = n.int_attr("block_size", 0, 0)
    axis = n.int_attr("axis", 1, -x.ndim, x.ndim - 1) % max(x.ndim, 1)
    if scale.ndim == 1 and not block and scale.size != x.shape[axis]:
        raise n.fail(f"scale of {scale.size} values for axis {axis} of {list(x.shape)}")


def _zero_point(n: _Node, i: int, *, dequantize: bool) -> np.ndarray | None:
    zp = n.const(i)
    if zp is None:
        return None
    if not _is_quantized_dtype(zp.dtype, dequantize=dequantize):
        raise n.fail(f"zero point {n.node.input[i]!r} has type {zp.dtype}, not an integer or "
                     "float8 quantized type")
    return zp


def _quantize_linear(n: _Node) -> None:
    scale = n.scale(1)
    zp = _zero_point(n, 2, dequantize=False)
    n.flag("saturate", 1)
    _per_axis(n, 0, scale, zp)


def _dequantize_linear(n: _Node) -> None:
    scale = n.scale(1)
    zp = _zero_point(n, 2, dequantize=True)
    x = n.const(0)
    if x is not None and zp is not None and x.dtype != zp.dtype:
        raise n.fail(f"zero point type {zp.dtype} differs from the data's {x.dtype}")
    _per_axis(n, 0, scale, zp)


def _qoperator(triples: tuple[tuple[int, int, int], ...], out: tuple[int, int] | None):
    """Checks for a QLinear op: each (data, scale, zero point) triple, and the output's
    (scale, zero point)."""
    def check(n: _Node) -> None:
        for data, s, z in triples:
            if n.has_input(s):
                _per_axis(n, data, n.scale(s), _zero_point(n, z, dequantize=True),
                          param_axis=False)
                x, zp = n.const(data), n.const(z)
                if x is not None and zp is not None and x.dtype != zp.dtype:
                    raise n.fail(f"zero point {n.node.input[z]!r} type {zp.dtype} differs "
                                 f"from the data's {x.dtype}")
        if out is not None and n.has_input(out[0]):
            n.scale(out[0], "output scale")
            _zero_point(n, out[1], dequantize=False)
        _window(n)
        n.flag("transA", 0)
        n.flag("transB", 0)
        n.float_attr("alpha")
        n.flag("channels_last", 0)
    return check


def _qlinear_softmax(n: _Node) -> None:
    _qoperator(((0, 1, 2),), (3, 4))(n)
    n.int_attr("opset", 13, 1, MAX_OPSET)
    n.int_attr("axis", -1, -64, 63)


def _qlinear_concat(n: _Node) -> None:
    n.scale(0, "output scale")
    _zero_point(n, 1, dequantize=False)
    for i in range(2, len(n.node.input), 3):
        n.scale(i + 1)
        _zero_point(n, i + 2, dequantize=True)


# ---- windows: Conv and pools --------------------------------------------------------------

_AUTO_PAD = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")


def _window(n: _Node) -> None:
    """Conv and pool attributes: positive strides, dilations and kernel, pads >= 0 and each
    smaller than the kernel's extent (else a whole output row or column is padding), kernel
    and group consistent with the weights."""
    op = n.node.op_type
    if op not in WINDOW_OPS:
        return
    n.string_attr("auto_pad", _AUTO_PAD)
    for name in ("ceil_mode", "count_include_pad", "storage_order"):
        n.flag(name, 0)
    weight = WINDOW_OPS[op]
    kernel = n.ints_attr("kernel_shape", 1)
    w = n.source_shape(weight) if weight is not None else None
    if w is not None:
        if len(w) < 3 or min(w) < 1:
            raise n.fail(f"weight {n.node.input[weight]!r} of shape {w} needs output and "
                         "input channels and a non-empty kernel")
        if kernel is not None and w[2:] != kernel:
            raise n.fail(f"attribute kernel_shape = {kernel} contradicts the weight's {w[2:]}")
        kernel = w[2:]
        group = n.int_attr("group", 1, 1)
        if w[0] % group:
            raise n.fail(f"attribute group = {group} does not divide the {w[0]} output channels")
    elif weight is None and "Global" not in op and kernel is None:
        raise n.fail("attribute kernel_shape is required")
    else:
        n.int_attr("group", 1, 1)
    rank = None if kernel is None else len(kernel)
    n.ints_attr("strides", 1, rank)
    dilations = n.ints_attr("dilations", 1, rank) or [1] * (rank or 0)
    pads = n.ints_attr("pads", 0, None if rank is None else 2 * rank)
    if kernel is None or pads is None:
        return
    for i, k in enumerate(kernel):
        extent = dilations[i] * (k - 1) + 1
        if max(pads[i], pads[i + rank]) >= extent:
            raise n.fail(f"attribute pads = {pads}: a pad of {max(pads[i], pads[i + rank])} "
                         f"on axis {i} is not smaller than the kernel's extent {extent}, so "
                         "whole outputs would be padding")


_SHAPE_KEEPING = {"DequantizeLinear", "QuantizeLinear", "Clip", "Quant", "IntQuant",
                  "BipolarQuant", "FloatQuant", "Identity", "Cast"}
# op -> the input index of its weight (None for pools).
WINDOW_OPS: dict[str, int | None] = {
    "Conv": 1, "ConvInteger": 1, "QLinearConv": 3, "MaxPool": None, "AveragePool": None,
    "QLinearAveragePool": None, "LpPool": None}


def _conv(n: _Node) -> None:
    _window(n)


def _gemm(n: _Node) -> None:
    n.flag("transA", 0)
    n.flag("transB", 0)
    n.float_attr("alpha")
    n.float_attr("beta")


def _batch_norm(n: _Node) -> None:
    n.float_attr("epsilon")
    a = n.attrs.get("epsilon")
    eps = a.f if a is not None else 1e-5
    for i, what in ((1, "scale"), (2, "bias"), (3, "mean"), (4, "variance")):
        n.finite(i, what)
    var = n.const(4)
    if var is not None and np.any(var.astype(np.float64) + eps <= 0):
        raise n.fail(f"variance {n.node.input[4]!r} + epsilon is not positive")


def _clip(n: _Node) -> None:
    for i in (1, 2):
        v = n.const(i)
        if v is not None and v.dtype.kind == "f" and np.any(np.isnan(v)):
            raise n.fail(f"bound {n.node.input[i]!r} is NaN")
    for name in ("min", "max"):
        a = n.attrs.get(name)
        if a is not None and np.isnan(a.f):
            raise n.fail(f"attribute {name} is NaN")


def _arith(n: _Node) -> None:
    for i in (0, 1):
        n.finite(i, "constant")
    if n.node.op_type == "Div":
        d = n.const(1)
        if d is not None and np.any(d == 0):
            raise n.fail(f"divisor {n.node.input[1]!r} holds a zero")


# ---- QONNX ---------------------------------------------------------------------------------

_ROUNDING = ("ROUND", "HALF_EVEN", "FLOOR", "HALF_UP", "CEIL", "ROUND_TO_ZERO")


def _quant(n: _Node) -> None:
    n.scale(1)
    bits = n.integral(3, "bit width", 1, 32)
    signed = n.flag("signed", 1)
    n.flag("narrow", 0)
    n.string_attr("rounding_mode", _ROUNDING)
    zp = n.const(2)
    if zp is None or bits is None:
        return
    if zp.dtype.kind not in "fiu" or not np.all(np.isfinite(zp)) or np.any(zp != np.round(zp)):
        raise n.fail(f"zero point {n.node.input[2]!r} must hold integers")
    lo = -(1 << (bits - 1)) if signed else 0
    hi = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
    if bits == 1 and signed:
        lo = hi = 0  # bipolar: +-scale, no zero point
    if np.any(zp < lo) or np.any(zp > hi):
        raise n.fail(f"zero point {n.node.input[2]!r} = {zp.reshape(-1)[0]:g}... lies outside "
                     f"the {bits}-bit {'signed' if signed else 'unsigned'} range {lo}..{hi}")


def _bipolar_quant(n: _Node) -> None:
    n.scale(1)


def _trunc(n: _Node) -> None:
    n.scale(1)
    n.finite(2, "zero point")
    in_bits = n.integral(3, "input bit width", 1, 32)
    out_bits = n.integral(4, "output bit width", 1, 32)
    if in_bits is not None and out_bits is not None and out_bits > in_bits:
        raise n.fail(f"output bit width {out_bits} exceeds the input bit width {in_bits}")
    n.string_attr("rounding_mode", _ROUNDING)


def _float_quant(n: _Node) -> None:
    n.scale(1)
    n.integral(2, "exponent bit width", 1, 8)
    n.integral(3, "mantissa bit width", 0, 23)
    n.integral(4, "exponent bias", -(1 << 8), 1 << 8)
    if n.has_input(5):
        n.scale(5, "max value")
    for name in ("has_subnormal", "has_inf", "has_nan", "saturation"):
        n.flag(name, 1)
    n.string_attr("rounding_mode", _ROUNDING)


def _multithreshold(n: _Node) -> None:
    thr = n.const(1)
    if thr is not None and thr.dtype.kind == "f" and np.any(np.isnan(thr)):
        raise n.fail(f"thresholds {n.node.input[1]!r} hold NaN")
    for name in ("out_scale", "out_bias"):
        n.float_attr(name)
    a = n.attrs.get("out_scale")
    if a is not None and (a.f == 0 or abs(a.f) < np.finfo(np.float32).smallest_normal):
        raise n.fail(f"attribute out_scale = {a.f} must be nonzero and normal")


NODE_CHECKS: dict[str, Callable[[_Node], None]] = {
    "QuantizeLinear": _quantize_linear,
    "DequantizeLinear": _dequantize_linear,
    "QLinearConv": _qoperator(((0, 1, 2), (3, 4, 5)), (6, 7)),
    "QLinearMatMul": _qoperator(((0, 1, 2), (3, 4, 5)), (6, 7)),
    "QGemm": _qoperator(((0, 1, 2), (3, 4, 5)), (7, 8)),
    "QLinearAdd": _qoperator(((0, 1, 2), (3, 4, 5)), (6, 7)),
    "QLinearMul": _qoperator(((0, 1, 2), (3, 4, 5)), (6, 7)),
    "QLinearAveragePool": _qoperator(((0, 1, 2),), (3, 4)),
    "QLinearGlobalAveragePool": _qoperator(((0, 1, 2),), (3, 4)),
    "QLinearLeakyRelu": _qoperator(((0, 1, 2),), (3, 4)),
    "QLinearSigmoid": _qoperator(((0, 1, 2),), (3, 4)),
    "QLinearSoftmax": _qlinear_softmax,
    "QLinearConcat": _qlinear_concat,
    "Conv": _conv,
    "ConvInteger": _conv,
    "MaxPool": _conv,
    "AveragePool": _conv,
    "Gemm": _gemm,
    "BatchNormalization": _batch_norm,
    "Clip": _clip,
    "Mul": _arith,
    "Div": _arith,
    "Add": _arith,
    "Sub": _arith,
    "Quant": _quant,
    "IntQuant": _quant,
    "BipolarQuant": _bipolar_quant,
    "Trunc": _trunc,
    "FloatQuant": _float_quant,
    "MultiThreshold": _multithreshold,
}


# ---- input arrays ------------------------------------------------------------------------

def check_input_array(name: str, array: np.ndarray, fmt) -> None:
    """An input batch for graph input ``name`` of format ``fmt`` (None: a float input):
    numbers of a real type, at least one sample, finite floats, integer codes in range."""
    kind = array.dtype.kind
    # ml_dtypes' types (what ONNX TensorProto files give) are kind "V".
    float8 = kind == "V" and array.dtype.name.startswith(("float8", "float4"))
    if kind == "V" and array.dtype.name.startswith(("int", "uint")):
        array, kind = array.astype(np.int64), "i"
    if kind not in "fiu" and not float8:
        raise QfabError(f"input {name!r}: dtype {array.dtype} is not a real number type")
    if array.ndim == 0 or array.shape[0] == 0:
        raise QfabError(f"input {name!r}: shape {array.shape} holds no sample (an empty batch)")
    if fmt is None and kind == "f" and not np.all(np.isfinite(array)):
        bad = int(np.count_nonzero(~np.isfinite(array)))
        raise QfabError(f"input {name!r}: {bad} values are NaN or infinite")
    minifloat = not hasattr(fmt, "min")
    if fmt is None or float8 or (minifloat and kind == "f"):
        return  # floats, or minifloat values that the format encodes (NaN and inf too)
    if kind == "f" and np.any(array != np.round(array)):
        raise QfabError(f"input {name!r}: the model takes integer codes ({fmt}); the array "
                        "holds fractions")
    lo, hi = (0, (1 << fmt.bits) - 1) if minifloat else (fmt.min, fmt.max)
    if array.size and (array.min() < lo or array.max() > hi):
        raise QfabError(f"input {name!r}: codes {array.min()}..{array.max()} lie outside "
                        f"{fmt}'s {lo}..{hi}")
