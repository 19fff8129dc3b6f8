"""The sliding window's two handshake tests as flip-flops (``registered_ready``).

The window (hw/window.py) takes an input beat while a row slot is free, and starts the beats
of output row ``oy`` once the input rows that row needs are written. Counted from the first
row of the image being read, with ``ahead`` the rows written since it (a register of the
window's; negative while the reader has released rows not yet written), both tests compare
``ahead`` with a figure of ``oy`` alone:

- a slot is free: ``ahead < slots + released(oy)``, ``released(oy)`` the rows released before
  output row ``oy`` (those the rows above it no longer need);
- the rows are there: ``ahead >= needed(oy)``.

Here each test is a register holding its value for this cycle, set from the next cycle's
``ahead`` and ``oy``: ``ahead`` grows by ``w`` (1 when this cycle writes a row's last beat),
``oy`` moves on when this cycle reads the row's last beat (``d``), to the next row or, after
the image's last, to row 0 of the next image, whose first row is ``height`` rows on (so
``ahead`` drops by ``height``, counted here in the figure instead). With the figures of ``oy``
and of the row after it as constant tables indexed by ``oy``, the register's input is one of
four compares of ``ahead`` with a table entry, picked by ``w`` and ``d``: no adder lies
between the counters and the flip-flops, and ``w`` and ``d`` (which come from the handshakes
around the window) only choose among results computed already.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from itertools import accumulate

from amaranth.hdl import Const, Module, Mux, Signal, Value, signed
from qfab.hw._window_timing import WindowGeometry

__all__ = ["RowFlags", "StepFlags"]


def _table(m: Module, index: Value, values: Sequence[int], width: int) -> Value:
    """``values[index]``, a constant table in logic."""
    if len(values) == 1:
        return Const(values[0], signed(width))
    out = Signal(signed(width))
    with m.Switch(index):
        for k, v in enumerate(values):
            with m.Case(k):
                m.d.comb += out.eq(v)
    return out


class RowFlags:
    """The window's "a row slot is free" and "the output row's rows are written" tests, as
    registers.

    Parameters
    ----------
    geom : WindowGeometry
        The window's geometry.
    bits : int
        Width of the window's row counters (``ahead`` is read as a signed number of them).

    Members
    -------
    room : Signal
        A row slot is free (the window's input ``ready``).
    available : Signal
        Every input row the current output row needs is written.
    """

    def __init__(self, geom: WindowGeometry, bits: int):
        g = geom
        self._bits = bits
        rows = g.out_height
        self._released = [g.rows_released(oy - 1) if oy else 0 for oy in range(rows)]
        self._needed = [g.rows_needed(oy) for oy in range(rows)]
        self._slots, self._height = g.row_slots, g.height
        self.room = Signal(init=int(0 < g.row_slots + self._released[0]), name="room")
        self.available = Signal(init=int(0 >= self._needed[0]), name="available")

    def update(self, m: Module, *, ahead: Value, oy: Value, row_written: Value,
               row_done: Value) -> None:
        """Set both registers from this cycle's ``ahead`` and ``oy`` and whether this cycle
        completes an input row (``row_written``) and an output row (``row_done``)."""
        def after(figures: list[int]) -> list[int]:
            # the figure of the row after each; after the image's last, the next image's
            # first, counted from this image's first row
            return figures[1:] + [self._height + figures[0]]

        room = [self._slots + r for r in self._released]
        tests: list[tuple[Signal, list[int], Callable[[Value, Value], Value]]] = [
            (self.room, room, lambda a, k: a < k),
            (self.available, self._needed, lambda a, k: a >= k)]
        width = self._bits + 1
        for flag, figures, test in tests:
            picks = {}
            for done, row_figures in ((0, figures), (1, after(figures))):
                for written in (0, 1):  # ahead + written vs k, as ahead vs k - written
                    bound = _table(m, oy, [f - written for f in row_figures], width)
                    picks[done, written] = Signal(name=f"{flag.name}_{done}{written}")
                    m.d.comb += picks[done, written].eq(test(ahead.as_signed(), bound))
            m.d.sync += flag.eq(Mux(row_done, Mux(row_written, picks[1, 1], picks[1, 0]),
                                    Mux(row_written, picks[0, 1], picks[0, 0])))


class StepFlags:
    """The reader's nested counters stepped with their carries held as registers.

    ``ends[k]`` holds "counters 0 to ``k`` (innermost first) are at their last value", and
    ``image_end`` "the output row's counters are too, and so is ``oy``": each is set, when the
    reader steps, from "the step before the last" of the counters' current values, so the
    step (``advance``, from the handshakes around the window) reaches the counters' enables
    and the row's and image's ends through a gate each, and no compare of the counters lies
    after it.

    Parameters
    ----------
    counters : list of (Signal, int, int)
        ``(counter, count, step)``, innermost first: a counter takes ``count`` values,
        ``step`` apart, from 0.
    oy, rows : Signal, int
        The output row and the output rows of an image.
    """

    def __init__(self, counters: list, oy: Value, rows: int):
        self._counters, self._oy, self._rows = counters, oy, rows
        self._periods = list(accumulate((n for _, n, _ in counters), operator.mul))
        self.ends = [Signal(init=int(p == 1), name=f"ends{k}")
                     for k, p in enumerate(self._periods)]
        self.image_end = Signal(init=int(self._periods[-1] == 1 and rows == 1),
                                name="image_end")

    def _before_last(self, k: int) -> Value:
        """Counters 0 to ``k`` are a step before all being at their last value."""
        if self._periods[k] == 1:
            return Const(1)
        inner = self._counters[:k + 1]
        j = next(i for i, (_, n, _) in enumerate(inner) if n > 1)
        out = inner[j][0] == (inner[j][1] - 2) * inner[j][2]
        for i, (counter, n, s) in enumerate(inner):
            if i != j and n > 1:
                out = out & (counter == (n - 1) * s)
        return out

    def step(self, m: Module, advance: Value) -> list[Value]:
        """Step the counters when ``advance``; returns, for each, "the step taken now leaves
        it and all inside it at their last value" (the carries out of it)."""
        carries = []
        for k, (counter, n, s) in enumerate(self._counters):
            with m.If(advance & self.ends[k - 1] if k else advance):
                m.d.sync += counter.eq(Mux(counter == (n - 1) * s, 0, counter + s))
            carry = Signal(name=f"carry{k}")
            m.d.comb += carry.eq(advance & self.ends[k])
            carries.append(carry)
        oy, rows = self._oy, self._rows
        # ``oy`` is last after this step: it moves on if this step ends a row
        oy_last = Mux(self.ends[-1], Const(1) if rows == 1 else oy == rows - 2, oy == rows - 1)
        before = [self._before_last(k) for k in range(len(self.ends))]
        with m.If(advance):
            m.d.sync += [e.eq(b) for e, b in zip(self.ends, before, strict=True)]
            m.d.sync += self.image_end.eq(before[-1] & oy_last)
        return carries
