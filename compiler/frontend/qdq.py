"""QDQ and QOperator ops: QuantizeLinear, DequantizeLinear and the QLinear*/…Integer family."""

from __future__ import annotations

import dataclasses

import numpy as np
from onnx import TensorProto
from qfab.compiler.frontend import compute, dtypes
from qfab.compiler.frontend.importer import handles
from qfab.compiler.frontend.lowering import quantize_real
from qfab.compiler.frontend.values import Cat, Codes, Const, FloatIn, Real, Sum
from qfab.numerics import IntFormat, MinifloatFormat


def _zero_point_type(imp, node, i: int, default: int) -> int:
    if i < len(node.input) and node.input[i] and node.input[i] in imp.elem_types:
        return imp.elem_types[node.input[i]]
    return default


def _out_format(imp, node):
    from onnx import TensorProto

    et = _zero_point_type(imp, node, 2, 0)
    if not et:
        et = imp.attr(node, "output_dtype", 0) or TensorProto.UINT8
    return et, dtypes.format_of(et)


def _axis(imp, node, ndim: int) -> int:
    axis = int(imp.attr(node, "axis", 1))
    return axis + ndim if axis < 0 else axis


def _expand_blocked(param: np.ndarray, shape, axis: int, block: int) -> np.ndarray:
    """A per-axis or blocked quantization parameter, shaped to broadcast against ``shape``."""
    param = np.asarray(param)
    if param.ndim <= 1 and param.size == 1:
        return param.reshape(())
    if param.ndim == 1:
        s = [1] * len(shape)
        s[axis] = param.size
        return param.reshape(s)
    return np.repeat(param, block, axis=axis)[tuple(slice(0, d) for d in shape)]


@handles("QuantizeLinear")
def QuantizeLinear(imp, node):
    et, fmt = _out_format(imp, node)
    scale = imp.const(node, 1, "scale")
    zp = imp.const(node, 2, "zero point")
    zp = np.zeros((), np.int64) if zp is None else dtypes.to_codes(zp, fmt)
    saturate = bool(imp.attr(node, "saturate", 1))
    v = imp.value(node, 0)
    if isinstance(v, Codes):
        raise imp.error(node, "input is already quantized")
    if saturate and isinstance(fmt, MinifloatFormat) and not isinstance(v, FloatIn):
        # saturate=1 (the default): a value past the format's range becomes its largest
        # finite value, not infinity or NaN. (A graph input's quantizer reads the attribute.)
        fmt = dataclasses.replace(fmt, saturate=True)
    if isinstance(v, Sum | Cat):
        from qfab.compiler.frontend.float_ops import add_reals, concat_reals

        out = (add_reals(imp, node, v.a, v.b, fmt, scale, zp) if isinstance(v, Sum)
               else concat_reals(imp, node, v, fmt, scale, zp))
        imp.elem_types[out] = et
        return [Codes(out)]
    shape = v.shape if isinstance(v, FloatIn) else imp.tensor(v.tensor).shape
    axis = _axis(imp, node, len(shape))
    if isinstance(v, FloatIn):
        block = int(imp.attr(node, "block_size", 0))
        t = imp.new_tensor(node.output[0], shape, fmt,
                           scale=_expand_blocked(scale.astype(np.float32), shape, axis, block),
                           zero_point=_expand_blocked(zp, shape, axis, block), axis=axis)
        imp.graph.add_node("quantize", node.name or node.output[0], [v.tensor], [t],
                           pre=v.pre, saturate=saturate)
        imp.elem_types[t.name] = et
        return [Codes(t.name)]
    from qfab.compiler.frontend.activations import retarget
    from qfab.compiler.frontend.float_ops import requantize

    out = retarget(imp, node.input[0], v, fmt, scale, zp)  # softmax -> QuantizeLinear
    if out is None:
        out = requantize(imp, node.name, v, fmt, scale, zp)  # the same quantizer: identity
    imp.elem_types[out] = et
    return [Codes(out)]


@handles("DequantizeLinear")
def DequantizeLinear(imp, node):
    v = imp.value(node, 0)
    scale = imp.const(node, 1, "scale")
    zp_raw = imp.const(node, 2, "zero point")
    if isinstance(v, Const):
        et = imp.elem_types.get(node.input[0])
        fmt = dtypes.format_of(et) if et and dtypes.is_quantized_type(et) else None
        if fmt is None:
            raise imp.error(node, f"constant {node.input[0]!r} is not an integer tensor")
        codes = dtypes.to_codes(v.value, fmt)
        zp = np.zeros((), np.int64) if zp_raw is None else dtypes.to_codes(zp_raw, fmt)
        axis = _axis(imp, node, codes.ndim)
        block = int(imp.attr(node, "block_size", 0))
        real = (fmt.to_fixed(codes) * 2.0**fmt.lsb_exponent
                - _expand_blocked(zp, codes.shape, axis, block)) \
            * _expand_blocked(scale, codes.shape, axis, block)
        return [Const(real.astype(np.float32), codes=codes, fmt=fmt, scale=np.asarray(scale),
                      zero_point=zp, axis=axis)]
    if not isinstance(v, Codes):
        raise imp.error(node, f"input {node.input[0]!r} is not a quantized tensor")
    t = imp.tensor(v.tensor)
    zp = np.zeros((), np.int64) if zp_raw is None else dtypes.to_codes(zp_raw, t.fmt)
    axis = _axis(imp, node, len(t.shape))
    block = int(imp.attr(node, "block_size", 0))
    scale = _expand_blocked(np.asarray(scale, np.float32), t.shape, axis, block)
    zp = _expand_blocked(zp, t.shape, axis, block)
    if not (np.array_equal(t.scale, scale) and np.array_equal(t.zero_point, zp)):
        if t.name in imp.graph.inputs or imp.graph.producer(t.name) is None or np.all(
                t.scale == 1):
            t.scale, t.zero_point, t.axis = scale, zp, axis  # raw integer input: adopt params
        else:
            raise imp.error(node, "dequantizes with parameters that differ from the tensor's "
                                  "quantizer")
    return [Real(v.tensor)]


