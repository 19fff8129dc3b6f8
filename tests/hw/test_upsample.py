# amaranth: UnusedElaboratable=no
"""NearestUpsample against its model under random idle and back-pressure; its cycles with
no stalls against ``cycles_per_image`` and the handshake model's."""

import numpy as np
import pytest
from amaranth.hdl import signed
from qfab.hw.upsample import NearestUpsample
from streams import array_beats, beats_to_array, run_streams


def _case(rng, n_images=2):
    c, n = [(2, 1), (4, 2), (3, 3), (4, 4)][int(rng.integers(0, 4))]
    h, w = (int(v) for v in rng.integers(1, 4, 2))
    scale = tuple(int(v) for v in rng.integers(1, 4, 2))
    x = rng.integers(-8, 8, (n_images, h, w, c))
    dut = NearestUpsample(channels=c, height=h, width=w, scale=scale, elem_shape=signed(4), n=n)
    return dut, x


@pytest.mark.parametrize("seed", range(5))
def test_random_stalls_against_model(seed):
    rng = np.random.default_rng(seed)
    dut, x = _case(rng)
    want = dut.model(x)
    logs = run_streams(dut, inputs={"i_stream": array_beats(x, dut.n)},
                       outputs={"o_stream": want.size // dut.n}, rng=rng,
                       p_idle=float(rng.uniform(0, 0.5)), p_stall=float(rng.uniform(0, 0.5)))
    assert np.array_equal(beats_to_array(logs["o_stream"].beats, want.shape), want)


@pytest.mark.parametrize("seed", range(3))
def test_cycles_without_stalls_match_the_cycle_models(seed):
    from qfab.compiler.backend.plan import BlockSpec
    from qfab.cost_model.handshake import blocks_for
    from qfab.cost_model.timing import block_times

    rng = np.random.default_rng(10 + seed)
    dut, x = _case(rng, n_images=2)
    beats = array_beats(x, dut.n)
    logs = run_streams(dut, inputs={"i_stream": beats},
                       outputs={"o_stream": len(beats) * dut.scale[0] * dut.scale[1]})
    t_in = np.asarray(logs["i_stream"].cycles) - logs["i_stream"].cycles[0]
    t_out = np.asarray(logs["o_stream"].cycles) - logs["i_stream"].cycles[0]
    spec = BlockSpec("upsample", dict(channels=dut.channels, height=dut.height,
                                      width=dut.width, scale=dut.scale,
                                      elem_shape=dut.elem_shape, n=dut.n), dut.n, dut.n)
    assert np.array_equal(block_times(spec, np.zeros(len(beats), np.int64)), t_out)
    assert t_in[len(t_in) // 2] == dut.cycles_per_image  # the second image's first beat
    assert len(blocks_for(spec)) == 1
    assert t_in[-1] < t_out[-1]
