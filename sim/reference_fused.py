"""A convolution or dense layer and the requantizer after it, computed together in floating
point where every step is provably exact: the reference's fast path for the common layer.

The integer reference (:mod:`qfab.sim.reference`) takes a layer's accumulator to int64, lays it
out channels first, then requantizes it in several int64 passes. Here, for a dyadic
requantizer with one multiplier and shift per channel, the same integers come from fewer and
cheaper passes, exact by these bounds (B the largest |accumulator|, the input's largest
magnitude times the weights' largest row sum of magnitudes):

- the products and every partial sum of the accumulator are integers of magnitude at most B,
  so BLAS computes them exactly in float32 when B < 2**24 (else float64 when B < 2**53), in
  any order and with or without fused multiply-adds;
- ``u = acc + c``, with ``c`` the layer's bias plus the requantizer's bias less its input zero
  point, is an integer below ``B + max|c|``; ``u * mult`` is exact while that times the
  largest multiplier stays below 2**53, and multiplying by ``2**-shift`` (one factor
  ``mult * 2**-shift`` a channel, itself exact) changes no significand bit: the float is
  exactly ``u * mult / 2**shift``;
- rounding that exact quotient with ``rint`` is round-half-even (``floor``: floor; ``floor(q +
  0.5)``: half-up, exact while ``|u * mult| + 2**(shift - 1) < 2**53``), then the zero point
  and the clamp are small integers.

Where the requantizer's only reader is a dequantizer (codes of at most 24 bits, a float32
scale a channel), it runs here too: the quotient is clamped to the codes less the zero point
(before rounding, the same: the bounds are integers), rounded into float32 (exact) and
multiplied by the scale in float32, dequantize's own product; rint's -0.0 becomes the +0.0 of
the integer path's difference. A conv's im2col and product are
:mod:`qfab.sim.reference_fused_conv`.

Outside those bounds (or for grouped convolutions, blocked parameters, minifloat outputs) the
layer returns None and the reference runs the integer ops one by one.
"""

from __future__ import annotations

import numpy as np
from qfab.compiler.ir import Acc, Node
from qfab.numerics import FixedFormat, IntFormat, MinifloatFormat
from qfab.sim.reference import fixed
from qfab.sim.reference_fused_conv import conv_requant, prepare_weights
from qfab.sim.reference_products import (
    F32_EXACT,
    F64_EXACT,
    _bound,
    _less_zero_point,
    _nonzero,
    _scratch,
    round_floats,
)

_ROUNDINGS = ("half_even", "floor", "half_up")


def _per_channel(value, channels: int) -> np.ndarray | None:
    """``value`` (a scalar or one a channel) as int64 [channels], or None (blocked)."""
    v = np.asarray(value)
    if v.ndim > 1 and v.size != 1:
        return None
    if v.dtype == object and v.size and max(abs(int(e)) for e in v.ravel()) >= 2**62:
        return None
    return np.broadcast_to(v.reshape(-1).astype(np.int64), (channels,))


def _requant_factors(req: Node, layer_bias, channels: int):
    """(c, factor, zero point, lo, hi) of a per-channel dyadic requantizer, or None."""
    a = req.attrs
    if a.get("rounding") not in _ROUNDINGS or a.get("relu") or np.ndim(a["zero_point"]):
        return None
    parts = [_per_channel(a[k], channels) for k in ("in_zero_point", "bias_int", "mult", "shift")]
    if any(p is None for p in parts):
        return None
    in_zp, bias_int, mult, shift = parts
    if shift.min() <= 0 or shift.max() > 62:
        return None
    c = bias_int.astype(object) - in_zp.astype(object)
    if layer_bias is not None:
        bias = _per_channel(layer_bias, channels)
        if bias is None:
            return None
        c = c + bias.astype(object)
    if max(abs(int(e)) for e in c) >= 2**62:
        return None
    return (np.array(c, np.int64), mult, shift, int(a["zero_point"]), a["lo"], a["hi"])


