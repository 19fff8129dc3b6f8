"""The stream helpers themselves, on a one-register pipeline stage that adds one."""

import numpy as np
import pytest
from amaranth.hdl import Module, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from streams import array_beats, beats_to_array, run_streams


class _AddOne(wiring.Component):
    def __init__(self, *, n: int, break_rules: bool = False):
        layout = data.ArrayLayout(unsigned(8), n)
        self._n = n
        self._break = break_rules
        super().__init__({"i_stream": In(stream.Signature(layout)),
                          "o_stream": Out(stream.Signature(layout))})

    def elaborate(self, platform):
        m = Module()
        take = ~self.o_stream.valid | self.o_stream.ready
        m.d.comb += self.i_stream.ready.eq(take)
        with m.If(take):
            m.d.sync += self.o_stream.valid.eq(self.i_stream.valid)
            for i in range(self._n):
                m.d.sync += self.o_stream.p[i].eq(self.i_stream.p[i] + 1)
        if self._break:
            # Withdraws an offered beat when the consumer stalls: the monitor must notice.
            with m.If(self.o_stream.valid & ~self.o_stream.ready):
                m.d.sync += self.o_stream.valid.eq(0)
        return m


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_stalls_keep_order(seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 255, size=(40, 3))
    logs = run_streams(_AddOne(n=3), inputs={"i_stream": array_beats(x, 3)},
                       outputs={"o_stream": 40}, rng=rng, p_idle=0.4, p_stall=0.4, tail=5)
    np.testing.assert_array_equal(beats_to_array(logs["o_stream"].beats, x.shape), (x + 1) % 256)
    assert len(logs["i_stream"].cycles) == 40


def test_full_rate_without_stalls():
    x = np.arange(20).reshape(20, 1)
    logs = run_streams(_AddOne(n=1), inputs={"i_stream": array_beats(x, 1)},
                       outputs={"o_stream": 20})
    assert logs["i_stream"].cycles == list(range(20))
    assert logs["o_stream"].cycles == list(range(1, 21))


def test_monitor_catches_withdrawn_beat():
    x = np.arange(30).reshape(30, 1)
    with pytest.raises(AssertionError, match="withdrawn"):
        run_streams(_AddOne(n=1, break_rules=True), inputs={"i_stream": array_beats(x, 1)},
                    outputs={"o_stream": 30}, rng=np.random.default_rng(0), p_stall=0.5)


def test_monitor_catches_extra_beats():
    x = np.arange(5).reshape(5, 1)
    with pytest.raises(AssertionError, match="beyond"):
        run_streams(_AddOne(n=1), inputs={"i_stream": array_beats(x, 1)},
                    outputs={"o_stream": 4}, tail=3)
