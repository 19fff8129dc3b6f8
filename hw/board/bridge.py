"""Bytes to stream beats and back: how a host on a serial line feeds an accelerator."""

from amaranth import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out


def bytes_per_beat(width: int) -> int:
    """Whole bytes that carry a ``width``-bit payload."""
    return (width + 7) // 8


class ByteBridge(wiring.Component):
    """Packs bytes into input beats and unpacks output beats into bytes, little-endian.

    An input beat of ``in_width`` bits takes ``bytes_per_beat(in_width)`` bytes, the first in
    the low bits (the stream's element 0); the padding bits of the last byte are dropped. An
    output beat leaves as ``bytes_per_beat(out_width)`` bytes in the same order, padded with
    zeros.

    Parameters
    ----------
    in_width, out_width : int
        Payload widths of the accelerator's input and output streams.

    Members
    -------
    i_bytes : In(stream.Signature(8))
    o_beats : Out(stream.Signature(in_width))
    i_beats : In(stream.Signature(out_width))
    o_bytes : Out(stream.Signature(8))
    """

    def __init__(self, *, in_width: int, out_width: int) -> None:
        for name, value in (("in_width", in_width), ("out_width", out_width)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"ByteBridge {name} must be a positive integer, not {value!r}")
        self._in_width = in_width
        self._out_width = out_width
        super().__init__({
            "i_bytes": In(stream.Signature(8)),
            "o_beats": Out(stream.Signature(in_width)),
            "i_beats": In(stream.Signature(out_width)),
            "o_bytes": Out(stream.Signature(8)),
        })

    @property
    def in_width(self) -> int:
        return self._in_width

    @property
    def out_width(self) -> int:
        return self._out_width

    def elaborate(self, platform) -> Module:
        m = Module()
        self._pack(m)
        self._unpack(m)
        return m

    def _pack(self, m: Module) -> None:
        n = bytes_per_beat(self._in_width)
        word = Signal(8 * n)
        count = Signal(range(n + 1))
        m.d.comb += [self.o_beats.payload.eq(word), self.o_beats.valid.eq(count == n),
                     self.i_bytes.ready.eq(count != n)]
        with m.If(self.o_beats.valid & self.o_beats.ready):
            m.d.sync += count.eq(0)
        with m.If(self.i_bytes.valid & self.i_bytes.ready):
            m.d.sync += [word.eq((word >> 8) | (self.i_bytes.payload << (8 * (n - 1)))),
                         count.eq(count + 1)]

    def _unpack(self, m: Module) -> None:
        n = bytes_per_beat(self._out_width)
        word = Signal(8 * n)
        left = Signal(range(n + 1))
        m.d.comb += [self.o_bytes.payload.eq(word[:8]), self.o_bytes.valid.eq(left != 0),
                     self.i_beats.ready.eq(left == 0)]
        with m.If(self.i_beats.valid & self.i_beats.ready):
            m.d.sync += [word.eq(self.i_beats.payload), left.eq(n)]
        with m.Elif(self.o_bytes.valid & self.o_bytes.ready):
            m.d.sync += [word.eq(word >> 8), left.eq(left - 1)]
