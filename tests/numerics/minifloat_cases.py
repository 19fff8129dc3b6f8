"""Shared helpers for the minifloat tests: test points around every tie, gfloat descriptions."""

from __future__ import annotations

from fractions import Fraction

import gfloat
import numpy as np
from qfab.numerics import MinifloatFormat


def finite_sorted_values(fmt: MinifloatFormat) -> np.ndarray:
    """Every distinct finite value of ``fmt``, ascending (+0 and -0 count once)."""
    values = fmt.decode(fmt.all_codes())
    return np.unique(values[np.isfinite(values)])


def overflow_thresholds(fmt: MinifloatFormat) -> list[float]:
    """Midpoints between +-max_value and the next magnitude an unbounded exponent would give."""
    m = fmt.man_bits
    field = fmt.code_max >> m
    quantum = float(np.ldexp(1.0, max(field, int(fmt.subnormals)) - fmt.bias - m))
    top = fmt.max_value + quantum / 2
    return [top, -top]


def tie_points(fmt: MinifloatFormat, ulp_of: type = np.float64) -> np.ndarray:
    """Every value, every midpoint between adjacent values and the overflow thresholds, each
    with its neighbours one ulp of ``ulp_of`` either side, plus zeros, infinities and huge
    values. Returned as float64 (float32 neighbours are float64 values too)."""
    values = finite_sorted_values(fmt)
    mids = (values[:-1] + values[1:]) / 2
    centres = np.concatenate([values, mids, overflow_thresholds(fmt)]).astype(ulp_of)
    up = np.nextafter(centres, ulp_of(np.inf))
    down = np.nextafter(centres, ulp_of(-np.inf))
    points = np.concatenate([centres, up, down]).astype(np.float64)
    extra = [0.0, -0.0, np.inf, -np.inf, 1e300, -1e300, 5e-324, -5e-324, 2.0 * fmt.max_value]
    return np.concatenate([points, extra])


def gfloat_info(fmt: MinifloatFormat) -> gfloat.FormatInfo:
    """The gfloat description of ``fmt``: an independent decoder and rounder."""
    if fmt.special == "ieee":
        high_nans = (1 << fmt.man_bits) - 1
    elif fmt.special == "fn":
        high_nans = 1
    else:
        high_nans = 0
    return gfloat.FormatInfo(
        str(fmt),
        k=fmt.bits,
        precision=fmt.man_bits + 1,
        bias=fmt.bias,
        is_signed=True,
        domain=gfloat.Domain.Extended if fmt.special == "ieee" else gfloat.Domain.Finite,
        has_nz=fmt.special != "fnuz",
        num_high_nans=high_nans,
        has_subnormals=fmt.subnormals,
        is_twos_complement=False,
    )


def gfloat_encode(fmt: MinifloatFormat, values: np.ndarray) -> np.ndarray:
    """gfloat's round-to-nearest-even followed by its encoder."""
    info = gfloat_info(fmt)
    sat = fmt.saturate or fmt.special == "none"
    rounded = gfloat.round_ndarray(info, values, gfloat.RoundMode.TiesToEven, sat=sat)
    return gfloat.encode_ndarray(info, rounded).astype(np.int64)


def same_floats(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal as float64, with NaN equal to NaN and the sign of zeros (and NaNs) compared."""
    same_values = np.array_equal(a, b, equal_nan=True)
    return bool(same_values and np.array_equal(np.signbit(a), np.signbit(b)))


def nearest_codes(fmt: MinifloatFormat, points) -> np.ndarray:
    """Brute-force encoder for ``|x| <= max_value``: the nearest finite value by exact rational
    distance, ties to the even code; a zero result takes the sign of ``x`` where the format
    has a negative zero. ``points`` are floats or ``Fraction``s (which have no -0). Finite
    values come from gfloat's decoder, not from ``fmt``."""
    info = gfloat_info(fmt)
    codes = fmt.all_codes()
    values = gfloat.decode_ndarray(info, codes)
    keep = np.isfinite(values) & ~((values == 0) & (codes >= fmt.sign_bit))
    codes, values = codes[keep], values[keep]
    has_zero = bool((values == 0).any())
    approx = np.array([float(x) for x in points], dtype=np.float64)
    with np.errstate(invalid="ignore"):
        distance = np.abs(approx[:, None] - values[None, :])
    best = np.argsort(distance, axis=1, kind="stable")[:, :3]
    out = np.empty(len(approx), dtype=np.int64)
    for i, x in enumerate(points):
        fx = x if isinstance(x, Fraction) else Fraction(float(x))
        ranked = sorted(
            (abs(fx - Fraction(values[j])), int(codes[j]) & 1, int(codes[j])) for j in best[i]
        )
        code = ranked[0][2]
        negative = fx < 0 or (not isinstance(x, Fraction) and bool(np.signbit(x)))
        if fx == 0 and not has_zero:
            code = fmt.sign_bit if negative and fmt.special != "fnuz" else 0
        elif values[codes == code][0] == 0 and negative and fmt.special != "fnuz":
            code = fmt.sign_bit
        out[i] = code
    return out
