"""Stream concatenation: two streams taken in turns into one.

``a_beats`` beats of the first input, then ``b_beats`` of the second, and again: with a whole
inference of each, the second tensor follows the first (the accelerator's several outputs on
one stream); with a pixel's channel groups, the channels of both are interleaved pixel by
pixel (a Concat along channels, channels last). Elements are widened to ``out_shape``.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Module, Mux, ShapeLike, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from qfab.hw._checks import check_count, check_shape, shape_range

__all__ = ["StreamConcat", "concat_reference"]


def concat_reference(a: np.ndarray, b: np.ndarray, *, a_beats: int, b_beats: int,
                     b_first: bool = False) -> np.ndarray:
    """Beats ``[k, n]`` of ``a`` and ``b`` in the order :class:`StreamConcat` gives them:
    runs of ``a_beats`` and ``b_beats`` in turns (``b_first``: starting with ``b``)."""
    a, b = np.asarray(a).reshape(-1, a_beats, *np.shape(a)[1:]), \
        np.asarray(b).reshape(-1, b_beats, *np.shape(b)[1:])
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"{a.shape[0]} runs of a and {b.shape[0]} of b")
    pair = (b, a) if b_first else (a, b)
    return np.concatenate(pair, axis=1).reshape(-1, *a.shape[2:])


class StreamConcat(wiring.Component):
    """Runs of ``a_beats`` beats of ``i_a`` and ``b_beats`` of ``i_b`` in turns, widened to
    ``out_shape``, one beat a cycle. An input is ready only in its turn and while the output
    register is free or taken; no input waits for the other except by its turn.

    Parameters
    ----------
    a_shape, b_shape : ShapeLike
        Element shapes of the two inputs.
    out_shape : ShapeLike
        Element shape of the output: it must hold every value of both.
    n : int
        Elements a beat, on all three streams.
    a_beats, b_beats : int
        Beats in a run of each input.
    b_first : bool
        Whether a period starts with ``i_b``'s run.

    Members
    -------
    i_a : In(stream.Signature(data.ArrayLayout(a_shape, n)))
    i_b : In(stream.Signature(data.ArrayLayout(b_shape, n)))
    o_stream : Out(stream.Signature(data.ArrayLayout(out_shape, n)))
    """

    def __init__(self, *, a_shape: ShapeLike, b_shape: ShapeLike, out_shape: ShapeLike,
                 n: int, a_beats: int, b_beats: int, b_first: bool = False):
        self._a_shape = check_shape("a_shape", a_shape)
        self._b_shape = check_shape("b_shape", b_shape)
        self._out_shape = check_shape("out_shape", out_shape)
        self._n = check_count("n", n)
        self._a_beats = check_count("a_beats", a_beats)
        self._b_beats = check_count("b_beats", b_beats)
        if not isinstance(b_first, bool):
            raise ValueError(f"b_first must be a bool, not {b_first!r}")
        self._b_first = b_first
        lo, hi = shape_range(self._out_shape)
        for name, shape in (("a_shape", self._a_shape), ("b_shape", self._b_shape)):
            s_lo, s_hi = shape_range(shape)
            if s_lo < lo or s_hi > hi:
                raise ValueError(f"out_shape {out_shape!r} does not hold {name} {shape!r}")
        super().__init__({
            "i_a": In(stream.Signature(data.ArrayLayout(self._a_shape, n))),
            "i_b": In(stream.Signature(data.ArrayLayout(self._b_shape, n))),
            "o_stream": Out(stream.Signature(data.ArrayLayout(self._out_shape, n))),
        })

    n = property(lambda self: self._n)
    a_shape = property(lambda self: self._a_shape)
    b_shape = property(lambda self: self._b_shape)
    out_shape = property(lambda self: self._out_shape)
    a_beats = property(lambda self: self._a_beats)
    b_beats = property(lambda self: self._b_beats)
    b_first = property(lambda self: self._b_first)

    @property
    def latency(self) -> int:
        """Cycles from an input transfer to its beat being offered."""
        return 1

    def model(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """The output beats for input beats ``a`` and ``b`` (whole periods of each)."""
        return concat_reference(a, b, a_beats=self._a_beats, b_beats=self._b_beats,
                                b_first=self._b_first)

    def elaborate(self, platform) -> Module:
        m = Module()
        a, b, o = self.i_a, self.i_b, self.o_stream
        count = Signal(range(max(self._a_beats, self._b_beats, 2)))
        take_b = Signal(init=int(self._b_first))
        advance = ~o.valid | o.ready
        m.d.comb += [a.ready.eq(~take_b & advance), b.ready.eq(take_b & advance)]
        fire = (a.valid & a.ready) | (b.valid & b.ready)
        with m.If(advance):
            m.d.sync += o.valid.eq(fire)
        with m.If(fire):
            m.d.sync += [o.payload[k].eq(Mux(take_b, b.payload[k], a.payload[k]))
                         for k in range(self._n)]
            run = Mux(take_b, self._b_beats - 1, self._a_beats - 1)
            with m.If(count == run):
                m.d.sync += [count.eq(0), take_b.eq(~take_b)]
            with m.Else():
                m.d.sync += count.eq(count + 1)
        return m