class _Layer:
    """What a fused layer needs of the graph, prepared once a Reference."""

    def __init__(self, ref, layer: Node, req: Node, m, factors):
        c, mult, shift, self.zero_point, self.lo, self.hi = factors
        self.m, self.conv = m, layer.op == "conv"
        self.c, self.c32 = c, c.astype(np.float32)
        self.c_max, self.mult_max = int(np.abs(c).max()), int(np.abs(mult).max())
        self.half_top = 2 ** (int(shift.max()) - 1)
        self.factor = np.ldexp(mult.astype(np.float64), -shift)  # a significand times 2**-shift
        self.factor_max = float(np.abs(self.factor).max())
        # Codes fit int32 (a clamp and a widening there are a fifth of the float ones').
        self.codes_int32 = -(2**31) <= self.lo and self.hi < 2**31
        self.rounding = req.attrs["rounding"]
        self.x_zero_point = layer.attrs["x_zero_point"]
        self.src = ref._t(layer.inputs[0])
        self.float_codes = self.src.name in ref._float_codes
        self.deq = _dequantizer(ref, req, self)
        if self.conv:
            a = layer.attrs
            self.kernel = tuple(a["weight"].shape[2:])
            self.strides, self.dilations, self.pads = a["strides"], a["dilations"], a["pads"]
            prepare_weights(self)


def _dequantizer(ref, req: Node, p: _Layer) -> Node | None:
    """The requantizer's only reader, a dequantizer, where it can run here too: codes of at
    most 24 bits in units of 1 less the requantizer's own zero point (each an integer exact
    in float32), times a float32 scale a channel, and no clamp after; each factor positive
    (a quotient of 0 is then +0.0, as the integer path's code less its zero point)."""
    deq = ref._dequantizers.get(req.outputs[0])
    if deq is None or len(deq.inputs) != 1 or deq.attrs.get("dtype", "float32") != "float32":
        return None
    t = ref._t(req.outputs[0])
    a = deq.attrs
    if (not isinstance(t.fmt, IntFormat | FixedFormat) or isinstance(t.fmt, Acc)
            or t.fmt.bits > 24 or t.fmt.lsb_exponent or t.axis != 1 or p.factor.min() <= 0
            or a.get("lo", -np.inf) > -np.inf or a.get("hi", np.inf) < np.inf
            or np.ndim(t.zero_point) or int(t.zero_point) != p.zero_point):
        return None
    scale = np.asarray(t.scale, np.float32).reshape(-1)
    if scale.size not in (1, p.factor.size):
        return None
    p.deq_scale = scale[:, None, None] if p.conv else scale  # conv: [M, k, OH * OW]
    return deq


def _prepare(ref, layer: Node, req: Node) -> _Layer | None:
    """The layer's prepared figures, or None where it cannot run fused whatever its input."""
    if ref.requant != "dyadic" or len(layer.inputs) != 1 or len(req.inputs) != 1:
        return None
    dst = ref._t(req.outputs[0])
    if dst.fmt is None or isinstance(dst.fmt, MinifloatFormat):
        return None
    a = layer.attrs
    weights = ref._weights[layer.outputs[0]]
    if layer.op == "conv":
        if a["group"] != 1:
            return None
        (m,) = weights
    else:
        m = weights
        if len(ref._t(layer.outputs[0]).shape) != 2:
            return None
    if not m.small:
        return None
    factors = _requant_factors(req, a["bias"], m.w.shape[0])
    return None if factors is None else _Layer(ref, layer, req, m, factors)


