# amaranth: UnusedElaboratable=no
"""MatrixVectorUnit against mvu_model: random folding, formats, stalls; exact cycle counts."""

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import Shape, signed, unsigned
from qfab.hw.multipliers import (
    BipolarDecoder,
    IntDecoder,
    Multiplier,
    shape_for_range,
    shape_range,
)
from qfab.hw.mvu import (
    MatrixVectorUnit,
    dot_product_bounds,
    mvu_block_latency,
    mvu_latency,
    mvu_model,
)
from streams import array_beats, beats_to_array, run_streams


def _divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


def _random_codes(rng, shape, size):
    lo, hi = (-(1 << (shape.width - 1)), (1 << (shape.width - 1)) - 1) if shape.signed \
        else (0, (1 << shape.width) - 1)
    return rng.integers(lo, hi, size=size, endpoint=True)


def _random_unit(rng, kind="int"):
    mh = int(rng.choice([1, 2, 3, 4, 6, 8]))
    mw = int(rng.choice([1, 2, 3, 4, 6, 8, 12]))
    pe = int(rng.choice(_divisors(mh)))
    simd = int(rng.choice(_divisors(mw)))
    in_shape = Shape(int(rng.integers(1, 16, endpoint=True)), bool(rng.integers(2)))
    if kind == "binary":
        weight_shape = signed(2)
        weights = rng.choice([-1, 1], size=(mh, mw))
    elif kind == "ternary":
        weight_shape = signed(2)
        weights = rng.integers(-1, 1, size=(mh, mw), endpoint=True)
    else:
        weight_shape = Shape(int(rng.integers(1, 16, endpoint=True)), bool(rng.integers(2)))
        weights = _random_codes(rng, weight_shape, (mh, mw))
    mult = Multiplier(IntDecoder(in_shape), IntDecoder(weight_shape))
    acc_shape = shape_for_range(*dot_product_bounds(weights, mult))
    return MatrixVectorUnit(weights=weights, in_shape=in_shape, weight_shape=weight_shape,
                            acc_shape=acc_shape, pe=pe, simd=simd,
                            pipelined=bool(rng.integers(2)), double_buffered=bool(rng.integers(2)),
                            weight_lanes=bool(rng.integers(2)))


def _run(dut, vectors, rng=None, p_idle=0.0, p_stall=0.0):
    beats = array_beats(vectors, dut.simd)
    n_out = len(vectors) * dut.neuron_folds
    logs = run_streams(dut, inputs={"i_stream": beats}, outputs={"o_stream": n_out},
                       rng=rng, p_idle=p_idle, p_stall=p_stall, tail=4, max_wait=2000)
    return beats_to_array(logs["o_stream"].beats, (len(vectors), dut.mh)), logs


@pytest.mark.parametrize("seed", range(24))
def test_random_integer_units_under_stalls(seed):
    rng = np.random.default_rng(seed)
    kind = ["int", "int", "binary", "ternary"][seed % 4]
    dut = _random_unit(rng, kind)
    vectors = _random_codes(rng, dut.in_shape, (int(rng.integers(1, 4, endpoint=True)), dut.mw))
    got, _ = _run(dut, vectors, rng, p_idle=float(rng.uniform(0, 0.6)),
                  p_stall=float(rng.uniform(0, 0.6)))
    np.testing.assert_array_equal(got, mvu_model(dut.weights, vectors))


@pytest.mark.parametrize("pipelined,double_buffered,lut", [(False, False, False),
                                                          (False, True, False),
                                                          (True, True, False),
                                                          (True, False, True)])
@pytest.mark.parametrize("mh,mw,pe,simd", [(4, 6, 2, 3), (6, 4, 1, 4), (2, 8, 2, 1), (3, 3, 3, 3),
                                           (8, 8, 2, 2), (2, 16, 1, 8)])
