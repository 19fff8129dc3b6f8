# amaranth: UnusedElaboratable=no
"""ResidualAdd against its model: random scales, shifts, clamps and stall patterns."""

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import signed, unsigned
from qfab.hw._checks import shape_range
from qfab.hw.eltwise import ResidualAdd, residual_add_reference, round_shift_half_even
from streams import array_beats, run_streams


def _random_case(rng):
    a_shape = signed(int(rng.integers(2, 9))) if rng.random() < 0.7 else unsigned(8)
    b_shape = signed(int(rng.integers(2, 9))) if rng.random() < 0.7 else unsigned(8)
    out_shape = signed(8) if rng.random() < 0.6 else unsigned(int(rng.integers(3, 9)))
    out_lo, out_hi = shape_range(out_shape)
    lo = int(rng.integers(out_lo, out_lo + 3))
    hi = int(rng.integers(out_hi - 3, out_hi + 1))
    params = dict(
        a_shape=a_shape, b_shape=b_shape, out_shape=out_shape, n=int(rng.integers(1, 5)),
        mult_a=int(rng.integers(-300, 3000)), mult_b=int(rng.integers(-300, 3000)),
        shift=0, zero_point=int(rng.integers(-5, 6)), lo=lo, hi=hi,
        offset=int(rng.integers(-5000, 5000)),
    )
    # A shift that brings the sum near the output range, so both clamped and unclamped
    # results are common.
    span = max(abs(params["mult_a"]) << a_shape.width, abs(params["mult_b"]) << b_shape.width)
    params["shift"] = max(0, span.bit_length() - out_shape.width + int(rng.integers(-1, 2)))
    return params


@pytest.mark.parametrize("seed", range(10))
def test_random_against_model_under_stalls(seed):
    rng = np.random.default_rng(seed)
    p = _random_case(rng)
    n, beats = p["n"], int(rng.integers(10, 40))
    a = rng.integers(*shape_range(p["a_shape"]), endpoint=True, size=(beats, n))
    b = rng.integers(*shape_range(p["b_shape"]), endpoint=True, size=(beats, n))
    model = {k: v for k, v in p.items() if k not in ("a_shape", "b_shape", "out_shape", "n")}
    expected = residual_add_reference(a, b, **model)
    dut = ResidualAdd(**p)
    logs = run_streams(dut, inputs={"i_a": array_beats(a, n), "i_b": array_beats(b, n)},
                       outputs={"o_stream": beats}, rng=rng, p_idle=0.4, p_stall=0.4, tail=4)
    assert logs["o_stream"].beats == expected.tolist()
    assert dut.model(a, b).tolist() == expected.tolist()
    # Joined beat for beat: each a-beat and its b-beat go in the same cycle.
    assert logs["i_a"].cycles == logs["i_b"].cycles


def test_cycles_without_back_pressure():
    rng = np.random.default_rng(7)
    p = _random_case(rng)
    n = p["n"]
    a = rng.integers(*shape_range(p["a_shape"]), endpoint=True, size=(30, n))
    b = rng.integers(*shape_range(p["b_shape"]), endpoint=True, size=(30, n))
    dut = ResidualAdd(**p)
    logs = run_streams(dut, inputs={"i_a": array_beats(a, n), "i_b": array_beats(b, n)},
                       outputs={"o_stream": 30})
    first_in, last_out = logs["i_a"].cycles[0], logs["o_stream"].cycles[-1]
    assert last_out - first_in + 1 == dut.cycles(30)
    assert logs["o_stream"].cycles[0] - first_in == dut.latency


def test_round_half_even_ties():
    v = np.array([-6, -5, -3, -2, -1, 1, 2, 3, 5, 6, 7])
    # v / 4: -1.5 -1.25 -0.75 -0.5 -0.25 0.25 0.5 0.75 1.25 1.5 1.75
    assert round_shift_half_even(v, 2).tolist() == [-2, -1, -1, 0, 0, 0, 0, 1, 1, 2, 2]


def test_extreme_clamps_and_exact_ties_in_hardware():
    # Every a in range against a few b, shift 1 so half the sums are exact ties.
    p = dict(a_shape=signed(6), b_shape=signed(4), out_shape=signed(4), n=4, mult_a=1, mult_b=3,
             shift=1, zero_point=2, lo=-7, hi=6, offset=-1)
    a = np.arange(-32, 32).reshape(-1, 4)
    b = np.resize(np.arange(-8, 8), a.size).reshape(-1, 4)
    model = {k: v for k, v in p.items() if k not in ("a_shape", "b_shape", "out_shape", "n")}
    logs = run_streams(ResidualAdd(**p), inputs={"i_a": array_beats(a, 4),
                                                 "i_b": array_beats(b, 4)},
                       outputs={"o_stream": len(a)})
    assert logs["o_stream"].beats == residual_add_reference(a, b, **model).tolist()


@pytest.mark.parametrize(("change", "bad"), [
    ({"n": 0}, "0"), ({"shift": -1}, "-1"), ({"lo": -200}, "-200"), ({"hi": -129}, "-129"),
    ({"mult_a": 1.5}, "1.5"), ({"out_shape": "x"}, "'x'"),
])
def test_rejects_bad_parameters(change, bad):
    p = dict(a_shape=signed(8), b_shape=signed(8), out_shape=signed(8), n=2, mult_a=3, mult_b=5,
             shift=4, zero_point=0, lo=-128, hi=127)
    with pytest.raises(ValueError, match=bad):
        ResidualAdd(**{**p, **change})


def test_converts_to_verilog():
    dut = ResidualAdd(a_shape=signed(8), b_shape=unsigned(8), out_shape=signed(8), n=4,
                      mult_a=-77, mult_b=1234, shift=11, zero_point=-3, lo=-128, hi=127,
                      offset=99)
    assert "i_b__payload" in verilog.convert(dut)
