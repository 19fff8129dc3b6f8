"""The OCP presets (and the other ml_dtypes formats) against ml_dtypes and gfloat, exhaustively."""

from __future__ import annotations

import gfloat
import ml_dtypes
import numpy as np
import pytest
from gfloat import formats as gf
from minifloat_cases import gfloat_encode, gfloat_info, same_floats, tie_points
from qfab.numerics import MinifloatFormat

PRESETS = {
    "E4M3FN": (MinifloatFormat.E4M3FN, ml_dtypes.float8_e4m3fn, gf.format_info_ocp_e4m3),
    "E5M2": (MinifloatFormat.E5M2, ml_dtypes.float8_e5m2, gf.format_info_ocp_e5m2),
    "E3M2FN": (MinifloatFormat.E3M2FN, ml_dtypes.float6_e3m2fn, gf.format_info_ocp_e3m2),
    "E2M3FN": (MinifloatFormat.E2M3FN, ml_dtypes.float6_e2m3fn, gf.format_info_ocp_e2m3),
    "E2M1FN": (MinifloatFormat.E2M1FN, ml_dtypes.float4_e2m1fn, gf.format_info_ocp_e2m1),
}

# ml_dtypes formats that are not presets but are spelled by the same parameters.
OTHERS = {
    "e4m3": (MinifloatFormat(4, 3, special="ieee"), ml_dtypes.float8_e4m3),
    "e3m4": (MinifloatFormat(3, 4, special="ieee"), ml_dtypes.float8_e3m4),
    "e4m3fnuz": (MinifloatFormat(4, 3, bias=8, special="fnuz"), ml_dtypes.float8_e4m3fnuz),
    "e5m2fnuz": (MinifloatFormat(5, 2, bias=16, special="fnuz"), ml_dtypes.float8_e5m2fnuz),
    "e4m3b11fnuz": (MinifloatFormat(4, 3, bias=11, special="fnuz"), ml_dtypes.float8_e4m3b11fnuz),
}

ML_CASES = {**{k: v[:2] for k, v in PRESETS.items()}, **OTHERS}


def ml_decode(dtype: type, codes: np.ndarray) -> np.ndarray:
    return codes.astype(np.uint8).view(dtype).astype(np.float64)


