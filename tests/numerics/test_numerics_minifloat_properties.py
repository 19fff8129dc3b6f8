"""Hypothesis properties of minifloat formats drawn from the whole parameter space."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from minifloat_cases import nearest_codes, overflow_thresholds
from qfab.numerics import SPECIALS, MinifloatFormat


@st.composite
def formats(draw: st.DrawFn, max_bits: int = 16) -> MinifloatFormat:
    exp_bits = draw(st.integers(1, 8))
    man_bits = draw(st.integers(0, min(7, max_bits - 1 - exp_bits)))
    default = (1 << (exp_bits - 1)) - 1
    bias = draw(st.one_of(st.none(), st.integers(default - 20, default + 20)))
    subnormals = draw(st.booleans())
    special = draw(st.sampled_from(SPECIALS))
    saturate = draw(st.booleans())
    try:
        return MinifloatFormat(exp_bits, man_bits, bias, subnormals, special, saturate)
    except ValueError:
        assume(False)
        raise


PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def sign_magnitude_order(fmt: MinifloatFormat) -> np.ndarray:
    """Codes from the most negative magnitude to the most positive."""
    negative = np.arange((1 << fmt.bits) - 1, fmt.sign_bit - 1, -1)
    return np.concatenate([negative, np.arange(fmt.sign_bit)])


@PROPERTY
@given(formats())
def test_encode_decode_round_trips_every_number_code(fmt: MinifloatFormat) -> None:
    codes = fmt.all_codes()
    nan = fmt.is_nan(codes)
    np.testing.assert_array_equal(fmt.encode(fmt.decode(codes[~nan])), codes[~nan])
    if nan.any():
        again = fmt.encode(fmt.decode(codes[nan]))
        assert fmt.is_nan(again).all()
        if fmt.special != "fnuz":  # NaN keeps its sign
            np.testing.assert_array_equal(again >= fmt.sign_bit, codes[nan] >= fmt.sign_bit)


@PROPERTY
@given(formats())
def test_negative_zero_handling(fmt: MinifloatFormat) -> None:
    if fmt.has_zero:
        assert fmt.encode(0.0) == 0
        expected = fmt.sign_bit if fmt.has_negative_zero else 0
        assert fmt.encode(-0.0) == expected
        assert fmt.has_negative_zero == (fmt.special != "fnuz")
        assert np.signbit(fmt.decode(expected)) == fmt.has_negative_zero


@PROPERTY
@given(formats())
def test_decode_is_monotonic_in_sign_magnitude_order(fmt: MinifloatFormat) -> None:
    order = sign_magnitude_order(fmt)
    values = fmt.decode(order)
    values = values[~np.isnan(values)]
    steps = np.diff(values)
    assert (steps >= 0).all()
    # Only -0 and +0 compare equal.
    assert (steps == 0).sum() == int(fmt.has_negative_zero)


@PROPERTY
@given(formats())
def test_to_fixed_is_decode_in_lsb_units(fmt: MinifloatFormat) -> None:
    codes = fmt.all_codes()
    finite = codes[np.isfinite(fmt.decode(codes))]
    fixed = fmt.to_fixed(finite)
    scaled = np.ldexp(fmt.decode(finite), -fmt.lsb_exponent)
    assert [int(v) for v in fixed.tolist()] == [int(v) for v in scaled.tolist()]
    assert (scaled == np.round(scaled)).all()
    assert fmt.fixed_max == max(int(v) for v in fixed.tolist())
    assert fmt.fixed_min == min(int(v) for v in fixed.tolist())
    assert fixed.dtype == (np.int64 if fmt.fixed_max < 2**62 else object)


@PROPERTY
@given(formats(max_bits=9), st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=40))
def test_encode_is_nearest_even(fmt: MinifloatFormat, raw: list[float]) -> None:
    scale = fmt.max_value
    points = np.array([x for x in raw] + [x * scale for x in raw if abs(x) <= 1.0])
    points = points[np.abs(points) <= scale]
    np.testing.assert_array_equal(fmt.encode(points), nearest_codes(fmt, points))


@PROPERTY
@given(formats(), st.floats(min_value=1.0, max_value=1e300))
def test_out_of_range_follows_special_and_saturate(fmt: MinifloatFormat, factor: float) -> None:
    big = min(fmt.max_value * 2 * factor, np.finfo(np.float64).max)  # finite: inf stays inf
    codes = fmt.encode([big, -big])
    if fmt.saturate or fmt.special == "none":
        assert fmt.decode(codes).tolist() == [fmt.max_value, -fmt.max_value]
    elif fmt.special == "ieee":
        assert fmt.decode(codes).tolist() == [np.inf, -np.inf]
    else:
        assert fmt.is_nan(codes).all()


def test_fraction_check_of_a_tie() -> None:
    fmt = MinifloatFormat.E4M3FN
    mid = (Fraction(fmt.decode(0x38)) + Fraction(fmt.decode(0x39))) / 2  # 1.0 and 1.125
    assert fmt.encode(float(mid)) == 0x38
    assert fmt.encode(float(mid) + 2**-40) == 0x39


@PROPERTY
@given(formats(max_bits=9),
       st.lists(st.integers(-(2**63), 2**63 - 1) | st.integers(-(2**12), 2**12), min_size=1,
                max_size=30),
       st.integers(-40, 40))
def test_encode_fixed_rounds_once_exactly(fmt: MinifloatFormat, ints: list[int],
                                          offset: int) -> None:
    """Accumulators of any width encode as their exact rational value would."""
    lsb = fmt.lsb_exponent + offset
    exact = [Fraction(n) * Fraction(2) ** lsb for n in ints]
    got = fmt.encode_fixed(np.array(ints, dtype=np.int64), lsb)
    wide = fmt.encode_fixed(np.array([n << 70 for n in ints], dtype=object), lsb - 70)
    np.testing.assert_array_equal(got, wide)
    for x, code in zip(exact, got.tolist(), strict=True):
        if abs(x) <= Fraction(fmt.max_value):
            assert code == nearest_codes(fmt, [x])[0], x
        else:
            threshold = Fraction(overflow_thresholds(fmt)[0])
            sign = fmt.sign_bit if x < 0 else 0
            beyond = abs(x) > threshold or (abs(x) == threshold and fmt.code_max % 2 == 1)
            overflowed = fmt.encode(np.copysign(fmt.max_value * 4, float(x)))
            assert code == (overflowed if beyond else fmt.code_max | sign), x


@PROPERTY
@given(formats())
def test_encode_fixed_inverts_to_fixed(fmt: MinifloatFormat) -> None:
    codes = fmt.all_codes()
    numbers = codes[np.isfinite(fmt.decode(codes))]
    if fmt.has_negative_zero:  # to_fixed has no -0: both zeros come back as +0
        numbers = numbers[numbers != fmt.sign_bit]
    back = fmt.encode_fixed(fmt.to_fixed(numbers), fmt.lsb_exponent)
    np.testing.assert_array_equal(back, numbers)


def test_encode_fixed_near_a_tie_in_a_wide_accumulator() -> None:
    fmt = MinifloatFormat.E4M3FN  # 1.0 = 2**62 units of 2**-62; 1.0625 is the tie to 1.125
    tie = (2**62) + (2**58)
    assert fmt.encode_fixed(np.array([tie, tie + 1, tie - 1, -tie - 1]), -62).tolist() == [
        0x38, 0x39, 0x38, 0xB9]
    wide = np.array([tie << 40, (tie << 40) + 1, (tie << 40) - 1, -(tie << 40) - 1], dtype=object)
    assert fmt.encode_fixed(wide, -102).tolist() == [0x38, 0x39, 0x38, 0xB9]


def test_encode_fixed_just_above_max_rounds_to_max() -> None:
    fmt = MinifloatFormat.E4M3FN  # max 448 = 448 * 2**6 units of 2**-6; overflow above 464
    units = np.array([448 * 64 + 1, 464 * 64, 464 * 64 + 1, -(464 * 64)])
    assert fmt.encode_fixed(units, -6).tolist() == [0x7E, 0x7E, 0x7F, 0xFE]
