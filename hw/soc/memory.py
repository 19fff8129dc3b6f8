"""Word-wide on-chip memories on the SoC bus: RAM, and ROM that a loader may fill."""

from __future__ import annotations

from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from qfab.hw.soc.bus import BusSignature


class RamPortSignature(wiring.Signature):
    """A memory's second port, as its user (a DMA engine) sees it: one word a cycle.

    ``addr`` is a word index. With ``re`` high, ``rdata`` holds that word in the next cycle;
    with ``we`` high, ``wdata`` is written at the end of the cycle. The two are never high
    together.
    """

    def __init__(self, addr_bits: int) -> None:
        super().__init__({"addr": Out(addr_bits), "re": Out(1), "we": Out(1),
                          "wdata": Out(32), "rdata": In(32)})


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
    dma : bool
        Add a second port, ``dma``, so a DMA engine moves words without the bus (the two
        ports of an FPGA's true dual-port block RAM).

    Members
    -------
    bus : In(BusSignature)
        The target port; only the address bits inside the memory are used.
    load_en : In(1)
        Present when ``read_only``: lets stores through.
    dma : In(RamPortSignature)
        Present with ``dma``.
    """

    def __init__(self, *, size: int, read_only: bool = False, init: tuple[int, ...] = (),
                 dma: bool = False):
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
        if dma:
            members["dma"] = In(RamPortSignature(self.addr_bits))
        super().__init__(members)

    @property
    def size(self) -> int:
        return self._size

    @property
    def read_only(self) -> bool:
        return self._read_only

    @property
    def addr_bits(self) -> int:
        """Width of a word index."""
        return max(1, (self._size // 4 - 1).bit_length())

    def elaborate(self, platform) -> wiring.Module:
        m = Module()
        depth = self._size // 4
        dual = "dma" in self.signature.members
        index = self.bus.addr[2:2 + self.addr_bits]
        answered = Signal()
        # `answered` keeps a held request from being served twice.
        start = self.bus.valid & ~answered
        m.d.sync += answered.eq(start)
        allowed = self.load_en if self._read_only else 1
        refused = Signal()
        m.d.sync += refused.eq(start & self.bus.we & ~allowed)
        m.d.comb += [self.bus.ready.eq(answered), self.bus.err.eq(refused)]
        # One memory a byte lane, each with one write port a side: Yosys then maps the RAM to
        # block RAM (DP16KD on ECP5) where one 32-bit memory with byte enables on two ports
        # became flip-flops. Each port reads what the other writes in the same cycle: a block
        # RAM's two ports do not promise the old word across ports, and a program does not
        # touch a word the DMA is moving anyway.
        for lane in range(4):
            bits = slice(8 * lane, 8 * lane + 8)
            mem = Memory(shape=8, depth=depth, init=[w >> 8 * lane & 0xFF for w in self._init])
            m.submodules[f"lane{lane}"] = mem
            wr = mem.write_port()
            dma_wr = mem.write_port() if dual else None
            rd = mem.read_port(transparent_for=(dma_wr,) if dual else ())
            m.d.comb += [rd.addr.eq(index), wr.addr.eq(index), wr.data.eq(self.bus.wdata[bits]),
                         self.bus.rdata[bits].eq(rd.data),
                         wr.en.eq(start & self.bus.we & allowed & self.bus.sel[lane])]
            if dual:
                dma_rd = mem.read_port(transparent_for=(wr,))
                m.d.comb += [
                    dma_rd.addr.eq(self.dma.addr), dma_rd.en.eq(self.dma.re),
                    self.dma.rdata[bits].eq(dma_rd.data),
                    dma_wr.addr.eq(self.dma.addr), dma_wr.data.eq(self.dma.wdata[bits]),
                    dma_wr.en.eq(self.dma.we),
                ]
        return m
