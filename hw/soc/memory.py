"""Word-wide on-chip memories on the SoC bus: RAM, and ROM that a loader may fill."""

from __future__ import annotations

from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In
from qfab.hw.soc.bus import BusSignature


class BusMemory(wiring.Component):
    """A synchronous memory of 32-bit words with byte-lane writes.

    Every access takes two cycles: the address is registered by the block RAM in the cycle
    of ``valid`` and ``ready`` rises in the next, which maps onto FPGA block RAM directly.

    Parameters
    ----------
    size : int
        Bytes; a multiple of 4.
    read_only : bool
        A ROM: stores from the core answer ``err``; stores while ``load_en`` is high (the
        program loader) are written.
    init : sequence of int
        Initial words (the firmware image for a boot ROM).

    Members
    -------
    bus : In(BusSignature)
        The target port; only the address bits inside the memory are used.
    load_en : In(1)
        Present when ``read_only``: lets stores through.
    """

    def __init__(self, *, size: int, read_only: bool = False, init: tuple[int, ...] = ()):
        if size <= 0 or size % 4:
            raise ValueError(f"BusMemory size must be a positive multiple of 4, got {size!r}")
        if len(init) > size // 4:
            raise ValueError(f"BusMemory init has {len(init)} words, more than {size // 4}")
        self._size = size
        self._read_only = read_only
        self._init = tuple(init)
        members = {"bus": In(BusSignature())}
        if read_only:
            members["load_en"] = In(1)
        super().__init__(members)

    @property
    def size(self) -> int:
        return self._size

    @property
    def read_only(self) -> bool:
        return self._read_only

    def elaborate(self, platform) -> wiring.Module:
        m = Module()
        depth = self._size // 4
        m.submodules.mem = mem = Memory(shape=32, depth=depth, init=self._init)
        rd = mem.read_port()
        wr = mem.write_port(granularity=8)
        index = self.bus.addr[2:2 + max(1, (depth - 1).bit_length())]
        answered = Signal()
        # `answered` keeps a held request from being served twice.
        start = self.bus.valid & ~answered
        m.d.sync += answered.eq(start)
        allowed = self.load_en if self._read_only else 1
        refused = Signal()
        m.d.sync += refused.eq(start & self.bus.we & ~allowed)
        m.d.comb += [
            rd.addr.eq(index),
            wr.addr.eq(index),
            wr.data.eq(self.bus.wdata),
            self.bus.rdata.eq(rd.data),
            self.bus.ready.eq(answered),
            self.bus.err.eq(refused),
        ]
        with m.If(start & self.bus.we & allowed):
            m.d.comb += wr.en.eq(self.bus.sel)
        return m
