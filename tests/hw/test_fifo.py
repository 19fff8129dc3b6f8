# amaranth: UnusedElaboratable=no
"""StreamFIFO against its model under random idle and back-pressure, and its cycle counts."""

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import signed, unsigned
from amaranth.lib import data
from amaranth.sim import Simulator
from qfab.hw.fifo import StreamFIFO, fifo_reference
from streams import array_beats, run_streams


@pytest.mark.parametrize("seed", range(6))
def test_random_stalls_nothing_lost_or_reordered(seed):
    rng = np.random.default_rng(seed)
    depth = int(rng.integers(1, 9))
    n = int(rng.integers(1, 4))
    bits = int(rng.integers(2, 9))
    x = rng.integers(-(2 ** (bits - 1)), 2 ** (bits - 1), size=(int(rng.integers(20, 60)), n))
    dut = StreamFIFO(payload_shape=data.ArrayLayout(signed(bits), n), depth=depth)
    beats = array_beats(x, n)
    logs = run_streams(dut, inputs={"i_stream": beats}, outputs={"o_stream": len(beats)},
                       rng=rng, p_idle=float(rng.uniform(0, 0.6)),
                       p_stall=float(rng.uniform(0, 0.6)), tail=4)
    assert logs["o_stream"].beats == fifo_reference(beats)


@pytest.mark.parametrize("depth", [1, 3, 5])
def test_holds_exactly_depth_beats_while_blocked(depth):
    dut = StreamFIFO(payload_shape=unsigned(8), depth=depth)
    accepted = []

    async def testbench(ctx):
        ctx.set(dut.o_stream.ready, 0)
        for beat in range(3 * depth + 6):
            ctx.set(dut.i_stream.payload, beat)
            ctx.set(dut.i_stream.valid, 1)
            _, _, ready = await ctx.tick().sample(dut.i_stream.ready)
            if ready:
                accepted.append(beat)
        ctx.set(dut.i_stream.valid, 0)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert len(accepted) == depth


@pytest.mark.parametrize("depth", [1, 2, 3, 4, 16])
def test_cycles_without_back_pressure(depth):
    dut = StreamFIFO(payload_shape=unsigned(8), depth=depth)
    beats = list(range(25))
    logs = run_streams(dut, inputs={"i_stream": beats}, outputs={"o_stream": len(beats)})
    first_in, last_out = logs["i_stream"].cycles[0], logs["o_stream"].cycles[-1]
    assert last_out - first_in + 1 == dut.cycles(len(beats))
    assert logs["o_stream"].cycles[0] - first_in == dut.latency


@pytest.mark.parametrize("bad", [0, -1, 2.0, True])
def test_rejects_bad_depth(bad):
    with pytest.raises(ValueError, match=repr(bad)):
        StreamFIFO(payload_shape=unsigned(8), depth=bad)


def test_converts_to_verilog():
    text = verilog.convert(StreamFIFO(payload_shape=data.ArrayLayout(signed(4), 3), depth=8))
    assert "module" in text and "i_stream__ready" in text


def test_memory_size():
    assert StreamFIFO(payload_shape=data.ArrayLayout(signed(5), 3), depth=9).memory == (8, 15)
    assert StreamFIFO(payload_shape=unsigned(4), depth=1).memory == (0, 4)
