"""QONNX ops: Quant, BipolarQuant, Trunc, FloatQuant and MultiThreshold.

A QONNX quantizer outputs the dequantized value, so each becomes a quantizer into codes
followed by a symbolic dequantization (a ``Real`` value): integer work only.
"""

from __future__ import annotations

import numpy as np
from qfab.compiler.frontend.importer import handles
from qfab.compiler.frontend.lowering import _flip_negative_channels, quantize_real
from qfab.compiler.frontend.values import Const, FloatIn, Real, Sum
from qfab.compiler.ir import Acc
from qfab.numerics import IntFormat, MinifloatFormat, width_for

_ROUNDING = {"ROUND": "half_even", "HALF_EVEN": "half_even", "FLOOR": "floor",
             "HALF_UP": "half_up"}


def _rounding(imp, node, default="ROUND") -> str:
    mode = str(imp.attr(node, "rounding_mode", default)).upper()
    if mode not in _ROUNDING:
        raise imp.error(node, f"rounding_mode {mode!r} is not supported; supported: "
                              f"{', '.join(_ROUNDING)}")
    return _ROUNDING[mode]


def _round(x: np.ndarray, rounding: str) -> np.ndarray:
    return {"half_even": np.round, "floor": np.floor,
            "half_up": lambda v: np.floor(v + 0.5)}[rounding](x)


def _axis_of(scale: np.ndarray) -> int:
    big = [i for i, d in enumerate(np.shape(scale)) if d > 1]
    return big[0] if big else 1


def _int_quant(imp, node, fmt: IntFormat, lo: int, hi: int, rounding: str):
    v = imp.value(node, 0)
    scale = np.asarray(imp.const(node, 1, "scale"), np.float32)
    zp = np.asarray(imp.const(node, 2, "zero point"))
    if np.any(zp != np.round(zp)):
        raise imp.error(node, "non-integer zero points are not supported")
    zp = zp.astype(np.int64)
    if isinstance(v, Const):
        x = np.asarray(v.value, np.float32)
        codes = np.clip(_round((x / scale).astype(np.float32) + zp, rounding), lo, hi)
        codes = codes.astype(np.int64)
        axis = _axis_of(scale)
        return Const(((codes - zp) * scale).astype(np.float32), codes=codes, fmt=fmt,
                     scale=scale.reshape(-1) if scale.size > 1 else scale.reshape(()),
                     zero_point=zp.reshape(-1) if zp.size > 1 else zp.reshape(()), axis=axis)
    if isinstance(v, FloatIn):
        if scale.size > 1 or zp.size > 1:
            raise imp.error(node, "per-channel quantization of an input is not supported")
        shape = v.shape
        t = imp.new_tensor(node.output[0], shape, fmt, scale=scale.reshape(()),
                           zero_point=zp.reshape(()))
        imp.graph.add_node("quantize", node.name or node.output[0], [v.tensor], [t],
                           pre=v.pre, saturate=True, lo=lo, hi=hi, rounding=rounding)
        return Real(t.name)
    if isinstance(v, Sum):  # a residual add of two quantized tensors
        from qfab.compiler.frontend.float_ops import add_reals

        if rounding != "half_even" or scale.size > 1 or zp.size > 1:
            raise imp.error(node, "the sum of a residual Add needs a per-tensor Quant with "
                                  "rounding_mode ROUND")
        return Real(add_reals(imp, node, v.a, v.b, fmt, scale, zp, lo=lo, hi=hi))
    if not isinstance(v, Real):
        raise imp.error(node, f"input {node.input[0]!r} is not a float or quantized tensor")
    if rounding == "half_even" and (lo, hi) == (fmt.min, fmt.max):
        from qfab.compiler.frontend.activations import retarget

        out = retarget(imp, node.input[0], v, fmt, scale, zp)  # Sigmoid -> Quant: one table
        if out is not None:
            return Real(out)
    return Real(quantize_real(imp, node.name or node.output[0], v, fmt, scale, zp, lo=lo,
                              hi=hi, rounding=rounding))


