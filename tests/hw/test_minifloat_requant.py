# amaranth: UnusedElaboratable=no
"""MinifloatRequantizer against MinifloatFormat.encode_fixed: every tie, subnormal and overflow
of several formats, random per-channel parameters, ReLU, folding and stalls."""

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import signed, unsigned
from qfab.hw.minifloat_requant import MinifloatRequantizer, minifloat_requant_model
from qfab.hw.multipliers import shape_range
from qfab.numerics import MinifloatFormat
from streams import array_beats, beats_to_array, run_streams

FORMATS = {
    "E4M3FN": MinifloatFormat.E4M3FN,
    "E5M2": MinifloatFormat.E5M2,
    "E2M1FN": MinifloatFormat.E2M1FN,
    "E3M2_nosub": MinifloatFormat(3, 2, subnormals=False, special="none"),
    "E4M3_sat": MinifloatFormat(4, 3, special="fn", saturate=True),
    "E4M3FNUZ": MinifloatFormat(4, 3, bias=8, special="fnuz"),
    "E5M2_sat": MinifloatFormat(5, 2, special="ieee", saturate=True),
    "E3M0": MinifloatFormat(3, 0, special="ieee"),
    "E2M2_nosub_bias0": MinifloatFormat(2, 2, bias=0, subnormals=False, special="fn"),
}