def _q(imp, node, data: int, scale: int, zp: int) -> Real:
    """A QOperator (tensor, scale, zero point) input triple, seen as a dequantized value."""
    v = imp.value(node, data)
    s = imp.const(node, scale, "scale")
    z = imp.const(node, zp, "zero point")
    if isinstance(v, Const):
        fmt = dtypes.format_of(imp.elem_types[node.input[data]])
        codes = dtypes.to_codes(v.value, fmt)
        z = np.zeros((), np.int64) if z is None else dtypes.to_codes(z, fmt)
        return Const(v.value, codes=codes, fmt=fmt, scale=np.asarray(s, np.float32),
                     zero_point=z, axis=0)
    if not isinstance(v, Codes):
        raise imp.error(node, f"input {node.input[data]!r} must be integer codes")
    t = imp.tensor(v.tensor)
    t.scale = np.asarray(s, np.float32).reshape(())
    t.zero_point = (np.zeros((), np.int64) if z is None
                    else dtypes.to_codes(z, t.fmt).reshape(()))
    return Real(v.tensor)


def _requant_out(imp, node, acc: Real, scale_i: int, zp_i: int, *, out_i: int = 0) -> list:
    scale = imp.const(node, scale_i, "output scale")
    zp = imp.const(node, zp_i, "output zero point")
    et = imp.elem_types.get(node.input[zp_i]) if zp_i < len(node.input) else None
    fmt = dtypes.format_of(et) if et else IntFormat(bits=8, signed=False)
    zp = np.zeros((), np.int64) if zp is None else dtypes.to_codes(zp, fmt)
    out = quantize_real(imp, node.name or node.output[out_i], acc, fmt, scale, zp)
    imp.elem_types[out] = et
    return [Codes(out)]


def _bias_codes(imp, node, i: int):
    b = imp.const(node, i, "bias")
    return None if b is None else np.asarray(b).astype(np.int64)


def _weight(imp, node, w) -> Const:
    if not isinstance(w, Const):
        raise imp.error(node, "weights must be a constant (initializer)")
    return w


@handles("QLinearConv")
def QLinearConv(imp, node):
    x = _q(imp, node, 0, 1, 2)
    w = _weight(imp, node, _q(imp, node, 3, 4, 5))
    acc = compute.conv(imp, node, x, w, bias_codes=_bias_codes(imp, node, 8))
    return _requant_out(imp, node, acc, 6, 7)


@handles("QLinearMatMul")
def QLinearMatMul(imp, node):
    x = _q(imp, node, 0, 1, 2)
    w = _weight(imp, node, _q(imp, node, 3, 4, 5))
    w.axis = 1
    acc = compute.dense(imp, node, x, w, transposed=False)
    return _requant_out(imp, node, acc, 6, 7)


def _integer_operands(imp, node):
    x, w = imp.value(node, 0), imp.value(node, 1)
    if not isinstance(x, Codes):
        raise imp.error(node, "input A must be integer codes")
    t = imp.tensor(x.tensor)
    azp = imp.value(node, 2)
    dynamic = isinstance(azp, Codes)  # DynamicQuantizeLinear's zero point: an input of the layer
    azp = None if dynamic else imp.const(node, 2, "a_zero_point")
    t.zero_point = np.zeros((), np.int64) if azp is None else np.asarray(azp, np.int64).reshape(())
    t.scale = np.ones((), np.float64)
    if not isinstance(w, Const):
        raise imp.error(node, "input B must be a constant (initializer)")
    bzp = imp.const(node, 3, "b_zero_point")
    fmt = dtypes.format_of(imp.elem_types[node.input[1]])
    wq = Const(w.value, codes=np.asarray(w.value, np.int64), fmt=fmt, scale=np.ones(()),
               zero_point=np.zeros((), np.int64) if bzp is None else np.asarray(bzp, np.int64),
               axis=0)
    return Real(x.tensor), wq, imp.value(node, 2).tensor if dynamic else None


