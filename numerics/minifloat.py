"""Minifloat formats: sign, ``exp_bits`` exponent bits and ``man_bits`` mantissa bits.

A code is an unsigned integer ``sign << (exp_bits + man_bits) | field << man_bits | man``.
With ``s0 = 1`` when subnormals are on and 0 otherwise, its magnitude is

- ``man * 2**(1 - bias - man_bits)`` when ``field == 0`` and subnormals are on;
- ``(2**man_bits + man) * 2**(field - bias - man_bits)`` otherwise,

except that without subnormals the code with ``field == 0`` and ``man == 0`` is zero when
``man_bits > 0`` (so a format without subnormals keeps its zero and gains precision near it;
with ``man_bits == 0`` it has no zero at all). This is the convention of ``gfloat``. Every
finite value is an integer multiple of ``2**lsb_exponent`` with ``lsb_exponent = s0 - bias -
man_bits``, which is the fixed-point word the hardware accumulates in.

Special codes, by ``special``:

- ``"ieee"``: the top exponent field is infinity (mantissa 0) or NaN (mantissa not 0);
- ``"fn"``: no infinity; the codes with every exponent and mantissa bit set are NaN;
- ``"fnuz"``: no infinity and no negative zero; the negative-zero code is the one NaN;
- ``"none"``: every code is a finite number.

``encode`` rounds to nearest, ties to even, with rules for overflow, infinity, NaN and the
zeros: :mod:`qfab.numerics.minifloat_encode`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import numpy.typing as npt
from qfab.numerics.minifloat_encode import encode, rounding_table
from qfab.numerics.rounding import ldexp_round_odd

__all__ = ["SPECIALS", "MinifloatFormat"]

SPECIALS: tuple[str, ...] = ("ieee", "fn", "fnuz", "none")

# Keeps every value, midpoint and fixed-point scale comfortably inside float64's normal range.
_MAX_ABS_BIAS = 512
_INT64_LIMIT = 1 << 62


def _check_int(name: str, value: object, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not (
        lo <= value <= hi
    ):
        raise ValueError(f"{name} must be an integer in {lo}..{hi}, got {value!r}")
    return int(value)


def _check_bool(name: str, value: object) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be a bool, got {value!r}")
    return bool(value)


@dataclass(frozen=True)
class MinifloatFormat:
    """A sign-magnitude minifloat with a configurable exponent, mantissa, bias and specials.

    Parameters
    ----------
    exp_bits : int
        Exponent field width, 1 to 8.
    man_bits : int
        Mantissa (trailing significand) width, 0 to 7.
    bias : int or None
        Exponent bias; ``None`` means ``2**(exp_bits - 1) - 1``.
    subnormals : bool
        Whether exponent field 0 holds subnormals (see the module docstring when it does not).
    special : str
        ``"ieee"``, ``"fn"``, ``"fnuz"`` or ``"none"``: which codes are infinity and NaN.
    saturate : bool
        Whether ``encode`` clamps out-of-range finite values to ``+-max_value`` (infinities
        too, unless the format has infinity).

    Members
    -------
    bits : int
        ``1 + exp_bits + man_bits``.
    max_value, min_value : float
        The largest and the most negative finite value.
    min_subnormal : float
        The smallest positive value (a subnormal when there are any, else the smallest normal).
    min_normal : float
        The smallest positive normal value (exponent field 1, or 0 without subnormals).
    lsb_exponent : int
        Every finite value is an integer multiple of ``2**lsb_exponent``.
    fixed_min, fixed_max : int
        The range of ``to_fixed``.
    E4M3FN, E5M2, E3M2FN, E2M3FN, E2M1FN : MinifloatFormat
        The OCP FP8, FP6 and FP4 formats (class attributes).
    """

    exp_bits: int
    man_bits: int
    bias: int | None = None
    subnormals: bool = True
    special: str = "fn"
    saturate: bool = False

    def __post_init__(self) -> None:
        exp_bits = _check_int("exp_bits", self.exp_bits, 1, 8)
        man_bits = _check_int("man_bits", self.man_bits, 0, 7)
        bias = (1 << (exp_bits - 1)) - 1 if self.bias is None else self.bias
        bias = _check_int("bias", bias, -_MAX_ABS_BIAS, _MAX_ABS_BIAS)
        if self.special not in SPECIALS:
            raise ValueError(
                f"unknown special {self.special!r}; expected one of {', '.join(SPECIALS)}"
            )
        object.__setattr__(self, "exp_bits", exp_bits)
        object.__setattr__(self, "man_bits", man_bits)
        object.__setattr__(self, "bias", bias)
        object.__setattr__(self, "subnormals", _check_bool("subnormals", self.subnormals))
        object.__setattr__(self, "saturate", _check_bool("saturate", self.saturate))
        if not (np.isfinite(self._table) & (self._table > 0)).any():
            raise ValueError(f"{self!r} has no positive finite value")

    def __str__(self) -> str:
        """The preset's name (``E4M3FN``), else ``E4M3[fnuz,bias=8,nosub,sat]``-style."""
        for name in ("E4M3FN", "E5M2", "E3M2FN", "E2M3FN", "E2M1FN"):
            if getattr(MinifloatFormat, name, None) == self:
                return name
        notes = [self.special]
        if self.bias != (1 << (self.exp_bits - 1)) - 1:
            notes.append(f"bias={self.bias}")
        if not self.subnormals:
            notes.append("nosub")
        if self.saturate:
            notes.append("sat")
        return f"E{self.exp_bits}M{self.man_bits}[{','.join(notes)}]"

    # ---- layout -------------------------------------------------------------------------

    @property
    def bits(self) -> int:
        return 1 + self.exp_bits + self.man_bits

    @property
    def sign_bit(self) -> int:
        """The code bit that holds the sign: ``1 << (bits - 1)``."""
        return 1 << (self.bits - 1)

    @property
    def lsb_exponent(self) -> int:
        return int(self.subnormals) - self.bias - self.man_bits

    def _fixed_magnitude(self, mag_codes: np.ndarray) -> np.ndarray:
        """Magnitude in units of 2**lsb_exponent of sign-less codes, ignoring specials.

        Returns Python ints (object array): the top binade of an E8 format is 2**263 units.
        Codes past the last one continue the pattern, which is what the overflow test needs.
        """
        m = self.man_bits
        field = mag_codes >> m
        man = mag_codes & ((1 << m) - 1)
        s0 = int(self.subnormals)
        out = np.empty(mag_codes.shape, dtype=object)
        for i, (f, mn) in enumerate(zip(field.tolist(), man.tolist(), strict=True)):
            if f == 0 and self.subnormals:
                out[i] = mn
            elif f == 0 and mn == 0 and m > 0:
                out[i] = 0
            else:
                out[i] = ((1 << m) + mn) << (f - s0)
        return out

    @cached_property
    def _special_masks(self) -> tuple[np.ndarray, np.ndarray]:
        codes = np.arange(1 << self.bits, dtype=np.int64)
        m = self.man_bits
        field = (codes >> m) & ((1 << self.exp_bits) - 1)
        man = codes & ((1 << m) - 1)
        top = field == (1 << self.exp_bits) - 1
        is_inf = np.zeros(codes.shape, dtype=bool)
        is_nan = np.zeros(codes.shape, dtype=bool)
        if self.special == "ieee":
            is_inf = top & (man == 0)
            is_nan = top & (man != 0)
        elif self.special == "fn":
            is_nan = top & (man == (1 << m) - 1)
        elif self.special == "fnuz":
            is_nan = codes == self.sign_bit
        return is_inf, is_nan

    @cached_property
    def _fixed_table(self) -> np.ndarray:
        """Signed exact values of every code in lsb units (object array; 0 at specials)."""
        half = 1 << (self.bits - 1)
        mags = self._fixed_magnitude(np.arange(half, dtype=np.int64))
        table = np.concatenate([mags, -mags])
        is_inf, is_nan = self._special_masks
        table[is_inf | is_nan] = 0
        return table

    @cached_property
    def _table(self) -> np.ndarray:
        """float64 value of every code (exact: at most 9 significant bits)."""
        is_inf, is_nan = self._special_masks
        fixed = self._fixed_table
        values = np.array([float(v) for v in fixed.tolist()], dtype=np.float64)
        values = np.ldexp(values, self.lsb_exponent)
        negative = np.arange(values.size) >= self.sign_bit
        values[negative & (values == 0)] = -0.0
        values[is_inf] = np.where(negative[is_inf], -np.inf, np.inf)
        # NaN keeps the sign of its code, as ml_dtypes does, so encode(decode(c)) keeps it too.
        values[is_nan] = np.copysign(np.nan, np.where(negative[is_nan], -1.0, 1.0))
        return values

    # ---- ranges -------------------------------------------------------------------------

    @cached_property
    def code_max(self) -> int:
        """The code of ``max_value``."""
        positive = self._table[: self.sign_bit]
        return int(np.flatnonzero(np.isfinite(positive))[-1])

    @property
    def max_value(self) -> float:
        return float(self._table[self.code_max])

    @property
    def min_value(self) -> float:
        return float(np.nanmin(self._table[np.isfinite(self._table)]))

    @property
    def min_subnormal(self) -> float:
        finite = self._table[np.isfinite(self._table)]
        return float(finite[finite > 0].min())

    @property
    def min_normal(self) -> float:
        return float(np.ldexp(1.0, int(self.subnormals) - self.bias))

    @property
    def has_zero(self) -> bool:
        return bool(self._table[0] == 0)

    @property
    def has_negative_zero(self) -> bool:
        value = self._table[self.sign_bit]
        return bool(value == 0)

    @property
    def has_nan(self) -> bool:
        return bool(self._special_masks[1].any())

    @property
    def has_inf(self) -> bool:
        return bool(self._special_masks[0].any())

    @property
    def nan_code(self) -> int | None:
        """The positive quiet NaN code ``encode`` produces, or None without NaN."""
        if not self.has_nan:
            return None
        if self.special == "fnuz":
            return self.sign_bit
        if self.special == "fn":
            return self.sign_bit - 1
        return ((1 << self.exp_bits) - 1) << self.man_bits | (1 << (self.man_bits - 1))

    @property
    def inf_code(self) -> int | None:
        """The code of plus infinity, or None without infinity."""
        return ((1 << self.exp_bits) - 1) << self.man_bits if self.has_inf else None

    @property
    def fixed_max(self) -> int:
        return int(self._fixed_table[self.code_max])

    @property
    def fixed_min(self) -> int:
        finite = np.isfinite(self._table)
        return int(min(self._fixed_table[finite].tolist()))

    def all_codes(self) -> np.ndarray:
        """Every code of the format, 0 .. 2**bits - 1, as int64."""
        return np.arange(1 << self.bits, dtype=np.int64)

    def is_nan(self, codes: npt.ArrayLike) -> np.ndarray:
        return self._special_masks[1][self._check_codes(codes)]

    def is_inf(self, codes: npt.ArrayLike) -> np.ndarray:
        return self._special_masks[0][self._check_codes(codes)]

    # ---- conversions --------------------------------------------------------------------

    def _check_codes(self, codes: npt.ArrayLike) -> np.ndarray:
        arr = np.asarray(codes)
        if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"{self} codes must be integers, got dtype {arr.dtype}")
        if arr.size and (arr.min() < 0 or arr.max() >= (1 << self.bits)):
            raise ValueError(
                f"{self} codes must be in 0..{(1 << self.bits) - 1}, "
                f"got range {arr.min()}..{arr.max()}"
            )
        return arr.astype(np.int64)

    def decode(self, codes: npt.ArrayLike) -> np.ndarray:
        """The float64 value of each code (exact; NaN and +-inf for special codes)."""
        return self._table[self._check_codes(codes)]

    def to_fixed(self, codes: npt.ArrayLike) -> np.ndarray:
        """The exact value of each code in units of ``2**lsb_exponent``.

        int64 when ``fixed_max < 2**62`` (every preset), else an object array of Python ints.
        ``ValueError`` for NaN or infinity codes.
        """
        arr = self._check_codes(codes)
        is_inf, is_nan = self._special_masks
        bad = (is_inf | is_nan)[arr]
        if bad.any():
            raise ValueError(
                f"{self} code {int(arr[bad].flat[0])} is NaN or infinite: "
                "it has no fixed-point value"
            )
        if self.fixed_max < _INT64_LIMIT:
            return self._fixed_table_int64[arr]
        return self._fixed_table[arr]

    @cached_property
    def _fixed_table_int64(self) -> np.ndarray:
        return self._fixed_table.astype(np.int64)

    @cached_property
    def _search(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return rounding_table(self)

    def encode(self, values: npt.ArrayLike) -> np.ndarray:
        """Round float values to codes (int64): nearest, ties to even, specials as documented
        (:func:`qfab.numerics.minifloat_encode.encode`)."""
        return encode(self, values)

    def encode_fixed(self, fixed: npt.ArrayLike, lsb_exponent: npt.ArrayLike) -> np.ndarray:
        """Round the exact values ``fixed * 2**lsb_exponent`` to codes, with one rounding.

        ``fixed`` is an integer array of any width (int64, or Python ints in an object array),
        such as a dot-product accumulator; ``lsb_exponent`` broadcasts against it. The result
        is what ``encode`` would give for the exact real value, so ``encode_fixed(to_fixed(c),
        lsb_exponent) == c`` for every code that is a number. Zero is +0.
        """
        return self.encode(ldexp_round_odd(fixed, lsb_exponent))


    def round(self, values: npt.ArrayLike) -> np.ndarray:
        """``decode(encode(values))``: values rounded onto the format, as float64."""
        return self.decode(self.encode(values))

    # The names the integer formats use, so code can treat every format alike.
    quantize = encode
    to_real = decode


MinifloatFormat.E4M3FN = MinifloatFormat(4, 3, special="fn")
MinifloatFormat.E5M2 = MinifloatFormat(5, 2, special="ieee")
MinifloatFormat.E3M2FN = MinifloatFormat(3, 2, special="none")
MinifloatFormat.E2M3FN = MinifloatFormat(2, 3, special="none")
MinifloatFormat.E2M1FN = MinifloatFormat(2, 1, special="none")
