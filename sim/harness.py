"""The co-simulation harness: an Amaranth wrapper that feeds an accelerator from memory.

The harness turns a streaming accelerator into a design that runs by itself once started, so
Verilator can run freely. Its input and output memories are rings: the accelerator reads input
beat ``k`` at ``k mod in_depth`` and its output beat ``k`` lands at ``k mod out_depth``, and the
harness shows which half of each ring its count is in (``in_half``, ``out_half``), so Python
refills a half as the harness moves past it and reads the outputs half by half, in zero
simulated time. Its Verilog depends on the accelerator and the ring depths, never on the input
data or the batch size, which is what lets one Verilator build serve every run of a design.

Timing convention (what ``CosimResult`` reports): cycle 0 is the first cycle after ``start``,
the first one in which the harness offers an input beat. An output beat accepted in cycle ``t``
gets the timestamp ``t``; the run takes ``t_last + 1`` cycles.

Stage activity convention: an accelerator may have a port ``o_stage_active: Out(n_stages)``
whose bit ``i`` is high in every cycle in which stage ``i`` holds work of the current
inference (it has accepted input but not yet emitted its last output for it). The harness
counts, per stage, the cycles of the run in which the bit is high. An optional attribute
``stage_names`` (a sequence of ``n_stages`` strings) names them.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass

import numpy as np
from amaranth.hdl import Module, Shape, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

__all__ = ["COUNTER_BITS", "VPI_SIGNALS", "HarnessInfo", "CosimHarness", "stream_layout",
           "stage_ports", "describe", "ascending_rings", "pack_bytes", "pack_beats", "unpack_bytes",
           "unpack_words"]

#: Width of every cycle counter; also bounds ``timeout_cycles``.
COUNTER_BITS = 32

#: Verilog names of the harness memories, as cocotb finds them under the top module.
IN_MEM, OUT_MEM, STAMP_MEM = "in_mem", "out_mem", "stamp_mem"

#: Every signal the cocotb side touches: the only ones the Verilator model makes visible to
#: VPI, since making all signals public slows the model several times.
VPI_SIGNALS = ("clk", "rst", "start", "free_run", "n_in_beats", "n_out_beats", "timeout_cycles",
               "done", "timed_out", "cycles", "in_count", "out_count", "in_half", "out_half",
               "stage_cycles", IN_MEM, OUT_MEM, STAMP_MEM)


@dataclass(frozen=True)
class HarnessInfo:
    """What the cocotb side and the result decoder need to know about a harness.

    It is written as a one-line comment at the top of the combined Verilog, so a Verilog file
    describes itself and can be co-simulated without the Amaranth objects that made it.

    Members
    -------
    top : str
        Verilog name of the top module.
    n_in, n_out : int
        Elements per input and per output beat.
    in_bits, out_bits : int
        Width of one element.
    in_signed, out_signed : bool
        Whether element codes are two's complement.
    in_depth, out_depth : int
        Beats the input and output rings hold.
    stage_names : list of str
        One name per bit of ``o_stage_active``; empty when the accelerator has none.
    """

    top: str
    n_in: int
    in_bits: int
    in_signed: bool
    n_out: int
    out_bits: int
    out_signed: bool
    in_depth: int
    out_depth: int
    stage_names: list[str]

    HEADER = "// qfab-cosim "

    def header(self) -> str:
        """The Verilog comment line that carries this description."""
        return self.HEADER + json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_verilog(cls, text: str) -> HarnessInfo | None:
        """Read the description back from combined Verilog; ``None`` if it has none."""
        first = text.split("\n", 1)[0]
        if not first.startswith(cls.HEADER):
            return None
        fields = json.loads(first[len(cls.HEADER):])
        return cls(**fields)


def stream_layout(port_signature: stream.Signature) -> tuple[int, Shape]:
    """``(elements per beat, element shape)`` of a stream whose payload is an ArrayLayout.

    A payload of any other shape counts as a single element of that shape.
    """
    layout = port_signature.members["payload"].shape
    if isinstance(layout, data.ArrayLayout):
        return layout.length, Shape.cast(layout.elem_shape)
    return 1, Shape.cast(layout)


def stage_ports(accel: wiring.Component) -> list[str]:
    """Stage names of ``accel`` under the ``o_stage_active`` convention (empty if absent)."""
    members = accel.signature.members
    if "o_stage_active" not in members:
        return []
    n_stages = Shape.cast(members["o_stage_active"].shape).width
    names = list(getattr(accel, "stage_names", None) or [f"stage{i}" for i in range(n_stages)])
    if len(names) != n_stages:
        raise ValueError(f"stage_names has {len(names)} names for {n_stages} stage bits: "
                         f"{names!r}")
    return [str(n) for n in names]


def describe(accel: wiring.Component, *, in_depth: int, out_depth: int,
             top: str = "cosim_top") -> HarnessInfo:
    """The :class:`HarnessInfo` of a harness around ``accel``, without building one."""
    members = accel.signature.members
    for port, flow in (("i_stream", wiring.In), ("o_stream", wiring.Out)):
        if port not in members or members[port].flow != flow or not members[port].is_signature:
            raise ValueError(f"the accelerator needs a stream port {port} ({flow.name}); "
                             f"its signature is {accel.signature!r}")
    n_in, in_elem = stream_layout(members["i_stream"].signature)
    n_out, out_elem = stream_layout(members["o_stream"].signature)
    _check_depth("in_depth", in_depth)
    _check_depth("out_depth", out_depth)
    return HarnessInfo(
        top=top, n_in=n_in, in_bits=in_elem.width, in_signed=in_elem.signed,
        n_out=n_out, out_bits=out_elem.width, out_signed=out_elem.signed,
        in_depth=in_depth, out_depth=out_depth, stage_names=stage_ports(accel))


def _check_depth(name: str, depth: int) -> int:
    if not isinstance(depth, int) or depth < 2 or depth & (depth - 1):
        raise ValueError(f"{name} must be a power of two >= 2, not {depth!r}")
    return depth


class CosimHarness(wiring.Component):
    """Feeds an accelerator from an input memory and records its output beats with timestamps.

    Parameters
    ----------
    accel : wiring.Component
        The accelerator: ``i_stream`` and ``o_stream`` stream ports, optionally
        ``o_stage_active``; clocked by the ``sync`` domain.
    in_depth, out_depth : int
        Beats the input and output rings hold (powers of two, at least 2).
    accel_name : str
        Instance name of the accelerator in the Verilog hierarchy.

    Members
    -------
    start : In(1)
        A one-cycle pulse that starts the run.
    free_run : In(1)
        Read only by the simulator main (``cosim_main.cpp``), never by the design: high while
        the testbench waits for nothing but ``done``, ``in_half``, ``out_half`` or a timer, so
        the clock may run without calling into VPI.
    n_in_beats, n_out_beats : In(COUNTER_BITS)
        Input beats to offer; output beats to collect before ``done``.
    timeout_cycles : In(COUNTER_BITS)
        The run stops with ``timed_out`` after this many cycles.
    done, timed_out : Out(1)
        High from the end of the run on; ``timed_out`` tells why it ended.
    cycles : Out(COUNTER_BITS)
        Cycles of the run so far (the total once ``done``).
    in_count, out_count : Out(COUNTER_BITS)
        Beats accepted by the accelerator and collected from it.
    in_half, out_half : Out(1)
        The half of each ring the next beat goes through: it changes once a half is done
        with (its input beats taken, its output beats written).
    stage_cycles : Out(ArrayLayout(COUNTER_BITS, n_stages))
        Per-stage active cycles; present only if the accelerator has ``o_stage_active``.
    in_mem, out_mem, stamp_mem : Memory
        Rings of input beats, output beats and the cycle each output beat was accepted in.
    """

    def __init__(self, accel: wiring.Component, *, in_depth: int, out_depth: int,
                 accel_name: str = "accel") -> None:
        if not accel_name.isidentifier():
            raise ValueError(f"accel_name must be a Verilog identifier, not {accel_name!r}")
        self._accel = accel
        self._accel_name = accel_name
        self._in_depth, self._out_depth = in_depth, out_depth
        info = describe(accel, in_depth=in_depth, out_depth=out_depth)
        self._n_in, self._in_elem = info.n_in, Shape(info.in_bits, info.in_signed)
        self._n_out, self._out_elem = info.n_out, Shape(info.out_bits, info.out_signed)
        self._stage_names = info.stage_names
        ports = {
            "start": In(1),
            "free_run": In(1),
            "n_in_beats": In(COUNTER_BITS),
            "n_out_beats": In(COUNTER_BITS),
            "timeout_cycles": In(COUNTER_BITS),
            "done": Out(1),
            "timed_out": Out(1),
            "cycles": Out(COUNTER_BITS),
            "in_count": Out(COUNTER_BITS),
            "out_count": Out(COUNTER_BITS),
            "in_half": Out(1),
            "out_half": Out(1),
        }
        if self._stage_names:
            ports["stage_cycles"] = Out(data.ArrayLayout(COUNTER_BITS, len(self._stage_names)))
        super().__init__(ports)
        # Nothing in the design writes in_mem: cocotb fills it through VPI, a half at a time.
        in_word = unsigned(self._n_in * self._in_elem.width)
        out_word = unsigned(self._n_out * self._out_elem.width)
        self.in_mem = Memory(shape=in_word, depth=in_depth, init=[])
        self.out_mem = Memory(shape=out_word, depth=out_depth, init=[])
        self.stamp_mem = Memory(shape=COUNTER_BITS, depth=out_depth, init=[])

    @property
    def info(self) -> HarnessInfo:
        """The description written into the Verilog header."""
        return describe(self._accel, in_depth=self._in_depth, out_depth=self._out_depth)

    def elaborate(self, platform) -> Module:
        m = Module()
        accel = self._accel
        m.submodules[self._accel_name] = accel

        m.submodules[IN_MEM] = in_mem = self.in_mem
        m.submodules[OUT_MEM] = out_mem = self.out_mem
        m.submodules[STAMP_MEM] = stamp_mem = self.stamp_mem
        in_rd = in_mem.read_port(domain="comb")
        out_wr = out_mem.write_port()
        stamp_wr = stamp_mem.write_port()

        running = Signal()
        with m.If(self.start):
            m.d.sync += [running.eq(1), self.done.eq(0), self.timed_out.eq(0),
                         self.cycles.eq(0), self.in_count.eq(0), self.out_count.eq(0)]
            if self._stage_names:
                m.d.sync += self.stage_cycles.as_value().eq(0)

        active = Signal()
        m.d.comb += active.eq(running & ~self.done)

        in_bits, out_bits = ceil_log2(self._in_depth), ceil_log2(self._out_depth)
        m.d.comb += [self.in_half.eq(self.in_count[in_bits - 1]),
                     self.out_half.eq(self.out_count[out_bits - 1])]
        i_stream = accel.i_stream
        m.d.comb += [
            in_rd.addr.eq(self.in_count[:in_bits]),
            i_stream.payload.as_value().eq(in_rd.data),
            i_stream.valid.eq(active & (self.in_count < self.n_in_beats)),
        ]
        with m.If(i_stream.valid & i_stream.ready):
            m.d.sync += self.in_count.eq(self.in_count + 1)

        o_stream = accel.o_stream
        accept = Signal()
        m.d.comb += [
            o_stream.ready.eq(active),
            accept.eq(o_stream.valid & o_stream.ready),
            out_wr.addr.eq(self.out_count[:out_bits]),
            out_wr.data.eq(o_stream.payload.as_value()),
            out_wr.en.eq(accept),
            stamp_wr.addr.eq(self.out_count[:out_bits]),
            stamp_wr.data.eq(self.cycles),
            stamp_wr.en.eq(accept),
        ]
        last = Signal()
        m.d.comb += last.eq(accept & (self.out_count + 1 == self.n_out_beats))
        with m.If(active):
            m.d.sync += self.cycles.eq(self.cycles + 1)
            with m.If(accept):
                m.d.sync += self.out_count.eq(self.out_count + 1)
            with m.If(last):
                m.d.sync += self.done.eq(1)
            with m.Elif(self.cycles + 1 >= self.timeout_cycles):
                m.d.sync += [self.done.eq(1), self.timed_out.eq(1)]
            if self._stage_names:
                for i in range(len(self._stage_names)):
                    with m.If(accel.o_stage_active[i]):
                        m.d.sync += self.stage_cycles[i].eq(self.stage_cycles[i] + 1)
        return m


def ascending_rings(verilog: str) -> str:
    """The harness Verilog with its rings declared ``[0:depth-1]`` instead of ``[depth-1:0]``.

    Verilator's whole-array VPI calls (``vpi_get_value_array``, ``vpi_put_value_array``) reach
    element ``i`` of a descending array at the storage of element ``high - i`` (Verilator
    5.048), while an ascending array's element ``i`` is where the design reads and writes it,
    as :mod:`qfab.sim.vpi_arrays`'s copy takes it. The direction changes nothing else: the
    design indexes the rings by address either way.
    """
    for name in (IN_MEM, OUT_MEM, STAMP_MEM):
        declaration = re.compile(rf"^(\s*reg (?:\[\d+:0\] )?{name} )\[(\d+):0\];$", re.M)
        verilog, found = declaration.subn(lambda m: f"{m[1]}[0:{m[2]}];", verilog)
        if found != 1:
            raise ValueError(f"the harness Verilog declares {name} {found} times, not once")
    return verilog


def _check_bits(bits: int) -> None:
    if not 1 <= bits <= 62:
        raise ValueError(f"element width must be 1..62 bits for co-simulation, not {bits!r}")


def pack_bytes(codes: np.ndarray, *, bits: int, signed: bool) -> bytes:
    """Beats ``[n_beats, n]`` of element codes as memory words: ``ceil(n * bits / 8)`` bytes a
    beat, least significant first, element 0 in the lowest bits (VPI's raw two-state form).

    Codes must already fit the element shape; negative codes are stored in two's complement.
    """
    _check_bits(bits)
    codes = np.asarray(codes, dtype=np.int64)
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    bad = np.argwhere((codes < lo) | (codes > hi))
    if bad.size:
        beat, elem = (int(v) for v in bad[0])
        raise ValueError(f"code {int(codes[beat, elem])} at beat {beat}, element {elem} does "
                         f"not fit {'signed' if signed else 'unsigned'}({bits})")
    n_beats, n = codes.shape
    unsigned_codes = (codes & ((1 << bits) - 1)).astype(np.uint64)
    bit_planes = (unsigned_codes[:, :, None] >> np.arange(bits, dtype=np.uint64)) & np.uint64(1)
    return np.packbits(bit_planes.reshape(n_beats, n * bits).astype(np.uint8), axis=1,
                       bitorder="little").tobytes()


def pack_beats(codes: np.ndarray, *, bits: int, signed: bool) -> list[int]:
    """:func:`pack_bytes`, each memory word as an int."""
    n_bytes = (np.shape(codes)[1] * bits + 7) // 8
    raw = pack_bytes(codes, bits=bits, signed=signed)
    return [int.from_bytes(raw[k:k + n_bytes], "little") for k in range(0, len(raw), n_bytes)]


def unpack_bytes(raw: bytes, *, n: int, bits: int, signed: bool) -> np.ndarray:
    """Inverse of :func:`pack_bytes`: memory words to an int64 array ``[n_words, n]``."""
    _check_bits(bits)
    n_bytes = (n * bits + 7) // 8
    words = np.frombuffer(raw, dtype=np.uint8).reshape(-1, n_bytes)
    bit_planes = np.unpackbits(words, axis=1, bitorder="little")[:, :n * bits]
    weights = np.left_shift(np.int64(1), np.arange(bits, dtype=np.int64))
    codes = (bit_planes.reshape(len(words), n, bits).astype(np.int64) * weights).sum(axis=2)
    if signed:
        codes = np.where(codes >= (1 << (bits - 1)), codes - (1 << bits), codes)
    return codes


def unpack_words(words: list[int], *, n: int, bits: int, signed: bool) -> np.ndarray:
    """Inverse of :func:`pack_beats`: memory words to an int64 array ``[len(words), n]``."""
    n_bytes = (n * bits + 7) // 8
    return unpack_bytes(b"".join(w.to_bytes(n_bytes, "little") for w in words), n=n, bits=bits,
                        signed=signed)
