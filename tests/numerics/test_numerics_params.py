"""Bad parameters raise ValueError with a message that quotes the bad value."""

from __future__ import annotations

import re

import numpy as np
import pytest
from qfab.numerics import (
    Dyadic,
    FixedFormat,
    IntFormat,
    MinifloatFormat,
    dot_bounds,
    round_real,
    round_shift,
    width_for,
)

CASES = [
    (lambda: IntFormat(0), "got 0"),
    (lambda: IntFormat(63), "got 63"),
    (lambda: IntFormat(8, signed="yes"), "'yes'"),
    (lambda: IntFormat(4.0), "got 4.0"),
    (lambda: FixedFormat(0, 0, signed=False), "= 0"),
    (lambda: FixedFormat(40, 30), "= 71"),
    (lambda: FixedFormat(3, 4, rounding="nearest"), "'nearest'"),
    (lambda: FixedFormat(3, 4, overflow="clip"), "'clip'"),
    (lambda: MinifloatFormat(9, 3), "got 9"),
    (lambda: MinifloatFormat(0, 3), "got 0"),
    (lambda: MinifloatFormat(4, 8), "got 8"),
    (lambda: MinifloatFormat(4, -1), "got -1"),
    (lambda: MinifloatFormat(4, 3, bias=1000), "got 1000"),
    (lambda: MinifloatFormat(4, 3, special="ocp"), "'ocp'"),
    (lambda: MinifloatFormat(4, 3, subnormals=1), "got 1"),
    (lambda: MinifloatFormat(1, 0, special="ieee"), "no positive finite value"),
    (lambda: IntFormat(8).quantize([1.5], rounding="nearest"), "'nearest'"),
    (lambda: round_real([1.5], "nearest"), "'nearest'"),
    (lambda: round_shift(np.array([3]), 1, "nearest"), "'nearest'"),
    (lambda: round_shift(np.array([3.0]), 1), "float64"),
    (lambda: Dyadic.from_scale(0.1, bits=0), "got 0"),
    (lambda: Dyadic.from_scale(0.1, bits=33), "got 33"),
    (lambda: Dyadic.from_scale(-0.5), "-0.5"),
    (lambda: Dyadic.from_scale(float("nan")), "nan"),
    (lambda: Dyadic(-3, 2), "-3"),
    (lambda: Dyadic(3, 2).apply(np.array([4]), "nearest"), "'nearest'"),
    (lambda: Dyadic(3, 2).apply(np.array([4.0])), "float64"),
    (lambda: dot_bounds(IntFormat(4), IntFormat(4), 0), "got 0"),
    (lambda: width_for(3, 2), "lo=3"),
    (lambda: MinifloatFormat.E4M3FN.decode([256]), "256"),
    (lambda: MinifloatFormat.E4M3FN.decode([1.0]), "float64"),
    (lambda: MinifloatFormat.E4M3FN.to_fixed([0x7F]), "127"),
    (lambda: MinifloatFormat.E2M1FN.encode([np.nan]), "NaN"),
]


@pytest.mark.parametrize("call,quoted", CASES, ids=[q for _, q in CASES])
def test_bad_parameters_raise_value_error_naming_the_value(call, quoted: str) -> None:
    with pytest.raises(ValueError, match=re.escape(quoted)):
        call()


def test_valid_edges_are_accepted() -> None:
    assert IntFormat(1).bits == 1 and IntFormat(32).bits == 32
    assert MinifloatFormat(8, 7).bits == 16 and MinifloatFormat(1, 0, special="none").bits == 2
    assert FixedFormat(0, 0, signed=True).bits == 1
    assert Dyadic.from_scale(1.0, bits=1) == Dyadic(1, 0)
