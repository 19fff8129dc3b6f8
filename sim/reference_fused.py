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

Outside those bounds (or for grouped convolutions, blocked parameters, minifloat outputs) the
layer returns None and the reference runs the integer ops one by one.
"""

from __future__ import annotations

import math
import threading

import numpy as np
from qfab.compiler.ir import Node
from qfab.numerics import MinifloatFormat
from qfab.sim.reference import fixed
from qfab.sim.reference_products import _bound, _less_zero_point

_F32_EXACT, _F64_EXACT = 2**24, 2**53
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


def _taps_last(ref, layer: Node, p, dtype) -> np.ndarray:
    """A conv's weights as [kh * kw * C + 1, M] in ``dtype``, rows in (kh, kw, C) order, then
    the row of ``c``, the constant the requantizer adds."""
    key = (layer.outputs[0], dtype)  # the type itself: np.dtype(...).name takes microseconds
    if key not in ref.fused_prepared:
        m, (kh, kw) = p.m, p.kernel
        w = m.w.reshape(m.w.shape[0], -1, kh, kw).transpose(0, 2, 3, 1)
        ref.fused_prepared[key] = np.ascontiguousarray(
            np.vstack([w.reshape(m.w.shape[0], -1).T, p.c[None, :]]), dtype)
    return ref.fused_prepared[key]


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
        if self.conv:
            a = layer.attrs
            self.kernel = tuple(a["weight"].shape[2:])
            self.strides, self.dilations = a["strides"], a["dilations"]
            (dh, dw) = self.dilations
            self.span = ((self.kernel[0] - 1) * dh + 1, (self.kernel[1] - 1) * dw + 1)
            self.pads = a["pads"]


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


def layer_requant(ref, layer: Node, req: Node, x: np.ndarray) -> np.ndarray | None:
    """The int64 output of ``req`` applied to ``layer`` (a conv of one group or a 2-D dense)
    on ``x``, or None where the bounds above do not hold."""
    key = req.outputs[0]
    if key not in ref.fused_prepared:  # they depend on the graph only: once per Reference
        ref.fused_prepared[key] = _prepare(ref, layer, req)
    p = ref.fused_prepared[key]
    if p is None:
        return None
    v = _less_zero_point(fixed(p.src, x), p.x_zero_point)
    acc_bound = _bound(v) * p.m.row_l1
    if (acc_bound + p.c_max) * p.mult_max + p.half_top >= _F64_EXACT:
        return None
    dtype = np.float32 if acc_bound < _F32_EXACT else np.float64
    add_in_f32 = dtype is np.float32 and acc_bound + p.c_max < _F32_EXACT
    # The rounded quotient, plus the zero point, then fits int32 when its bound does.
    narrow = p.codes_int32 and (acc_bound + p.c_max) * p.factor_max + abs(p.zero_point) + 1 \
        < 2**31
    # A conv adds ``c`` in its product, as one more column of ones times a row of ``c``: the
    # partial sums stay below the accumulator's bound plus max |c|, exact in float64 (the
    # check above) and, where ``add_in_f32`` says so, in float32.
    fold = p.conv and (dtype is np.float64 or add_in_f32)
    tail = (None if fold else p.c32 if add_in_f32 else p.c, p.factor, add_in_f32, p.rounding,
            p.zero_point, p.lo, p.hi, narrow)
    channels = p.m.w.shape[0]
    if p.conv:
        win = _windows(_channels_last_padded(v, p.pads, dtype), p)
        w_t = _taps_last(ref, layer, p, dtype)
        w_t = w_t if fold else w_t[:-1]
    else:
        win, w_t = v, (p.m.t_f32 if dtype is np.float32 else p.m.t_f64)
    out = np.empty(win.shape[:-3 if p.conv else -1] + (channels,), np.int64)
    per_row = out[0].size if out.ndim > 1 else channels
    step = max(1, CHUNK_ELEMENTS // per_row)
    for first in range(0, out.shape[0], step):
        rows = win[first:first + step]
        if p.conv:
            # Windows gathered channels last, in (kh, kw, C) order: each tap's C values sit
            # together in memory (a third of the time of NumPy's (C, kh, kw) gather); the
            # weights are reordered to match, once.
            n, oh, ow, c, kh, kw = rows.shape
            taps = kh * kw * c
            rows_out = _scratch("cols", (n * oh * ow, taps + 1), dtype)  # one product
            rows_out[:, taps] = 1
            size = rows_out.itemsize
            cols = np.ndarray((n, oh, ow, kh, kw, c), dtype, rows_out,
                              strides=tuple(size * k for k in ((taps + 1) * oh * ow,
                                                               (taps + 1) * ow, taps + 1,
                                                               kw * c, c, 1)))
            cols[...] = rows.transpose(0, 1, 2, 4, 5, 3)
            rows = rows_out if fold else rows_out[:, :taps]
        else:
            rows = rows.astype(dtype, copy=False)
        acc = np.matmul(rows, w_t, out=_scratch("acc", (rows.shape[0], w_t.shape[1]), dtype))
        part = out[first:first + step]
        _requantize(acc.reshape(part.shape), tail, part)
    # A conv's codes stay channels last in memory, seen channels first (NCHW): NumPy's
    # elementwise ops keep that order, and a transposing copy costs as much as the rest.
    return out if not p.conv else out.transpose(0, 3, 1, 2)


def _windows(xs: np.ndarray, p: _Layer) -> np.ndarray:
    """[N, OH, OW, C, kh, kw] view of padded NHWC ``xs`` (a fresh array of its own):
    sliding_window_view's strides, made directly (it and as_strided check their arguments
    for tens of microseconds)."""
    n, h, w, c = xs.shape
    sn, sh, sw, sc = xs.strides
    (kh, kw), (ph, pw) = p.span, p.strides
    (dh, dw) = p.dilations
    oh, ow = (h - kh) // ph + 1, (w - kw) // pw + 1
    view = np.ndarray((n, oh, ow, c, p.kernel[0], p.kernel[1]), xs.dtype, xs,
                      strides=(sn, sh * ph, sw * pw, sc, sh * dh, sw * dw))
    view.flags.writeable = False
    return view


# Outputs computed at a time: a large batch goes through in pieces whose working arrays stay
# in the cache and are reused (measured on a loaded machine, batch 64 of ort_conv_qdq_s8s8:
# 1.7x the throughput of one piece; much smaller pieces lose it again, in more products).
CHUNK_ELEMENTS = 1 << 18


def _channels_last_padded(v: np.ndarray, pads, dtype) -> np.ndarray:
    """NCHW ``v`` as NHWC in ``dtype``, zero-padded: one copy (np.pad and a transposing copy
    were two, and np.pad alone tens of microseconds a call)."""
    t, left, b, r = pads
    n, c, h, w = v.shape
    xs = np.zeros((n, h + t + b, w + left + r, c), dtype)
    xs[:, t:t + h, left:left + w, :] = v.transpose(0, 2, 3, 1)
    return xs


_SCRATCH = threading.local()
KEEP_SCRATCH = 1 << 18  # elements of the largest working array kept between calls


def _scratch(name: str, shape: tuple, dtype) -> np.ndarray:
    """A working array of this thread's, reused from call to call: a fresh one past malloc's
    mmap threshold is new pages to fault in each time (half of a small conv's run)."""
    size = math.prod(shape)
    key = (name, np.dtype(dtype).str)
    buf = getattr(_SCRATCH, "arrays", None)
    if buf is None:
        buf = _SCRATCH.arrays = {}
    if size > KEEP_SCRATCH:
        return np.empty(shape, dtype)
    if key not in buf or buf[key].size < size:
        buf[key] = np.empty(size, dtype)
    return buf[key][:size].reshape(shape)


def _requantize(acc: np.ndarray, tail: tuple, out: np.ndarray) -> None:
    """``out`` = the requantized codes of the accumulators ``acc`` (channels last)."""
    c, factor, add_in_f32, rounding, zero_point, lo, hi, narrow = tail
    u = _scratch("u", acc.shape, np.float64)
    if c is None:  # added in the product
        u[...] = acc
    elif add_in_f32:
        acc += c  # exact integers in float32 still
        u[...] = acc  # then one float64 product (a float32 times float64 one is slower)
    else:
        np.add(acc, c, out=u)
    u *= factor
    if rounding == "half_even":
        np.rint(u, out=u)
    elif rounding == "floor":
        np.floor(u, out=u)
    else:
        u += 0.5
        np.floor(u, out=u)
    if narrow:  # integers of int32 (float64 to int32 converts in SIMD, to int64 does not)
        codes = _scratch("codes", acc.shape, np.int32)
        codes[...] = u
        codes += zero_point
        np.clip(codes, lo, hi, out=codes)  # one pass: a fifth of maximum and minimum's time
        out[...] = codes
        return
    u += zero_point
    np.minimum(np.maximum(u, lo, out=u), hi, out=u)  # np.clip's checks: microseconds a call
    out[...] = u


class _Thresholds:
    """A dense layer and the thresholder reading it, prepared once a Reference: the
    thresholds, less the thresholder's input zero point, as float64 columns shaped for the
    layer's output (each an integer below 2**53, so exact)."""

    def __init__(self, ref, layer: Node, thr: Node, columns: list[np.ndarray]):
        a = layer.attrs
        self.m, self.columns = ref._weights[layer.outputs[0]], columns
        self.src, self.x_zero_point = ref._t(layer.inputs[0]), a["x_zero_point"]
        self.bias = None if a["bias"] is None else np.asarray(a["bias"])
        self.bias_max = 0 if self.bias is None else int(np.abs(self.bias).max(initial=0))
        self.step, self.base = thr.attrs.get("step", 1), thr.attrs["base"]


def _prepare_thresholds(ref, layer: Node, thr: Node) -> _Thresholds | None:
    a = thr.attrs
    out = ref._t(layer.outputs[0])
    if len(layer.inputs) != 1 or len(out.shape) != 2 or not ref._weights[layer.outputs[0]].small:
        return None
    if layer.attrs["bias"] is not None and np.asarray(layer.attrs["bias"]).dtype == object:
        return None
    zero = np.asarray(a["in_zero_point"], object)
    if zero.ndim > 1 and zero.size != 1:
        return None
    columns = []
    for j in range(a["thresholds"].shape[1]):
        col = np.asarray(a["thresholds"][:, j], object) + zero.reshape(-1)
        if col.size and max(abs(int(e)) for e in col) >= _F64_EXACT:
            return None
        columns.append(out.broadcast(col.astype(np.float64)))
    return _Thresholds(ref, layer, thr, columns)


def layer_threshold(ref, layer: Node, thr: Node, x: np.ndarray) -> np.ndarray | None:
    """The int64 output of the thresholder ``thr`` applied to the dense ``layer`` on ``x``:
    the accumulators stay floats (exact integers while their bound is below 2**24 in float32,
    2**53 in float64) and are compared with the thresholds as they are, or None where the
    bound does not hold."""
    key = thr.outputs[0]
    if key not in ref.fused_prepared:
        ref.fused_prepared[key] = _prepare_thresholds(ref, layer, thr)
    p = ref.fused_prepared[key]
    if p is None:
        return None
    v = _less_zero_point(fixed(p.src, x), p.x_zero_point)
    bound = _bound(v) * p.m.row_l1 + p.bias_max
    if bound >= _F64_EXACT:
        return None
    small = bound < _F32_EXACT
    acc = v.astype(np.float32 if small else np.float64) @ (p.m.t_f32 if small else p.m.t_f64)
    if p.bias is not None:
        acc += p.bias  # exact: the bound counts it
    count = np.zeros(acc.shape, np.int64)
    for column in p.columns:  # a float32 accumulator meets a float64 column in float64
        count += acc >= column
    if p.step != 1:
        count *= p.step
    return count + p.base
