"""Rounding to integers, of real (float64) values and of integers divided by a power of two.

The four modes are the ones the hardware requantizer implements:

- ``"floor"``: toward minus infinity (drop the low bits of a two's-complement word);
- ``"half_up"``: to nearest, ties toward plus infinity (``floor(x + 1/2)``);
- ``"half_even"``: to nearest, ties to the even integer (IEEE 754 default);
- ``"half_away"``: to nearest, ties away from zero.

``round_shift`` is written so that every intermediate stays within the width of its input: the
hardware mirrors it with an arithmetic shift, a remainder compare and an increment.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["ROUNDINGS", "check_rounding", "ldexp_round_odd", "round_real", "round_shift"]

ROUNDINGS: tuple[str, ...] = ("floor", "half_up", "half_even", "half_away")

_INT64_SHIFT_LIMIT = 62


def check_rounding(rounding: str) -> str:
    """Return ``rounding`` if it names a mode in ``ROUNDINGS``, else raise ``ValueError``."""
    if rounding not in ROUNDINGS:
        raise ValueError(f"unknown rounding {rounding!r}; expected one of {', '.join(ROUNDINGS)}")
    return rounding


def _round_up(q: np.ndarray, above: np.ndarray, tie: np.ndarray, rounding: str) -> np.ndarray:
    """Whether to add one to the floor ``q``, given the remainder is above / at one half."""
    if rounding == "floor":
        return np.zeros(np.shape(q), dtype=bool)
    if rounding == "half_up":
        return above | tie
    if rounding == "half_even":
        return above | (tie & ((q & 1) == 1))
    return above | (tie & (q >= 0))


def round_real(values: npt.ArrayLike, rounding: str = "half_even") -> np.ndarray:
    """Round float values to integers, exactly, and return them as float64.

    Ties are detected exactly: ``x - floor(x)`` can round in float64 for negative ``x``, so
    ``x`` is compared with ``floor(x) + 1/2`` instead, which is exact whenever ``x`` is not
    already an integer. NaN and infinities pass through unchanged.

    Parameters
    ----------
    values : array_like of float
        Values to round.
    rounding : str
        One of ``ROUNDINGS``.

    Returns
    -------
    numpy.ndarray
        float64 array of integral values (or NaN / infinity where the input was).
    """
    check_rounding(rounding)
    x = np.asarray(values, dtype=np.float64)
    q = np.floor(x)
    if rounding == "floor":
        return q
    with np.errstate(invalid="ignore"):
        fractional = np.isfinite(x) & (x != q)
        mid = q + 0.5
        above = fractional & (x > mid)
        tie = fractional & (x == mid)
        if rounding == "half_even":
            up = above | (tie & (np.fmod(q, 2.0) != 0))
        elif rounding == "half_up":
            up = above | tie
        else:
            up = above | (tie & (q >= 0))
    return q + up


def _as_integer_array(x: npt.ArrayLike, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype == object:
        return arr
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must be an integer array, got dtype {arr.dtype}")
    return arr.astype(np.int64)


def _fits_int64_path(x: np.ndarray, shift: np.ndarray) -> bool:
    if x.dtype == object or shift.size == 0 or x.size == 0:
        return x.dtype != object
    smax = int(shift.max())
    smin = int(shift.min())
    if smax > _INT64_SHIFT_LIMIT:
        return False
    if smin < 0:
        magnitude = max(int(x.max()), -int(x.min()))
        return magnitude.bit_length() - smin <= _INT64_SHIFT_LIMIT
    return True


def round_shift(
    x: npt.ArrayLike, shift: npt.ArrayLike, rounding: str = "half_even"
) -> np.ndarray:
    """Divide integers by ``2**shift`` and round the quotient to an integer, exactly.

    ``shift`` may be negative (then the result is ``x * 2**-shift``, exact) and may differ per
    element (it broadcasts against ``x``). The computation is the one the hardware does:
    ``q = x >> shift`` (floor), ``r = x - (q << shift)`` (the dropped bits, ``0 <= r <
    2**shift``), and ``q + 1`` when ``r`` is above one half (``2**(shift-1)``), or equal to it
    and the mode rounds that tie up (``half_up``: always; ``half_even``: when ``q`` is odd;
    ``half_away``: when ``q >= 0``).

    Parameters
    ----------
    x : array_like of int
        Integers (any NumPy integer dtype, or an object array of Python ints).
    shift : int or array_like of int
        Number of fractional bits to drop.
    rounding : str
        One of ``ROUNDINGS``.

    Returns
    -------
    numpy.ndarray
        int64 for integer input (``OverflowError`` if a result does not fit), or an object array
        of Python ints for object input.
    """
    check_rounding(rounding)
    xa = _as_integer_array(x, "x")
    sa = _as_integer_array(shift, "shift")
    if sa.dtype == object:
        sa = sa.astype(np.int64)
    xa, sa = np.broadcast_arrays(xa, sa)
    object_input = xa.dtype == object
    if _fits_int64_path(xa, sa):
        return _round_shift_core(xa, sa, rounding)
    result = _round_shift_core(xa.astype(object), sa.astype(object), rounding)
    if object_input:
        return result
    return _object_to_int64(result)


def _round_shift_core(x: np.ndarray, s: np.ndarray, rounding: str) -> np.ndarray:
    zero = np.zeros_like(s)
    right = np.maximum(s, zero)
    left = np.maximum(-s, zero)
    x = x << left
    q = x >> right
    r = x - (q << right)
    half = (np.ones_like(right) << right) >> 1
    positive = right > 0
    above = positive & (r > half)
    tie = positive & (r == half)
    up = _round_up(q, above, tie, rounding)
    return q + up.astype(q.dtype) if q.dtype != object else q + up


def _object_to_int64(values: np.ndarray) -> np.ndarray:
    """Convert an object array of Python ints to int64, refusing values that do not fit."""
    if values.size:
        hi = max(values.flat)
        lo = min(values.flat)
        if hi > np.iinfo(np.int64).max or lo < np.iinfo(np.int64).min:
            raise OverflowError(f"result range [{lo}, {hi}] does not fit in int64")
    return values.astype(np.int64)


# A float64 past 2**900 is above every format's range, and nowhere near float64 overflow.
_LDEXP_CEILING = 900


def ldexp_round_odd(n: npt.ArrayLike, exponent: npt.ArrayLike) -> np.ndarray:
    """``n * 2**exponent`` as float64, with the integer ``n`` rounded to odd at 52 bits.

    Round-to-odd keeps a sticky bit: the float is exact when ``n`` fits, and otherwise has its
    last bit set, so rounding it again to any precision of 50 bits or fewer gives the same
    result as rounding the exact product once. That is how an accumulator of any width is
    encoded into a minifloat with one rounding. Exponents beyond +900 are clamped there (the
    result stays a finite value above every format's range); very negative ones underflow to
    a zero of the sign of ``n``.

    Parameters
    ----------
    n : array_like of int
        Integers (any NumPy integer dtype, or an object array of Python ints).
    exponent : int or array_like of int
        Power of two to scale by; broadcasts with ``n``.
    """
    na = _as_integer_array(n, "n")
    ea = _as_integer_array(exponent, "exponent")
    if ea.dtype == object:
        ea = ea.astype(np.int64)
    na, ea = np.broadcast_arrays(na, ea)
    if na.dtype != object:
        magnitude = np.abs(na.astype(np.int64)).astype(np.uint64)  # |-2**63| wraps to 2**63
        excess = np.maximum(np.frexp(magnitude.astype(np.float64))[1] - 52, 0).astype(np.uint64)
        kept = magnitude >> excess
        sticky = (magnitude & ((np.uint64(1) << excess) - np.uint64(1))) != 0
        kept = kept | sticky.astype(np.uint64)
        scale = np.minimum(excess.astype(np.int64) + ea, _LDEXP_CEILING)
        result = np.ldexp(kept.astype(np.float64), scale)
        return np.where(na < 0, -result, result)
    out = np.empty(na.shape, dtype=np.float64)
    for index, (value, exp) in enumerate(zip(na.flat, ea.flat, strict=True)):
        magnitude = abs(int(value))
        excess = max(magnitude.bit_length() - 52, 0)
        kept = (magnitude >> excess) | int(magnitude & ((1 << excess) - 1) != 0)
        scaled = float(np.ldexp(float(kept), min(excess + int(exp), _LDEXP_CEILING)))
        out.flat[index] = -scaled if value < 0 else scaled
    return out