@handles("Quant", "IntQuant")
def Quant(imp, node):
    bits = int(np.asarray(imp.const(node, 3, "bit width")).reshape(()))
    signed = bool(imp.attr(node, "signed", 1))
    narrow = bool(imp.attr(node, "narrow", 0))
    if not 1 <= bits <= 32:
        raise imp.error(node, f"bit width {bits} is outside 1..32")
    if bits == 1 and signed:
        # qonnx executes a signed 1-bit Quant as bipolar (+-1), as Brevitas means it.
        if np.any(np.asarray(imp.const(node, 2, "zero point")) != 0):
            raise imp.error(node, "a 1-bit signed Quant needs a zero point of 0")
        return [_bipolar(imp, node, np.asarray(imp.const(node, 1, "scale"), np.float32))]
    fmt = IntFormat(bits=bits, signed=signed)
    lo = fmt.min + (1 if narrow and signed else 0)
    hi = fmt.max - (1 if narrow and not signed else 0)
    return [_int_quant(imp, node, fmt, lo, hi, _rounding(imp, node))]


@handles("BipolarQuant")
def BipolarQuant(imp, node):
    return [_bipolar(imp, node, np.asarray(imp.const(node, 1, "scale"), np.float32))]


def _bipolar(imp, node, scale: np.ndarray):
    """+-1 by the sign of the input (>= 0 gives +1), times ``scale``."""
    v = imp.value(node, 0)
    fmt = IntFormat(bits=2, signed=True)
    if isinstance(v, FloatIn):
        if scale.size > 1:
            raise imp.error(node, "per-channel scale on an input is not supported")
        t = imp.new_tensor(node.output[0], v.shape, fmt, scale=scale.reshape(()))
        imp.graph.add_node("quantize", node.name, [v.tensor], [t], pre=v.pre, saturate=True,
                           lo=-1, hi=1, bipolar=True)
        return Real(t.name)
    if isinstance(v, Const):
        codes = np.where(np.asarray(v.value, np.float32) >= 0, 1, -1).astype(np.int64)
        return Const((codes * scale).astype(np.float32), codes=codes, fmt=fmt,
                     scale=scale.reshape(-1) if scale.size > 1 else scale.reshape(()),
                     zero_point=np.zeros((), np.int64), axis=_axis_of(scale))
    r = imp.real(node, 0)
    src = imp.tensor(r.tensor)
    if scale.size > 1:
        raise imp.error(node, "per-channel scale on activations is not supported")
    # sign(x) as a threshold: the smallest integer whose real value is >= 0.
    out = _threshold_real(imp, node, r, np.zeros((src.shape[src.axis], 1)))
    t = imp.tensor(out)
    t.fmt, t.scale, t.zero_point = fmt, scale.reshape(()).astype(np.float64), np.int64(0)
    imp.graph.nodes[-1].attrs.update(base=-1, step=2)
    return Real(out)


def _threshold_real(imp, node, r: Real, real_thresholds: np.ndarray) -> str:
    """A threshold node counting, per channel, the real thresholds the input reaches."""
    name = imp.materialize(r, node.name)
    src = imp.tensor(name)
    c = src.shape[src.axis] if len(src.shape) > 1 else 1
    unit = np.broadcast_to(src.unit, (c,)).astype(np.float64)
    bias = np.broadcast_to(np.asarray(src.bias, np.float64), (c,))
    zp = np.broadcast_to(np.asarray(src.zero_point, np.int64), (c,))
    thr = np.broadcast_to(np.asarray(real_thresholds, np.float64), (c, real_thresholds.shape[-1]))
    if np.any(unit < 0) and isinstance(src.fmt, Acc):
        # FINN's streamlining: a negative scale flips the comparison, which negating the
        # channel's weights (and bias) undoes exactly.
        unit = _flip_negative_channels(imp, src, unit)
    if np.any(unit <= 0):
        raise imp.error(node, "thresholds on a tensor with a zero or negative scale (a "
                              "negative one is taken only straight after a Conv/Gemm/MatMul)")
    ints = np.empty(thr.shape, np.int64)
    for ch in range(c):
        for j, T in enumerate(thr[ch]):
            # A threshold beyond any code the input can hold is never (or always) reached.
            guess = int(np.ceil(np.clip((T - bias[ch]) / unit[ch] + zp[ch], -2.0**62, 2.0**62)))
            cand = np.arange(guess - 2, guess + 3)
            ok = (cand - zp[ch]) * unit[ch] + bias[ch] >= T
            ints[ch, j] = cand[np.argmax(ok)] if ok.any() else guess + 3
    return _threshold_node(imp, node, name, ints)


def _threshold_node(imp, node, name: str, ints: np.ndarray) -> str:
    """A threshold node counting, per channel, the integer thresholds ``ints`` [C, T] the
    codes of ``name`` reach."""
    src = imp.tensor(name)
    bits = int(np.ceil(np.log2(ints.shape[-1] + 1))) + 1
    out = imp.new_tensor(node.name or node.output[0], src.shape, IntFormat(bits=bits, signed=True),
                         axis=src.axis)
    imp.graph.add_node("threshold", node.name or node.output[0], [name], [out],
                       thresholds=ints,
                       base=0, in_zero_point=np.zeros((), np.int64))
    return out.name


