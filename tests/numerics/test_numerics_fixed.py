"""IntFormat and FixedFormat against apytypes and exact rational rounding."""

from __future__ import annotations

import math
import zlib
from fractions import Fraction

import apytypes as apy
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from qfab.numerics import OVERFLOWS, ROUNDINGS, FixedFormat, IntFormat, round_real

APY_ROUNDING = {
    "floor": apy.QuantizationMode.TRN,
    "half_up": apy.QuantizationMode.RND,
    "half_even": apy.QuantizationMode.RND_CONV,
    "half_away": apy.QuantizationMode.RND_INF,
}
APY_OVERFLOW = {"wrap": apy.OverflowMode.WRAP, "saturate": apy.OverflowMode.SAT}
SHAPES = [(3, 4), (0, 7), (7, 0), (2, 10), (12, 3), (-2, 6), (5, -2)]


def exact_round(x: Fraction, rounding: str) -> int:
    q = math.floor(x)
    r = x - q
    half = Fraction(1, 2)
    if rounding == "floor":
        return q
    if rounding == "half_up":
        return q + (r >= half)
    if rounding == "half_even":
        return q + (r > half or (r == half and q % 2 == 1))
    return q + (r > half or (r == half and q >= 0))


def random_values(rng: np.random.Generator, int_bits: int, frac_bits: int) -> np.ndarray:
    """Values with a few more fractional bits than the format (ties included) and a range
    about eight times wider, so every rounding and both overflow directions occur."""
    extra = 4
    span = 1 << (int_bits + frac_bits + extra + 3)
    n = rng.integers(-span, span, size=3000)
    ties = (rng.integers(-span, span, size=500) >> extra << extra) | (1 << (extra - 1))
    values = np.ldexp(np.concatenate([n, ties]).astype(np.float64), -(frac_bits + extra))
    return np.concatenate([values, [0.0, -0.0]])


def apy_quantize(values: np.ndarray, int_bits: int, frac_bits: int, rounding: str,
                 overflow: str) -> np.ndarray:
    """apytypes' signed cast; its int_bits count the sign bit."""
    wide = apy.APyFixedArray.from_float(values, int_bits=int_bits + 12, frac_bits=frac_bits + 8)
    cast = wide.cast(int_bits=int_bits + 1, frac_bits=frac_bits,
                     quantization=APY_ROUNDING[rounding], overflow=APY_OVERFLOW[overflow])
    return np.ldexp(np.asarray(cast.to_numpy(), dtype=np.float64), frac_bits).astype(np.int64)


@pytest.mark.parametrize("rounding", ROUNDINGS)
@pytest.mark.parametrize("overflow", OVERFLOWS)
@pytest.mark.parametrize("shape", SHAPES, ids=[f"Q{i}.{f}" for i, f in SHAPES])
def test_signed_fixed_quantize_matches_apytypes(shape, rounding, overflow) -> None:
    int_bits, frac_bits = shape
    values = random_values(np.random.default_rng(zlib.crc32(f"{shape}{rounding}".encode())),
                           int_bits, frac_bits)
    fmt = FixedFormat(int_bits, frac_bits, True, rounding, overflow)
    expected = apy_quantize(values, int_bits, frac_bits, rounding, overflow)
    np.testing.assert_array_equal(fmt.quantize(values), expected)


@pytest.mark.parametrize("rounding", ROUNDINGS)
@pytest.mark.parametrize("overflow", OVERFLOWS)
def test_unsigned_fixed_quantize_matches_exact_rounding(rounding, overflow) -> None:
    fmt = FixedFormat(3, 4, signed=False, rounding=rounding, overflow=overflow)
    values = random_values(np.random.default_rng(7), 3, 4)
    got = fmt.quantize(values)
    for v, code in zip(values.tolist(), got.tolist(), strict=True):
        n = exact_round(Fraction(v) * 16, rounding)
        expected = n % 128 if overflow == "wrap" else min(max(n, 0), 127)
        assert code == expected, v


@pytest.mark.parametrize("rounding", ROUNDINGS)
@pytest.mark.parametrize("bits,signed", [(1, True), (1, False), (4, True), (8, False), (32, True)])
def test_int_quantize_matches_apytypes_saturating(bits, signed, rounding) -> None:
    fmt = IntFormat(bits, signed)
    rng = np.random.default_rng(bits)
    values = np.ldexp(rng.integers(-(2 ** (bits + 6)), 2 ** (bits + 6), 2000).astype(float), -3)
    if signed:
        expected = apy_quantize(values, bits - 1, 0, rounding, "saturate")
    else:  # apytypes is signed only: quantize into a wide word, then clamp
        expected = np.clip(apy_quantize(values, bits + 12, 0, rounding, "saturate"), 0, fmt.max)
    np.testing.assert_array_equal(fmt.quantize(values, rounding), expected)


