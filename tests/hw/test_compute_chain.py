# amaranth: UnusedElaboratable=no
"""Two dense layers built from the compute blocks, joined by wiring.connect, against the
composition of their models: MVU -> Requantizer (ReLU) -> MVU -> Thresholder."""

import numpy as np
import pytest
from amaranth.hdl import Module, signed, unsigned
from amaranth.lib import wiring
from amaranth.sim import Simulator
from qfab.hw.multipliers import IntDecoder, Multiplier, shape_for_range
from qfab.hw.mvu import MatrixVectorUnit, dot_product_bounds
from qfab.hw.requant import Requantizer
from qfab.hw.threshold import Thresholder
from streams import array_beats, beats_to_array, run_streams


class _Chain(wiring.Component):
    def __init__(self, stages):
        self._stages = stages
        super().__init__({"i_stream": stages[0].signature.members["i_stream"],
                          "o_stream": stages[-1].signature.members["o_stream"]})

    def elaborate(self, platform):
        m = Module()
        for i, stage in enumerate(self._stages):
            m.submodules[f"stage{i}"] = stage
        wiring.connect(m, wiring.flipped(self.i_stream), self._stages[0].i_stream)
        for a, b in zip(self._stages, self._stages[1:], strict=False):
            wiring.connect(m, a.o_stream, b.i_stream)
        wiring.connect(m, self._stages[-1].o_stream, wiring.flipped(self.o_stream))
        return m


def _layers(rng, mw, mh1, mh2, pe1, simd1, pe2):
    w1 = rng.integers(-8, 7, size=(mh1, mw), endpoint=True)
    acc1 = shape_for_range(*dot_product_bounds(
        w1, Multiplier(IntDecoder(unsigned(4)), IntDecoder(signed(4)))))
    mvu1 = MatrixVectorUnit(weights=w1, in_shape=unsigned(4), weight_shape=signed(4),
                            acc_shape=acc1, pe=pe1, simd=simd1)
    rq = Requantizer(acc_shape=acc1, channels=mh1, pe=pe1, bias=rng.integers(-50, 50, mh1),
                     mult=rng.integers(1 << 10, 1 << 11, mh1), shift=rng.integers(14, 17, mh1),
                     zero_point=0, lo=0, out_shape=unsigned(4))
    w2 = rng.integers(-1, 1, size=(mh2, mh1), endpoint=True)
    acc2 = shape_for_range(*dot_product_bounds(
        w2, Multiplier(IntDecoder(unsigned(4)), IntDecoder(signed(2)))))
    mvu2 = MatrixVectorUnit(weights=w2, in_shape=unsigned(4), weight_shape=signed(2),
                            acc_shape=acc2, pe=pe2, simd=pe1)
    thr = np.sort(rng.integers(-20, 20, size=(mh2, 3)), axis=1)
    th = Thresholder(acc_shape=acc2, channels=mh2, pe=pe2, thresholds=thr,
                     out_shape=signed(2), out_bias=-2)
    return [mvu1, rq, mvu2, th]


@pytest.mark.parametrize("seed,dims", [(0, (12, 8, 6, 2, 3, 2)), (1, (6, 4, 4, 4, 6, 1)),
                                       (2, (8, 6, 3, 3, 2, 3))])
def test_two_dense_layers_under_stalls(seed, dims):
    rng = np.random.default_rng(seed)
    mw, mh1, mh2, pe1, simd1, pe2 = dims
    stages = _layers(rng, mw, mh1, mh2, pe1, simd1, pe2)
    x = rng.integers(0, 15, size=(6, mw), endpoint=True)
    expected = x
    for stage in stages:
        expected = stage.model(expected)
    logs = run_streams(_Chain(stages), inputs={"i_stream": array_beats(x, simd1)},
                       outputs={"o_stream": x.shape[0] * mh2 // pe2}, rng=rng,
                       p_idle=0.3, p_stall=0.3, tail=4, max_wait=2000)
    got = beats_to_array(logs["o_stream"].beats, (x.shape[0], mh2))
    np.testing.assert_array_equal(got, expected)
    assert len(np.unique(expected)) > 1


def _ready_follows_only_registers(dut, beat):
    """Over a stall and a release, ``i_stream.ready`` never changes within a cycle when
    ``o_stream.ready`` does: no combinational path joins them."""
    seen = set()

    async def testbench(ctx):
        ctx.set(dut.i_stream.payload, beat)
        ctx.set(dut.i_stream.valid, 1)
        for cycle in range(40):
            ctx.set(dut.o_stream.ready, 1)
            high = ctx.get(dut.i_stream.ready)
            ctx.set(dut.o_stream.ready, 0)
            low = ctx.get(dut.i_stream.ready)
            assert high == low, f"cycle {cycle}: i_stream.ready follows o_stream.ready"
            seen.add(low)
            ctx.set(dut.o_stream.ready, int(cycle >= 25))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert seen == {0, 1}  # the stall did reach the input


def test_input_ready_is_registered():
    rng = np.random.default_rng(0)
    mvu1, rq, mvu2, th = _layers(rng, 6, 4, 4, 2, 3, 2)
    _ready_follows_only_registers(mvu1, [1, 2, 3])
    _ready_follows_only_registers(rq, [100, -100])
    _ready_follows_only_registers(th, [5, -5])
