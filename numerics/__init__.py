"""Number formats and the exact integer arithmetic the hardware mirrors.

A leaf package: it imports only NumPy, and every other part of qfab imports it.
"""

from qfab.numerics.bounds import dot_bounds, product_bounds, width_for
from qfab.numerics.dyadic import Dyadic
from qfab.numerics.fixed import OVERFLOWS, FixedFormat, IntFormat
from qfab.numerics.minifloat import SPECIALS, MinifloatFormat
from qfab.numerics.rounding import (
    ROUNDINGS,
    check_rounding,
    ldexp_round_odd,
    round_real,
    round_shift,
)

__all__ = [
    "OVERFLOWS",
    "ROUNDINGS",
    "SPECIALS",
    "Dyadic",
    "FixedFormat",
    "IntFormat",
    "MinifloatFormat",
    "check_rounding",
    "dot_bounds",
    "ldexp_round_odd",
    "product_bounds",
    "round_real",
    "round_shift",
    "width_for",
]
