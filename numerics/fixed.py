"""Integer and fixed-point (Qm.n) number formats.

Codes are int64 arrays. A fixed-point code ``c`` of a format with ``frac_bits = n`` stands for
the real value ``c * 2**-n``, so the exact fixed-point view (``to_fixed``) of both formats is
the identity on codes, with ``lsb_exponent = -n``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from qfab.numerics.rounding import check_rounding, round_real, round_shift

__all__ = ["OVERFLOWS", "IntFormat", "FixedFormat"]

OVERFLOWS: tuple[str, ...] = ("wrap", "saturate")

# Codes are int64 and real inputs are float64 clamped to +-2**62 before conversion, so every
# width up to 62 bits (signed or unsigned) is exact. The contract promises 1..32.
MAX_BITS = 62


def _check_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    return int(value)


def _check_bool(name: str, value: object) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be a bool, got {value!r}")
    return bool(value)


def _code_range(bits: int, signed: bool) -> tuple[int, int]:
    if signed:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def _real_to_codes(scaled: np.ndarray, lo: int, hi: int, bits: int, overflow: str) -> np.ndarray:
    """Map rounded (integral) float64 values onto codes in [lo, hi] by saturation or wrapping."""
    if np.isnan(scaled).any():
        raise ValueError("cannot quantize NaN to a fixed-point or integer format")
    if overflow == "saturate":
        limit = float(1 << MAX_BITS)
        clipped = np.clip(scaled, -limit, limit).astype(np.int64)
        return np.clip(clipped, lo, hi)
    if np.isinf(scaled).any():
        raise ValueError("cannot wrap an infinite value into a fixed-point format")
    # fmod is exact in IEEE arithmetic, so the low `bits` bits of huge values are right.
    low = np.fmod(scaled, float(1 << bits)).astype(np.int64)
    return (low - lo) % (1 << bits) + lo


def _fixed_to_codes(
    fixed: npt.ArrayLike, shift: int, rounding: str, lo: int, hi: int, bits: int, overflow: str
) -> np.ndarray:
    """Round ``fixed / 2**shift`` once, then saturate or wrap into ``[lo, hi]``, exactly."""
    arr = np.asarray(fixed)
    try:
        rounded = round_shift(arr, shift, rounding)
    except OverflowError:  # a left shift past int64: finish in Python integers
        rounded = round_shift(arr.astype(object), shift, rounding)
    if overflow == "saturate":
        return np.clip(rounded, lo, hi).astype(np.int64)
    return ((rounded - lo) % (1 << bits) + lo).astype(np.int64)


def _to_codes_array(codes: npt.ArrayLike) -> np.ndarray:
    arr = np.asarray(codes)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"codes must be integers, got dtype {arr.dtype}")
    return arr.astype(np.int64)


@dataclass(frozen=True)
class IntFormat:
    """A signed (two's complement) or unsigned integer of ``bits`` bits.

    Parameters
    ----------
    bits : int
        Width, 1 to 32 by contract (up to 62 accepted, for accumulators).
    signed : bool
        Two's complement when true.

    Members
    -------
    min, max : int
        The smallest and largest code.
    lsb_exponent : int
        Always 0: codes are the values.
    fixed_min, fixed_max : int
        Same as ``min`` and ``max``.
    """

    bits: int
    signed: bool = True

    def __post_init__(self) -> None:
        bits = _check_int("bits", self.bits)
        if not 1 <= bits <= MAX_BITS:
            raise ValueError(f"IntFormat bits must be in 1..{MAX_BITS}, got {self.bits!r}")
        object.__setattr__(self, "bits", bits)
        object.__setattr__(self, "signed", _check_bool("signed", self.signed))

    def __str__(self) -> str:
        return f"{'int' if self.signed else 'uint'}{self.bits}"

    @property
    def min(self) -> int:
        return _code_range(self.bits, self.signed)[0]

    @property
    def max(self) -> int:
        return _code_range(self.bits, self.signed)[1]

    @property
    def lsb_exponent(self) -> int:
        return 0

    @property
    def fixed_min(self) -> int:
        return self.min

    @property
    def fixed_max(self) -> int:
        return self.max

    def quantize(self, values: npt.ArrayLike, rounding: str = "half_even") -> np.ndarray:
        """Round real values to integers with ``rounding`` and clamp them to the range.

        Raises ``ValueError`` on NaN; infinities clamp.
        """
        rounded = round_real(values, rounding)
        return _real_to_codes(rounded, self.min, self.max, self.bits, "saturate")

    def encode_fixed(
        self, fixed: npt.ArrayLike, lsb_exponent: int, rounding: str = "half_even"
    ) -> np.ndarray:
        """Round exact values ``fixed * 2**lsb_exponent`` (integers of any width, e.g. an
        accumulator) to codes with one rounding, then clamp: ``round_shift`` and a clip."""
        check_rounding(rounding)
        return _fixed_to_codes(
            fixed, -int(lsb_exponent), rounding, self.min, self.max, self.bits, "saturate"
        )

    def clamp(self, codes: npt.ArrayLike) -> np.ndarray:
        """Saturate integer codes to ``[min, max]``."""
        return np.clip(_to_codes_array(codes), self.min, self.max)

    def wrap(self, codes: npt.ArrayLike) -> np.ndarray:
        """Keep the low ``bits`` bits of integer codes, read back as this format."""
        return (_to_codes_array(codes) - self.min) % (1 << self.bits) + self.min

    def to_real(self, codes: npt.ArrayLike) -> np.ndarray:
        """The float64 value of each code."""
        return _to_codes_array(codes).astype(np.float64)

    def to_fixed(self, codes: npt.ArrayLike) -> np.ndarray:
        """The exact value in units of ``2**lsb_exponent``: the codes themselves, as int64."""
        return _to_codes_array(codes)

    encode = quantize
    decode = to_real


@dataclass(frozen=True)
class FixedFormat:
    """A Qm.n fixed-point format: codes are integers in units of ``2**-frac_bits``.

    ``int_bits`` excludes the sign bit, so a signed Q3.4 is 8 bits wide and holds the codes
    -128..127, values -8.0 to 7.9375.

    Parameters
    ----------
    int_bits : int
        Integer bits, not counting the sign (may be negative for a purely fractional format).
    frac_bits : int
        Fractional bits (may be negative: then the step is a power of two above one).
    signed : bool
        Two's complement when true.
    rounding : str
        How ``quantize`` rounds: one of ``qfab.numerics.ROUNDINGS``.
    overflow : str
        How ``quantize`` treats out-of-range values: ``"wrap"`` (keep the low bits, as a
        two's-complement adder does) or ``"saturate"`` (clamp to ``min`` / ``max``).

    Members
    -------
    bits : int
        ``int_bits + frac_bits + signed``, 1 to 62.
    min, max : int
        The smallest and largest code.
    lsb_exponent : int
        ``-frac_bits``.
    fixed_min, fixed_max : int
        Same as ``min`` and ``max``.
    """

    int_bits: int
    frac_bits: int
    signed: bool = True
    rounding: str = "half_even"
    overflow: str = "saturate"

    def __post_init__(self) -> None:
        int_bits = _check_int("int_bits", self.int_bits)
        frac_bits = _check_int("frac_bits", self.frac_bits)
        signed = _check_bool("signed", self.signed)
        bits = int_bits + frac_bits + int(signed)
        if not 1 <= bits <= MAX_BITS:
            raise ValueError(
                f"FixedFormat width must be in 1..{MAX_BITS} bits, got int_bits={int_bits} + "
                f"frac_bits={frac_bits} + sign={int(signed)} = {bits}"
            )
        check_rounding(self.rounding)
        if self.overflow not in OVERFLOWS:
            raise ValueError(
                f"unknown overflow {self.overflow!r}; expected one of {', '.join(OVERFLOWS)}"
            )
        object.__setattr__(self, "int_bits", int_bits)
        object.__setattr__(self, "frac_bits", frac_bits)
        object.__setattr__(self, "signed", signed)

    def __str__(self) -> str:
        return f"{'' if self.signed else 'U'}Q{self.int_bits}.{self.frac_bits}"

    @property
    def bits(self) -> int:
        return self.int_bits + self.frac_bits + int(self.signed)

    @property
    def min(self) -> int:
        return _code_range(self.bits, self.signed)[0]

    @property
    def max(self) -> int:
        return _code_range(self.bits, self.signed)[1]

    @property
    def lsb_exponent(self) -> int:
        return -self.frac_bits

    @property
    def fixed_min(self) -> int:
        return self.min

    @property
    def fixed_max(self) -> int:
        return self.max

    def quantize(self, values: npt.ArrayLike) -> np.ndarray:
        """Real values to int64 codes, with this format's rounding and overflow.

        Scaling by ``2**frac_bits`` is exact, so the only rounding is the one asked for.
        ``ValueError`` on NaN, and on infinities when wrapping.
        """
        scaled = np.ldexp(np.asarray(values, dtype=np.float64), self.frac_bits)
        rounded = round_real(scaled, self.rounding)
        return _real_to_codes(rounded, self.min, self.max, self.bits, self.overflow)

    def encode_fixed(self, fixed: npt.ArrayLike, lsb_exponent: int) -> np.ndarray:
        """Round exact values ``fixed * 2**lsb_exponent`` (integers of any width, e.g. an
        accumulator) to codes with this format's rounding (once) and overflow."""
        shift = self.lsb_exponent - int(lsb_exponent)
        return _fixed_to_codes(
            fixed, shift, self.rounding, self.min, self.max, self.bits, self.overflow
        )

    def fit(self, codes: npt.ArrayLike) -> np.ndarray:
        """Apply this format's overflow mode to integer codes that may be out of range."""
        arr = _to_codes_array(codes)
        if self.overflow == "saturate":
            return np.clip(arr, self.min, self.max)
        return (arr - self.min) % (1 << self.bits) + self.min

    def to_real(self, codes: npt.ArrayLike) -> np.ndarray:
        """The float64 value ``code * 2**-frac_bits`` of each code (exact up to 53 bits)."""
        return np.ldexp(_to_codes_array(codes).astype(np.float64), -self.frac_bits)

    def to_fixed(self, codes: npt.ArrayLike) -> np.ndarray:
        """The exact value in units of ``2**lsb_exponent``: the codes themselves, as int64."""
        return _to_codes_array(codes)

    encode = quantize
    decode = to_real