def _run(dut, acc, rng=None, p_idle=0.0, p_stall=0.0):
    logs = run_streams(dut, inputs={"i_stream": array_beats(acc, dut.pe)},
                       outputs={"o_stream": acc.size // dut.pe}, rng=rng, p_idle=p_idle,
                       p_stall=p_stall, tail=4)
    return beats_to_array(logs["o_stream"].beats, acc.shape), logs


def _sweep(fmt, extra_bits: int) -> np.ndarray:
    """Every multiple of 2**-extra_bits of the format's step from below -max to above +max,
    thinned to a few hundred values but keeping every value near zero, the smallest normals
    and the overflow edge (where the ties are)."""
    step = 1 << extra_bits
    top = (fmt.fixed_max + fmt.fixed_max // 4 + 2) * step
    small = np.arange(-(1 << (fmt.man_bits + 3)) * step, (1 << (fmt.man_bits + 3)) * step + 1)
    edge = fmt.fixed_max * step + np.arange(-4 * step, 4 * step + 1)
    spread = np.unique(np.round(np.geomspace(1, top, 160)).astype(np.int64))
    return np.unique(np.concatenate([small, edge, -edge, spread, -spread]))


@pytest.mark.parametrize("name", list(FORMATS))
def test_sweep_of_ties_subnormals_and_overflow(name):
    fmt = FORMATS[name]
    extra = 3  # three bits below the format's step: exact values, quarters and ties
    acc = _sweep(fmt, extra)
    acc = acc[: acc.size // 2 * 2].reshape(-1, 2)
    # value = acc * 2**(lsb_exponent - extra), once with a shift and once as mult*2**-shift
    shift = extra - int(fmt.lsb_exponent)
    width = int(np.abs(acc).max()).bit_length() + 1
    dut = MinifloatRequantizer(acc_shape=signed(width), channels=2, pe=2, fmt=fmt,
                               mult=[1, 3], shift=[shift, shift + 2])
    got, _ = _run(dut, acc)
    expected = fmt.encode_fixed(acc * np.array([1, 3]), -np.array([shift, shift + 2]))
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(got, dut.model(acc))
    # the sweep reaches what it is meant to: zeros of both signs, ties and overflow
    codes = set(got.ravel().tolist())
    assert 0 in codes and fmt.code_max in codes
    assert len(codes) > (1 << fmt.bits) // 4


@pytest.mark.parametrize("seed", range(8))
def test_random_parameters_under_stalls(seed):
    rng = np.random.default_rng(seed)
    fmt = list(FORMATS.values())[seed % len(FORMATS)]
    channels = int(rng.choice([1, 2, 3, 4, 6]))
    pe = int(rng.choice([d for d in range(1, channels + 1) if channels % d == 0]))
    acc_shape = signed(int(rng.integers(6, 28, endpoint=True)))
    per_channel = bool(rng.integers(2))
    size = channels if per_channel else None
    mult = rng.integers(1, 1 << 10, size=size)
    # shifts that put most values inside the format's range, some past either end
    centre = np.log2(mult) + 0.6 * acc_shape.width - np.log2(fmt.max_value) + 3
    shift = np.round(centre).astype(np.int64) + rng.integers(-3, 3, size=size, endpoint=True)
    reach = 1 << int(0.4 * acc_shape.width)
    bias = rng.integers(-reach, reach, size=channels)
    relu = seed % 3 == 0
    dut = MinifloatRequantizer(acc_shape=acc_shape, channels=channels, pe=pe, fmt=fmt,
                               bias=bias, mult=mult, shift=shift, relu=relu)
    a_lo, a_hi = shape_range(acc_shape)
    pixels = int(rng.integers(6, 14))
    mags = 2.0 ** (rng.uniform(0.4, 0.8, size=(pixels, channels)) * acc_shape.width)
    acc = np.clip((mags * rng.choice([-1, 1], size=mags.shape)).astype(np.int64), a_lo, a_hi)
    got, _ = _run(dut, acc, rng, p_idle=float(rng.uniform(0, 0.5)),
                  p_stall=float(rng.uniform(0, 0.5)))
    np.testing.assert_array_equal(got, dut.model(acc))
    if relu:
        assert not (fmt.decode(got) < 0).any()
    assert len(set(got.ravel().tolist())) >= min(8, (1 << fmt.bits) // 4)


def test_relu_gives_positive_zero_and_latency():
    fmt = MinifloatFormat.E4M3FN
    acc = np.array([[-5, 5, -1, 0], [-1000, 1000, 3, -3]])
    dut = MinifloatRequantizer(acc_shape=signed(12), channels=4, pe=1, fmt=fmt, mult=1,
                               shift=[0, 0, 12, 12], relu=True)
    got, logs = _run(dut, acc)
    np.testing.assert_array_equal(got, [[0, fmt.encode(5.0), 0, 0],
                                        [0, fmt.encode(1000.0), fmt.encode(3 / 4096), 0]])
    plain = MinifloatRequantizer(acc_shape=signed(12), channels=4, pe=1, fmt=fmt, mult=1,
                                 shift=[0, 0, 12, 12])
    got, _ = _run(plain, acc)
    # without ReLU: -3 * 2**-12 rounds to the negative zero code, -1000 overflows to -NaN
    assert got[1, 3] == fmt.sign_bit and got[1, 0] == 0xFF
    n = acc.size
    assert logs["i_stream"].cycles == list(range(n))
    assert logs["o_stream"].cycles == [c + dut.latency for c in range(n)]
    assert dut.param_memory == (4, 4)  # left shifts (12, 12, 0, 0): unsigned(4), one lane
    assert logs["o_stream"].cycles[-1] + 1 == dut.cycles(n)


@pytest.mark.parametrize("in_name,out_name", [("E4M3FN", "E4M3FN"), ("E5M2", "E2M1FN"),
                                               ("E3M2_nosub", "E4M3FNUZ")])
def test_minifloat_codes_in(in_name, out_name):
    in_fmt, fmt = FORMATS[in_name], FORMATS[out_name]
    codes = in_fmt.all_codes()
    codes = codes[~(in_fmt.is_nan(codes) | in_fmt.is_inf(codes))]
    codes = codes[: codes.size // 3 * 3].reshape(-1, 3)
    # shifts relative to the input's step: the real values are scaled by 1, 3/4 and 5/16
    shift = np.array([0, 2, 4]) - in_fmt.lsb_exponent
    relu = in_name == out_name
    dut = MinifloatRequantizer(acc_shape=unsigned(in_fmt.bits), channels=3, pe=3, fmt=fmt,
                               in_fmt=in_fmt, bias=[0, 3, -3], mult=[1, 3, 5], shift=shift,
                               relu=relu)
    got, _ = _run(dut, codes, np.random.default_rng(3), p_idle=0.3, p_stall=0.3)
    fixed = in_fmt.to_fixed(codes) + np.array([0, 3, -3])
    expected = minifloat_requant_model(fixed, fmt=fmt, mult=[1, 3, 5], shift=shift, relu=relu)
    np.testing.assert_array_equal(got, expected)
    assert len(set(got.ravel().tolist())) >= min(codes.size, 1 << fmt.bits) // 4


def test_model_is_encode_fixed():
    fmt = MinifloatFormat.E2M1FN
    out = minifloat_requant_model(np.array([[7, -7], [100, 1]]), fmt=fmt, bias=[1, 0],
                                  mult=[3, 1], shift=[2, 1])
    # (8*3)/4 = 6 (code 7); -7/2 = -3.5 -> -4 (tie to even, code 0xE); 303/4 -> 6; 0.5
    np.testing.assert_array_equal(out, [[7, 0xE], [7, 1]])


@pytest.mark.parametrize("kwargs,match", [
    (dict(pe=3), "pe 3 does not divide channels 4"),
    (dict(fmt="E4M3"), "fmt must be a MinifloatFormat, not 'E4M3'"),
    (dict(fmt=MinifloatFormat(3, 0, subnormals=False)), "has no zero code"),
    (dict(bias=[1, 2, 3]), "bias has 3 values for 4 channels"),
    (dict(mult=[1, -2, 3, 4]), "mult must be >= 0"),
    (dict(relu=1), "relu must be a bool, not 1"),
    (dict(acc_shape=None), "acc_shape None is not a shape"),
])
def test_bad_parameters(kwargs, match):
    params = dict(acc_shape=signed(16), channels=4, pe=2, fmt=MinifloatFormat.E4M3FN)
    params.update(kwargs)
    with pytest.raises(ValueError, match=match):
        MinifloatRequantizer(**params)


def test_converts_to_verilog():
    dut = MinifloatRequantizer(acc_shape=signed(20), channels=4, pe=2, bias=[1, 2, 3, 4],
                               mult=[5, 6, 7, 8], shift=[8, 9, 10, 11],
                               fmt=MinifloatFormat.E5M2, relu=True)
    assert "module mfrequant" in verilog.convert(dut, name="mfrequant")
