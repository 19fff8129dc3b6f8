"""Formats beyond the presets: against gfloat's generic FormatInfo and a brute-force encoder."""

from __future__ import annotations

import gfloat
import ml_dtypes
import numpy as np
import pytest
from minifloat_cases import gfloat_encode, gfloat_info, nearest_codes, same_floats, tie_points
from qfab.numerics import MinifloatFormat as MF

GENERIC = {
    "E3M4-ieee": MF(3, 4, special="ieee"),
    "E3M4-fn": MF(3, 4, special="fn"),
    "E2M2-nosub-fn": MF(2, 2, subnormals=False, special="fn"),
    "E2M2-nosub-none": MF(2, 2, subnormals=False, special="none"),
    "E5M0-ieee": MF(5, 0, special="ieee"),
    "E5M0-nosub-fn": MF(5, 0, subnormals=False, special="fn"),
    "E4M0-nosub-none": MF(4, 0, subnormals=False, special="none"),
    "E1M2-none": MF(1, 2, special="none"),
    "E1M3-fn": MF(1, 3, special="fn"),
    "E3M3-fnuz-b4": MF(3, 3, bias=4, special="fnuz"),
    "E6M1-ieee": MF(6, 1, special="ieee"),
    "E4M2-nosub-ieee": MF(4, 2, subnormals=False, special="ieee"),
    "E3M1-nosub-fnuz": MF(3, 1, subnormals=False, special="fnuz"),
    "E8M0-none": MF(8, 0, special="none"),
    "E7M2-fn-b70": MF(7, 2, bias=70, special="fn"),
    "E4M3-fn-b-3": MF(4, 3, bias=-3, special="fn"),
    "E2M1-fn-sat": MF(2, 1, special="fn", saturate=True),
    "E5M2-ieee-sat": MF(5, 2, special="ieee", saturate=True),
    "E4M3-fnuz-sat": MF(4, 3, bias=8, special="fnuz", saturate=True),
}


def gfloat_safe(fmt: MF, points: np.ndarray) -> np.ndarray:
    """Where gfloat's rounder is right: without subnormals it does not know that the bottom
    binade starts at the second code, so compare it only from exponent field 1 up."""
    if fmt.subnormals:
        return np.ones(points.shape, dtype=bool)
    return np.abs(points) >= np.ldexp(1.0, 1 - fmt.bias)


@pytest.mark.parametrize("name", GENERIC)
def test_decode_every_code_matches_gfloat(name: str) -> None:
    fmt = GENERIC[name]
    codes = fmt.all_codes()
    ours = fmt.decode(codes)
    theirs = gfloat.decode_ndarray(gfloat_info(fmt), codes)
    nan = np.isnan(ours)
    assert np.array_equal(nan, np.isnan(theirs))
    assert same_floats(ours[~nan], theirs[~nan])
    assert fmt.max_value == gfloat_info(fmt).max


@pytest.mark.parametrize("name", GENERIC)
def test_every_number_code_round_trips(name: str) -> None:
    fmt = GENERIC[name]
    codes = fmt.all_codes()
    number = ~fmt.is_nan(codes)
    np.testing.assert_array_equal(fmt.encode(fmt.decode(codes[number])), codes[number])


@pytest.mark.parametrize("name", GENERIC)
def test_encode_at_ties_matches_gfloat(name: str) -> None:
    fmt = GENERIC[name]
    points = tie_points(fmt)
    points = points[gfloat_safe(fmt, points)]
    if fmt.saturate and fmt.has_inf:
        points = points[np.isfinite(points)]  # gfloat saturates infinity; we keep it
    ours = fmt.encode(points)
    theirs = gfloat_encode(fmt, points)
    nan = fmt.is_nan(ours)
    assert np.array_equal(nan, np.isnan(gfloat.decode_ndarray(gfloat_info(fmt), theirs)))
    np.testing.assert_array_equal(ours[~nan], theirs[~nan])


@pytest.mark.parametrize("name", GENERIC)
def test_encode_at_ties_matches_brute_force(name: str) -> None:
    fmt = GENERIC[name]
    points = tie_points(fmt)
    points = points[np.abs(points) <= fmt.max_value]
    np.testing.assert_array_equal(fmt.encode(points), nearest_codes(fmt, points))


@pytest.mark.parametrize("name", ["E4M3FN", "E5M2"])
def test_presets_at_float64_neighbours_match_brute_force(name: str) -> None:
    fmt = getattr(MF, name)
    points = tie_points(fmt)
    inside = np.abs(points) <= fmt.max_value
    np.testing.assert_array_equal(fmt.encode(points[inside]), nearest_codes(fmt, points[inside]))


def test_e8m7_ieee_is_bfloat16() -> None:
    fmt = MF(8, 7, special="ieee")
    codes = fmt.all_codes()
    with np.errstate(invalid="ignore"):  # bfloat16 NaN payloads
        theirs = codes.astype(np.uint16).view(ml_dtypes.bfloat16).astype(np.float64)
    assert same_floats(fmt.decode(codes), theirs)
    points = tie_points(fmt, np.float32)
    with np.errstate(over="ignore"):
        expected = points.astype(ml_dtypes.bfloat16).view(np.uint16).astype(np.int64)
    np.testing.assert_array_equal(fmt.encode(points), expected)


def test_no_subnormal_bottom_binade() -> None:
    fmt = MF(2, 2, subnormals=False, special="none")  # bias 1: 0, 0.625, 0.75, 0.875, 1, ...
    assert fmt.decode([0, 1, 2, 3, 4]).tolist() == [0.0, 0.625, 0.75, 0.875, 1.0]
    assert fmt.encode([0.3125, 0.3126, 0.5, 0.6875, 0.7]).tolist() == [0, 1, 1, 2, 2]
    assert fmt.lsb_exponent == -3 and fmt.min_normal == 0.5


def test_format_without_zero() -> None:
    fmt = MF(4, 0, subnormals=False, special="none")  # every code a power of two
    assert not fmt.has_zero and fmt.min_subnormal == 2.0**-7
    signed = fmt.sign_bit
    assert fmt.encode([0.0, -0.0, 1e-30, -1e-30]).tolist() == [0, signed, 0, signed]
    assert fmt.encode([2.0**-7 * 1.5, 2.0**-6 * 1.5]).tolist() == [0, 2]  # ties to even field