@handles("MatMulInteger")
def MatMulInteger(imp, node):
    x, w, zp = _integer_operands(imp, node)
    w.axis = 1
    acc = compute.dense(imp, node, x, w, transposed=False)
    return [Codes(_as_int32(imp, acc, zp))]


@handles("ConvInteger")
def ConvInteger(imp, node):
    x, w, zp = _integer_operands(imp, node)
    acc = compute.conv(imp, node, x, w)
    return [Codes(_as_int32(imp, acc, zp))]


def _as_int32(imp, acc: Real, zero_point: str | None) -> str:
    """An accumulator returned as ONNX's int32 output: the raw integer. A zero point computed
    at run time (``zero_point``, a scalar tensor) is the layer's second input."""
    from onnx import TensorProto

    if zero_point is not None:
        imp.graph.producer(acc.tensor).inputs.append(zero_point)
    t = imp.tensor(acc.tensor)
    t.scale = np.ones((), np.float64)
    imp.elem_types[t.name] = TensorProto.INT32
    return t.name


@handles("QGemm")
def QGemm(imp, node):
    if imp.attr(node, "transA", 0):
        raise imp.error(node, "transA=1 is not supported")
    x = _q(imp, node, 0, 1, 2)
    w = _weight(imp, node, _q(imp, node, 3, 4, 5))
    transposed = bool(imp.attr(node, "transB", 0))
    w.axis = 0 if transposed else 1
    acc = compute.dense(imp, node, x, w, transposed=transposed,
                        bias_codes=_bias_codes(imp, node, 6))
    alpha = float(imp.attr(node, "alpha", 1.0))
    t = imp.tensor(acc.tensor)
    t.scale = t.scale * alpha
    if len(node.input) > 7 and node.input[7]:
        return _requant_out(imp, node, acc, 7, 8)
    return [acc]


@handles("QLinearAdd")
def QLinearAdd(imp, node):
    from qfab.compiler.frontend.float_ops import add_reals

    a = _q(imp, node, 0, 1, 2)
    b = _q(imp, node, 3, 4, 5)
    scale = imp.const(node, 6, "output scale")
    zp = imp.const(node, 7, "output zero point")
    et = imp.elem_types.get(node.input[7]) if len(node.input) > 7 else None
    fmt = dtypes.format_of(et) if et else IntFormat(bits=8, signed=False)
    out = add_reals(imp, node, a, b, fmt, scale, np.zeros((), np.int64) if zp is None
                    else dtypes.to_codes(zp, fmt))
    return [Codes(out)]



@handles("QLinearAveragePool", "QLinearGlobalAveragePool")
def QLinearAveragePool(imp, node):
    from qfab.compiler.frontend.float_ops import average_pool

    if imp.attr(node, "channels_last", 0):
        raise imp.error(node, "channels_last=1 is not supported")
    x = _q(imp, node, 0, 1, 2)
    acc = average_pool(imp, node, x, node.op_type == "QLinearGlobalAveragePool")
    return _requant_out(imp, node, acc, 3, 4)


@handles("QLinearSigmoid", "QLinearLeakyRelu", "QLinearSoftmax")
def QLinearActivation(imp, node):
    """onnxruntime's QOperator activations (com.microsoft): the table of the float op from
    the input's codes straight to the output's (compiler/frontend/activations.py)."""
    from qfab.compiler.frontend.activations import lookup, quantized_output, softmax
    from qfab.compiler.frontend.float_ops import requantize

    x = _q(imp, node, 0, 1, 2)
    op = node.op_type.removeprefix("QLinear")
    r = softmax(imp, node, x) if op == "Softmax" else lookup(imp, node, x, op)
    et = imp.elem_types.get(node.input[4]) if len(node.input) > 4 else None
    fmt = dtypes.format_of(et) if et else IntFormat(bits=8, signed=False)
    scale = imp.const(node, 3, "output scale")
    zp = imp.const(node, 4, "output zero point")
    zp = np.zeros((), np.int64) if zp is None else dtypes.to_codes(zp, fmt)
    out = quantized_output(imp, r, fmt, scale, zp) or requantize(imp, node.name, r, fmt, scale,
                                                                  zp)
    imp.elem_types[out] = et or TensorProto.UINT8
    return [Codes(out)]


@handles("QLinearConcat")
def QLinearConcat(imp, node):
    from qfab.compiler.frontend.float_ops import concat_reals

    parts = [_q(imp, node, i, i + 1, i + 2) for i in range(2, len(node.input), 3)]
    ndim = len(imp.tensor(parts[0].tensor).shape)
    axis = int(imp.attr(node, "axis", 1)) % ndim
    if axis == 0:
        raise imp.error(node, "concatenating along the batch dimension is not supported")
    scale = imp.const(node, 0, "output scale")
    et = imp.elem_types.get(node.input[1]) or TensorProto.UINT8
    fmt = dtypes.format_of(et)
    zp = imp.const(node, 1, "output zero point")
    out = concat_reals(imp, node, Cat(parts, axis), fmt, scale,
                       np.zeros((), np.int64) if zp is None else dtypes.to_codes(zp, fmt))
    imp.elem_types[out] = et
    return [Codes(out)]