def test_exact_cycles_without_backpressure(mh, mw, pe, simd, pipelined, double_buffered, lut):
    rng = np.random.default_rng(mh * 100 + mw * 10 + pe + simd)
    weights = rng.integers(-8, 7, size=(mh, mw), endpoint=True)
    dut = MatrixVectorUnit(weights=weights, in_shape=unsigned(4), weight_shape=signed(4),
                           acc_shape=signed(16), pe=pe, simd=simd, pipelined=pipelined,
                           double_buffered=double_buffered, lut_products=lut,
                           weight_lanes=pipelined and not double_buffered)
    # in LUTs: the unsigned input's 4 bits select 4 partial products a product
    assert dut.lut_products == lut
    assert dut.latency == mvu_latency(simd, pipelined, 4 if lut else 0)
    assert dut.latency == mvu_block_latency(simd=simd, pipelined=pipelined, lut_products=lut,
                                            in_shape=unsigned(4), weight_shape=signed(4))
    n_vec = 5
    vectors = rng.integers(0, 15, size=(n_vec, mw), endpoint=True)
    got, logs = _run(dut, vectors)
    np.testing.assert_array_equal(got, mvu_model(weights, vectors))
    nf, sf = dut.neuron_folds, dut.synapse_folds
    assert dut.cycles_per_vector == nf * sf
    # Double-buffered, vector v streams in one beat a cycle once a bank is free: the first
    # two at once (the first fold steps over each beat as it arrives), vector v > 1 as soon
    # as vector v - 2 has been computed, at (v - 1) x NF x SF. With one bank, each in its
    # first neuron fold, at v x NF x SF; with one neuron fold, as it is computed.
    starts = [v * nf * sf if not double_buffered or nf == 1 else v * sf if v < 2
              else (v - 1) * nf * sf for v in range(n_vec)]
    assert logs["i_stream"].cycles == [starts[v] + s for v in range(n_vec) for s in range(sf)]
    # one output beat every SF cycles, the first `latency` cycles after the vector's last beat
    assert logs["o_stream"].cycles == [(j + 1) * sf - 1 + dut.latency for j in range(n_vec * nf)]
    assert logs["o_stream"].cycles[-1] + 1 == dut.cycles(n_vec)
    assert dut.weight_memory == (nf * sf, pe * simd * 4)
    assert dut.input_buffer == (((2 if double_buffered else 1) * sf if nf > 1 else 0), simd * 4)


def test_wide_operands_and_one_bit_extremes():
    rng = np.random.default_rng(7)
    for in_shape, weight_shape in [(signed(16), signed(16)), (unsigned(16), unsigned(16)),
                                   (unsigned(1), signed(1)), (signed(1), unsigned(1))]:
        lo_w, hi_w = (-(1 << (weight_shape.width - 1)), (1 << (weight_shape.width - 1)) - 1) \
            if weight_shape.signed else (0, (1 << weight_shape.width) - 1)
        lo_x, hi_x = (-(1 << (in_shape.width - 1)), (1 << (in_shape.width - 1)) - 1) \
            if in_shape.signed else (0, (1 << in_shape.width) - 1)
        weights = rng.choice([lo_w, hi_w], size=(4, 8))
        vectors = rng.choice([lo_x, hi_x], size=(3, 8))
        mult = Multiplier(IntDecoder(in_shape), IntDecoder(weight_shape))
        acc = shape_for_range(*dot_product_bounds(weights, mult))
        dut = MatrixVectorUnit(weights=weights, in_shape=in_shape, weight_shape=weight_shape,
                               acc_shape=acc, pe=2, simd=4)
        got, _ = _run(dut, vectors, rng, p_idle=0.3, p_stall=0.3)
        np.testing.assert_array_equal(got, mvu_model(weights, vectors))


@pytest.mark.parametrize("in_shape,weight_shape", [
    (unsigned(8), signed(8)), (signed(8), signed(8)), (signed(5), unsigned(3)),
    (unsigned(3), unsigned(9)), (signed(1), signed(2)), (unsigned(1), signed(1))])
