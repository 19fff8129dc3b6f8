# amaranth: UnusedElaboratable=no
"""XnorPopcountUnit against its popcount model and the generic MVU's product model: random
folding, both activation codings, stalls; the same cycles as the multiplier MVU."""

import numpy as np
import pytest
from amaranth.hdl import signed
from qfab.hw.multipliers import BipolarDecoder, Multiplier, shape_for_range
from qfab.hw.mvu import MatrixVectorUnit, dot_product_bounds, mvu_model
from qfab.hw.xnor_mvu import BipolarCodeDecoder, XnorPopcountUnit, xnor_popcount_model
from streams import array_beats, beats_to_array, run_streams


def _run(dut, vectors, rng=None, p_idle=0.0, p_stall=0.0):
    n_out = len(vectors) * dut.neuron_folds
    logs = run_streams(dut, inputs={"i_stream": array_beats(vectors, dut.simd)},
                       outputs={"o_stream": n_out}, rng=rng, p_idle=p_idle, p_stall=p_stall,
                       tail=4, max_wait=2000)
    return beats_to_array(logs["o_stream"].beats, (len(vectors), dut.mh)), logs


def _divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


@pytest.mark.parametrize("seed", range(8))
def test_random_units_under_stalls(seed):
    rng = np.random.default_rng(seed)
    mh, mw = int(rng.choice([2, 4, 6, 8])), int(rng.choice([3, 8, 12, 16]))
    pe, simd = int(rng.choice(_divisors(mh))), int(rng.choice(_divisors(mw)))
    bits = rng.integers(0, 1, (mh, mw), endpoint=True)
    codes = seed % 2 == 0  # activations as -1/+1 codes (2 or 8 bits wide), or as one bit
    a = BipolarCodeDecoder(2 + 6 * (seed % 4 == 0)) if codes else BipolarDecoder()
    mult = Multiplier(a, BipolarDecoder())
    acc = shape_for_range(*dot_product_bounds(bits, mult))
    dut = XnorPopcountUnit(weights=bits, acc_shape=acc, pe=pe, simd=simd, multiplier=mult)
    x_bits = rng.integers(0, 1, (int(rng.integers(1, 4, endpoint=True)), mw), endpoint=True)
    vectors = 2 * x_bits - 1 if codes else x_bits
    got, _ = _run(dut, vectors, rng, p_idle=float(rng.uniform(0, 0.5)),
                  p_stall=float(rng.uniform(0, 0.5)))
    np.testing.assert_array_equal(got, xnor_popcount_model(bits, x_bits))
    # the same dot products as the +-1 values multiplied out
    np.testing.assert_array_equal(got, (2 * x_bits - 1) @ (2 * bits - 1).T)
    np.testing.assert_array_equal(got, mvu_model(bits, vectors, mult))


def test_same_timing_as_the_multiplier_unit():
    rng = np.random.default_rng(3)
    bits = rng.integers(0, 1, (4, 16), endpoint=True)
    mult = Multiplier(BipolarDecoder(), BipolarDecoder())
    acc = shape_for_range(*dot_product_bounds(bits, mult))
    xnor = XnorPopcountUnit(weights=bits, acc_shape=acc, pe=2, simd=4)
    generic = MatrixVectorUnit(weights=bits, acc_shape=acc, pe=2, simd=4, multiplier=mult)
    vectors = rng.integers(0, 1, (3, 16), endpoint=True)
    (ya, la), (yb, lb) = _run(xnor, vectors), _run(generic, vectors)
    np.testing.assert_array_equal(ya, yb)
    assert la["o_stream"].cycles == lb["o_stream"].cycles


def test_refuses_what_it_cannot_compute():
    with pytest.raises(ValueError, match="needs 2 bits"):
        BipolarCodeDecoder(1)
    with pytest.raises(ValueError, match="not -1 or \\+1"):
        XnorPopcountUnit(weights=np.zeros((2, 2), int), acc_shape=signed(4), pe=1, simd=1,
                         multiplier=Multiplier(BipolarDecoder(), BipolarCodeDecoder()))
    with pytest.raises(ValueError, match="does not hold -8..8"):
        XnorPopcountUnit(weights=np.ones((2, 8), int), acc_shape=signed(4), pe=1, simd=1)
