"""Float ONNX ops met between dequantized tensors (the QDQ and QONNX dialects).

Each becomes integer work on the codes, or changes the affine map from an accumulator to the
real number it stands for (BatchNormalization, Mul/Add by constants), or is folded into the
next quantizer (Relu, Clip). Layout ops (Reshape, Transpose, Concat, ...) are
:mod:`qfab.compiler.frontend.layout_ops`'.
"""

from __future__ import annotations

import numpy as np
from qfab.compiler.frontend import compute
from qfab.compiler.frontend.importer import handles
from qfab.compiler.frontend.lowering import narrow_requant, quantize_real
from qfab.compiler.frontend.values import Cat, Codes, Const, FloatIn, Real, Sum
from qfab.compiler.ir import Acc, clipped_range
from qfab.numerics import IntFormat


def _bias(imp, node, i: int, x: Real, w: Const):
    """(bias codes in accumulator units, or None; float bias, or None)."""
    v = imp.value(node, i)
    if v is None:
        return None, None
    if not isinstance(v, Const):
        raise imp.error(node, "bias must be a constant")
    xt = imp.tensor(x.tensor)
    expected = np.float32(xt.scale) * np.asarray(w.scale, np.float32)
    if v.codes is not None and np.all(np.asarray(v.zero_point) == 0) and np.allclose(
            np.asarray(v.scale, np.float32), expected, rtol=1e-6, atol=0):
        return v.codes.reshape(-1), None
    return None, np.asarray(v.value, np.float64).reshape(-1)


@handles("Conv")
def Conv(imp, node):
    x = imp.real(node, 0)
    w = compute.quantized_weight(imp, node, 1)
    codes, flt = _bias(imp, node, 2, x, w)
    return [compute.conv(imp, node, x, w, bias_codes=codes, bias_float=flt)]


@handles("MatMul")
def MatMul(imp, node):
    x = imp.real(node, 0)
    w = compute.quantized_weight(imp, node, 1)
    w.axis = w.axis % max(w.codes.ndim, 1)  # B is [K, N]: per-channel scales run along N
    return [compute.dense(imp, node, x, w, transposed=False)]


@handles("Gemm")
def Gemm(imp, node):
    if imp.attr(node, "transA", 0):
        raise imp.error(node, "transA=1 is not supported")
    x = imp.real(node, 0)
    w = compute.quantized_weight(imp, node, 1)
    transposed = bool(imp.attr(node, "transB", 0))
    if np.size(w.scale) > 1:
        w.axis = 0
    codes, flt = _bias(imp, node, 2, x, w)
    if float(imp.attr(node, "beta", 1.0)) != 1.0 and (codes is not None or flt is not None):
        raise imp.error(node, "beta != 1 is not supported")
    out = compute.dense(imp, node, x, w, transposed=transposed, bias_codes=codes,
                        bias_float=flt)
    alpha = float(imp.attr(node, "alpha", 1.0))
    if alpha != 1.0:
        t = imp.tensor(out.tensor)
        t.scale = t.scale * alpha
        if codes is not None:
            raise imp.error(node, "alpha != 1 with an integer bias is not supported")
    return [out]


@handles("Relu")
def Relu(imp, node):
    v = imp.value(node, 0)
    if isinstance(v, FloatIn):
        return [FloatIn(v.tensor, v.shape, v.pre + [("Relu", np.float32(0))])]
    r = imp.real(node, 0)
    return [Real(r.tensor, max(r.lo, 0.0), r.hi)]


@handles("Clip")
def Clip(imp, node):
    lo = imp.const(node, 1, "min")
    hi = imp.const(node, 2, "max")
    lo = float(imp.attr(node, "min", -np.inf)) if lo is None else float(lo)
    hi = float(imp.attr(node, "max", np.inf)) if hi is None else float(hi)
    v = imp.value(node, 0)
    if isinstance(v, Codes):
        return [Codes(clamp_codes(imp, node, v.tensor, lo, hi))]
    r = imp.real(node, 0)
    return [Real(r.tensor, max(r.lo, lo), min(r.hi, hi))]