def layer_requant(ref, layer: Node, req: Node, x: np.ndarray) -> dict | None:
    """The output of ``req`` (int64 codes) applied to ``layer`` (a conv of one group or a 2-D
    dense) on ``x``, or, where the dequantizer reading it runs here too, the dequantizer's
    (float32; the codes' entry None), by name; or None where the bounds above do not hold."""
    key = req.outputs[0]
    if key not in ref.fused_prepared:  # they depend on the graph only: once per Reference
        ref.fused_prepared[key] = _prepare(ref, layer, req)
    p = ref.fused_prepared[key]
    if p is None:
        return None
    v = fixed(p.src, x, float_codes=p.float_codes)
    zero = p.x_zero_point
    if np.ndim(zero) == 0 and v.size:  # max |v - zero| from v's extremes: no temporary
        v_max, v_min = int(np.maximum.reduce(v, axis=None)), int(np.minimum.reduce(v, axis=None))
        acc_bound = max(v_max - zero, zero - v_min) * p.m.row_l1
    else:
        v = _less_zero_point(v, zero)
        zero, acc_bound = 0, _bound(v) * p.m.row_l1
    if (acc_bound + p.c_max) * p.mult_max + p.half_top >= F64_EXACT:
        return None
    # The rounded quotient, plus the zero point, then fits int32 when its bound does.
    narrow = p.codes_int32 and (acc_bound + p.c_max) * p.factor_max + abs(p.zero_point) + 1 \
        < 2**31
    out_shape = ref._t(req.outputs[0]).shape
    out = np.empty((len(v),) + tuple(out_shape[1:]), np.int64 if p.deq is None else np.float32)

    def finish(u, chunk):
        _finish(u, chunk, p, narrow)

    if p.conv:  # the zero point subtracted (in int64) as the input is padded
        conv_requant(p, v, zero, acc_bound, out, finish, CHUNK_ELEMENTS)
    else:
        _dense_requant(p, _less_zero_point(v, zero), acc_bound, out, finish)
    if p.deq is None:
        return {req.outputs[0]: out}
    return {req.outputs[0]: None, p.deq.outputs[0]: out}  # the codes have no other reader


