# amaranth: UnusedElaboratable=no
"""Thresholder against threshold_model: random thresholds, folding and stalls."""

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import signed, unsigned
from qfab.hw.multipliers import shape_range
from qfab.hw.threshold import Thresholder, threshold_model
from streams import array_beats, beats_to_array, run_streams


def _run(dut, acc, rng=None, p_idle=0.0, p_stall=0.0):
    logs = run_streams(dut, inputs={"i_stream": array_beats(acc, dut.pe)},
                       outputs={"o_stream": acc.size // dut.pe}, rng=rng, p_idle=p_idle,
                       p_stall=p_stall, tail=4, max_wait=2000)
    return beats_to_array(logs["o_stream"].beats, acc.shape), logs


@pytest.mark.parametrize("seed", range(12))
def test_random_thresholders_under_stalls(seed):
    rng = np.random.default_rng(seed)
    channels = int(rng.choice([1, 2, 3, 4, 6, 8]))
    pe = int(rng.choice([d for d in range(1, channels + 1) if channels % d == 0]))
    acc_shape = signed(int(rng.integers(3, 20, endpoint=True)))
    a_lo, a_hi = shape_range(acc_shape)
    bits = int(rng.integers(1, 4, endpoint=True))
    n_thr = (1 << bits) - 1
    rows = channels if rng.integers(2) else 1
    # thresholds may lie beyond the accumulator range and repeat
    thr = np.sort(rng.integers(a_lo - 3, a_hi + 3, size=(rows, n_thr), endpoint=True), axis=1)
    signed_out = bool(rng.integers(2))
    out_bias = -(1 << (bits - 1)) if signed_out else 0
    out_shape = signed(bits) if signed_out else unsigned(bits)
    dut = Thresholder(acc_shape=acc_shape, channels=channels, pe=pe, thresholds=thr,
                      out_shape=out_shape, out_bias=out_bias)
    pixels = int(rng.integers(3, 9))
    acc = rng.integers(a_lo, a_hi, size=(pixels, channels), endpoint=True)
    # hit thresholds exactly, too: acc >= t must count equality
    hits = rng.random(acc.shape) < 0.3
    acc[hits] = np.clip(dut.thresholds[np.nonzero(hits)[1], 0], a_lo, a_hi)
    got, _ = _run(dut, acc, rng, p_idle=float(rng.uniform(0, 0.5)),
                  p_stall=float(rng.uniform(0, 0.5)))
    np.testing.assert_array_equal(got, threshold_model(acc, dut.thresholds, out_bias))
    np.testing.assert_array_equal(got, dut.model(acc))


def test_bipolar_and_throughput():
    acc = np.arange(-12, 12).reshape(-1, 2)
    dut = Thresholder(acc_shape=signed(6), channels=2, pe=1, thresholds=[[0], [5]],
                      out_shape=unsigned(1))
    got, logs = _run(dut, acc)
    np.testing.assert_array_equal(got, np.stack([acc[:, 0] >= 0, acc[:, 1] >= 5], axis=1))
    n = acc.size
    assert logs["i_stream"].cycles == list(range(n))
    assert logs["o_stream"].cycles == [c + dut.latency for c in range(n)]
    assert logs["o_stream"].cycles[-1] + 1 == dut.cycles(n)
    assert dut.threshold_memory == (2, 3) and dut.comparators == 1


def test_bipolar_plus_minus_one_with_out_scale():
    rng = np.random.default_rng(2)
    acc = rng.integers(-30, 30, size=(8, 4), endpoint=True)
    thr = rng.integers(-10, 10, size=(4, 1))
    dut = Thresholder(acc_shape=signed(6), channels=4, pe=2, thresholds=thr,
                      out_shape=signed(2), out_bias=-1, out_scale=2)
    got, _ = _run(dut, acc, rng, p_idle=0.3, p_stall=0.3)
    np.testing.assert_array_equal(got, np.where(acc >= thr[:, 0], 1, -1))
    np.testing.assert_array_equal(got, dut.model(acc))


def test_negative_out_scale():
    acc = np.arange(-8, 8).reshape(-1, 1)
    dut = Thresholder(acc_shape=signed(5), channels=1, pe=1, thresholds=[[-4, 0, 4]],
                      out_shape=signed(4), out_bias=3, out_scale=-2)
    got, _ = _run(dut, acc)
    np.testing.assert_array_equal(got, 3 - 2 * threshold_model(acc, [[-4, 0, 4]]))


def test_model_counts_equal_as_reached():
    np.testing.assert_array_equal(
        threshold_model(np.array([[-1, 0, 3, 9]]), np.array([[0, 3, 3]] * 4), out_bias=-2),
        [[-2, -1, 1, 1]])


@pytest.mark.parametrize("kwargs,match", [
    (dict(thresholds=[[3, 1, 2]]), r"channel 0 are not sorted: \[3, 1, 2\]"),
    (dict(thresholds=[[1, 2]] * 3), r"must be \[4, T\] or \[1, T\], not \(3, 2\)"),
    (dict(thresholds=[[0.5, 1.5]]), "must be integers"),
    (dict(out_shape=unsigned(1)), "outputs 0..2 do not fit"),
    (dict(out_bias=-1), "outputs -1..1 do not fit"),
    (dict(pe=3), "pe 3 does not divide channels 4"),
    (dict(out_scale=0), "out_scale must be a non-zero int, not 0"),
    (dict(out_scale=2), "outputs 0..4 do not fit"),
])
def test_bad_parameters(kwargs, match):
    params = dict(acc_shape=signed(8), channels=4, pe=2, thresholds=[[1, 2]],
                  out_shape=unsigned(2))
    params.update(kwargs)
    with pytest.raises(ValueError, match=match):
        Thresholder(**params)


def test_converts_to_verilog():
    thr = np.sort(np.random.default_rng(0).integers(-100, 100, size=(4, 15)), axis=1)
    dut = Thresholder(acc_shape=signed(10), channels=4, pe=2, thresholds=thr,
                      out_shape=signed(4), out_bias=-8)
    assert "module thresholder" in verilog.convert(dut, name="thresholder")


def test_eight_bit_activation_with_255_thresholds():
    rng = np.random.default_rng(9)
    thr = np.sort(rng.integers(-3000, 3000, size=(4, 255)), axis=1)
    dut = Thresholder(acc_shape=signed(13), channels=4, pe=2, thresholds=thr,
                      out_shape=signed(8), out_bias=-128)
    acc = rng.integers(-4096, 4095, size=(6, 4), endpoint=True)
    got, _ = _run(dut, acc, rng, p_idle=0.3, p_stall=0.3)
    np.testing.assert_array_equal(got, threshold_model(acc, thr, -128))
    assert got.min() < -100 and got.max() > 100


def test_one_fold_uses_per_lane_constants():
    rng = np.random.default_rng(8)
    thr = np.sort(rng.integers(-50, 50, size=(3, 3)), axis=1)
    dut = Thresholder(acc_shape=signed(8), channels=3, pe=3, thresholds=thr,
                      out_shape=unsigned(2))
    assert dut.threshold_memory == (0, 0) and dut.comparators == 9
    acc = rng.integers(-60, 60, size=(9, 3))
    got, _ = _run(dut, acc, rng, p_idle=0.3, p_stall=0.3)
    np.testing.assert_array_equal(got, threshold_model(acc, thr))


def test_constant_lanes_take_one_cycle_under_stalls():
    # a lane a channel (an unrolled layer's thresholds are constants): no register before
    # the output's, and exact under random stalls
    rng = np.random.default_rng(9)
    acc = rng.integers(-32, 32, size=(40, 2))
    dut = Thresholder(acc_shape=signed(6), channels=2, pe=2, thresholds=[[-3, 0, 7], [-9, 1, 2]],
                      out_shape=signed(3), out_bias=-2)
    assert dut.stages == 0 and dut.latency == 1
    got, _ = _run(dut, acc, rng, p_idle=0.3, p_stall=0.3)
    np.testing.assert_array_equal(got, dut.model(acc))
    _, logs = _run(dut, acc)
    assert logs["o_stream"].cycles == [c + 1 for c in range(len(acc))]
