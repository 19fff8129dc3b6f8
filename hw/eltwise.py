"""Residual add: two streams joined beat for beat, scaled to a common grid and requantized.

The compiler folds both inputs' zero points into ``offset`` (``-zp_a * mult_a - zp_b * mult_b``
plus the rounding constant it wants), so the block sees plain codes and does only integer
multiply, add, shift and clamp, as the integer reference does.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Module, Mux, ShapeLike, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from qfab.hw._checks import check_count, check_int, check_shape, shape_range

__all__ = ["ResidualAdd", "residual_add_reference", "round_shift_half_even"]


def round_shift_half_even(values: np.ndarray, shift: int) -> np.ndarray:
    """``values / 2**shift`` rounded to the nearest integer, ties to even, in integers."""
    v = np.asarray(values, dtype=np.int64)
    if shift == 0:
        return v
    q = v >> shift
    rem = v - (q << shift)
    half = 1 << (shift - 1)
    return q + ((rem > half) | ((rem == half) & (q & 1 == 1)))


def residual_add_reference(
    a: np.ndarray, b: np.ndarray, *, mult_a: int, mult_b: int, shift: int, offset: int = 0,
    zero_point: int, lo: int, hi: int,
) -> np.ndarray:
    """``clamp(round_half_even((a*mult_a + b*mult_b + offset) / 2**shift) + zero_point,
    lo, hi)`` elementwise, exactly as :class:`ResidualAdd` computes it."""
    acc = (np.asarray(a, dtype=np.int64) * mult_a + np.asarray(b, dtype=np.int64) * mult_b
           + offset)
    return np.clip(round_shift_half_even(acc, shift) + zero_point, lo, hi)


class ResidualAdd(wiring.Component):
    """Elementwise ``clamp(round_half_even((a*mult_a + b*mult_b + offset) / 2**shift)
    + zero_point, lo, hi)`` of two streams joined beat for beat.

    A beat is taken from both inputs in the same cycle, only when both offer one, so the two
    tensors must stream in the same order (channels last, ``n`` channels a beat). Two pipeline
    stages (products and sum; rounding and clamp); the whole pipeline holds while the output
    is blocked.

    Parameters
    ----------
    a_shape, b_shape : ShapeLike
        Element shapes of the two inputs.
    out_shape : ShapeLike
        Element shape of the output; ``lo`` and ``hi`` must fit in it.
    n : int
        Elements a beat, on all three streams.
    mult_a, mult_b : int
        Integer multipliers that bring both inputs to a common grid (dyadic scales).
    shift : int
        Right shift (>= 0) after the sum, rounding half to even.
    zero_point : int
        Output zero point, added after the shift.
    lo, hi : int
        Output clamp bounds, ``lo <= hi``.
    offset : int
        Constant added to the sum before the shift (the inputs' folded zero points).

    Members
    -------
    i_a : In(stream.Signature(data.ArrayLayout(a_shape, n)))
    i_b : In(stream.Signature(data.ArrayLayout(b_shape, n)))
    o_stream : Out(stream.Signature(data.ArrayLayout(out_shape, n)))
    """

    def __init__(self, *, a_shape: ShapeLike, b_shape: ShapeLike, out_shape: ShapeLike, n: int,
                 mult_a: int, mult_b: int, shift: int, zero_point: int, lo: int, hi: int,
                 offset: int = 0):
        self._a_shape = check_shape("a_shape", a_shape)
        self._b_shape = check_shape("b_shape", b_shape)
        self._out_shape = check_shape("out_shape", out_shape)
        self._n = check_count("n", n)
        self._mult_a = check_int("mult_a", mult_a)
        self._mult_b = check_int("mult_b", mult_b)
        self._shift = check_count("shift", shift, minimum=0)
        self._zero_point = check_int("zero_point", zero_point)
        self._offset = check_int("offset", offset)
        out_lo, out_hi = shape_range(self._out_shape)
        if not out_lo <= check_int("lo", lo) <= out_hi:
            raise ValueError(f"lo {lo!r} does not fit out_shape {out_shape!r}")
        if not lo <= check_int("hi", hi) <= out_hi:
            raise ValueError(f"hi {hi!r} must be in [lo={lo}, {out_hi}] for {out_shape!r}")
        self._lo, self._hi = lo, hi
        super().__init__({
            "i_a": In(stream.Signature(data.ArrayLayout(self._a_shape, n))),
            "i_b": In(stream.Signature(data.ArrayLayout(self._b_shape, n))),
            "o_stream": Out(stream.Signature(data.ArrayLayout(self._out_shape, n))),
        })

    n = property(lambda self: self._n)
    a_shape = property(lambda self: self._a_shape)
    b_shape = property(lambda self: self._b_shape)
    out_shape = property(lambda self: self._out_shape)
    mult_a = property(lambda self: self._mult_a)
    mult_b = property(lambda self: self._mult_b)
    shift = property(lambda self: self._shift)
    zero_point = property(lambda self: self._zero_point)
    offset = property(lambda self: self._offset)
    lo = property(lambda self: self._lo)
    hi = property(lambda self: self._hi)

    @property
    def latency(self) -> int:
        """Cycles from a joined input transfer to its result being offered."""
        return 2

    @property
    def initiation_interval(self) -> int:
        """Cycles per beat at steady state."""
        return 1

    def cycles(self, beats: int) -> int:
        """Cycles from the first input transfer to the last output transfer, both counted,
        for ``beats`` beats on each input with no idle and no back-pressure."""
        return check_count("beats", beats) + self.latency

    def model(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Exact outputs for inputs ``a`` and ``b`` of the same shape."""
        return residual_add_reference(
            a, b, mult_a=self._mult_a, mult_b=self._mult_b, shift=self._shift,
            offset=self._offset, zero_point=self._zero_point, lo=self._lo, hi=self._hi)

    def _sum_range(self) -> tuple[int, int]:
        ends = []
        for shape, mult in ((self._a_shape, self._mult_a), (self._b_shape, self._mult_b)):
            lo, hi = shape_range(shape)
            ends.append(sorted((lo * mult, hi * mult)))
        return (ends[0][0] + ends[1][0] + self._offset, ends[0][1] + ends[1][1] + self._offset)

    def elaborate(self, platform) -> Module:
        m = Module()
        a, b, o = self.i_a, self.i_b, self.o_stream
        lo_sum, hi_sum = self._sum_range()
        sum_shape = signed(max(lo_sum.bit_length(), hi_sum.bit_length()) + 1)
        sums = Signal(data.ArrayLayout(sum_shape, self._n))
        sums_valid = Signal()

        advance = ~o.valid | o.ready
        m.d.comb += [
            a.ready.eq(b.valid & advance),
            b.ready.eq(a.valid & advance),
        ]
        with m.If(advance):
            m.d.sync += [sums_valid.eq(a.valid & b.valid), o.valid.eq(sums_valid)]
            for k in range(self._n):
                m.d.sync += sums[k].eq(a.p[k] * self._mult_a + b.p[k] * self._mult_b
                                       + self._offset)
                m.d.sync += o.p[k].eq(self._requantize(sums[k]))
        return m

    def _requantize(self, total):
        shift = self._shift
        if shift:
            floor = total >> shift
            rem = total.as_unsigned()[:shift]
            half = 1 << (shift - 1)
            total = floor + ((rem > half) | ((rem == half) & floor[0]))
        y = total + self._zero_point
        return Mux(y < self._lo, self._lo, Mux(y > self._hi, self._hi, y))
