"""Register slice: a stream edge cut by registers in both directions, at full throughput.

Between two blocks, the consumer's ``ready`` decides the producer's next state and the
producer's ``valid`` and payload the consumer's: a path from flip-flops in one block
through logic in both into flip-flops of the other, which on a large part routes across the
die. A register slice on the edge ends every such path at its own flip-flops: its output
``valid`` and payload are registers, and its input ``ready`` is one too ("the spare is
empty"). It holds two beats (its output register and a spare that catches the beat in
flight when the output stalls, :class:`~qfab.hw._skid.OutputSkid`), so it passes a beat a
cycle and adds one cycle of latency.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from amaranth.hdl import Module, ShapeLike
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from qfab.hw._checks import check_count, check_shape
from qfab.hw._skid import OutputSkid

__all__ = ["RegisterSlice", "slice_reference"]


def slice_reference(beats: Sequence[Any]) -> list[Any]:
    """What a register slice does to a sequence of beats: nothing (same beats, same order)."""
    return list(beats)


class RegisterSlice(wiring.Component):
    """Two-entry skid buffer between two streams of ``n`` elements of ``elem_shape``.

    Parameters
    ----------
    elem_shape : ShapeLike
        Shape of one element.
    n : int
        Elements a beat.

    Members
    -------
    i_stream : In(stream.Signature(ArrayLayout(elem_shape, n)))
        Beats in; ``ready`` is a flip-flop (no beat waits in the spare).
    o_stream : Out(stream.Signature(ArrayLayout(elem_shape, n)))
        The same beats, a cycle later without stalls; ``valid`` and payload are flip-flops.
    """

    latency = 1
    initiation_interval = 1

    def __init__(self, *, elem_shape: ShapeLike, n: int):
        check_shape("elem_shape", elem_shape)
        check_count("n", n)
        self._layout = data.ArrayLayout(elem_shape, n)
        super().__init__({
            "i_stream": In(stream.Signature(self._layout)),
            "o_stream": Out(stream.Signature(self._layout)),
        })

    def model(self, beats: Sequence[Any]) -> list[Any]:
        """The beats that come out for ``beats`` going in."""
        return slice_reference(beats)

    def elaborate(self, platform) -> Module:
        m = Module()
        out = OutputSkid(m, self.o_stream, self._layout)
        out.push(self.i_stream.valid, self.i_stream.payload)
        m.d.comb += self.i_stream.ready.eq(out.advance)
        return m