def ml_encode(dtype: type, values: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # ml_dtypes passes through float32, where 1e300 is inf
        encoded = np.asarray(values, dtype=np.float64).astype(dtype)
    return encoded.view(np.uint8).astype(np.int64)


@pytest.mark.parametrize("name", ML_CASES)
def test_decode_every_code_matches_ml_dtypes(name: str) -> None:
    fmt, dtype = ML_CASES[name]
    codes = fmt.all_codes()
    assert same_floats(fmt.decode(codes), ml_decode(dtype, codes))


@pytest.mark.parametrize("name", ML_CASES)
def test_reencode_every_code_matches_ml_dtypes(name: str) -> None:
    fmt, dtype = ML_CASES[name]
    values = fmt.decode(fmt.all_codes())
    np.testing.assert_array_equal(fmt.encode(values), ml_encode(dtype, values))


@pytest.mark.parametrize("name", ML_CASES)
def test_encode_at_ties_and_neighbours_matches_ml_dtypes(name: str) -> None:
    # ml_dtypes converts float64 through float32, so one float64 ulp off a tie it rounds twice
    # and lands on the tie (-431.99999999999994 becomes -448 in E4M3FN). The neighbours here
    # are one float32 ulp away; the float64 ones are checked against gfloat and brute force.
    fmt, dtype = ML_CASES[name]
    points = tie_points(fmt, np.float32)
    if not fmt.has_nan:
        assert not np.isnan(ml_decode(dtype, ml_encode(dtype, points))).any()
    np.testing.assert_array_equal(fmt.encode(points), ml_encode(dtype, points))


@pytest.mark.parametrize("name", ML_CASES)
def test_nan_and_infinity_match_ml_dtypes(name: str) -> None:
    fmt, dtype = ML_CASES[name]
    specials = np.array([np.inf, -np.inf, 1e30, -1e30, 3.0 * fmt.max_value])
    np.testing.assert_array_equal(fmt.encode(specials), ml_encode(dtype, specials))
    nans = np.array([np.nan, -np.nan])
    if fmt.has_nan:
        np.testing.assert_array_equal(fmt.encode(nans), ml_encode(dtype, nans))
    else:
        with pytest.raises(ValueError, match="NaN"):
            fmt.encode(nans)


@pytest.mark.parametrize("name", PRESETS)
def test_decode_every_code_matches_gfloat(name: str) -> None:
    fmt, _, info = PRESETS[name]
    codes = fmt.all_codes()
    ours = fmt.decode(codes)
    theirs = gfloat.decode_ndarray(info, codes)
    finite = ~np.isnan(ours)
    assert same_floats(ours[finite], theirs[finite])
    assert np.array_equal(np.isnan(ours), np.isnan(theirs))
    assert fmt.max_value == info.max


@pytest.mark.parametrize("name", PRESETS)
def test_our_gfloat_description_is_gfloats_own(name: str) -> None:
    fmt, _, info = PRESETS[name]
    mine = gfloat_info(fmt)
    for field in ("k", "precision", "bias", "domain", "has_nz", "num_high_nans", "has_subnormals"):
        assert getattr(mine, field) == getattr(info, field), field


@pytest.mark.parametrize("name", PRESETS)
def test_reencode_and_ties_match_gfloat(name: str) -> None:
    fmt, _, _ = PRESETS[name]
    values = fmt.decode(fmt.all_codes())
    points = np.concatenate([values[~np.isnan(values)], tie_points(fmt)])
    ours = fmt.encode(points)
    theirs = gfloat_encode(fmt, points)
    nan = np.isnan(fmt.decode(ours))
    assert np.array_equal(nan, np.isnan(gfloat.decode_ndarray(gfloat_info(fmt), theirs)))
    np.testing.assert_array_equal(ours[~nan], theirs[~nan])


@pytest.mark.parametrize("name", PRESETS)
def test_saturating_variant_matches_gfloat_sat(name: str) -> None:
    base = PRESETS[name][0]
    fmt = MinifloatFormat(base.exp_bits, base.man_bits, special=base.special, saturate=True)
    points = tie_points(fmt)
    finite = np.isfinite(points)
    np.testing.assert_array_equal(fmt.encode(points[finite]), gfloat_encode(fmt, points[finite]))
    # gfloat saturates infinity too; here infinity stays infinity where the format has one.
    expected = [fmt.inf_code, fmt.inf_code | fmt.sign_bit] if fmt.has_inf else [
        fmt.code_max, fmt.code_max | fmt.sign_bit]
    assert fmt.encode([np.inf, -np.inf]).tolist() == expected


def test_preset_parameters() -> None:
    assert [MinifloatFormat.E4M3FN.bits, MinifloatFormat.E5M2.bits] == [8, 8]
    assert [MinifloatFormat.E3M2FN.bits, MinifloatFormat.E2M1FN.bits] == [6, 4]
    assert (MinifloatFormat.E4M3FN.max_value, MinifloatFormat.E5M2.max_value) == (448.0, 57344.0)
    assert MinifloatFormat.E2M1FN.max_value == 6.0 and MinifloatFormat.E2M3FN.max_value == 7.5
    assert MinifloatFormat.E5M2.min_subnormal == 2.0**-16
    assert str(MinifloatFormat.E4M3FN) == "E4M3FN"


def test_names_of_other_formats() -> None:
    assert str(MinifloatFormat(4, 3, bias=8, special="fnuz")) == "E4M3[fnuz,bias=8]"
    assert str(MinifloatFormat(2, 2, subnormals=False, special="none", saturate=True)) == (
        "E2M2[none,nosub,sat]")
    assert str(MinifloatFormat(5, 2, special="ieee", saturate=True)) == "E5M2[ieee,sat]"
