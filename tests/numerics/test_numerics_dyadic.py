"""Dyadic scales and round_shift against exact rational rounding with Python integers."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from qfab.numerics import ROUNDINGS, Dyadic, round_shift


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


def dyadic_fraction(mult: int, shift: int) -> Fraction:
    return Fraction(mult) / Fraction(2) ** shift


scales = st.floats(min_value=1e-30, max_value=1e30, allow_subnormal=False)
accs = st.lists(st.integers(-(2**47), 2**47), min_size=1, max_size=30)
PROPERTY = settings(max_examples=200, deadline=None)


@PROPERTY
@given(scales, st.integers(1, 32))
def test_from_scale_is_nearest_with_bits_wide_multiplier(scale: float, bits: int) -> None:
    d = Dyadic.from_scale(scale, bits)
    assert 2 ** (bits - 1) <= d.mult < 2**bits
    s = Fraction(scale)
    err = abs(dyadic_fraction(d.mult, d.shift) - s)
    assert err <= s / 2**bits
    assert d.rel_error <= 2.0**-bits
    # Nearest: neither neighbouring multiplier at this shift is closer.
    for other in (d.mult - 1, d.mult + 1):
        assert abs(dyadic_fraction(other, d.shift) - s) >= err
    assert d.value == float(dyadic_fraction(d.mult, d.shift))


@PROPERTY
@given(scales, st.integers(1, 32), accs, st.sampled_from(ROUNDINGS))
def test_apply_equals_exact_rational_rounding(scale, bits, acc, rounding) -> None:
    d = Dyadic.from_scale(scale, bits)
    exact = [exact_round(a * dyadic_fraction(d.mult, d.shift), rounding) for a in acc]
    if all(-(2**63) <= e < 2**63 for e in exact):
        got = d.apply(np.array(acc, dtype=np.int64), rounding)
        assert got.dtype == np.int64 and got.tolist() == exact
    else:
        with pytest.raises(OverflowError):
            d.apply(np.array(acc, dtype=np.int64), rounding)


@PROPERTY
@given(st.floats(min_value=2.0**-40, max_value=1.0), st.integers(8, 24), accs,
       st.sampled_from(ROUNDINGS))
def test_error_against_float_requantization_is_bounded(scale, bits, acc, rounding) -> None:
    """The documented bound: |apply(acc) - round(acc * scale)| <= ceil(|acc * scale| * 2**-bits),
    so at most 1 when |acc * scale| <= 2**bits."""
    d = Dyadic.from_scale(scale, bits)
    got = d.apply(np.array(acc, dtype=np.int64), rounding).tolist()
    for a, y in zip(acc, got, strict=True):
        real = a * Fraction(scale)
        reference = exact_round(real, rounding)
        bound = math.ceil(abs(real) / 2**bits)
        assert abs(y - reference) <= bound
        if abs(real) <= 2**bits:
            assert abs(y - reference) <= 1


def test_per_channel_broadcast() -> None:
    scales = np.array([0.5, 3.0, 1e-3, 70000.0])
    d = Dyadic.from_scale(scales, 16)
    assert d.mult.shape == d.shift.shape == (4,)
    assert (d.shift[3] < 0) and (d.mult >= 2**15).all() and (d.mult < 2**16).all()
    acc = np.arange(-12, 12, dtype=np.int64).reshape(6, 4) * 1001
    got = d.apply(acc, "half_away")
    for (i, c), a in np.ndenumerate(acc):
        assert got[i, c] == exact_round(int(a) * dyadic_fraction(int(d.mult[c]), int(d.shift[c])),
                                        "half_away")
    assert np.all(d.rel_error <= 2.0**-16)


def test_wide_accumulators_stay_exact() -> None:
    d = Dyadic(65535, 3)
    acc = np.array([2**47 - 1, -(2**47), 2**50 + 3, -(2**50) + 5], dtype=np.int64)
    got = d.apply(acc, "half_even")  # acc * mult reaches 2**66: formed in Python ints
    assert got.tolist() == [exact_round(Fraction(int(a) * 65535, 8), "half_even") for a in acc]
    with pytest.raises(OverflowError):
        d.apply(np.array([2**62]))  # 2**62 * 65535 / 8 does not fit int64


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(-(2**62), 2**62) | st.integers(-300, 300), min_size=1, max_size=20),
       st.integers(-8, 80),
       st.sampled_from(ROUNDINGS))
def test_round_shift_equals_exact_rounding(xs, shift, rounding) -> None:
    exact = [exact_round(Fraction(x) / Fraction(2) ** shift, rounding) for x in xs]
    as_objects = round_shift(np.array(xs, dtype=object), shift, rounding)
    assert as_objects.tolist() == exact
    if all(-(2**63) <= e < 2**63 for e in exact):
        as_int64 = round_shift(np.array(xs, dtype=np.int64), shift, rounding)
        assert as_int64.dtype == np.int64 and as_int64.tolist() == exact


@pytest.mark.parametrize("rounding,expected", [
    ("floor", [-3, -2, -2, -1, -1, 0, 0, 1, 1, 2]),
    ("half_up", [-2, -2, -1, -1, 0, 1, 1, 2, 2, 3]),
    ("half_even", [-2, -2, -2, -1, 0, 0, 1, 2, 2, 2]),
    ("half_away", [-3, -2, -2, -1, -1, 1, 1, 2, 2, 3]),
])
def test_round_shift_ties(rounding, expected) -> None:
    x = np.array([-10, -7, -6, -3, -2, 2, 3, 6, 7, 10])  # /4: -2.5 -1.75 -1.5 -0.75 -0.5 ...
    assert round_shift(x, 2, rounding).tolist() == expected
    assert round_shift(x.astype(object), 2, rounding).tolist() == expected


def test_round_shift_per_element_shift_and_left_shift() -> None:
    got = round_shift(np.array([5, 5, 5, -5]), np.array([-2, 0, 1, 1]), "half_even")
    assert got.tolist() == [20, 5, 2, -2]


def test_equality_ignores_scale() -> None:
    assert Dyadic.from_scale(0.75, 8) == Dyadic(192, 8)
    assert Dyadic.from_scale([0.75, 1.5], 8) == Dyadic(np.array([192, 192]), np.array([8, 7]))
    assert hash(Dyadic(192, 8)) == hash(Dyadic.from_scale(0.75, 8))
    with pytest.raises(ValueError, match="without a scale"):
        _ = Dyadic(192, 8).rel_error
