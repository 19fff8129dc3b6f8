"""The golden model's fast paths equal the slow exact arithmetic they replace."""

from __future__ import annotations

import numpy as np
import pytest
from qfab.numerics import ROUNDINGS, round_shift
from qfab.sim.reference import Matrix, Reference, _exact_matmul, conv, shift_round

from qfab.errors import QfabError


def _python_matmul(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    return x.astype(object) @ w.T.astype(object)


@pytest.mark.parametrize("magnitude", [2**3, 2**20, 2**28, 2**40])
def test_exact_matmul_every_path(magnitude):
    """Small values take float64 BLAS, larger int64, the largest Python ints: all exact."""
    rng = np.random.default_rng(magnitude)
    x = rng.integers(-magnitude, magnitude, (5, 7, 33))
    w = rng.integers(-magnitude, magnitude, (9, 33))
    got = _exact_matmul(x, Matrix(w))
    expected = _python_matmul(x, w)
    assert np.array_equal(got.astype(object), expected)
    if magnitude >= 2**40:
        assert got.dtype == object  # 2**80 sums do not fit int64
    else:
        assert got.dtype == np.int64


def test_exact_matmul_bound_is_the_row_norm():
    """One large weight in a row of zeros still fits float64: the bound uses row sums."""
    w = np.zeros((3, 1000), np.int64)
    w[0, 0] = 2**30
    x = np.full((2, 1000), 2**20, np.int64)
    assert Matrix(w).row_l1 == 2**30
    assert np.array_equal(_exact_matmul(x, Matrix(w)).astype(object), _python_matmul(x, w))


def test_conv_matches_direct_sum():
    rng = np.random.default_rng(1)
    x = rng.integers(-128, 128, (2, 4, 7, 6))
    w = rng.integers(-8, 8, (6, 2, 3, 2))
    bias = rng.integers(-1000, 1000, 6)
    got = conv(x, w, bias, strides=(2, 1), pads=(1, 0, 1, 1), dilations=(1, 2), group=2)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (0, 1)))
    oh = (xp.shape[2] - 3) // 2 + 1
    ow = xp.shape[3] - 2 * (2 - 1) - 1 + 1
    expected = np.zeros((2, 6, oh, ow), np.int64)
    for m in range(6):
        g = m // 3
        for i in range(oh):
            for j in range(ow):
                patch = xp[:, 2 * g:2 * g + 2, 2 * i:2 * i + 3, j:j + 3:2]
                expected[:, m, i, j] = (patch * w[m]).sum(axis=(1, 2, 3)) + bias[m]
    assert np.array_equal(got, expected)


@pytest.mark.parametrize("rounding", ROUNDINGS)
@pytest.mark.parametrize("per_channel", [False, True])
def test_shift_round_equals_numerics(rounding, per_channel):
    rng = np.random.default_rng(2)
    num = rng.integers(-2**40, 2**40, (3, 8, 5))
    # Exact ties and values next to them, where rounding modes disagree.
    num[0, :, 0] = (rng.integers(-1000, 1000, 8) << 20) + (1 << 19)
    num[0, :, 1] = num[0, :, 0] - 1
    shift = rng.integers(12, 24, (1, 8, 1)) if per_channel else np.int64(20)
    assert np.array_equal(shift_round(num, shift, rounding), round_shift(num, shift, rounding))


def test_shift_round_falls_back_when_it_could_overflow():
    num = np.array([2**61 + 12345, -(2**61) - 7], np.int64)
    shift = np.array([3, 40])
    assert np.array_equal(shift_round(num, shift, "half_even"),
                          round_shift(num, shift, "half_even"))


def test_unknown_requant_mode():
    from qfab.compiler.ir import Graph

    with pytest.raises(QfabError, match="requantization mode 'float'"):
        Reference(Graph(), "float")


@pytest.mark.parametrize("bits,signed,zero", [(2, True, 0), (8, False, 7), (8, True, -3),
                                              (24, True, 5), (24, False, 0)])
@pytest.mark.parametrize("rounding", ["half_even", "floor", "half_up"])
def test_quantize_in_float32_equals_the_float64_sum(bits, signed, zero, rounding):
    """Codes of at most 24 bits are rounded, offset and clamped in float32, in place: the
    same codes as adding the zero point in float64, at ties, at the bounds and far past
    them; the caller's array is left as it was."""
    from qfab.compiler.ir import Graph, Node, Tensor
    from qfab.numerics import IntFormat

    fmt = IntFormat(bits=bits, signed=signed)
    scale = np.float32(0.37)
    graph = Graph(tensors={"q": Tensor("q", (1, 40), fmt, scale=np.asarray(scale, np.float64),
                                       zero_point=np.asarray(zero, np.int64))})
    pre = [("Mul", np.asarray(2.0, np.float32)), ("Sub", np.asarray([1.0], np.float32))]
    node = Node("quantize", "q", ["x"], ["q"], {"pre": pre, "saturate": True,
                                                "rounding": rounding})
    rng = np.random.default_rng(bits)
    ties = (np.arange(-20, 20) + np.float32(0.5)) * scale
    x = np.stack([(ties + 1) / 2, rng.standard_normal(40) * 2.0**bits,
                  rng.standard_normal(40) * 1e30]).astype(np.float32)
    before = x.copy()
    got = Reference(graph)._quantize(node, x)
    scaled = ((x * np.float32(2) - np.float32(1)) / scale).astype(np.float32)
    r = {"half_even": np.rint, "floor": np.floor,
         "half_up": lambda s: np.floor(s.astype(np.float64) + 0.5)}[rounding](scaled)
    expected = np.clip(r.astype(np.float64) + zero, fmt.min, fmt.max).astype(np.int64)
    assert got.dtype == np.int64 and np.array_equal(got, expected)
    assert np.array_equal(x, before)


def test_half_up_rounds_the_exact_quotient():
    """Half up is floor(x + 1/2) of the exact value: in float32, 0.49999997 + 0.5 and
    2**23 + 1 + 0.5 would round up to the next integer first."""
    from qfab.compiler.ir import Graph, Node, Tensor
    from qfab.numerics import IntFormat

    graph = Graph(tensors={"q": Tensor("q", (1, 6), IntFormat(bits=24, signed=False),
                                       scale=np.asarray(1.0), zero_point=np.asarray(0))})
    node = Node("quantize", "q", ["x"], ["q"], {"pre": [], "saturate": True,
                                                "rounding": "half_up"})
    x = np.asarray([[np.nextafter(np.float32(0.5), np.float32(0)), 2**23 + 1, 0.5, 2.5,
                     1.5, 2**23 - 0.5]], np.float32)
    got = Reference(graph)._quantize(node, x)
    assert got.tolist() == [[0, 2**23 + 1, 1, 3, 2, 2**23]]
