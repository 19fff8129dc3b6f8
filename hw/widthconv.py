"""Width converter: regroups a stream of ``n_in`` elements a beat into ``n_out`` a beat.

Stages that are folded differently (a convolution with SIMD 4 feeding one with SIMD 8, say)
meet through one of these. Element order is kept: element ``j`` of beat ``b`` is element
``b * n + j`` of the flattened tensor on both sides.
"""

from __future__ import annotations

import math

import numpy as np
from amaranth.hdl import Module, ShapeLike, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from qfab.hw._checks import check_count, check_shape

__all__ = ["WidthConverter", "widthconv_reference"]


def widthconv_reference(beats: np.ndarray, n_out: int) -> np.ndarray:
    """Beats ``(count, n_in)`` regrouped into beats ``(count * n_in // n_out, n_out)``."""
    flat = np.asarray(beats).reshape(-1)
    if flat.size % n_out:
        raise ValueError(f"{flat.size} elements do not fill whole beats of {n_out}")
    return flat.reshape(-1, n_out)


class _Gather(wiring.Component):
    """``k`` input beats of ``n`` elements into one output beat of ``k * n``."""

    def __init__(self, elem_shape: ShapeLike, n: int, k: int):
        self._layout = data.ArrayLayout(data.ArrayLayout(elem_shape, n), k)
        self._k = k
        super().__init__({
            "i_stream": In(stream.Signature(data.ArrayLayout(elem_shape, n))),
            "o_stream": Out(stream.Signature(data.ArrayLayout(elem_shape, n * k))),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        buf = Signal(self._layout)
        slot = Signal(range(self._k))
        i, o = self.i_stream, self.o_stream
        m.d.comb += [
            # The buffer is the output register, so it may only refill once its beat leaves.
            i.ready.eq(~o.valid | o.ready),
            o.payload.eq(buf.as_value()),
        ]
        with m.If(o.valid & o.ready):
            m.d.sync += o.valid.eq(0)
        with m.If(i.valid & i.ready):
            m.d.sync += buf[slot].eq(i.payload)
            with m.If(slot == self._k - 1):
                m.d.sync += [slot.eq(0), o.valid.eq(1)]
            with m.Else():
                m.d.sync += slot.eq(slot + 1)
        return m


class _Split(wiring.Component):
    """One input beat of ``k * n`` elements into ``k`` output beats of ``n``."""

    def __init__(self, elem_shape: ShapeLike, n: int, k: int):
        self._layout = data.ArrayLayout(data.ArrayLayout(elem_shape, n), k)
        self._k = k
        super().__init__({
            "i_stream": In(stream.Signature(data.ArrayLayout(elem_shape, n * k))),
            "o_stream": Out(stream.Signature(data.ArrayLayout(elem_shape, n))),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        word = Signal(self._layout)
        part = Signal(range(self._k))
        last = part == self._k - 1
        i, o = self.i_stream, self.o_stream
        m.d.comb += [
            i.ready.eq(~o.valid | (o.ready & last)),
            o.payload.eq(word[part]),
        ]
        with m.If(o.valid & o.ready):
            m.d.sync += part.eq(part + 1)
            with m.If(last):
                m.d.sync += [part.eq(0), o.valid.eq(0)]
        with m.If(i.valid & i.ready):
            m.d.sync += [word.eq(i.payload), part.eq(0), o.valid.eq(1)]
        return m


class WidthConverter(wiring.Component):
    """Regroups a stream of arrays from ``n_in`` to ``n_out`` elements a beat, keeping order.

    When ``n_out`` is a multiple of ``n_in`` the block gathers input beats into one output
    beat; when ``n_in`` is a multiple of ``n_out`` it splits each input beat; otherwise it
    gathers to ``lcm(n_in, n_out)`` elements and splits that. A tensor's element count must be
    a multiple of ``lcm(n_in, n_out)``.

    Parameters
    ----------
    elem_shape : ShapeLike
        Shape of one element, e.g. ``signed(8)``.
    n_in : int
        Elements a beat at the input.
    n_out : int
        Elements a beat at the output.

    Members
    -------
    i_stream : In(stream.Signature(data.ArrayLayout(elem_shape, n_in)))
    o_stream : Out(stream.Signature(data.ArrayLayout(elem_shape, n_out)))
    """

    def __init__(self, *, elem_shape: ShapeLike, n_in: int, n_out: int):
        check_shape("elem_shape", elem_shape)
        check_count("n_in", n_in)
        check_count("n_out", n_out)
        self._elem_shape = elem_shape
        self._n_in = n_in
        self._n_out = n_out
        super().__init__({
            "i_stream": In(stream.Signature(data.ArrayLayout(elem_shape, n_in))),
            "o_stream": Out(stream.Signature(data.ArrayLayout(elem_shape, n_out))),
        })

    @property
    def elem_shape(self) -> ShapeLike:
        return self._elem_shape

    @property
    def n_in(self) -> int:
        return self._n_in

    @property
    def n_out(self) -> int:
        return self._n_out

    @property
    def word(self) -> int:
        """Elements in the smallest group both sides agree on: ``lcm(n_in, n_out)``."""
        return math.lcm(self._n_in, self._n_out)

    @property
    def latency(self) -> int:
        """Cycles from the input beat that completes a word (``lcm(n_in, n_out)`` elements) to
        the first output beat taken from that word."""
        return 1 if self.word in (self._n_in, self._n_out) else 2

    @property
    def initiation_interval(self) -> int:
        """Cycles per word (``lcm(n_in, n_out)`` elements) at steady state: the busier side's
        beats per word."""
        return max(self.word // self._n_in, self.word // self._n_out)

    def model(self, beats: np.ndarray) -> np.ndarray:
        """Output beats ``(count, n_out)`` for input beats ``(count, n_in)``."""
        return widthconv_reference(beats, self._n_out)

    def cycles(self, beats: int) -> int:
        """Cycles from the first input transfer to the last output transfer, both counted,
        for ``beats`` input beats (whole words) with no idle input and no back-pressure."""
        elements = beats * self._n_in
        if beats < 1 or elements % self.word:
            raise ValueError(f"beats {beats!r} do not make whole words of {self.word} elements")
        beats_in, beats_out = beats, elements // self._n_out
        if self.word == self._n_out:
            return beats_in + 1
        if self.word == self._n_in:
            return beats_out + 1
        per_word_in, per_word_out = self.word // self._n_in, self.word // self._n_out
        return max(beats_in + per_word_out, beats_out + per_word_in) + 1

    def elaborate(self, platform) -> Module:
        m = Module()
        n_in, n_out, word = self._n_in, self._n_out, self.word
        if word == n_out:
            m.submodules.gather = stage = _Gather(self._elem_shape, n_in, n_out // n_in)
            wiring.connect(m, wiring.flipped(self.i_stream), stage.i_stream)
            wiring.connect(m, stage.o_stream, wiring.flipped(self.o_stream))
        elif word == n_in:
            m.submodules.split = stage = _Split(self._elem_shape, n_out, n_in // n_out)
            wiring.connect(m, wiring.flipped(self.i_stream), stage.i_stream)
            wiring.connect(m, stage.o_stream, wiring.flipped(self.o_stream))
        else:
            m.submodules.gather = gather = _Gather(self._elem_shape, n_in, word // n_in)
            m.submodules.split = split = _Split(self._elem_shape, n_out, word // n_out)
            wiring.connect(m, wiring.flipped(self.i_stream), gather.i_stream)
            wiring.connect(m, gather.o_stream, split.i_stream)
            wiring.connect(m, split.o_stream, wiring.flipped(self.o_stream))
        return m
