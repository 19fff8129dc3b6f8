# amaranth: UnusedElaboratable=no
"""StreamConcat against its model: runs of each input in turns, widened, under stalls."""

import numpy as np
import pytest
from amaranth.hdl import signed, unsigned
from qfab.hw._checks import shape_range
from qfab.hw.concat import StreamConcat, concat_reference
from streams import array_beats, run_streams


@pytest.mark.parametrize("seed", range(6))
def test_runs_in_turns_under_stalls(seed):
    rng = np.random.default_rng(seed)
    a_shape = signed(int(rng.integers(2, 8))) if rng.random() < 0.5 else unsigned(6)
    b_shape = unsigned(int(rng.integers(2, 8))) if rng.random() < 0.5 else signed(5)
    n, periods = int(rng.integers(1, 4)), int(rng.integers(2, 5))
    a_beats, b_beats = int(rng.integers(1, 6)), int(rng.integers(1, 6))
    b_first = bool(rng.random() < 0.5)
    a = rng.integers(*shape_range(a_shape), endpoint=True, size=(periods * a_beats, n))
    b = rng.integers(*shape_range(b_shape), endpoint=True, size=(periods * b_beats, n))
    dut = StreamConcat(a_shape=a_shape, b_shape=b_shape, out_shape=signed(9), n=n,
                       a_beats=a_beats, b_beats=b_beats, b_first=b_first)
    total = periods * (a_beats + b_beats)
    logs = run_streams(dut, inputs={"i_a": array_beats(a, n), "i_b": array_beats(b, n)},
                       outputs={"o_stream": total}, rng=rng, p_idle=0.4, p_stall=0.4, tail=4)
    want = concat_reference(a, b, a_beats=a_beats, b_beats=b_beats, b_first=b_first)
    assert logs["o_stream"].beats == want.tolist()
    # by hand: the first period is one input's run, then the other's
    first = (b[:b_beats], a[:a_beats]) if b_first else (a[:a_beats], b[:b_beats])
    assert logs["o_stream"].beats[:a_beats + b_beats] == np.concatenate(first).tolist()


def test_one_beat_a_cycle_without_back_pressure():
    a, b = np.arange(12).reshape(6, 2), -np.arange(8).reshape(4, 2)
    dut = StreamConcat(a_shape=unsigned(4), b_shape=signed(4), out_shape=signed(5), n=2,
                       a_beats=3, b_beats=2)
    logs = run_streams(dut, inputs={"i_a": array_beats(a, 2), "i_b": array_beats(b, 2)},
                       outputs={"o_stream": 10})
    cycles = logs["o_stream"].cycles
    assert cycles == list(range(cycles[0], cycles[0] + 10))
    assert cycles[0] - logs["i_a"].cycles[0] == dut.latency


def test_out_shape_must_hold_both_inputs():
    with pytest.raises(ValueError, match="does not hold b_shape"):
        StreamConcat(a_shape=signed(4), b_shape=unsigned(8), out_shape=signed(8), n=1,
                     a_beats=1, b_beats=1)
