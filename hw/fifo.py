"""Stream FIFO: decouples a producer from a consumer by ``depth`` beats.

The compiler puts one between stages whose rates differ in bursts (a sliding window that
emits many beats per input row, say), and before the second input of a residual add so the
skip path can run ahead of the long path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from amaranth.hdl import Module, Shape, ShapeCastable, ShapeLike
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out
from qfab.hw._checks import check_count

__all__ = ["StreamFIFO", "fifo_reference"]


def fifo_reference(beats: Sequence[Any]) -> list[Any]:
    """What a FIFO does to a sequence of beats: nothing (same beats, same order)."""
    return list(beats)


class StreamFIFO(wiring.Component):
    """First in, first out queue between two streams, in block RAM.

    Built on :class:`amaranth.lib.fifo.SyncFIFOBuffered`, whose read port is synchronous so that
    the storage maps to block RAM.

    Parameters
    ----------
    payload_shape : ShapeLike
        Shape of one beat, e.g. ``data.ArrayLayout(signed(8), 4)``.
    depth : int
        Number of beats held, at least 1. Depths 1 and 2 accept a beat only every other cycle
        (a property of ``SyncFIFOBuffered``); from 3 up the FIFO runs at one beat a cycle.

    Members
    -------
    i_stream : In(stream.Signature(payload_shape))
        Beats in.
    o_stream : Out(stream.Signature(payload_shape))
        The same beats out, in order.
    """

    def __init__(self, *, payload_shape: ShapeLike, depth: int):
        if not isinstance(payload_shape, ShapeCastable):
            try:
                Shape.cast(payload_shape)
            except TypeError as exc:
                raise ValueError(f"payload_shape {payload_shape!r} is not a shape") from exc
        check_count("depth", depth)
        self._payload_shape = payload_shape
        self._depth = depth
        super().__init__({
            "i_stream": In(stream.Signature(payload_shape)),
            "o_stream": Out(stream.Signature(payload_shape)),
        })

    @property
    def payload_shape(self) -> ShapeLike:
        return self._payload_shape

    @property
    def depth(self) -> int:
        return self._depth

    @property
    def memory(self) -> tuple[int, int]:
        """(depth, width in bits) of the RAM behind the output register (depth 0 for a FIFO
        of depth 1, which is one register)."""
        return self._depth - 1, Shape.cast(self._payload_shape).width

    @property
    def latency(self) -> int:
        """Cycles from a beat entering an empty FIFO to it being offered at the output."""
        return 1 if self._depth == 1 else 2

    @property
    def initiation_interval(self) -> int:
        """Cycles per beat at steady state."""
        return 2 if self._depth < 3 else 1

    def model(self, beats: Sequence[Any]) -> list[Any]:
        """The beats that come out for ``beats`` going in."""
        return fifo_reference(beats)

    def cycles(self, beats: int) -> int:
        """Cycles from the first input transfer to the last output transfer, both counted,
        for ``beats`` beats offered back to back into an empty FIFO with no back-pressure."""
        check_count("beats", beats)
        if self._depth == 1:
            return 2 * beats
        if self._depth == 2:
            return 2 * beats + 1
        return beats + 2

    def elaborate(self, platform) -> Module:
        m = Module()
        width = Shape.cast(self._payload_shape).width
        m.submodules.queue = queue = fifo.SyncFIFOBuffered(width=width, depth=self._depth)
        m.d.comb += [
            queue.w_data.eq(self.i_stream.payload),
            queue.w_en.eq(self.i_stream.valid),
            self.i_stream.ready.eq(queue.w_rdy),
            self.o_stream.payload.eq(queue.r_data),
            self.o_stream.valid.eq(queue.r_rdy),
            queue.r_en.eq(self.o_stream.ready),
        ]
        return m