def clamp_codes(imp, node, name: str, lo: float, hi: float) -> str:
    """Clip on integer codes (QCDQ: QuantizeLinear -> Clip -> DequantizeLinear narrows the
    integer range). Tightens the producing requantizer's bounds when it has no other use."""
    t = imp.tensor(name)
    if isinstance(t.fmt, Acc) or not hasattr(t.fmt, "min"):
        raise imp.error(node, f"clipping {name!r} needs integer codes")
    lo_i = max(t.fmt.min, int(np.ceil(lo))) if lo > -np.inf else t.fmt.min
    hi_i = min(t.fmt.max, int(np.floor(hi))) if hi < np.inf else t.fmt.max
    producer = imp.graph.producer(name)
    only_use = imp.uses[node.input[0]] == 1 and not imp.graph.consumers(name)
    if only_use and producer is not None and producer.op == "requant":
        narrow_requant(imp.graph, producer, lo_i, hi_i)
        return name
    if only_use and producer is not None and producer.op == "quantize" and isinstance(
            t.fmt, IntFormat):
        a = producer.attrs
        a["lo"], a["hi"] = clipped_range(a.get("lo", lo_i), a.get("hi", hi_i), lo_i, hi_i)
        return name
    out = imp.new_tensor(name + "_clip", t.shape, t.fmt, scale=t.scale,
                         zero_point=t.zero_point, axis=t.axis)
    imp.graph.add_node("clamp", node.name, [name], [out], lo=lo_i, hi=hi_i)
    imp.elem_types[out.name] = imp.elem_types.get(name, 0)
    return out.name


def concat_reals(imp, node, cat: Cat, fmt, scale, zero_point) -> str:
    """Each input requantized to the output's quantization, then concatenated."""
    names = [requantize(imp, f"{node.name}_in{i}", r, fmt, scale, zero_point)
             for i, r in enumerate(cat.parts)]
    ts = [imp.tensor(n) for n in names]
    shape = list(ts[0].shape)
    shape[cat.axis] = sum(t.shape[cat.axis] for t in ts)
    out = imp.new_tensor(node.name, shape, fmt, scale=ts[0].scale,
                         zero_point=ts[0].zero_point, axis=1)
    imp.graph.add_node("concat", node.name, names, [out], axis=cat.axis)
    return out.name


def requantize(imp, name: str, r: Real, fmt, scale, zero_point) -> str:
    """``r`` as codes of (fmt, scale, zero_point): the tensor itself when it already is."""
    src = imp.tensor(r.tensor)
    if (not isinstance(src.fmt, Acc) and src.fmt == fmt and r.lo == -np.inf
            and r.hi == np.inf and np.array_equal(src.scale, scale)
            and np.array_equal(src.zero_point, zero_point)):
        return r.tensor
    return quantize_real(imp, name, r, fmt, scale, zero_point)


def _acc_affine(imp, node, r: Real):
    t = imp.tensor(r.tensor)
    if not isinstance(t.fmt, Acc) or r.lo > -np.inf or r.hi < np.inf:
        raise imp.error(node, "can only follow a Conv/Gemm/MatMul directly (affine folding)")
    return t


def _per_channel(imp, node, t, c) -> np.ndarray:
    c = np.asarray(c, np.float64)
    if c.size == 1:
        return c.reshape(())
    channels = t.shape[t.axis]
    if c.size == channels and c.reshape(-1).size == max(c.shape):
        return c.reshape(-1)
    raise imp.error(node, f"constant of shape {c.shape} is not per-tensor or per-channel")