def test_lut_products_are_exact_at_the_extremes(in_shape, weight_shape):
    rng = np.random.default_rng(in_shape.width * 10 + weight_shape.width)
    lo_w, hi_w = shape_range(weight_shape)
    lo_x, hi_x = shape_range(in_shape)
    weights = rng.choice([lo_w, hi_w, lo_w + hi_w // 2], size=(4, 8))
    vectors = np.concatenate([rng.choice([lo_x, hi_x], size=(3, 8)),
                              rng.integers(lo_x, hi_x, size=(3, 8), endpoint=True)])
    mult = Multiplier(IntDecoder(in_shape), IntDecoder(weight_shape))
    acc = shape_for_range(*dot_product_bounds(weights, mult))
    dut = MatrixVectorUnit(weights=weights, in_shape=in_shape, weight_shape=weight_shape,
                           acc_shape=acc, pe=2, simd=4, pipelined=True, double_buffered=True,
                           lut_products=True)
    assert dut.lut_products
    got, _ = _run(dut, vectors, rng, p_idle=0.3, p_stall=0.3)
    np.testing.assert_array_equal(got, mvu_model(weights, vectors))
    # no multiply left for Yosys to map to a DSP
    assert " * " not in verilog.convert(dut, name="mvu")
    assert " * " in verilog.convert(MatrixVectorUnit(
        weights=weights, in_shape=in_shape, weight_shape=weight_shape, acc_shape=acc, pe=2,
        simd=4, pipelined=True), name="mvu")


def test_bipolar_one_bit_weights():
    rng = np.random.default_rng(11)
    codes = rng.integers(0, 1, size=(6, 8), endpoint=True)
    mult = Multiplier(IntDecoder(signed(3)), BipolarDecoder())
    acc = shape_for_range(*dot_product_bounds(codes, mult))
    dut = MatrixVectorUnit(weights=codes, acc_shape=acc, pe=3, simd=2, multiplier=mult)
    vectors = rng.integers(-4, 3, size=(4, 8), endpoint=True)
    got, _ = _run(dut, vectors, rng, p_idle=0.4, p_stall=0.4)
    np.testing.assert_array_equal(got, vectors @ (2 * codes - 1).T)


def test_accumulator_wraps_only_in_its_width():
    # The model itself must be able to fail: a too-narrow accumulator gives wrong results.
    weights = np.full((2, 4), 7)
    dut = MatrixVectorUnit(weights=weights, in_shape=unsigned(4), weight_shape=signed(4),
                           acc_shape=signed(8), pe=1, simd=2)
    vectors = np.full((1, 4), 15)
    got, _ = _run(dut, vectors)
    assert not np.array_equal(got, mvu_model(weights, vectors))
    assert np.array_equal(got, ((mvu_model(weights, vectors) + 128) % 256) - 128)


@pytest.mark.parametrize("kwargs,match", [
    (dict(pe=3), "pe 3 does not divide MH 4"),
    (dict(simd=4), "simd 4 does not divide MW 6"),
    (dict(pe=0), "pe must be a positive int, not 0"),
    (dict(weight_shape=signed(2)), "weight code -3 does not fit"),
    (dict(weights=np.zeros(4, dtype=int)), "shape \\(4,\\)"),
    (dict(weights=np.zeros((4, 6))), "must be integer codes"),
    (dict(acc_shape="wide"), "acc_shape 'wide' is not a shape"),
    (dict(in_shape=0), "in_shape must be at least 1 bit wide, not 0"),
])
def test_bad_parameters(kwargs, match):
    params = dict(weights=np.full((4, 6), -3), in_shape=unsigned(4), weight_shape=signed(4),
                  acc_shape=signed(12), pe=2, simd=3)
    params.update(kwargs)
    with pytest.raises(ValueError, match=match):
        MatrixVectorUnit(**params)


def test_converts_to_verilog():
    rng = np.random.default_rng(3)
    dut = MatrixVectorUnit(weights=rng.integers(-2, 1, size=(4, 6), endpoint=True),
                           in_shape=unsigned(3), weight_shape=signed(2), acc_shape=signed(8),
                           pe=2, simd=3)
    text = verilog.convert(dut, name="mvu")
    assert "module mvu" in text


def test_long_continuous_stream_with_stalls():
    rng = np.random.default_rng(5)
    weights = rng.integers(-128, 127, size=(6, 12), endpoint=True)
    dut = MatrixVectorUnit(weights=weights, in_shape=signed(8), weight_shape=signed(8),
                           acc_shape=signed(20), pe=2, simd=4)
    vectors = rng.integers(-128, 127, size=(30, 12), endpoint=True)
    got, _ = _run(dut, vectors, rng, p_idle=0.2, p_stall=0.5)
    np.testing.assert_array_equal(got, mvu_model(weights, vectors))