def test_ranges_and_views() -> None:
    assert (IntFormat(4).min, IntFormat(4).max) == (-8, 7)
    assert (IntFormat(4, False).min, IntFormat(4, False).max) == (0, 15)
    assert (IntFormat(1).min, IntFormat(1).max) == (-1, 0)
    q = FixedFormat(3, 4)
    assert (q.bits, q.min, q.max, q.lsb_exponent) == (8, -128, 127, -4)
    assert (q.fixed_min, q.fixed_max) == (-128, 127)
    assert q.to_real([-128, 127, 1]).tolist() == [-8.0, 7.9375, 0.0625]
    assert q.to_fixed([-128, 5]).tolist() == [-128, 5]
    assert FixedFormat(3, 4, signed=False).bits == 7
    assert IntFormat(4).clamp([-100, 3, 100]).tolist() == [-8, 3, 7]
    assert IntFormat(4).wrap([8, -9, 23]).tolist() == [-8, 7, 7]
    assert FixedFormat(3, 4, overflow="wrap").fit([128, -129]).tolist() == [-128, 127]
    assert IntFormat(8).quantize([np.inf, -np.inf, 1e300]).tolist() == [127, -128, 127]


def test_quantize_refuses_nan_and_wrapped_infinity() -> None:
    with pytest.raises(ValueError, match="NaN"):
        IntFormat(8).quantize([np.nan])
    with pytest.raises(ValueError, match="infinite"):
        FixedFormat(3, 4, overflow="wrap").quantize([np.inf])


@settings(max_examples=300, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e17, max_value=1e17),
       st.sampled_from(ROUNDINGS))
def test_round_real_is_exact(x: float, rounding: str) -> None:
    assert int(round_real(x, rounding)) == exact_round(Fraction(x), rounding)


@pytest.mark.parametrize("rounding", ROUNDINGS)
def test_round_real_near_half_of_negative_values(rounding: str) -> None:
    # -(0.5 - 2**-54) - floor(.) is 0.5 + 2**-54, which float64 rounds to 0.5: not a tie.
    for x in [-(0.5 - 2.0**-54), -(1.5 - 2.0**-53), -0.5, -2.5, 2.5, 0.5 + 2.0**-53, 2.0**53 + 2]:
        assert int(round_real(x, rounding)) == exact_round(Fraction(x), rounding), x


def test_wide_integer_formats_are_exact() -> None:
    wide = IntFormat(62, signed=False)
    assert wide.quantize([2.0**61, 1e30, -5.0]).tolist() == [2**61, 2**62 - 1, 0]
    assert IntFormat(48).quantize([-(2.0**46) - 0.5, 2.0**50]).tolist() == [-(2**46), 2**47 - 1]
    assert FixedFormat(40, 8).quantize([2.0**39 + 2.0**-8]).tolist() == [2**47 + 1]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(-(2**63), 2**63 - 1) | st.integers(-999, 999), min_size=1,
                max_size=20),
       st.integers(-70, 20), st.integers(-3, 10), st.integers(0, 8), st.booleans(),
       st.sampled_from(ROUNDINGS), st.sampled_from(OVERFLOWS))
def test_fixed_encode_fixed_rounds_once(ints, lsb, int_bits, frac_bits, signed, rounding,
                                        overflow) -> None:
    if int_bits + frac_bits + signed < 1:
        return
    fmt = FixedFormat(int_bits, frac_bits, signed, rounding, overflow)
    got = fmt.encode_fixed(np.array(ints, dtype=np.int64), lsb).tolist()
    for n, code in zip(ints, got, strict=True):
        r = exact_round(Fraction(n) * Fraction(2) ** (lsb + frac_bits), rounding)
        if overflow == "wrap":
            expected = (r - fmt.min) % 2**fmt.bits + fmt.min
        else:
            expected = min(max(r, fmt.min), fmt.max)
        assert code == expected, n


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=20),
       st.integers(-70, 70), st.integers(1, 32), st.booleans(), st.sampled_from(ROUNDINGS))
def test_int_encode_fixed_rounds_once_and_clamps(ints, lsb, bits, signed, rounding) -> None:
    fmt = IntFormat(bits, signed)
    got = fmt.encode_fixed(np.array(ints, dtype=np.int64), lsb, rounding).tolist()
    expected = [min(max(exact_round(Fraction(n) * Fraction(2) ** lsb, rounding), fmt.min),
                    fmt.max) for n in ints]
    assert got == expected