@handles("BatchNormalization")
def BatchNormalization(imp, node):
    r = imp.real(node, 0)
    t = _acc_affine(imp, node, r)
    gamma, beta, mean, var = (imp.const(node, i, n).astype(np.float64)
                              for i, n in ((1, "scale"), (2, "B"), (3, "mean"), (4, "var")))
    eps = float(imp.attr(node, "epsilon", 1e-5))
    k = gamma / np.sqrt(var + eps)
    t.scale = np.broadcast_to(t.scale, k.shape) * k
    t.bias = (np.broadcast_to(t.bias, k.shape) - mean) * k + beta
    return [Real(t.name)]


@handles("Mul", "Add", "Sub", "Div")
def Arith(imp, node):
    a, b = imp.value(node, 0), imp.value(node, 1)
    if node.op_type == "Add" and isinstance(a, Real) and isinstance(b, Real):
        return [Sum(a, b)]
    if isinstance(a, Const) and node.op_type in ("Mul", "Add"):
        a, b = b, a
    if not isinstance(b, Const):
        raise imp.error(node, "needs one constant operand (or two quantized inputs for Add)")
    c = b.value
    if isinstance(a, FloatIn):
        shape = np.broadcast_shapes(a.shape, np.shape(c))
        if shape != a.shape:
            raise imp.error(node, "a constant that broadcasts the input to a new shape")
        return [FloatIn(a.tensor, a.shape, a.pre + [(node.op_type, np.asarray(c, np.float32))])]
    if not isinstance(a, Real):
        raise imp.error(node, f"input {node.input[0]!r} is not quantized")
    t = _acc_affine(imp, node, a)
    c = _per_channel(imp, node, t, c)
    if node.op_type == "Mul":
        t.scale, t.bias = t.scale * c, t.bias * c
    elif node.op_type == "Div":
        t.scale, t.bias = t.scale / c, t.bias / c
    else:
        t.bias = t.bias + (c if node.op_type == "Add" else -c)
    return [Real(t.name)]


def add_reals(imp, node, a: Real, b: Real, fmt, scale, zero_point, lo: int | None = None,
              hi: int | None = None) -> str:
    """Residual add of two quantized tensors into codes of ``fmt`` (clamped to ``lo..hi``,
    the format's range by default)."""
    names = [imp.materialize(v, node.name) for v in (a, b)]
    ta, tb = (imp.tensor(n) for n in names)
    for t in (ta, tb):
        if isinstance(t.fmt, Acc) or np.size(t.scale) > 1:
            raise imp.error(node, f"input {t.name!r} must be a per-tensor quantized tensor")
    if ta.shape != tb.shape:
        raise imp.error(node, f"broadcasting add {ta.shape} + {tb.shape} is not supported")
    scale, zp = float(np.asarray(scale).reshape(())), int(np.asarray(zero_point).reshape(()))
    out = imp.new_tensor(node.name or node.output[0], ta.shape, fmt, scale=np.float64(scale),
                         zero_point=np.int64(zp), axis=ta.axis)
    imp.graph.add_node("add", node.name or node.output[0], names, [out],
                       scale_a=float(ta.scale) / scale, scale_b=float(tb.scale) / scale,
                       a_zero_point=int(ta.zero_point), b_zero_point=int(tb.zero_point),
                       zero_point=zp, lo=fmt.min if lo is None else lo,
                       hi=fmt.max if hi is None else hi)
    return out.name


def _pool_geometry(imp, node, shape, kernel):
    strides = list(imp.attr(node, "strides", [1, 1]))
    pads = list(imp.attr(node, "pads", [0, 0, 0, 0]))
    auto_pad = imp.attr(node, "auto_pad", "NOTSET")
    if auto_pad == "VALID":
        pads = [0, 0, 0, 0]
    elif auto_pad in ("SAME_UPPER", "SAME_LOWER"):  # Keras's padding="same"
        pads = compute.same_pads(auto_pad, shape[2:4], kernel, strides, (1, 1))
    if imp.attr(node, "ceil_mode", 0) or any(d != 1 for d in imp.attr(node, "dilations", [1])):
        raise imp.error(node, "ceil_mode and dilations are not supported")
    oh = (shape[2] + pads[0] + pads[2] - kernel[0]) // strides[0] + 1
    ow = (shape[3] + pads[1] + pads[3] - kernel[1]) // strides[1] + 1
    compute.check_window_fits(imp, node, shape[2:4], (oh, ow))
    return dict(kernel=tuple(kernel), strides=tuple(strides), pads=tuple(pads)), \
        (shape[0], shape[1], oh, ow)


