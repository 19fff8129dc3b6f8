# amaranth: UnusedElaboratable=no
"""WidthConverter against its model under random stalls, with exact cycle counts."""

import math

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import signed, unsigned
from qfab.hw.widthconv import WidthConverter, widthconv_reference
from streams import array_beats, run_streams

PAIRS = [(1, 1), (1, 4), (2, 6), (4, 2), (6, 1), (2, 3), (3, 2), (4, 6), (6, 4), (3, 5)]


@pytest.mark.parametrize(("n_in", "n_out"), PAIRS)
def test_random_stalls_keep_order(n_in, n_out):
    rng = np.random.default_rng(n_in * 10 + n_out)
    bits = int(rng.integers(2, 9))
    word = math.lcm(n_in, n_out)
    x = rng.integers(-(2 ** (bits - 1)), 2 ** (bits - 1), size=word * int(rng.integers(3, 9)))
    dut = WidthConverter(elem_shape=signed(bits), n_in=n_in, n_out=n_out)
    expected = widthconv_reference(x.reshape(-1, n_in), n_out).tolist()
    logs = run_streams(dut, inputs={"i_stream": array_beats(x, n_in)},
                       outputs={"o_stream": len(expected)}, rng=rng,
                       p_idle=float(rng.uniform(0.1, 0.6)), p_stall=float(rng.uniform(0.1, 0.6)),
                       tail=4)
    assert logs["o_stream"].beats == expected


@pytest.mark.parametrize(("n_in", "n_out"), PAIRS)
def test_cycles_without_back_pressure(n_in, n_out):
    dut = WidthConverter(elem_shape=unsigned(5), n_in=n_in, n_out=n_out)
    elements = math.lcm(n_in, n_out) * 5
    x = np.arange(elements) % 32
    logs = run_streams(dut, inputs={"i_stream": array_beats(x, n_in)},
                       outputs={"o_stream": elements // n_out})
    first_in, last_out = logs["i_stream"].cycles[0], logs["o_stream"].cycles[-1]
    words = elements // dut.word
    assert dut.cycles(2 * (elements // n_in)) - dut.cycles(elements // n_in) == (
        words * dut.initiation_interval)
    assert last_out - first_in + 1 == dut.cycles(elements // n_in)
    assert logs["o_stream"].beats == dut.model(x.reshape(-1, n_in)).tolist()
    # The first output beat follows the input beat that completes its word by `latency` cycles.
    completing = dut.word // n_in - 1
    assert logs["o_stream"].cycles[0] - logs["i_stream"].cycles[completing] == dut.latency


@pytest.mark.parametrize(("kwargs", "bad"), [
    ({"n_in": 0, "n_out": 2}, "0"), ({"n_in": 2, "n_out": 1.5}, "1.5"),
    ({"n_in": True, "n_out": 2}, "True"),
])
def test_rejects_bad_parameters(kwargs, bad):
    with pytest.raises(ValueError, match=bad):
        WidthConverter(elem_shape=signed(8), **kwargs)


@pytest.mark.parametrize(("n_in", "n_out"), [(2, 6), (4, 2), (2, 3)])
def test_converts_to_verilog(n_in, n_out):
    text = verilog.convert(WidthConverter(elem_shape=signed(8), n_in=n_in, n_out=n_out))
    assert "o_stream__payload" in text


@pytest.mark.parametrize(("n_in", "n_out"), [(1, 4), (2, 6), (4, 2), (2, 3), (6, 4)])
def test_handshake_model_follows_the_block(n_in, n_out):
    # the cycle model's handshake models (one or two a converter) against the block, cycle
    # by cycle: input ready and output valid under random valid and ready
    from amaranth.sim import Simulator
    from qfab.compiler.backend.plan import BlockSpec
    from qfab.cost_model.handshake import blocks_for

    params = dict(elem_shape=unsigned(4), n_in=n_in, n_out=n_out)
    dut = WidthConverter(**params)
    models = blocks_for(BlockSpec("widthconv", params, n_in, n_out))
    rng = np.random.default_rng(n_in * 10 + n_out)
    seen = []

    async def bench(ctx):
        valid = False
        for _ in range(300):
            valid = valid or bool(rng.random() < 0.7)  # a beat offered stays until taken
            ready = bool(rng.random() < 0.6)
            ctx.set(dut.i_stream.valid, valid)
            ctx.set(dut.o_stream.ready, ready)
            readies = [ready]
            for b in reversed(models):
                readies.insert(0, b.ready(readies[0]))
            seen.append(((ctx.get(dut.i_stream.ready), ctx.get(dut.o_stream.valid)),
                         (int(readies[0]), int(models[-1].o_valid))))
            valids = [valid] + [b.o_valid for b in models]
            for k, b in enumerate(models):
                b.begin()
                b.tick(valids[k], valids[k] and readies[k], readies[k + 1])
            await ctx.tick()
            valid = valid and not readies[0]

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert [hw for hw, _ in seen] == [model for _, model in seen]
    assert sum(hw[1] for hw, _ in seen) > 20
