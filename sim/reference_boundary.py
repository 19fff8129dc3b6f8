"""The reference's float steps at the graph boundary: ``quantize`` (QuantizeLinear, with the
host's pre-processing), ``dynamic_quantize`` (DynamicQuantizeLinear) and ``dequantize``.

A quantizer to integer codes of at most 24 bits computes in float32 from its first step on,
in one array of its own, in place: the rounded codes (half up rounds in float64), the zero
point and the clamp are all exact there (see :func:`quantize`). Fresh arrays past malloc's
mmap threshold are new pages to fault in on every call, and a pass or two over them cost as
much as the arithmetic.
"""

from __future__ import annotations

import numpy as np
from qfab.compiler.ir import Acc, Node, Tensor
from qfab.numerics import FixedFormat, IntFormat, MinifloatFormat
from qfab.sim.reference_products import F32_EXACT, round_floats

PRE_OPS = {"Mul": np.multiply, "Add": np.add, "Sub": np.subtract, "Div": np.divide,
           "Relu": np.maximum}


def _small_codes(t: Tensor) -> bool:
    """Whether ``t``'s codes and zero point are integers of at most 24 bits, so each, and the
    difference of two, is exact in float32."""
    return isinstance(t.fmt, IntFormat | FixedFormat) and t.fmt.bits <= 24


def _pre_processed(node: Node, x, work) -> tuple[np.ndarray, bool]:
    """The host's pre-processing (``attrs["pre"]``) of float32 ``x``, each step rounded to
    float32 as onnxruntime does; and whether the result is an array of this call's own
    (fresh, or ``work(shape)``'s where ``work`` is given)."""
    x = np.asarray(x, np.float32)
    own = False
    for op, c in node.attrs["pre"]:
        if op == "Reshape":
            x = x.reshape((x.shape[0],) + tuple(c[1:]))
        elif op == "Transpose":
            x = x.transpose(tuple(c))
        elif c.size == 1 and c.ndim <= x.ndim and (own or work):
            # Into our own array: a float64 constant runs the float64 loop and rounds to
            # float32 on the store, as the copying form's astype does.
            x, own = PRE_OPS[op](x, c, out=x if own else work(x.shape)), True
        else:
            x, own = PRE_OPS[op](x, c).astype(np.float32, copy=False), True
    return x, own


class Quantizer:
    """QuantizeLinear of float input to ``t``'s codes, after the pre-processing, with what
    depends on the graph only worked out once."""

    def __init__(self, node: Node, t: Tensor):
        self.node, self.t, a = node, t, node.attrs
        self.bipolar, self.rounding = a.get("bipolar"), a.get("rounding", "half_even")
        self.scale = np.asarray(t.scale, np.float32)
        self.scale_one = self.scale.size == 1 and bool(self.scale == 1)
        if isinstance(t.fmt, MinifloatFormat):
            return
        self.wrap = a.get("overflow") == "wrap"
        lo, hi = a.get("lo", t.fmt.min), a.get("hi", t.fmt.max)
        self.zero = zero = np.asarray(t.zero_point)
        # In float32: r + zero is exact wherever it lies between lo and hi (an integer below
        # 2**24), and rounding is monotonic, so a sum past either bound clamps to it as the
        # exact sum would.
        self.in_f32 = _small_codes(t) and max(abs(lo), abs(hi),
                                              int(np.abs(zero).max(initial=0))) < F32_EXACT
        if self.in_f32:
            lo, hi = np.float32(lo), np.float32(hi)
            self.zero = np.float32(zero) if zero.ndim == 0 else zero.astype(np.float32)
        self.lo, self.hi = lo, hi

    def __call__(self, x, work=None) -> np.ndarray:
        """The codes of ``x`` (int64). With ``work`` (shape -> a float32 working array),
        codes of at most 24 bits are left there, as float32 (exact integers)."""
        t = self.t
        x, own = _pre_processed(self.node, x, work)
        if self.bipolar:
            return np.where(x >= 0, 1, -1).astype(np.int64)
        scale = self.scale
        if scale.size == 1 and scale.ndim <= x.ndim and (own or work):
            if not (own and self.scale_one):  # x / 1 is x, every float of it
                x = np.divide(x, scale, out=x if own else work(x.shape))
            scaled = x
        else:
            scaled = (x / scale).astype(np.float32, copy=False)
        if isinstance(t.fmt, MinifloatFormat):
            return _minifloat_codes(self.node, t, scaled)
        r = round_floats(scaled, self.rounding, out=scaled)  # our own array: in place
        zero = self.zero
        if self.wrap:  # ap_fixed's AP_WRAP: keep the low bits
            span = 2**t.fmt.bits
            q = r.astype(np.float64) + zero
            return ((q.astype(np.int64) - t.fmt.min) % span + t.fmt.min).astype(np.int64)
        if not self.in_f32:
            q = r.astype(np.float64) + zero
        elif zero.ndim:
            q = r + zero
        else:
            q = r
            if zero:
                q += zero
        # np.clip's checks took as long as the pass on a small input
        q = np.minimum(np.maximum(q, self.lo, out=q), self.hi, out=q)
        return q if work and q.dtype == np.float32 else q.astype(np.int64)