@handles("MultiThreshold")
def MultiThreshold(imp, node):
    thr = np.asarray(imp.const(node, 1, "thresholds"), np.float64)
    if thr.ndim != 2:
        raise imp.error(node, f"thresholds must be 2-D (got {thr.shape})")
    if isinstance(imp.value(node, 0), FloatIn):
        out = _threshold_input(imp, node, imp.value(node, 0), thr)
    else:
        out = _threshold_layer(imp, node, thr)
    out_scale = float(imp.attr(node, "out_scale", 1.0))
    out_bias = float(imp.attr(node, "out_bias", 0.0))
    t = imp.tensor(out)
    # out_bias + out_scale * count as codes base + step * count of unit out_scale / step:
    # FINN's bipolar activation (out_scale 2, out_bias -1) is -1 + 2 * count, of unit 1.
    step = next((s for s in range(1, 9) if (out_bias * s / out_scale).is_integer()), None)
    if step is None or out_scale <= 0:
        raise imp.error(node, f"out_bias {out_bias:g} is not a multiple of out_scale "
                              f"{out_scale:g} / k for a small integer k (and out_scale > 0)")
    base = int(out_bias * step / out_scale)
    if step > 1 or base:
        n_thr = imp.graph.nodes[-1].attrs["thresholds"].shape[1]
        lo, hi = sorted((base, base + step * n_thr))
        t.fmt = IntFormat(bits=max(width_for(lo, hi)[0], 2), signed=True)
        imp.graph.nodes[-1].attrs.update(base=base, step=step)
    t.scale, t.zero_point = np.float64(out_scale / step), np.int64(0)
    return [Real(out)]


def _threshold_input(imp, node, v: FloatIn, thr: np.ndarray) -> str:
    """MultiThreshold on the raw (FINN-annotated) graph input, compared in float32."""
    from qfab.compiler.frontend.finn import pre_shape, threshold_input

    shape = pre_shape(v, imp.graph.tensors[v.tensor].shape)
    channels = shape[1] if len(shape) > 1 else 1
    if thr.shape[0] not in (1, channels):
        raise imp.error(node, f"{thr.shape[0]} threshold rows for {channels} channels")
    thr32 = np.broadcast_to(thr.astype(np.float32), (channels, thr.shape[1]))
    name, ints = threshold_input(
        imp, node, v, lambda real: (real[..., None] >= thr32).sum(axis=-1), channels,
        thr.shape[1])
    return _threshold_node(imp, node, name, ints)


def _threshold_layer(imp, node, thr: np.ndarray) -> str:
    r = imp.real(node, 0)
    # qonnx's channel axis: the "C" of data_layout, else guessed from the rank.
    ndim = len(imp.tensor(r.tensor).shape)
    layout = imp.attr(node, "data_layout", "") or {3: "NWC"}.get(ndim, "NC")
    if "C" in layout and layout.index("C") != imp.tensor(r.tensor).axis:
        raise imp.error(node, f"data_layout {layout!r} puts channels on another axis than "
                              f"the producing layer's ({imp.tensor(r.tensor).axis})")
    return _threshold_real(imp, node, r, thr)


