"""Rounding float values to a minifloat format's codes: ``MinifloatFormat.encode``.

``encode`` rounds to nearest, ties to the code with an even last bit (round-half-even on the
mantissa, and on the exponent for ``man_bits == 0``). A value is out of range when it rounds
(as if the exponent were unbounded) to a magnitude above ``max_value``. It then becomes
``+-max_value`` if ``saturate`` or the format has no infinity and no NaN (``"none"``, as
``ml_dtypes`` does), else infinity (``"ieee"``) or NaN (``"fn"``, ``"fnuz"``). Infinity encodes
to infinity where the format has one, even when saturating (so every code that is a number
round-trips); elsewhere it is an out-of-range value like any other. NaN encodes to the
quiet NaN of its sign (``"ieee"``: mantissa MSB set; ``"fn"``: all ones; ``"fnuz"``: the
negative-zero code); a format without NaN raises ``ValueError`` for it. Negative zero encodes to
the negative-zero code where there is one, else to code 0. In a format without zero, both
zeros go to the smallest magnitude, with their sign where that code is a number.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from qfab.numerics.minifloat import MinifloatFormat


def rounding_table(fmt: MinifloatFormat) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted finite values bracketed by the two overflow thresholds, their codes, parities.

    The end entries are the values the codes after the extremes would have with an
    unbounded exponent: rounding to one of them is an overflow.
    """
    table = fmt._table
    codes = fmt.all_codes()
    keep = np.isfinite(table) & ~((table == 0) & (codes >= fmt.sign_bit))
    values, kept = table[keep], codes[keep]
    order = np.argsort(values, kind="stable")
    values, kept = values[order], kept[order]
    top_mag = fmt._fixed_magnitude(np.array([fmt.code_max + 1]))[0]
    top = float(np.ldexp(float(top_mag), fmt.lsb_exponent))
    most_negative = int(kept[0])
    bottom_mag = fmt._fixed_magnitude(np.array([(most_negative - fmt.sign_bit) + 1]))[0]
    bottom = -float(np.ldexp(float(bottom_mag), fmt.lsb_exponent))
    values = np.concatenate([[bottom], values, [top]])
    kept = np.concatenate([[most_negative + 1], kept, [fmt.code_max + 1]])
    return values, kept, kept & 1


def encode(fmt: MinifloatFormat, values: npt.ArrayLike) -> np.ndarray:
    """Round float values to ``fmt``'s codes (int64): nearest, ties to even, specials as
    above (``fmt._search``: its :func:`rounding_table`, made once)."""
    v = np.asarray(values, dtype=np.float64)
    table, codes, parity = fmt._search
    nan = np.isnan(v)
    if nan.any() and not fmt.has_nan:
        raise ValueError(f"{fmt} has no NaN code to encode NaN into")
    safe = np.where(nan, 0.0, v)
    last = table.size - 2
    lo = np.clip(np.searchsorted(table, safe, side="right") - 1, 0, last)
    midpoint2 = table[lo] + table[lo + 1]
    with np.errstate(over="ignore"):
        twice = safe * 2.0
    up = (twice > midpoint2) | ((twice == midpoint2) & (parity[lo] == 1))
    index = lo + up
    out = codes[index]
    negative = np.signbit(v)
    sign = np.where(negative, fmt.sign_bit, 0)

    if fmt.has_zero:
        if fmt.has_negative_zero:
            out = np.where((out == 0) & negative, fmt.sign_bit, out)
    else:
        # Zero lies halfway between -x and +x: the sign of the zero decides.
        zero_code = fmt.sign_bit if fmt.special != "fnuz" else 0
        out = np.where((safe == 0) & negative, zero_code, np.where(safe == 0, 0, out))

    overflow = (index == 0) | (index == table.size - 1)
    if overflow.any():
        if fmt.saturate or fmt.special == "none":
            fill = fmt.code_max | sign
        elif fmt.special == "ieee":
            fill = fmt.inf_code | sign
        elif fmt.special == "fn":
            fill = fmt.nan_code | sign
        else:
            fill = np.full(v.shape, fmt.nan_code)
        out = np.where(overflow, fill, out)
        if fmt.special == "ieee":
            out = np.where(np.isinf(v), fmt.inf_code | sign, out)
    if nan.any():
        nan_fill = fmt.nan_code if fmt.special == "fnuz" else fmt.nan_code | sign
        out = np.where(nan, nan_fill, out)
    return np.asarray(out, dtype=np.int64)