@handles("MaxPool")
def MaxPool(imp, node):
    v = imp.value(node, 0)
    r = v if isinstance(v, Codes) else imp.real(node, 0)  # QOperator pools raw codes
    return [max_pool(imp, node, v, r)]


def max_pool(imp, node, v, r):
    t = imp.tensor(r.tensor)
    if len(t.shape) == 3 and isinstance(v, Real):  # MaxPooling1D: height 1
        from qfab.compiler.frontend import conv1d

        lifted = conv1d.lift(imp, node, r)
        return conv1d.lower(imp, node, max_pool(imp, conv1d.node_2d(node), lifted, lifted))
    # max of codes is the max of values only for an integer format with a positive scale.
    if (not isinstance(t.fmt, IntFormat) or np.size(t.scale) > 1 or np.any(t.scale <= 0)
            or len(t.shape) != 4):
        raise imp.error(node, "needs a per-tensor integer-quantized 4-D input")
    geo, shape = _pool_geometry(imp, node, t.shape, imp.attr(node, "kernel_shape"))
    out = imp.new_tensor(node.name or node.output[0], shape, t.fmt, scale=t.scale,
                         zero_point=t.zero_point, axis=1)
    imp.graph.add_node("maxpool", node.name or node.output[0], [t.name], [out], **geo)
    if isinstance(v, Codes):
        return Codes(out.name)
    return Real(out.name, r.lo, r.hi)  # max commutes with the pending clamp


@handles("AveragePool", "GlobalAveragePool")
def AveragePool(imp, node):
    return [average_pool(imp, node, imp.real(node, 0), node.op_type == "GlobalAveragePool")]


def average_pool(imp, node, r: Real, whole: bool) -> Real:
    """The window (or, ``whole``, the whole plane) sum, exactly; the 1/count is a scale."""
    name = imp.materialize(r, node.name)
    t = imp.tensor(name)
    if len(t.shape) == 3:  # AveragePooling1D: height 1
        from qfab.compiler.frontend import conv1d

        lifted = conv1d.lift(imp, node, Real(name))
        return conv1d.lower(imp, node, average_pool(imp, conv1d.node_2d(node), lifted, whole))
    if isinstance(t.fmt, Acc) or np.size(t.scale) > 1 or len(t.shape) != 4:
        raise imp.error(node, "needs a per-tensor quantized 4-D input")
    if whole:
        count = t.shape[2] * t.shape[3]
        out = imp.new_tensor(node.name, t.shape[:2] + (1, 1), Acc(),
                             scale=np.float64(t.scale) / count, axis=1)
        imp.graph.add_node("globalsum", node.name, [name], [out],
                           x_zero_point=int(t.zero_point))
        return Real(out.name)
    kernel = imp.attr(node, "kernel_shape")
    geo, shape = _pool_geometry(imp, node, t.shape, kernel)
    if any(geo["pads"]) and not imp.attr(node, "count_include_pad", 0):
        raise imp.error(node, "padding without count_include_pad=1 is not supported")
    out = imp.new_tensor(node.name, shape, Acc(),
                         scale=np.float64(t.scale) / (kernel[0] * kernel[1]), axis=1)
    imp.graph.add_node("sumpool", node.name, [name], [out], x_zero_point=int(t.zero_point),
                       **geo)
    return Real(out.name)