def _dense_requant(p: _Layer, v, acc_bound: int, out: np.ndarray, finish) -> None:
    """``out`` [N, M] = the requantized dense layer of ``v``, a piece of the
    batch at a time: float32 products where the accumulator's bound allows, else float64;
    ``c`` added in float32 where that stays exact too, else in float64."""
    small = acc_bound < F32_EXACT
    dtype = np.float32 if small else np.float64
    add_in_f32 = small and acc_bound + p.c_max < F32_EXACT
    w_t = p.m.t_f32 if small else p.m.t_f64
    channels = w_t.shape[1]
    step = max(1, CHUNK_ELEMENTS // channels)
    for first in range(0, len(v), step):
        rows = v[first:first + step].astype(dtype, copy=False)
        acc = np.matmul(rows, w_t, out=_scratch("acc", (len(rows), channels), dtype))
        u = _scratch("u", acc.shape, np.float64)
        if add_in_f32:
            acc += p.c32  # exact integers in float32 still
            np.multiply(acc, p.factor, out=u)
        else:
            np.add(acc, p.c, out=u)
            u *= p.factor
        finish(u, out[first:first + step])


# Outputs computed at a time: a large batch goes through in pieces whose working arrays stay
# in the cache and are reused (measured on a loaded machine, batch 64 of ort_conv_qdq_s8s8:
# 1.7x the throughput of one piece; much smaller pieces lose it again, in more products).
CHUNK_ELEMENTS = 1 << 18


def _finish(u: np.ndarray, out: np.ndarray, p: _Layer, narrow: bool) -> None:
    """``out`` = the codes of the exact quotients ``u`` (rounded in place), or with the
    dequantizer, their values: the code less its zero point, times the scale."""
    rounded = u
    if p.deq is not None:
        # Clamped before rounding (the same: the bounds are integers), rounded into float32
        # (exact integers below 2**24), times the float32 scale in float32, as dequantize.
        np.clip(u, p.lo - p.zero_point, p.hi - p.zero_point, out=u)
        rounded = out
    round_floats(u, p.rounding, out=rounded)
    if p.deq is not None:
        out *= p.deq_scale
        out += np.float32(0)  # rint's -0.0 (of -0.5 <= u < 0) as the integer path's +0.0
        return
    if narrow:  # integers of int32 (float64 to int32 converts in SIMD, to int64 does not)
        codes = _scratch("codes", u.shape, np.int32)
        codes[...] = u
        codes += p.zero_point
        np.clip(codes, p.lo, p.hi, out=codes)  # one pass: a fifth of maximum and minimum's
        out[...] = codes
        return
    u += p.zero_point
    np.minimum(np.maximum(u, p.lo, out=u), p.hi, out=u)  # np.clip's checks: microseconds
    out[...] = u


class _Thresholds:
    """A dense layer and the thresholder reading it, prepared once a Reference: the
    thresholds, less the thresholder's input zero point, as float64 columns shaped for the
    layer's output (each an integer below 2**53, so exact)."""

    def __init__(self, ref, layer: Node, thr: Node, columns: list[np.ndarray]):
        a = layer.attrs
        self.m, self.columns = ref._weights[layer.outputs[0]], columns
        self.src, self.x_zero_point = ref._t(layer.inputs[0]), a["x_zero_point"]
        self.float_codes = self.src.name in ref._float_codes
        self.bias = None if a["bias"] is None else np.asarray(a["bias"])
        self.bias_max = 0 if self.bias is None else int(np.abs(self.bias).max(initial=0))
        self.step, self.base = thr.attrs.get("step", 1), thr.attrs["base"]
        self.shifted = _nonzero(self.x_zero_point)
        # The columns as float32 too where each is (an integer below 2**24): a float32
        # accumulator meets them without a widening.
        exact32 = all(np.abs(c).max(initial=0) < F32_EXACT for c in columns)
        self.columns32 = [c.astype(np.float32) for c in columns] if exact32 else columns


def _prepare_thresholds(ref, layer: Node, thr: Node) -> _Thresholds | None:
    a = thr.attrs
    out = ref._t(layer.outputs[0])
    if len(layer.inputs) != 1 or len(out.shape) != 2 or not ref._weights[layer.outputs[0]].small:
        return None
    if layer.attrs["bias"] is not None and np.asarray(layer.attrs["bias"]).dtype == object:
        return None
    zero = np.asarray(a["in_zero_point"], object)
    if zero.ndim > 1 and zero.size != 1 or not a["thresholds"].shape[1]:
        return None
    columns = []
    for j in range(a["thresholds"].shape[1]):
        col = np.asarray(a["thresholds"][:, j], object) + zero.reshape(-1)
        if col.size and max(abs(int(e)) for e in col) >= F64_EXACT:
            return None
        columns.append(out.broadcast(col.astype(np.float64)))
    return _Thresholds(ref, layer, thr, columns)


def layer_threshold(ref, layer: Node, thr: Node, x: np.ndarray) -> dict | None:
    """The int64 output (by name) of the thresholder ``thr`` applied to the dense ``layer``
    on ``x``: the accumulators stay floats (exact integers while their bound is below 2**24
    in float32, 2**53 in float64) and are compared with the thresholds as they are, or None
    where the bound does not hold."""
    key = thr.outputs[0]
    if key not in ref.fused_prepared:
        ref.fused_prepared[key] = _prepare_thresholds(ref, layer, thr)
    p = ref.fused_prepared[key]
    if p is None:
        return None
    v = fixed(p.src, x, float_codes=p.float_codes)
    if p.shifted:
        v = v - p.x_zero_point
    bound = _bound(v) * p.m.row_l1 + p.bias_max
    if bound >= F64_EXACT:
        return None
    small = bound < F32_EXACT
    acc = v.astype(np.float32 if small else np.float64) @ (p.m.t_f32 if small else p.m.t_f64)
    if p.bias is not None:
        acc += p.bias  # exact: the bound counts it
    columns = p.columns32 if small else p.columns
    count = np.greater_equal(acc, columns[0]).astype(np.int64)
    for column in columns[1:]:
        count += acc >= column
    if p.step != 1:
        count *= p.step
    return {thr.outputs[0]: count + p.base}
