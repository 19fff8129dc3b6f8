"""Word-wide on-chip memories on the SoC bus: RAM, and ROM that a loader may fill."""

from __future__ import annotations

import re
from collections.abc import Sequence

from amaranth import Array, Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from qfab.hw.soc.bus import BusSignature

# Words of one bank of byte lanes: a byte lane of it fills one 2048 x 9 block RAM (ECP5
# DP16KD, Xilinx RAMB18), whose read data is registered (on ECP5 in the block RAM's output
# register). A bank of lanes of one bit (``lane_bits=1``) holds eight times the words, one
# 16384 x 1 block RAM a lane.
BANK_WORDS = 2048
LANE_BITS = (8, 1)
# Cycles from a bus access's ``valid`` to its ``ready``, and from a DMA read's ``re`` to its
# data.
BUS_CYCLES = 4
DMA_READ_LATENCY = 3


def word_index_bits(size: int) -> int:
    """Width of a word index into a memory of ``size`` bytes."""
    return max(1, (size // 4 - 1).bit_length())


class RamPortSignature(wiring.Signature):
    """A memory's second port, as its user (a DMA engine) sees it: one word a cycle.

    ``addr`` is a word index. With ``re`` high, ``rdata`` holds that word
    ``DMA_READ_LATENCY`` cycles later; with ``we`` high, ``wdata`` is written at the end of
    the next cycle. The two are never high together.
    """

    def __init__(self, addr_bits: int) -> None:
        super().__init__({"addr": Out(addr_bits), "re": Out(1), "we": Out(1),
                          "wdata": Out(32), "rdata": In(32)})


class BusMemory(wiring.Component):
    """A synchronous memory of 32-bit words with byte-lane writes.

    Every access takes ``BUS_CYCLES`` cycles: the request is registered in the cycle of
    ``valid``, the block RAM reads or writes in the next, its word is registered in the
    third, and ``ready`` rises in the fourth with the word chosen among the banks. So no
    cycle holds both the decoder and the wire to a block RAM, and a block RAM's read (5.8 ns
    on an ECP5 before its data leaves it) ends in a register with nothing between: on ECP5
    the block RAM's own output register (``qfab build`` moves it there), whose data leaves
    it 1 ns after the clock.

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
    lane_bits : int
        Bits of a word one block RAM holds: 8 (a byte lane; a bank is ``BANK_WORDS`` words)
        or 1 (a bank of eight times the words, so a word is chosen among eight times fewer
        banks when it is read).

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
                 dma: bool = False, lane_bits: int = 8):
        if lane_bits not in LANE_BITS:
            raise ValueError(f"BusMemory lane_bits must be one of {LANE_BITS}, got {lane_bits!r}")
        if size <= 0 or size % 4:
            raise ValueError(f"BusMemory size must be a positive multiple of 4, got {size!r}")
        if len(init) > size // 4:
            raise ValueError(f"BusMemory init has {len(init)} words, more than {size // 4}")
        self._size = size
        self._read_only = read_only
        self._init = tuple(init)
        self._lane_bits = lane_bits
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
    def lane_bits(self) -> int:
        return self._lane_bits

    @property
    def addr_bits(self) -> int:
        """Width of a word index."""
        return word_index_bits(self._size)

    def elaborate(self, platform) -> wiring.Module:
        m = Module()
        depth = self._size // 4
        dual = "dma" in self.signature.members
        width = self._lane_bits
        low_bits = min(self.addr_bits, (BANK_WORDS * 8 // width - 1).bit_length())
        n_banks = -(-depth // (1 << low_bits))
        # The request is registered first (`step` 1): the block RAMs' address and write
        # enables then come from flip-flops, not from the initiator through the decoder, and
        # only the wire to the farthest block RAM is left in their cycle. Step 2 is the block
        # RAM's read, step 3 registers its word and `ready` rises with step 3 over.
        step = Signal(3)                  # one-hot: the access's second, third, last cycle
        start = self.bus.valid & (step == 0)
        index, sel, wdata, write = (Signal(self.addr_bits), Signal(4), Signal(32), Signal())
        allowed = self.load_en if self._read_only else 1
        refused = Signal(3)
        m.d.sync += [step.eq(Cat(start, step[:2])),
                     refused.eq(Cat(start & self.bus.we & ~allowed, refused[:2]))]
        with m.If(start):
            m.d.sync += [index.eq(self.bus.addr[2:2 + self.addr_bits]), sel.eq(self.bus.sel),
                         wdata.eq(self.bus.wdata), write.eq(self.bus.we & allowed)]
        m.d.comb += [self.bus.ready.eq(step[2]), self.bus.err.eq(refused[2])]
        bank = index[low_bits:]
        bank_q = Signal(range(n_banks), name="bank_q")     # the bank read, as `ready` rises
        bank_at_read = Signal.like(bank_q)
        m.d.sync += [bank_at_read.eq(bank), bank_q.eq(bank_at_read)]
        if dual:
            # The DMA's request is registered too, so that the logic Yosys adds for one
            # port reading what the other writes starts from flip-flops on both sides.
            dma_addr, dma_we = Signal.like(self.dma.addr), Signal()
            dma_wdata = Signal(32)
            m.d.sync += [dma_addr.eq(self.dma.addr), dma_we.eq(self.dma.we),
                         dma_wdata.eq(self.dma.wdata)]
            dma_bank = dma_addr[low_bits:]
            dma_bank_q = [Signal.like(bank_q, name=f"dma_bank_q{i}") for i in range(2)]
            m.d.sync += [dma_bank_q[0].eq(dma_bank), dma_bank_q[1].eq(dma_bank_q[0])]
        # One memory a byte lane and bank, each with one write port a side: Yosys then maps
        # it to one block RAM (DP16KD on ECP5) where one 32-bit memory with byte enables on
        # two ports became flip-flops. What a port reads in the cycle the other port writes
        # that word is left undefined (`no_rw_check`): a block RAM's two ports promise
        # nothing there, and a program does not touch a word the DMA is moving. Yosys then
        # adds no logic after the read (it would, to give the old or the new word), so the
        # word register below takes the read data straight and goes into the block RAM's
        # output register on ECP5 (cost_model/bram_outreg.py): the read's 5.8 ns and the
        # route to a register in the fabric leave the cycle. Simulation gives the old word.
        for lane in range(32 // width):
            bits = slice(width * lane, width * lane + width)
            byte = width * lane // 8
            words, dma_words = [], []
            for k in range(n_banks):
                first = k << low_bits
                n = min(1 << low_bits, depth - first)
                mem = Memory(shape=width, depth=n,
                             init=[w >> width * lane & (1 << width) - 1
                                   for w in self._init[first:first + n]],
                             attrs={"no_rw_check": 1})
                m.submodules[f"lane{lane}_bank{k}"] = mem
                wr = mem.write_port()
                dma_wr = mem.write_port() if dual else None
                rd = mem.read_port()
                # No reset: a block RAM's output register has none here (ready gates it).
                word = Signal(width, name=f"lane{lane}_bank{k}_q", reset_less=True)
                m.d.sync += word.eq(rd.data)
                words.append(word)
                here = (bank == k) if n_banks > 1 else 1
                m.d.comb += [rd.addr.eq(index[:low_bits]), wr.addr.eq(index[:low_bits]),
                             wr.data.eq(wdata[bits]),
                             wr.en.eq(step[0] & write & sel[byte] & here)]
                if dual:
                    dma_rd = mem.read_port()
                    dma_word = Signal(width, name=f"lane{lane}_bank{k}_dma_q",
                                      reset_less=True)
                    m.d.sync += dma_word.eq(dma_rd.data)
                    dma_words.append(dma_word)
                    dma_here = (dma_bank == k) if n_banks > 1 else 1
                    m.d.comb += [
                        # Read every cycle, whether or not `re` asks: the enable would
                        # otherwise reach every block RAM from the DMA's flow control.
                        dma_rd.addr.eq(dma_addr[:low_bits]),
                        dma_wr.addr.eq(dma_addr[:low_bits]),
                        dma_wr.data.eq(dma_wdata[bits]),
                        dma_wr.en.eq(dma_we & dma_here),
                    ]
            m.d.comb += self.bus.rdata[bits].eq(Array(words)[bank_q])
            if dual:
                m.d.comb += self.dma.rdata[bits].eq(Array(dma_words)[dma_bank_q[1]])
        return m


_INIT_LINE = re.compile(r"^    lane(\d)_bank(\d+)\[(\d+)\] = 8'h[0-9a-f]{2};$", re.M)


def with_init(verilog: str, module: str, init: Sequence[int]) -> str:
    """``verilog`` with the :class:`BusMemory` of byte lanes whose Verilog module is
    ``module`` (its name as Amaranth writes it, e.g. ``qfab_soc.rom``) holding ``init`` as
    its initial words: the lines of its memories' ``initial`` blocks written as converting
    it with ``init`` writes them (the rest of the text does not depend on the contents). So
    a SoC is converted once and any firmware image put into its ROM afterwards."""
    header = f"module \\{module} (" if "." in module else f"module {module}("
    start = verilog.find(header)
    if start < 0:
        raise ValueError(f"no module {module!r} in the Verilog")
    end = verilog.index("\nendmodule", start)
    words = list(init)
    if any(not 0 <= w < 1 << 32 for w in words):
        raise ValueError("BusMemory init words must be 0..2**32-1")

    def byte(line: re.Match) -> str:
        lane, bank, index = int(line[1]), int(line[2]), int(line[3])
        word = bank * BANK_WORDS + index
        value = words[word] >> 8 * lane & 0xFF if word < len(words) else 0
        return f"    lane{lane}_bank{bank}[{index}] = 8'h{value:02x};"

    body, lines = _INIT_LINE.subn(byte, verilog[start:end])
    if lines < 4 * len(words):
        raise ValueError(f"module {module!r} holds {lines // 4} words, fewer than the "
                         f"{len(words)} of init")
    return verilog[:start] + body + verilog[end:]


_ZERO_INIT = re.compile(r"^  initial begin\n((?:    \w+\[\d+\] = \d+'h0+;\n)+)  end\n", re.M)
_INIT_WORD = re.compile(r"    (\w+)\[(\d+)\] = (\d+)'h0+;\n")


def compact_zero_init(verilog: str, *, keep: str | None = None) -> str:
    """``verilog`` with each ``initial`` block that sets a whole memory to zero word by word
    written as one loop, but in the module ``keep`` (a ROM whose words :func:`with_init`
    writes in later). Amaranth writes every word of a memory's initial contents: for the
    RAM's lanes of one bit, a million lines, which a loop says in four (Yosys, Verilator and
    other tools read both alike; ``qfab build`` drops either, see
    :func:`qfab.cost_model.pnr.drop_zero_memory_init`)."""
    def loop(block: re.Match) -> str:
        words = _INIT_WORD.findall(block[1])
        name, width = words[0][0], words[0][2]
        if any(w[0] != name or int(w[1]) != i or w[2] != width for i, w in enumerate(words)):
            return block[0]
        return (f"  initial begin : {name}_zero\n    integer i;\n"
                f"    for (i = 0; i < {len(words)}; i = i + 1)\n"
                f"      {name}[i] = {width}'h0;\n  end\n")

    if keep is None:
        return _ZERO_INIT.sub(loop, verilog)
    header = f"module \\{keep} (" if "." in keep else f"module {keep}("
    start = verilog.find(header)
    if start < 0:
        raise ValueError(f"no module {keep!r} in the Verilog")
    end = verilog.index("\nendmodule", start)
    return (_ZERO_INIT.sub(loop, verilog[:start]) + verilog[start:end]
            + _ZERO_INIT.sub(loop, verilog[end:]))