@handles("Trunc")
def Trunc(imp, node):
    """Drop low bits of quantized codes: v1 (inputs x, scale, zero point, input and output
    bit widths) shifts by their difference and does not clamp; v2 (x, scale, zero point,
    input bit width, output scale, output bit width: Brevitas's TruncAvgPool) shifts by the
    power of two nearest output scale / scale and clamps to the output bit width."""
    r = imp.real(node, 0)
    src = imp.tensor(imp.materialize(r, node.name))
    scale = np.asarray(imp.const(node, 1, "scale"), np.float64)
    zp = np.asarray(imp.const(node, 2, "zero point"), np.float64)
    in_bits = int(np.asarray(imp.const(node, 3, "input bit width")).reshape(()))
    v2 = len(node.input) > 5
    # v2 clamps, so it also takes a sum (an average pool's, Brevitas's TruncAvgPool) whose
    # unit is the scale; v1's output range comes from its input's format.
    if (isinstance(src.fmt, Acc) and (not v2 or np.asarray(src.bias).any())) or not np.allclose(
            src.unit, scale) or np.any(src.zero_point != zp):
        raise imp.error(node, "the input must be quantized with the Trunc's scale and zero point")
    signed = getattr(src.fmt, "signed", True)
    rounding = _rounding(imp, node, "FLOOR")
    if v2:
        out_scale = float(np.asarray(imp.const(node, 4, "output scale")).reshape(()))
        out_bits = int(np.asarray(imp.const(node, 5, "output bit width")).reshape(()))
        k = int(np.round(np.log2(out_scale / float(scale.reshape(())))))
        signed = bool(imp.attr(node, "signed", 1))
        fmt = IntFormat(bits=out_bits, signed=signed)
        lo = fmt.min + int(signed and bool(imp.attr(node, "narrow", 0)))
        hi = fmt.max
        if k < 0 or np.any(zp % 2**k):
            raise imp.error(node, f"output scale {out_scale:g} must be the input scale times a "
                                  "power of two that divides the zero point")
    else:
        out_bits = int(np.asarray(imp.const(node, 4, "output bit width")).reshape(()))
        k = in_bits - out_bits
        out_scale = float(scale.reshape(()))
        # qonnx's Trunc v1 does not clamp: rounding up can need one bit more than out_bits.
        lo, hi = (int(_round(np.float64(v) / 2**k, rounding)) for v in (src.fmt.min, src.fmt.max))
        fmt = IntFormat(bits=out_bits, signed=signed)
        if lo < fmt.min or hi > fmt.max:
            fmt = IntFormat(bits=out_bits + 1, signed=signed)
    out = imp.new_tensor(node.name or node.output[0], src.shape, fmt,
                         scale=np.float64(out_scale), zero_point=np.int64(0), axis=src.axis)
    imp.graph.add_node("requant", node.name or node.output[0], [src.name], [out],
                       in_zero_point=np.int64(0), scale=np.float64(2.0**-k),
                       offset=np.float64(0), zero_point=0, lo=lo, hi=hi, rounding=rounding)
    out_t = imp.tensor(out.name)
    out_t.zero_point = np.int64(int(zp.reshape(())) >> k if v2 else int(zp.reshape(())))
    return [Real(out.name)]


def _minifloat(imp, node) -> MinifloatFormat:
    e = int(np.asarray(imp.const(node, 2, "exponent bit width")).reshape(()))
    m = int(np.asarray(imp.const(node, 3, "mantissa bit width")).reshape(()))
    bias = imp.const(node, 4, "exponent bias")
    bias = None if bias is None else int(np.asarray(bias).reshape(()))
    max_val = imp.const(node, 5, "max value")
    sat = bool(imp.attr(node, "saturation", 1))
    # qonnx's executor always rounds with subnormals and documents has_subnormal as a hint to
    # backends: so it holds when given, and a format has subnormals when it is absent.
    sub = bool(imp.attr(node, "has_subnormal", 1))
    candidates = [MinifloatFormat(exp_bits=e, man_bits=m, bias=bias, special=s, saturate=sat,
                                  subnormals=sub)
                  for s in ("none", "fn", "ieee")]
    if max_val is None:
        return candidates[0]
    for f in candidates:
        if float(f.max_value) == float(np.asarray(max_val).reshape(())):
            return f
    raise imp.error(node, f"max_val {float(np.asarray(max_val).reshape(()))} matches no "
                          f"E{e}M{m} format")


@handles("FloatQuant")
def FloatQuant(imp, node):
    fmt = _minifloat(imp, node)
    if _rounding(imp, node) != "half_even":
        raise imp.error(node, "only rounding_mode ROUND is supported for minifloats")
    v = imp.value(node, 0)
    scale = np.asarray(imp.const(node, 1, "scale"), np.float32)
    if isinstance(v, Const):
        codes = fmt.encode((np.asarray(v.value, np.float32) / scale).astype(np.float64))
        codes = np.asarray(codes, np.int64)
        return [Const((fmt.decode(codes) * scale).astype(np.float32), codes=codes, fmt=fmt,
                      scale=scale.reshape(-1) if scale.size > 1 else scale.reshape(()),
                      zero_point=np.zeros((), np.int64), axis=_axis_of(scale))]
    if isinstance(v, FloatIn):
        t = imp.new_tensor(node.output[0], v.shape, fmt, scale=scale.reshape(()))
        imp.graph.add_node("quantize", node.name or node.output[0], [v.tensor], [t],
                           pre=v.pre, saturate=fmt.saturate)
        return [Real(t.name)]
    r = imp.real(node, 0)
    return [Real(quantize_real(imp, node.name or node.output[0], r, fmt, scale, 0))]

