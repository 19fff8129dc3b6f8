"""Exact ranges of products and dot products, and the word width that holds them.

Every format exposes the same fixed-point view: ``lsb_exponent`` and the range
``[fixed_min, fixed_max]`` of ``to_fixed``. A product of two values is then an integer in units
of ``2**(a.lsb_exponent + b.lsb_exponent)``, and a sum of ``k`` products stays an integer in the
same units, so an accumulator of ``width_for(*dot_bounds(a, b, k)[:2])`` bits neither rounds
nor overflows, in any order of accumulation.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["FixedView", "product_bounds", "dot_bounds", "width_for"]


class FixedView(Protocol):
    """What the bounds need from a format (IntFormat, FixedFormat and MinifloatFormat have it)."""

    @property
    def lsb_exponent(self) -> int: ...

    @property
    def fixed_min(self) -> int: ...

    @property
    def fixed_max(self) -> int: ...


def product_bounds(a: FixedView, b: FixedView) -> tuple[int, int, int]:
    """Range of the exact product of a value of format ``a`` and a value of format ``b``.

    Returns
    -------
    (lo, hi, lsb_exponent) : tuple of int
        Every product is ``n * 2**lsb_exponent`` with ``lo <= n <= hi``; both ends are attained
        (the corners of ``[a.fixed_min, a.fixed_max] x [b.fixed_min, b.fixed_max]`` are values).
    """
    corners = [x * y for x in (a.fixed_min, a.fixed_max) for y in (b.fixed_min, b.fixed_max)]
    return min(corners), max(corners), a.lsb_exponent + b.lsb_exponent


def dot_bounds(a: FixedView, b: FixedView, k: int) -> tuple[int, int, int]:
    """Range of the exact dot product of ``k`` values of format ``a`` with ``k`` of ``b``.

    Both ends are attained (all ``k`` terms at the same extreme product).
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"dot product length must be a positive integer, got {k!r}")
    lo, hi, lsb = product_bounds(a, b)
    return k * lo, k * hi, lsb


def width_for(lo: int, hi: int) -> tuple[int, bool]:
    """The narrowest integer word holding every integer in ``[lo, hi]``.

    Returns ``(bits, signed)``: unsigned when ``lo >= 0``, else two's complement. The width is
    at least 1.
    """
    lo, hi = int(lo), int(hi)
    if lo > hi:
        raise ValueError(f"empty range: lo={lo} > hi={hi}")
    if lo >= 0:
        return max(hi.bit_length(), 1), False
    return 1 + max((-lo - 1).bit_length(), max(hi, 0).bit_length()), True
