# amaranth: UnusedElaboratable=no
"""SlidingWindow over enough images back to back that its row counters wrap several times
(they count rows modulo a power of two; a difference read without truncation once hung the
eighth 8x8 image of the digits CNN)."""

import numpy as np
import pytest
from amaranth.hdl import unsigned
from qfab.hw.window import SlidingWindow, im2col_reference
from streams import array_beats, run_streams


@pytest.mark.parametrize("registered_ready", [False, True])
@pytest.mark.parametrize("kernel,padding", [((1, 1), (0, 0, 0, 0)), ((3, 3), (1, 1, 1, 1))])
def test_row_counters_wrap(kernel, padding, registered_ready):
    rng = np.random.default_rng(7)
    params = dict(channels=2, height=3, width=3, kernel=kernel, stride=(1, 1), padding=padding,
                  pad_value=0, elem_shape=unsigned(4), simd=2, registered_ready=registered_ready)
    images = 40  # 120 rows: the counters of this geometry wrap at 32 or 64
    x = rng.integers(0, 16, size=(images, 3, 3, 2))
    expected = array_beats(im2col_reference(x, kernel=kernel, stride=(1, 1), padding=padding,
                                            pad_value=0, simd=2), 2)
    logs = run_streams(SlidingWindow(**params), inputs={"i_stream": array_beats(x, 2)},
                       outputs={"o_stream": len(expected)}, rng=rng, p_idle=0.2, p_stall=0.2)
    assert logs["o_stream"].beats == expected
