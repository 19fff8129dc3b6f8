# amaranth: UnusedElaboratable=no
"""Requantizer against requant_model: random parameters, roundings, folding and stalls."""

from fractions import Fraction

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import Shape, signed, unsigned
from qfab.hw.multipliers import shape_range
from qfab.hw.requant import ROUNDINGS, Requantizer, requant_model, requant_stages
from qfab.numerics import Dyadic
from streams import array_beats, beats_to_array, run_streams


def _run(dut, acc, rng=None, p_idle=0.0, p_stall=0.0):
    logs = run_streams(dut, inputs={"i_stream": array_beats(acc, dut.pe)},
                       outputs={"o_stream": acc.size // dut.pe}, rng=rng, p_idle=p_idle,
                       p_stall=p_stall, tail=4, max_wait=2000)
    return beats_to_array(logs["o_stream"].beats, acc.shape), logs


def _random_requantizer(rng, rounding, power_of_two_lanes=False):
    """A requantizer of random shapes and parameters; with ``power_of_two_lanes``, a lane a
    channel and power-of-two scales (the unrolled layers' kind, without registers)."""
    channels = int(rng.choice([1, 2, 3, 4, 6, 8]))
    pe = channels if power_of_two_lanes else \
        int(rng.choice([d for d in range(1, channels + 1) if channels % d == 0]))
    acc_shape = signed(int(rng.integers(4, 24, endpoint=True)))
    out_shape = Shape(int(rng.integers(2, 8, endpoint=True)), bool(rng.integers(2)))
    per_channel = bool(rng.integers(2))
    size = channels if per_channel else None
    shift = rng.integers(0, 12, size=size, endpoint=True)
    mult = 1 << rng.integers(0, 12, size=size) if power_of_two_lanes \
        else rng.integers(1, 1 << 12, size=size)
    bias = rng.integers(-300, 300, size=channels)
    o_lo, o_hi = shape_range(out_shape)
    lo, hi = sorted(int(v) for v in rng.integers(o_lo, o_hi, size=2, endpoint=True))
    zp = int(rng.integers(o_lo, o_hi, endpoint=True))
    return Requantizer(acc_shape=acc_shape, channels=channels, pe=pe, bias=bias, mult=mult,
                       shift=shift, zero_point=zp, lo=lo, hi=hi, out_shape=out_shape,
                       rounding=rounding)


@pytest.mark.parametrize("seed", range(24))
def test_random_requantizers_under_stalls(seed):
    rng = np.random.default_rng(seed)
    dut = _random_requantizer(rng, ROUNDINGS[seed % len(ROUNDINGS)], seed >= 16)
    assert (dut.stages == 0) == (seed >= 16)
    a_lo, a_hi = shape_range(dut.acc_shape)
    # small accumulators too, so the result lands inside the clamp and rounding shows
    spread = max(1, (1 << int(dut.shift.max())) * 4)
    pixels = int(rng.integers(3, 8))
    acc = np.where(rng.random((pixels, dut.channels)) < 0.7,
                   rng.integers(-spread, spread, size=(pixels, dut.channels)),
                   rng.integers(a_lo, a_hi, size=(pixels, dut.channels), endpoint=True))
    acc = np.clip(acc, a_lo, a_hi)
    got, _ = _run(dut, acc, rng, p_idle=float(rng.uniform(0, 0.5)),
                  p_stall=float(rng.uniform(0, 0.5)))
    np.testing.assert_array_equal(got, dut.model(acc))


@pytest.mark.parametrize("rounding", ROUNDINGS)
def test_every_tie_rounds_as_the_mode_says(rounding):
    # shift 2: acc*mult / 4 covers every quarter, ties at .5 of both signs and parities
    acc = np.arange(-20, 20).reshape(-1, 2)
    dut = Requantizer(acc_shape=signed(8), channels=2, pe=2, mult=1, shift=2,
                      out_shape=signed(8), rounding=rounding)
    got, _ = _run(dut, acc)
    x = acc / 4
    expected = {"half_even": np.round(x), "half_up": np.floor(x + 0.5),
                "half_away": np.sign(x) * np.floor(np.abs(x) + 0.5), "floor": np.floor(x)}
    np.testing.assert_array_equal(got, expected[rounding].astype(np.int64))


def test_relu_clamp_negative_shift_and_throughput():
    rng = np.random.default_rng(4)
    acc = rng.integers(-2000, 2000, size=(10, 4))
    dut = Requantizer(acc_shape=signed(12), channels=4, pe=1, bias=[5, -5, 0, 100],
                      mult=[3, 1, 7, 1], shift=[4, -2, 0, 9], zero_point=-3, lo=-3,
                      hi=120, out_shape=signed(8))
    got, logs = _run(dut, acc)
    np.testing.assert_array_equal(got, dut.model(acc))
    assert got.min() == -3 and got.max() == 120
    # bias signed(8), mult (3, 4, 7, 1) unsigned(3), left shifts (5, 9, 9, 0) unsigned(4)
    assert dut.param_memory == (4, 15)
    n = acc.size
    assert logs["i_stream"].cycles == list(range(n))
    assert logs["o_stream"].cycles == [c + dut.latency for c in range(n)]
    assert logs["o_stream"].cycles[-1] + 1 == dut.cycles(n)


def test_model_formula():
    out = requant_model(np.array([[100, -100]]), bias=[10, 0], mult=[3, 5], shift=[2, 3],
                        zero_point=1, lo=-50, hi=50)
    # (110*3)/4 = 82.5 -> 82 (even) +1 -> 50 (clamped); -500/8 = -62.5 -> -62 +1 -> -50 clamp
    np.testing.assert_array_equal(out, [[50, -50]])
    out = requant_model(np.array([6, -6]), mult=1, shift=2, lo=-8, hi=8)
    np.testing.assert_array_equal(out, [2, -2])


@pytest.mark.parametrize("kwargs,match", [
    (dict(pe=3), "pe 3 does not divide channels 4"),
    (dict(rounding="nearest"), "unknown rounding 'nearest'"),
    (dict(bias=[1, 2, 3]), "bias has 3 values for 4 channels"),
    (dict(mult=1.5), "mult must be an int"),
    (dict(mult=[1, -2, 3, 4]), "mult must be >= 0"),
    (dict(lo=-200), r"clamp \[-200, 127\] is empty or outside"),
    (dict(lo=5, hi=4), r"clamp \[5, 4\]"),
    (dict(channels=0), "channels must be a positive int, not 0"),
    (dict(out_shape=None), "out_shape None is not a shape"),
])
def test_bad_parameters(kwargs, match):
    params = dict(acc_shape=signed(16), channels=4, pe=2, out_shape=signed(8))
    params.update(kwargs)
    with pytest.raises(ValueError, match=match):
        Requantizer(**params)


def test_converts_to_verilog():
    dut = Requantizer(acc_shape=signed(16), channels=4, pe=2, bias=[1, 2, 3, 4], mult=[5, 6, 7, 8],
                      shift=[8, 9, 10, 11], zero_point=128, lo=128, out_shape=unsigned(8))
    assert "module requant" in verilog.convert(dut, name="requant")


def _round_fraction(x, rounding):
    floor = x.numerator // x.denominator
    rest = x - floor
    if rounding == "floor" or rest < Fraction(1, 2):
        return floor
    if rest > Fraction(1, 2) or rounding == "half_up":
        return floor + 1
    if rounding == "half_even":
        return floor + (floor % 2)
    return floor + (1 if floor >= 0 else 0)  # half_away


@pytest.mark.parametrize("rounding", ROUNDINGS)
def test_model_against_exact_fractions(rounding):
    rng = np.random.default_rng(len(rounding))
    acc = rng.integers(-(1 << 20), 1 << 20, size=(50, 3))
    bias = rng.integers(-1000, 1000, size=3)
    mult = rng.integers(0, 1 << 16, size=3)
    shift = np.array([0, 7, -3]) + rng.integers(0, 12)
    got = requant_model(acc, bias=bias, mult=mult, shift=shift, zero_point=5, lo=-(1 << 62),
                        hi=1 << 62, rounding=rounding)
    for (i, c), a in np.ndenumerate(acc):
        x = Fraction(int(a + bias[c]) * int(mult[c]), 1) / Fraction(2) ** int(shift[c])
        assert got[i, c] == _round_fraction(x, rounding) + 5


def test_one_fold_uses_per_lane_constants():
    rng = np.random.default_rng(8)
    dut = Requantizer(acc_shape=signed(14), channels=3, pe=3, bias=[7, -9, 0], mult=[9, 17, 3],
                      shift=[3, 5, 1], zero_point=2, out_shape=signed(6), rounding="half_up")
    assert dut.param_memory == (0, 0)
    acc = rng.integers(-8192, 8191, size=(9, 3), endpoint=True) // 16
    got, _ = _run(dut, acc, rng, p_idle=0.3, p_stall=0.3)
    np.testing.assert_array_equal(got, dut.model(acc))


@pytest.mark.parametrize("seed", range(4))
def test_shift_add_lanes_multiply_without_a_multiplier(seed):
    rng = np.random.default_rng(100 + seed)
    channels = int(rng.integers(1, 6))
    mult = rng.integers(0, 1 << 16, size=channels)
    mult[0] = [0, 1, 1 << 9, 0b1011101110111][seed]  # none, one, a shift, many CSD digits
    shift = rng.integers(-2, 18, size=channels)
    dut = Requantizer(acc_shape=signed(int(rng.integers(6, 20))), channels=channels,
                      pe=channels, bias=rng.integers(-50, 50, size=channels), mult=mult,
                      shift=shift, zero_point=int(rng.integers(-4, 4)), out_shape=signed(8),
                      rounding=ROUNDINGS[seed % len(ROUNDINGS)], shift_add=True)
    assert dut.shift_add
    assert " * " not in verilog.convert(dut, name="rq")
    a_lo, a_hi = shape_range(dut.acc_shape)
    acc = rng.integers(a_lo, a_hi, size=(12, channels), endpoint=True)
    acc[:4] //= 1 << 8  # small sums land inside the clamp
    got, _ = _run(dut, acc, rng, p_idle=0.3, p_stall=0.3)
    np.testing.assert_array_equal(got, dut.model(acc))


def test_dyadic_from_scale_per_channel():
    # what the compiler hands over: 16-bit multipliers, per-channel shifts far apart
    rng = np.random.default_rng(12)
    d = Dyadic.from_scale(np.exp(rng.uniform(-14, -3, size=8)), bits=16)
    dut = Requantizer(acc_shape=signed(24), channels=8, pe=2, bias=rng.integers(-5000, 5000, 8),
                      mult=d.mult, shift=d.shift, zero_point=-5, lo=-128, hi=127,
                      out_shape=signed(8))
    acc = rng.integers(-(1 << 23), 1 << 23, size=(6, 8)) >> rng.integers(0, 16, size=(6, 8))
    got, _ = _run(dut, acc, rng, p_idle=0.2, p_stall=0.2)
    np.testing.assert_array_equal(got, dut.model(acc))
    np.testing.assert_array_equal(got, np.clip(d.apply(acc + dut.bias) - 5, -128, 127))
    assert len(np.unique(got)) > 10


def test_constant_power_of_two_lanes_take_one_cycle_under_stalls():
    # every lane a constant power-of-two scale (an unrolled layer's requantizer): no
    # registers before the output's, and exact under random stalls
    rng = np.random.default_rng(8)
    acc = rng.integers(-3000, 3000, size=(40, 3))
    acc[:3] = [[-3000, 2999, 0], [2, 6, -2], [8, 24, -24]]  # ties of each sign
    dut = Requantizer(acc_shape=signed(13), channels=3, pe=3, bias=[4, -8, 0],
                      mult=[1, 4, 1], shift=[2, 4, -1], zero_point=0, lo=0, hi=63,
                      out_shape=unsigned(6), shift_add=True)
    assert dut.stages == 0 and dut.latency == 1
    got, _ = _run(dut, acc, rng, p_idle=0.3, p_stall=0.3)
    np.testing.assert_array_equal(got, dut.model(acc))
    _, logs = _run(dut, acc)
    assert logs["o_stream"].cycles == [c + 1 for c in range(len(acc))]
    assert Requantizer(acc_shape=signed(13), channels=3, pe=3, mult=3,
                       out_shape=unsigned(6)).stages == 2


@pytest.mark.parametrize("seed", range(4))
def test_pipelined_lanes_are_exact_with_their_stages_latency(seed):
    # adders_per_stage: shift-add lanes (seeds 0, 1) registered every few adder levels,
    # folded lanes (2, 3) with the bias add a cycle before the multiplier
    rng = np.random.default_rng(300 + seed)
    shift_add = seed < 2
    channels = int(rng.integers(2, 6))
    pe = channels if shift_add else 1
    mult = rng.integers(1, 1 << 16, size=channels)
    mult[0] = 0b1011101110111 if seed == 0 else mult[0]  # many CSD digits: several stages
    dut = Requantizer(acc_shape=signed(int(rng.integers(8, 20))), channels=channels, pe=pe,
                      bias=rng.integers(-50, 50, size=channels), mult=mult,
                      shift=rng.integers(-2, 18, size=channels),
                      zero_point=int(rng.integers(-4, 4)), out_shape=signed(8),
                      rounding=ROUNDINGS[seed % len(ROUNDINGS)], shift_add=shift_add,
                      adders_per_stage=1 + seed % 2)
    plain = Requantizer(acc_shape=dut.acc_shape, channels=channels, pe=pe, mult=dut.mult,
                        shift=dut.shift, out_shape=signed(8), shift_add=shift_add)
    assert dut.stages > plain.stages and dut.pipeline_bits > 0
    a_lo, a_hi = shape_range(dut.acc_shape)
    acc = rng.integers(a_lo, a_hi, size=(12, channels), endpoint=True)
    acc[:4] //= 1 << 8
    got, _ = _run(dut, acc, rng, p_idle=0.3, p_stall=0.3)
    np.testing.assert_array_equal(got, dut.model(acc))
    _, logs = _run(dut, acc)
    beats = acc.size // pe
    assert logs["o_stream"].cycles == [c + dut.latency for c in range(beats)]


@pytest.mark.parametrize("adders_per_stage", [None, 1, 2])
def test_folded_lanes_of_one_scale_multiply_by_shifts_and_adds(adders_per_stage):
    # channels folded over fewer lanes, one scale for all (a per-tensor scale): each lane
    # multiplies by the constant, and the per-channel bias comes from the ROM
    rng = np.random.default_rng(400 + (adders_per_stage or 0))
    params = dict(acc_shape=signed(18), channels=8, pe=2, bias=rng.integers(-5000, 5000, 8),
                  mult=np.full(8, 41776), shift=np.full(8, 23), zero_point=3, lo=0, hi=255,
                  out_shape=unsigned(8), rounding="half_even", shift_add=True,
                  adders_per_stage=adders_per_stage)
    dut = Requantizer(**params)
    assert dut.shift_add and dut.param_memory[0] == 4
    assert dut.stages == requant_stages(**params)
    if adders_per_stage:
        # the accumulator, the biased sum, the tree (41776: 6 CSD digits, 3 adder levels)
        # and the rounding bit
        assert dut.stages == 3 + -(-3 // adders_per_stage)
    assert " * " not in verilog.convert(dut, name="rq")
    a_lo, a_hi = shape_range(dut.acc_shape)
    acc = rng.integers(a_lo, a_hi, size=(16, 8), endpoint=True)
    acc[:8] //= 1 << 10  # small sums land inside the clamp
    got, _ = _run(dut, acc, rng, p_idle=0.3, p_stall=0.3)
    np.testing.assert_array_equal(got, dut.model(acc))
    _, logs = _run(dut, acc)
    assert logs["o_stream"].cycles == [c + dut.latency for c in range(acc.size // 2)]
    # scales that differ between channels keep the multiplier
    params["mult"] = np.arange(41776, 41784)
    assert not Requantizer(**params).shift_add
