# amaranth: UnusedElaboratable=no
"""StreamSelect against its model: one window of every period kept, the rest dropped."""

import numpy as np
import pytest
from amaranth.hdl import signed, unsigned
from qfab.hw.select import StreamSelect, select_reference
from streams import array_beats, run_streams


@pytest.mark.parametrize("seed", range(4))
def test_keeps_its_window_under_stalls(seed):
    rng = np.random.default_rng(seed)
    n, period = int(rng.integers(1, 4)), int(rng.integers(2, 9))
    first = int(rng.integers(0, period))
    count = int(rng.integers(1, period - first + 1))
    periods = int(rng.integers(2, 5))
    beats = rng.integers(-8, 8, size=(periods * period, n))
    dut = StreamSelect(in_shape=signed(5), out_shape=signed(4), n=n, period=period,
                       first=first, count=count)
    logs = run_streams(dut, inputs={"i_stream": array_beats(beats, n)},
                       outputs={"o_stream": periods * count}, rng=rng, p_idle=0.4,
                       p_stall=0.4, tail=4)
    want = beats.reshape(periods, period, n)[:, first:first + count].reshape(-1, n)
    assert logs["o_stream"].beats == want.tolist()
    assert select_reference(beats, period=period, first=first, count=count).tolist() \
        == want.tolist()
    assert len(logs["i_stream"].beats) == periods * period  # the others taken and dropped


def test_window_within_period():
    with pytest.raises(ValueError, match="not within a period"):
        StreamSelect(in_shape=unsigned(8), out_shape=unsigned(8), n=1, period=4, first=3,
                     count=2)
