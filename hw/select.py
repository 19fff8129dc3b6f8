"""Stream selection: one window of beats out of every period, the others dropped.

The accelerator of a model with several inputs takes them on its one input stream, one after
the other; each input's branch starts with a ``StreamSelect`` that keeps that input's beats
(and narrows them to its element shape) and drops the others'.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Module, Mux, ShapeLike, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from qfab.hw._checks import check_count, check_shape

__all__ = ["StreamSelect", "select_reference"]


def select_reference(beats: np.ndarray, *, period: int, first: int, count: int) -> np.ndarray:
    """The beats :class:`StreamSelect` keeps: ``count`` from ``first`` of every ``period``."""
    b = np.asarray(beats)
    periods = b.reshape(-1, period, *b.shape[1:])
    return periods[:, first:first + count].reshape(-1, *b.shape[1:])


class StreamSelect(wiring.Component):
    """Of every ``period`` beats of ``i_stream``, passes beats ``first`` to ``first + count
    - 1`` (narrowed to ``out_shape``, which must hold their values) through an output
    register, and takes the others at once, dropping them.

    Parameters
    ----------
    in_shape, out_shape : ShapeLike
        Element shapes of the input and the output.
    n : int
        Elements a beat.
    period, first, count : int
        Beats in a period; the first kept and how many are.

    Members
    -------
    i_stream : In(stream.Signature(data.ArrayLayout(in_shape, n)))
    o_stream : Out(stream.Signature(data.ArrayLayout(out_shape, n)))
    """

    def __init__(self, *, in_shape: ShapeLike, out_shape: ShapeLike, n: int, period: int,
                 first: int, count: int):
        self._in_shape = check_shape("in_shape", in_shape)
        self._out_shape = check_shape("out_shape", out_shape)
        self._n = check_count("n", n)
        self._period = check_count("period", period)
        self._first = check_count("first", first, minimum=0)
        self._count = check_count("count", count)
        if first + count > period:
            raise ValueError(f"beats {first}..{first + count - 1} are not within a period of "
                             f"{period}")
        super().__init__({
            "i_stream": In(stream.Signature(data.ArrayLayout(self._in_shape, n))),
            "o_stream": Out(stream.Signature(data.ArrayLayout(self._out_shape, n))),
        })

    n = property(lambda self: self._n)
    in_shape = property(lambda self: self._in_shape)
    out_shape = property(lambda self: self._out_shape)
    period = property(lambda self: self._period)
    first = property(lambda self: self._first)
    count = property(lambda self: self._count)

    def model(self, beats: np.ndarray) -> np.ndarray:
        return select_reference(beats, period=self._period, first=self._first,
                                count=self._count)

    def elaborate(self, platform) -> Module:
        m = Module()
        i, o = self.i_stream, self.o_stream
        pos = Signal(range(max(self._period, 2)))
        keep = (pos >= self._first) & (pos < self._first + self._count)
        advance = ~o.valid | o.ready
        m.d.comb += i.ready.eq(~keep | advance)
        fire = i.valid & i.ready
        with m.If(advance):
            m.d.sync += o.valid.eq(fire & keep)
        with m.If(fire):
            m.d.sync += pos.eq(Mux(pos == self._period - 1, 0, pos + 1))
            with m.If(keep):
                m.d.sync += [o.payload[k].eq(i.payload[k]) for k in range(self._n)]
        return m
