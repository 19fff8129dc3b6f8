"""The co-simulation harness in Amaranth's own simulator (no Verilator), and its word packing."""

import contextlib
import gc
import warnings

import numpy as np
import pytest
from amaranth.hdl import Cat, Module, Signal, UnusedElaboratable, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator
from hypothesis import given
from hypothesis import strategies as st
from qfab.sim.harness import (
    CosimHarness,
    HarnessInfo,
    ascending_rings,
    describe,
    pack_beats,
    unpack_words,
)


# No `from __future__ import annotations`: Component reads its signature from annotations.
class Delay(wiring.Component):
    """A two-register pipeline that adds 1 to each element; stage bits show which is full."""

    i_stream: In(stream.Signature(data.ArrayLayout(signed(6), 3)))
    o_stream: Out(stream.Signature(data.ArrayLayout(signed(6), 3)))
    o_stage_active: Out(2)

    stage_names = ("first", "second")

    def elaborate(self, platform) -> Module:
        m = Module()
        mid = Signal(data.ArrayLayout(signed(6), 3))
        mid_valid = Signal()
        o = self.o_stream
        advance = ~o.valid | o.ready
        m.d.comb += [self.i_stream.ready.eq(advance),
                     self.o_stage_active.eq(Cat(mid_valid, o.valid))]
        with m.If(advance):
            m.d.sync += [mid_valid.eq(self.i_stream.valid), o.valid.eq(mid_valid),
                         o.payload.eq(mid)]
            for j in range(3):
                m.d.sync += mid[j].eq(self.i_stream.payload[j] + 1)
        return m


def run_harness(harness: CosimHarness, words: list[int], *, n_out: int,
                timeout: int) -> dict:
    """Load, start and run the harness to ``done``, as cocotb_top does, in Amaranth's
    simulator."""
    result = {}

    async def bench(ctx):
        for addr, word in enumerate(words):
            ctx.set(harness.in_mem.data[addr], word)
        ctx.set(harness.n_in_beats, len(words))
        ctx.set(harness.n_out_beats, n_out)
        ctx.set(harness.timeout_cycles, timeout)
        ctx.set(harness.start, 1)
        await ctx.tick()
        ctx.set(harness.start, 0)
        while not ctx.get(harness.done):
            await ctx.tick()
        n = ctx.get(harness.out_count)
        result.update(
            cycles=ctx.get(harness.cycles), timed_out=ctx.get(harness.timed_out),
            in_count=ctx.get(harness.in_count),
            words=[ctx.get(harness.out_mem.data[a]) for a in range(n)],
            stamps=[ctx.get(harness.stamp_mem.data[a]) for a in range(n)],
            stage_cycles=[ctx.get(harness.stage_cycles[i]) for i in range(2)])

    sim = Simulator(harness)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return result


def test_harness_feeds_collects_and_stamps():
    beats = np.random.default_rng(3).integers(-32, 31, size=(5, 3))
    words = pack_beats(beats, bits=6, signed=True)
    res = run_harness(CosimHarness(Delay(), in_depth=8, out_depth=8), words, n_out=5,
                      timeout=100)
    assert not res["timed_out"] and res["in_count"] == 5
    np.testing.assert_array_equal(unpack_words(res["words"], n=3, bits=6, signed=True), beats + 1)
    # Two registers: the beat offered in cycle t leaves in cycle t + 2, one a cycle.
    assert res["stamps"] == [2, 3, 4, 5, 6]
    assert res["cycles"] == 7
    # first: full in cycles 1..5; second: full in cycles 2..6.
    assert res["stage_cycles"] == [5, 5]


def test_harness_times_out_and_keeps_what_it_got():
    words = pack_beats(np.zeros((2, 3), dtype=int), bits=6, signed=True)
    res = run_harness(CosimHarness(Delay(), in_depth=8, out_depth=8), words, n_out=3,
                      timeout=20)
    assert res["timed_out"] and res["cycles"] == 20
    assert res["stamps"] == [2, 3] and res["in_count"] == 2


@contextlib.contextmanager
def _refused_elaboratables():
    """Objects refused by a check are never elaborated: collect them here, without a warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)
        yield
        gc.collect()


@given(st.integers(1, 40), st.booleans(), st.integers(1, 9), st.data())
def test_pack_unpack_round_trip_and_layout(bits, signed_, n, draw):
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed_ else (0, (1 << bits) - 1)
    codes = np.array(draw.draw(st.lists(st.lists(st.integers(lo, hi), min_size=n, max_size=n),
                                        min_size=1, max_size=5)))
    words = pack_beats(codes, bits=bits, signed=signed_)
    expected = [sum((int(c) % (1 << bits)) << (bits * j) for j, c in enumerate(row))
                for row in codes]
    assert words == expected
    np.testing.assert_array_equal(unpack_words(words, n=n, bits=bits, signed=signed_), codes)


def test_pack_refuses_codes_that_do_not_fit():
    with pytest.raises(ValueError,
                       match=r"code -1 at beat 1, element 0 does not fit unsigned\(4\)"):
        pack_beats(np.array([[3, 4], [-1, 0]]), bits=4, signed=False)


def test_describe_reads_the_stream_layouts_and_stages():
    with _refused_elaboratables():  # described, never elaborated
        info = describe(Delay(), in_depth=16, out_depth=32)
    assert (info.n_in, info.in_bits, info.in_signed) == (3, 6, True)
    assert (info.n_out, info.out_bits, info.out_signed) == (3, 6, True)
    assert (info.in_depth, info.out_depth) == (16, 32)
    assert info.stage_names == ["first", "second"]
    assert HarnessInfo.from_verilog(info.header() + "\nmodule x;\nendmodule\n") == info
    assert HarnessInfo.from_verilog("module x;\nendmodule\n") is None


@pytest.mark.parametrize("bad, message", [
    ({"in_depth": 12, "out_depth": 16}, "in_depth must be a power of two >= 2, not 12"),
    ({"in_depth": 16, "out_depth": 1}, "out_depth must be a power of two >= 2, not 1"),
    ({"in_depth": 16, "out_depth": 16, "accel_name": "a-b"},
     "accel_name must be a Verilog identifier, not 'a-b'"),
])
def test_bad_parameters_quote_the_value(bad, message):
    with _refused_elaboratables(), pytest.raises(ValueError, match=message):
        CosimHarness(Delay(), **bad)


def test_accelerator_without_streams_is_refused():
    class NoStreams(wiring.Component):
        x: In(unsigned(1))

        def elaborate(self, platform):
            return Module()

    with _refused_elaboratables(), pytest.raises(ValueError, match="needs a stream port i_stream"):
        describe(NoStreams(), in_depth=16, out_depth=16)


def test_rings_are_declared_ascending_and_nothing_else_changes():
    verilog = ("  reg [127:0] in_mem [1023:0];\n  reg out_mem [3:0];\n"
               "  reg [31:0] stamp_mem [3:0];\n  reg [7:0] rom [15:0];\n"
               "  assign x = in_mem[a[9:0]];\n")
    assert ascending_rings(verilog) == (
        "  reg [127:0] in_mem [0:1023];\n  reg out_mem [0:3];\n"
        "  reg [31:0] stamp_mem [0:3];\n  reg [7:0] rom [15:0];\n"
        "  assign x = in_mem[a[9:0]];\n")
    with pytest.raises(ValueError, match="declares stamp_mem 0 times"):
        ascending_rings(verilog.replace("stamp_mem", "other_mem"))
