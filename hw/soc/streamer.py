"""The accelerator's register block and DMA: stream beats between RAM and the accelerator.

A job reads ``IN_BEATS`` beats from RAM at ``IN_ADDR`` and offers them on ``o_stream``, and
writes the ``OUT_BEATS`` beats that come back on ``i_stream`` to RAM at ``OUT_ADDR``, both
through the RAM's second port (:class:`~qfab.hw.soc.memory.RamPortSignature`), so the core
keeps the bus while the job runs. A beat takes whole 32-bit words, element 0 in the low
bits of its first word, like the stream payload. Writes have the port before reads, so
results never wait behind inputs. With the port to itself, the streamer offers an input beat
of W words every W cycles (a word arrives ``DMA_READ_LATENCY`` = 3 cycles after its read and
waits in a small queue when the accelerator does not take it) and takes an output beat of W
words every W cycles.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out
from qfab.hw.soc.bus import BusSignature
from qfab.hw.soc.memory import RamPortSignature, word_index_bits
from qfab.hw.soc.memory_map import ACCEL_MAX_STAGES, ACCEL_REGISTERS, Region

_OFFSET = {reg.name: reg.offset for reg in ACCEL_REGISTERS}
COUNTER_BITS = 32
# Words read from RAM that may wait for the accelerator: the three reads in flight and one
# more.
WORD_QUEUE = 4


def words_per_beat(width: int) -> int:
    """32-bit words one beat of ``width`` bits takes in RAM."""
    return max(1, -(-width // 32))


class Streamer(wiring.Component):
    """DMA jobs between RAM and an accelerator's streams, with its cycle counters.

    Parameters
    ----------
    in_payload, out_payload : ShapeCastable
        The accelerator's input and output beat layouts.
    n_stages : int
        Width of ``stage_active``; at most ``ACCEL_MAX_STAGES``.
    ram : Region
        The RAM the job's addresses must fall in.

    Members
    -------
    bus : In(BusSignature)
        The register block (``ACCEL_REGISTERS``); answers one cycle after ``valid``.
    ram : Out(RamPortSignature)
        To the RAM's second port.
    o_stream : Out(stream.Signature(in_payload))
        Input beats to the accelerator.
    i_stream : In(stream.Signature(out_payload))
        Output beats from the accelerator.
    stage_active : In(n_stages)
        The accelerator's per-stage activity, counted while a job runs.
    """

    def __init__(self, *, in_payload, out_payload, n_stages: int, ram: Region) -> None:
        if not 0 <= n_stages <= ACCEL_MAX_STAGES:
            raise ValueError(f"Streamer n_stages must be 0..{ACCEL_MAX_STAGES}, "
                             f"not {n_stages!r}")
        if ram.kind != "ram":
            raise ValueError(f"Streamer ram must be a ram region, not {ram.kind!r}")
        self._ram = ram
        self._n_stages = n_stages
        addr_bits = word_index_bits(ram.size)
        super().__init__({
            "bus": In(BusSignature()), "ram": Out(RamPortSignature(addr_bits)),
            "o_stream": Out(stream.Signature(in_payload)),
            "i_stream": In(stream.Signature(out_payload)),
            "stage_active": In(max(n_stages, 1)),
        })
        self._in_words = words_per_beat(len(self.o_stream.payload.as_value()))
        self._out_words = words_per_beat(len(self.i_stream.payload.as_value()))

    @property
    def in_words(self) -> int:
        """Words per input beat."""
        return self._in_words

    @property
    def out_words(self) -> int:
        """Words per output beat."""
        return self._out_words

    def _range_ok(self, addr, beats, words: int):
        """Word-aligned, and all ``beats * words`` words inside the RAM."""
        r = self._ram
        end = addr + beats * (4 * words)  # 34 bits: no wrap-around
        return (addr[:2] == 0) & (addr >= r.base) & (end <= r.end)

    def elaborate(self, platform) -> Module:
        m = Module()
        win, wout = self._in_words, self._out_words
        base = self._ram.base
        in_addr, in_beats = Signal(32), Signal(32)
        out_addr, out_beats = Signal(32), Signal(32)
        busy, done, error = Signal(), Signal(), Signal(2)
        cycles, latency, seen_out = Signal(COUNTER_BITS), Signal(COUNTER_BITS), Signal()
        stage_cycles = [Signal(COUNTER_BITS, name=f"stage{i}_cycles")
                        for i in range(self._n_stages)]

        # Job state: words still to read and beats still to write, and their RAM indices.
        rd_left, rd_index = Signal(32), Signal(len(self.ram.addr))
        wr_left, wr_index = Signal(32), Signal(len(self.ram.addr))
        # rd_left != 0 and wr_left != 0, kept as flip-flops beside the counts: no 32-bit
        # comparison lies before the read and write decisions.
        rd_more, wr_more = Signal(), Signal()
        # Reads issued one, two and three cycles ago: the last arrives on ram.rdata now.
        pending, pending2, arriving = Signal(), Signal(), Signal()
        gather = Signal(32 * (win - 1) if win > 1 else 1)   # the next beat's first words
        gathered = Signal(range(win))
        scatter = Signal(32 * wout)                # an output beat being written
        scatter_left = Signal(range(wout + 1))
        scatter_pos = Signal(range(wout))
        # Words that arrived while the beat they belong to could not go out wait here; with
        # reads three cycles in flight, this is what lets one word a cycle stream through.
        m.submodules.words = words = fifo.SyncFIFO(width=32, depth=WORD_QUEUE)

        # Writes first: the output beat in hand goes out a word a cycle.
        writing = scatter_left != 0
        o = self.o_stream
        free = ~o.valid | o.ready
        # The next word: the oldest queued, else the one arriving.
        word_valid = words.r_rdy | arriving
        word = Mux(words.r_rdy, words.r_data, self.ram.rdata)
        take = word_valid & ((gathered != win - 1) | free)
        m.d.comb += [words.r_en.eq(take & words.r_rdy),
                     words.w_en.eq(arriving & ~(take & ~words.r_rdy)),
                     words.w_data.eq(self.ram.rdata)]
        # A read only when its word will have a place: queued words and reads in flight never
        # exceed the queue.
        reading = busy & ~writing & rd_more & (words.level + pending + pending2 + arriving
                                                      < WORD_QUEUE)
        m.d.comb += [
            self.ram.addr.eq(Mux(writing, wr_index, rd_index)),
            self.ram.we.eq(writing), self.ram.re.eq(reading),
            self.ram.wdata.eq(scatter.word_select(scatter_pos, 32)),
        ]
        with m.If(writing):
            m.d.sync += [wr_index.eq(wr_index + 1), scatter_pos.eq(scatter_pos + 1),
                         scatter_left.eq(scatter_left - 1)]
        with m.If(reading):
            m.d.sync += [rd_index.eq(rd_index + 1), rd_left.eq(rd_left - 1),
                         rd_more.eq(rd_left != 1)]
        m.d.sync += [pending.eq(reading), pending2.eq(pending), arriving.eq(pending2)]

        # The beat register loads whenever it is free, and a gathered word whenever one
        # comes (valid only beside ``o.valid``, and below ``gathered``): what enables these
        # wide registers is a gate or two from flip-flops, not the ``take`` decision.
        first = gather[:32 * (win - 1)] if win > 1 else Const(0, 0)
        with m.If(free):
            m.d.sync += o.payload.as_value().eq(Cat(first, word))
        with m.If(take & (gathered == win - 1)):
            m.d.sync += [o.valid.eq(1), gathered.eq(0)]
        with m.Else():
            with m.If(o.ready):
                m.d.sync += o.valid.eq(0)
            if win > 1:
                with m.If(take):
                    m.d.sync += gathered.eq(gathered + 1)
        if win > 1:
            with m.If(word_valid & (gathered != win - 1)):
                m.d.sync += gather.word_select(gathered, 32).eq(word)

        # A new output beat is taken in the cycle its predecessor's last word is written.
        i = self.i_stream
        m.d.comb += i.ready.eq(busy & (scatter_left <= 1) & wr_more)
        with m.If(i.valid & i.ready):
            m.d.sync += [scatter.eq(i.payload.as_value()), scatter_left.eq(wout),
                         scatter_pos.eq(0), wr_left.eq(wr_left - 1),
                         wr_more.eq(wr_left != 1)]
            with m.If(~seen_out):
                m.d.sync += [seen_out.eq(1), latency.eq(cycles + 1)]

        finished = (busy & ~rd_more & ~pending & ~pending2 & ~arriving & ~words.r_rdy
                    & (gathered == 0) & ~o.valid
                    & ~wr_more & ~writing)
        with m.If(busy):
            m.d.sync += cycles.eq(cycles + 1)
        # Each stage's activity in a job is registered before its counter adds it, so that
        # the accelerator's activity logic and the counter's adder are a cycle apart. A count
        # is final one cycle after `busy` falls, long before the firmware can read it.
        counted = Signal.like(self.stage_active)
        m.d.sync += counted.eq(Mux(busy, self.stage_active, 0))
        for n, counter in enumerate(stage_cycles):
            m.d.sync += counter.eq(counter + counted[n])
        with m.If(finished):
            m.d.sync += [busy.eq(0), done.eq(1)]

        # Registers.
        answered = Signal()
        start = self.bus.valid & ~answered
        m.d.sync += answered.eq(start)
        offset = self.bus.addr[:12]
        rdata = Signal(32)
        m.d.comb += [self.bus.ready.eq(answered), self.bus.rdata.eq(rdata)]
        info = Const(win | wout << 8 | self._n_stages << 16, 32)
        readable = {"STATUS": Cat(busy, done, error != 0), "ERROR": error,
                    "IN_ADDR": in_addr, "IN_BEATS": in_beats, "OUT_ADDR": out_addr,
                    "OUT_BEATS": out_beats, "CYCLES": cycles, "LATENCY": latency,
                    "INFO": info}
        for n, counter in enumerate(stage_cycles):
            readable[f"STAGE{n}"] = counter
        offsets = dict(_OFFSET)
        offsets.update({f"STAGE{n}": _OFFSET["STAGE_CYCLES"] + 4 * n
                        for n in range(self._n_stages)})
        with m.If(start):
            m.d.sync += rdata.eq(0)
            with m.If(self.bus.we & ~busy):
                with m.Switch(offset):
                    for name, reg in (("IN_ADDR", in_addr), ("IN_BEATS", in_beats),
                                      ("OUT_ADDR", out_addr), ("OUT_BEATS", out_beats)):
                        with m.Case(offsets[name]):
                            m.d.sync += reg.eq(self.bus.wdata)
                    with m.Case(offsets["CTRL"]):
                        with m.If(self.bus.wdata[0]):
                            in_ok = self._range_ok(in_addr, in_beats, win)
                            out_ok = self._range_ok(out_addr, out_beats, wout)
                            m.d.sync += [error.eq(Cat(~in_ok, ~out_ok)), done.eq(~in_ok | ~out_ok),
                                         busy.eq(in_ok & out_ok), cycles.eq(0), latency.eq(0),
                                         seen_out.eq(0), rd_left.eq(in_beats * win),
                                         rd_index.eq((in_addr - base)[2:]),
                                         rd_more.eq((in_beats * win)[:32] != 0),
                                         wr_left.eq(out_beats), wr_more.eq(out_beats != 0),
                                         wr_index.eq((out_addr - base)[2:])]
                            m.d.sync += [c.eq(0) for c in stage_cycles]
            with m.Elif(~self.bus.we):
                with m.Switch(offset):
                    for name, value in readable.items():
                        with m.Case(offsets[name]):
                            m.d.sync += rdata.eq(value)
        return m
