"""Exact product and dot-product ranges: sound and tight, by brute force over all code pairs."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from qfab.numerics import (
    FixedFormat,
    IntFormat,
    MinifloatFormat,
    dot_bounds,
    product_bounds,
    width_for,
)

SMALL = {
    "E2M1FN": MinifloatFormat.E2M1FN,
    "E3M2FN": MinifloatFormat.E3M2FN,
    "E2M3FN": MinifloatFormat.E2M3FN,
    "E4M3FN": MinifloatFormat.E4M3FN,
    "E5M2": MinifloatFormat.E5M2,
    "E2M2-nosub": MinifloatFormat(2, 2, subnormals=False, special="none"),
    "int3": IntFormat(3),
    "uint4": IntFormat(4, False),
    "int1": IntFormat(1),
    "Q1.2": FixedFormat(1, 2),
    "UQ2.3": FixedFormat(2, 3, signed=False),
}
PAIRS = [
    ("E2M1FN", "E2M1FN"), ("E3M2FN", "E2M3FN"), ("E4M3FN", "E5M2"), ("E4M3FN", "int3"),
    ("uint4", "E2M1FN"), ("Q1.2", "UQ2.3"), ("int1", "uint4"), ("E2M2-nosub", "Q1.2"),
    ("E5M2", "E5M2"),
]


def exact_values(fmt) -> tuple[np.ndarray, int]:
    """Every finite value of ``fmt`` in units of 2**lsb (as Python ints) and that lsb."""
    if isinstance(fmt, MinifloatFormat):
        codes = fmt.all_codes()
        codes = codes[np.isfinite(fmt.decode(codes))]
    else:
        codes = np.arange(fmt.min, fmt.max + 1)
    fixed = np.array([int(v) for v in fmt.to_fixed(codes).tolist()], dtype=object)
    return fixed, fmt.lsb_exponent


@pytest.mark.parametrize("a,b", PAIRS)
def test_product_bounds_are_attained_and_sound(a: str, b: str) -> None:
    xa, la = exact_values(SMALL[a])
    xb, lb = exact_values(SMALL[b])
    products = np.outer(xa, xb)
    lo, hi, lsb = product_bounds(SMALL[a], SMALL[b])
    assert (lo, hi, lsb) == (min(products.flat), max(products.flat), la + lb)


@pytest.mark.parametrize("a,b", [("E2M1FN", "E2M1FN"), ("int3", "E2M1FN"), ("Q1.2", "uint4")])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_dot_bounds_by_enumeration(a: str, b: str, k: int) -> None:
    xa, _ = exact_values(SMALL[a])
    xb, _ = exact_values(SMALL[b])
    products = sorted(set(np.outer(xa, xb).flat))
    sums = {sum(terms) for terms in itertools.product(products, repeat=k)}
    lo, hi, lsb = dot_bounds(SMALL[a], SMALL[b], k)
    assert (lo, hi) == (min(sums), max(sums))
    assert lsb == SMALL[a].lsb_exponent + SMALL[b].lsb_exponent


def test_dot_bounds_size_an_exact_accumulator() -> None:
    a = b = MinifloatFormat.E4M3FN
    lo, hi, lsb = dot_bounds(a, b, 256)
    assert lsb == -18 and hi == 256 * 448 * 448 * 2**18 and lo == -hi
    assert width_for(lo, hi) == (45, True)
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 256, size=(2, 256))
    codes = codes[:, ~(a.is_nan(codes[0]) | a.is_nan(codes[1]))]
    acc = int(np.sum(a.to_fixed(codes[0]) * b.to_fixed(codes[1])))
    exact = sum(float(x) * float(y) for x, y in zip(a.decode(codes[0]), b.decode(codes[1]),
                                                      strict=True))
    assert acc * 2.0**lsb == exact and lo <= acc <= hi


@given(st.integers(-(2**70), 2**70), st.integers(0, 2**70))
def test_width_for_is_minimal(lo: int, span: int) -> None:
    hi = lo + span
    bits, signed = width_for(lo, hi)
    assert signed == (lo < 0)
    assert bits >= 1

    def holds(n: int) -> bool:
        if signed:
            return -(2 ** (n - 1)) <= lo and hi <= 2 ** (n - 1) - 1
        return hi <= 2**n - 1

    assert holds(bits)
    assert bits == 1 or not holds(bits - 1)


def test_width_for_examples() -> None:
    assert width_for(-128, 127) == (8, True)
    assert width_for(-129, 0) == (9, True)
    assert width_for(0, 255) == (8, False)
    assert width_for(0, 0) == (1, False)
    assert width_for(-1, 0) == (1, True)
    assert width_for(-1, 1) == (2, True)
