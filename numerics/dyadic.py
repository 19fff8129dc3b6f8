"""Dyadic requantization scales: ``mult / 2**shift`` with a fixed-width integer multiplier.

After lowering, the only scaling a layer does is HAWQ-V3's ``y = round(acc * mult / 2**shift)``:
an integer multiply and a rounding shift, which the hardware requantizer mirrors bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from qfab.numerics.rounding import check_rounding, round_shift

__all__ = ["Dyadic"]

_MAX_MULT_BITS = 32


def _normalize(name: str, value: Any) -> int | np.ndarray:
    if isinstance(value, bool):
        raise ValueError(f"Dyadic {name} must be an integer or integer array, got {value!r}")
    if isinstance(value, (int, np.integer)):
        return int(value)
    arr = np.asarray(value)
    if arr.dtype == object or arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"Dyadic {name} must be an integer or integer array, got {value!r}")
    return arr.astype(np.int64)


@dataclass(frozen=True, eq=False)
class Dyadic:
    """A positive scale ``mult / 2**shift`` (per tensor, or per channel with arrays).

    Parameters
    ----------
    mult : int or numpy.ndarray of int
        Multiplier, ``>= 0``. ``from_scale`` gives ``2**(bits-1) <= mult < 2**bits``.
    shift : int or numpy.ndarray of int
        Right shift; negative means a left shift. Broadcasts with ``mult``.
    scale : float or numpy.ndarray or None
        The real scale this dyadic approximates (set by ``from_scale``); only ``rel_error``
        reads it, and equality ignores it.

    Members
    -------
    value : float or numpy.ndarray
        ``mult * 2**-shift`` as float64.
    rel_error : float or numpy.ndarray
        ``|value - scale| / scale``, at most ``2**-bits`` after ``from_scale``.

    Notes
    -----
    Error against float requantization. ``from_scale(s, bits)`` rounds ``s`` to ``bits``
    significant bits, so ``|mult / 2**shift - s| <= 2**-bits * s`` (``rel_error``). For an
    accumulator ``acc``, the exact products differ by ``d = |acc * s| * rel_error <= |acc * s| *
    2**-bits``. Rounding is monotone and commutes with adding integers, so for the same mode
    ``|apply(acc) - round(acc * s)| <= ceil(d)``: at most one step whenever ``|acc * s| <=
    2**bits`` (for 16 bits, any output below 65536), and exactly equal whenever
    ``acc * s`` is at least ``d`` away from the nearest rounding boundary. Here ``round(acc *
    s)`` is the exact real rounding of the product with the float64 scale ``s``; a float32
    computation adds its own error on top.
    """

    mult: int | np.ndarray
    shift: int | np.ndarray
    scale: float | np.ndarray | None = None

    def __post_init__(self) -> None:
        mult = _normalize("mult", self.mult)
        shift = _normalize("shift", self.shift)
        if np.any(np.asarray(mult) < 0):
            raise ValueError(f"Dyadic mult must be >= 0, got {self.mult!r}")
        try:
            np.broadcast_shapes(np.shape(mult), np.shape(shift))
        except ValueError:
            raise ValueError(
                f"Dyadic mult shape {np.shape(mult)} and shift shape {np.shape(shift)} "
                "do not broadcast"
            ) from None
        object.__setattr__(self, "mult", mult)
        object.__setattr__(self, "shift", shift)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Dyadic):
            return NotImplemented
        return bool(
            np.array_equal(self.mult, other.mult) and np.array_equal(self.shift, other.shift)
        )

    def __hash__(self) -> int:
        return hash((np.asarray(self.mult).tobytes(), np.asarray(self.shift).tobytes()))

    @classmethod
    def from_scale(cls, scale: float | npt.ArrayLike, bits: int = 16) -> Dyadic:
        """The nearest dyadic number to ``scale`` with a ``bits``-bit multiplier.

        ``mult`` is ``scale * 2**shift`` rounded half to even, with ``shift`` chosen so that
        ``2**(bits-1) <= mult < 2**bits``; ``shift`` is negative for large scales and large
        for tiny ones. A float64 scale is itself dyadic, so the choice is exact.

        Parameters
        ----------
        scale : float or array_like of float
            Positive finite scale(s); an array gives per-channel ``mult`` and ``shift``.
        bits : int
            Multiplier width, 1 to 32.
        """
        if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not (
            1 <= bits <= _MAX_MULT_BITS
        ):
            raise ValueError(f"Dyadic bits must be an integer in 1..{_MAX_MULT_BITS}, got {bits!r}")
        s = np.asarray(scale, dtype=np.float64)
        if s.size == 0 or not np.all(np.isfinite(s) & (s > 0)):
            raise ValueError(f"Dyadic scale must be positive and finite, got {scale!r}")
        fraction, exponent = np.frexp(s)
        mult = np.rint(np.ldexp(fraction, int(bits))).astype(np.int64)
        carry = mult == (1 << bits)
        mult = np.where(carry, 1 << (bits - 1), mult)
        shift = int(bits) - (exponent.astype(np.int64) + carry)
        if s.ndim == 0:
            return cls(int(mult), int(shift), float(s))
        return cls(mult, shift, s.copy())

    @property
    def value(self) -> float | np.ndarray:
        result = np.ldexp(np.asarray(self.mult, dtype=np.float64), -np.asarray(self.shift))
        return float(result) if np.ndim(result) == 0 else result

    @property
    def rel_error(self) -> float | np.ndarray:
        if self.scale is None:
            raise ValueError("this Dyadic was built without a scale, so it has no rel_error")
        s = np.asarray(self.scale, dtype=np.float64)
        err = np.abs(np.asarray(self.value) - s) / s
        return float(err) if np.ndim(err) == 0 else err

    def apply(self, acc: npt.ArrayLike, rounding: str = "half_even") -> np.ndarray:
        """``round(acc * mult / 2**shift)``, exactly, as int64.

        ``acc`` broadcasts with ``mult`` and ``shift`` (e.g. shape ``(N, C)`` against
        per-channel ``(C,)``). When ``acc * mult`` could leave int64 (``|acc|`` up to 2**47 with
        a 16-bit ``mult``, say) the product is formed in Python integers; the result must fit
        int64 (``OverflowError`` otherwise).
        """
        check_rounding(rounding)
        a = np.asarray(acc)
        if a.dtype == bool or not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"Dyadic.apply needs integer accumulators, got dtype {a.dtype}")
        a = a.astype(np.int64)
        mult = np.asarray(self.mult, dtype=np.int64)
        if a.size and mult.size:
            amax = max(int(a.max()), -int(a.min()))
            if amax.bit_length() + int(mult.max()).bit_length() <= 62:
                return round_shift(a * mult, self.shift, rounding)
        product = a.astype(object) * mult.astype(object)
        result = round_shift(product, np.asarray(self.shift, dtype=np.int64), rounding)
        if result.size:
            lo, hi = min(result.flat), max(result.flat)
            if lo < np.iinfo(np.int64).min or hi > np.iinfo(np.int64).max:
                raise OverflowError(f"Dyadic.apply result range [{lo}, {hi}] exceeds int64")
        return result.astype(np.int64)