def _minifloat_codes(node: Node, t: Tensor, scaled: np.ndarray) -> np.ndarray:
    fmt = t.fmt
    if fmt.saturate != node.attrs["saturate"]:
        fmt = MinifloatFormat(exp_bits=fmt.exp_bits, man_bits=fmt.man_bits,
                              bias=fmt.bias, subnormals=fmt.subnormals,
                              special=fmt.special, saturate=node.attrs["saturate"])
    # ONNX adds the zero point as a float even when it is +0, which turns -0 into +0.
    zero = np.asarray(fmt.decode(np.asarray(t.zero_point, np.int64)), np.float32)
    return fmt.encode((scaled + zero).astype(np.float64)).astype(np.int64)


def dynamic_quantize(node: Node, x):
    """ONNX DynamicQuantizeLinear, in float32: the range [min(x, 0), max(x, 0)] mapped
    onto [qmin, qmax], zero point and codes rounded half to even and saturated. An
    all-zero input (an empty range) gets scale 1 and zero point 0, as in onnxruntime (the
    ONNX spec's formula divides by zero there)."""
    x = np.asarray(x, np.float32)
    qmin, qmax = node.attrs["qmin"], node.attrs["qmax"]
    lo, hi = np.minimum(np.float32(0), x.min()), np.maximum(np.float32(0), x.max())
    scale = np.float32(1) if lo == hi else np.float32((hi - lo) / np.float32(qmax - qmin))
    zp = np.rint(np.clip(np.float32(qmin) - lo / scale, qmin, qmax))
    y = np.clip(np.rint(x / scale) + zp, qmin, qmax)
    return y.astype(np.int64), np.asarray(scale, np.float32), np.asarray(zp, np.int64)


class Dequantizer:
    """DequantizeLinear of ``t``'s codes (``node``'s input) to float32 (or the node's
    ``dtype``), clamped to its ``lo``/``hi`` where it has them, with what depends on the
    graph only worked out once."""

    def __init__(self, node: Node, t: Tensor):
        self.node, self.t, a = node, t, node.attrs
        self.factor = None if a.get("factor") is None else a["factor"].astype(np.float32)
        fmt = t.fmt
        self.biased = isinstance(fmt, Acc) and bool(np.any(t.bias))
        self.minifloat = isinstance(fmt, MinifloatFormat)
        self.small = _small_codes(t)
        if self.biased:
            self.unit = 2.0**fmt.lsb_exponent
            self.scale, self.bias = t.broadcast(t.scale), t.broadcast(t.bias)
        else:
            # times 1.0 changes no float: one pass fewer
            self.unit = np.float32(2.0**fmt.lsb_exponent) if fmt.lsb_exponent else None
            self.scale = t.broadcast(np.asarray(t.scale, np.float32))
        if self.minifloat:
            self.zero = t.broadcast(fmt.decode(np.asarray(t.zero_point, np.int64))
                                    .astype(np.float32))
        else:
            self.zero = t.broadcast(t.zero_point)
        clamped = a.get("lo", -np.inf) > -np.inf or a.get("hi", np.inf) < np.inf
        self.clamp = (a["lo"], a["hi"]) if clamped else None
        self.dtype = a.get("dtype", "float32")

    def __call__(self, x, scale=None) -> np.ndarray:
        """The values of the codes ``x``; with ``scale``, onnxruntime's quantize_dynamic:
        float32(acc) * (scale * factor)."""
        from qfab.sim.reference import fixed

        t = self.t
        if scale is not None:
            s = np.float32(scale) * self.factor
            return (np.asarray(x).astype(np.float32) * t.broadcast(s)).astype(np.float32)
        if self.biased:
            v = np.asarray(x, np.float64) * self.unit
            y = (v * self.scale + self.bias).astype(np.float32)
        elif self.minifloat:
            fixed(t, x)  # a NaN or infinity code is an error, as anywhere integers meet it
            y = (t.fmt.decode(x).astype(np.float32) - self.zero) * self.scale
        else:
            v = fixed(t, x)
            if getattr(v, "dtype", None) == np.int64 and self.small:
                y = np.subtract(v, self.zero, dtype=np.float32)  # exact: |v - zero| < 2**24
            else:
                y = (np.asarray(v) - self.zero).astype(np.float32)
            if self.unit is not None:
                y *= self.unit
            y *= self.scale
        y = y.astype(np.float32, copy=False)
        if self.clamp is not None:
            y = np.clip(y, *self.clamp).astype(np.float32)
        return y.astype(self.dtype, copy=False)
