"""Hypothesis properties of minifloat formats drawn from the whole parameter space."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from minifloat_cases import nearest_codes
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
