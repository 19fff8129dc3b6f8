# amaranth: UnusedElaboratable=no
"""Operand decoders and multipliers: hardware against model, model against numerics."""

import itertools
from fractions import Fraction

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import Elaboratable, Module, Signal, signed, unsigned
from amaranth.sim import Simulator
from qfab.hw.multipliers import (
    BipolarDecoder,
    IntDecoder,
    MinifloatDecoder,
    Multiplier,
    shape_for_range,
    shape_range,
)
from qfab.hw.mvu import MatrixVectorUnit, dot_product_bounds, mvu_model
from qfab.numerics import FixedFormat, MinifloatFormat, dot_bounds
from streams import array_beats, beats_to_array, run_streams

PRESETS = [MinifloatFormat.E4M3FN, MinifloatFormat.E5M2, MinifloatFormat.E3M2FN,
           MinifloatFormat.E2M3FN, MinifloatFormat.E2M1FN]
ODD_FORMATS = [MinifloatFormat(3, 2, subnormals=False), MinifloatFormat(4, 0, special="none"),
               MinifloatFormat(2, 1, bias=-2, special="ieee"),
               MinifloatFormat(3, 0, subnormals=False, special="fnuz"),
               MinifloatFormat(1, 2, special="none")]


def _finite(fmt):
    codes = fmt.all_codes()
    return codes[~(fmt.is_nan(codes) | fmt.is_inf(codes))]


class _Product(Elaboratable):
    def __init__(self, multiplier):
        self.multiplier = multiplier
        self.a = Signal(multiplier.a.code_shape)
        self.b = Signal(multiplier.b.code_shape)
        self.da = Signal(multiplier.a.value_shape)
        self.db = Signal(multiplier.b.value_shape)
        lo, hi = multiplier.product_min, multiplier.product_max
        self.p = Signal(shape_for_range(lo, hi))

    def elaborate(self, platform):
        m = Module()
        m.d.comb += [self.da.eq(self.multiplier.a.decode(m, self.a)),
                     self.db.eq(self.multiplier.b.decode(m, self.b)),
                     self.p.eq(self.multiplier.product(m, self.a, self.b))]
        return m


def _simulate_products(multiplier, a_codes, b_codes):
    dut = _Product(multiplier)
    out = []

    async def testbench(ctx):
        for a, b in zip(a_codes, b_codes, strict=True):
            ctx.set(dut.a, int(a))
            ctx.set(dut.b, int(b))
            out.append((ctx.get(dut.da), ctx.get(dut.db), ctx.get(dut.p)))

    sim = Simulator(dut)
    sim.add_testbench(testbench)
    sim.run()
    return np.array(out, dtype=np.int64).reshape(-1, 3)


def test_minifloat_model_is_to_fixed_for_every_format():
    checked = 0
    for e, mb, sub, sp in itertools.product(range(1, 6), range(0, 4), [True, False],
                                            ["fn", "ieee", "fnuz", "none"]):
        try:
            fmt = MinifloatFormat(e, mb, subnormals=sub, special=sp)
        except ValueError:
            continue
        dec = MinifloatDecoder(fmt)
        codes = _finite(fmt)
        np.testing.assert_array_equal(dec.model(codes), fmt.to_fixed(codes), err_msg=str(fmt))
        assert (dec.value_min, dec.value_max) == (fmt.fixed_min, fmt.fixed_max)
        assert dec.lsb_exponent == fmt.lsb_exponent
        checked += 1
    assert checked > 100


@pytest.mark.parametrize("fmt", PRESETS + ODD_FORMATS, ids=str)
def test_minifloat_decoder_hardware_every_code(fmt):
    dec = MinifloatDecoder(fmt)
    codes = _finite(fmt)
    got = _simulate_products(Multiplier(dec, IntDecoder(unsigned(1))), codes,
                             np.ones_like(codes))
    np.testing.assert_array_equal(got[:, 0], fmt.to_fixed(codes))
    np.testing.assert_array_equal(got[:, 2], fmt.to_fixed(codes))
    # exact: the decoded integer times 2**lsb is the real value
    np.testing.assert_array_equal(np.ldexp(got[:, 0].astype(float), fmt.lsb_exponent),
                                  fmt.decode(codes))


@pytest.mark.parametrize("a,b", [
    (MinifloatDecoder(MinifloatFormat.E4M3FN), MinifloatDecoder(MinifloatFormat.E5M2)),
    (MinifloatDecoder(MinifloatFormat.E2M1FN), IntDecoder(signed(4))),
    (IntDecoder(unsigned(8)), MinifloatDecoder(MinifloatFormat.E3M2FN)),
    (IntDecoder(signed(8), frac_bits=5), MinifloatDecoder(MinifloatFormat.E2M3FN)),
    (IntDecoder(signed(6)), BipolarDecoder()),
    (BipolarDecoder(), IntDecoder(unsigned(5))),
    (BipolarDecoder(), BipolarDecoder()),
    (MinifloatDecoder(MinifloatFormat.E2M1FN), BipolarDecoder()),
    (MinifloatDecoder(MinifloatFormat(3, 0, subnormals=False, special="none")),
     MinifloatDecoder(MinifloatFormat(2, 2, subnormals=False, special="none"))),
], ids=repr)
def test_products_are_exact(a, b):
    rng = np.random.default_rng(0)
    mult = Multiplier(a, b)

    def codes(dec, n):
        if isinstance(dec, MinifloatDecoder):
            return rng.choice(_finite(dec.fmt), size=n)
        lo, hi = shape_range(dec.code_shape)
        return rng.integers(lo, hi, size=n, endpoint=True)

    a_codes, b_codes = codes(a, 400), codes(b, 400)
    got = _simulate_products(mult, a_codes, b_codes)
    np.testing.assert_array_equal(got[:, 2], mult.model(a_codes, b_codes))
    assert mult.product_min <= got[:, 2].min() and got[:, 2].max() <= mult.product_max


def test_fixed_point_is_an_integer_code():
    fmt = FixedFormat(int_bits=3, frac_bits=4, signed=True)
    dec = IntDecoder(signed(8), frac_bits=4)
    codes = np.arange(-128, 128)
    np.testing.assert_array_equal(np.ldexp(dec.model(codes).astype(float), dec.lsb_exponent),
                                  fmt.to_real(codes))


def _run_mvu(dut, vectors, rng):
    logs = run_streams(dut, inputs={"i_stream": array_beats(vectors, dut.simd)},
                       outputs={"o_stream": len(vectors) * dut.neuron_folds}, rng=rng,
                       p_idle=0.3, p_stall=0.3, tail=3, max_wait=2000)
    return beats_to_array(logs["o_stream"].beats, (len(vectors), dut.mh))


@pytest.mark.parametrize("fa,fb", [
    (MinifloatFormat.E4M3FN, MinifloatFormat.E4M3FN),
    (MinifloatFormat.E5M2, MinifloatFormat.E2M1FN),
    (MinifloatFormat.E3M2FN, None),
])
def test_minifloat_dot_products_accumulate_exactly(fa, fb):
    rng = np.random.default_rng(1)
    mh, mw = 4, 8
    a = MinifloatDecoder(fa)
    b = MinifloatDecoder(fb) if fb is not None else IntDecoder(signed(3))
    mult = Multiplier(a, b)
    weights = rng.choice(_finite(fb), size=(mh, mw)) if fb is not None \
        else rng.integers(-4, 3, size=(mh, mw), endpoint=True)
    vectors = rng.choice(_finite(fa), size=(5, mw))
    lo, hi = dot_product_bounds(weights, mult)
    if fb is not None:
        # the format-wide bounds the compiler may use contain these weight-specific ones
        f_lo, f_hi, lsb = dot_bounds(fa, fb, mw)
        assert lsb == mult.lsb_exponent and f_lo <= lo and hi <= f_hi
    dut = MatrixVectorUnit(weights=weights, acc_shape=shape_for_range(lo, hi), pe=2, simd=4,
                           multiplier=mult)
    got = _run_mvu(dut, vectors, rng)
    np.testing.assert_array_equal(got, mvu_model(weights, vectors, mult))
    # the same sums in float64 (exact at these sizes): accumulation in fixed point lost nothing
    w_real = fb.decode(weights) if fb is not None else weights.astype(float)
    np.testing.assert_array_equal(np.ldexp(got.astype(float), mult.lsb_exponent),
                                  fa.decode(vectors) @ w_real.T)


def test_nan_weight_code_is_refused():
    dec = MinifloatDecoder(MinifloatFormat.E4M3FN)
    with pytest.raises(ValueError, match="NaN"):
        MatrixVectorUnit(weights=np.array([[0x7F, 0x01]]), acc_shape=signed(24), pe=1, simd=1,
                         multiplier=Multiplier(IntDecoder(signed(4)), dec))


def test_bad_decoders():
    with pytest.raises(ValueError, match="not a minifloat format"):
        MinifloatDecoder(FixedFormat(int_bits=3, frac_bits=4, signed=True))
    with pytest.raises(ValueError, match="must be an OperandDecoder"):
        Multiplier(IntDecoder(signed(4)), signed(4))
    with pytest.raises(ValueError, match="in_shape unsigned\\(4\\) is not"):
        MatrixVectorUnit(weights=np.ones((1, 1), dtype=int), in_shape=unsigned(4),
                         acc_shape=signed(8), pe=1, simd=1,
                         multiplier=Multiplier(IntDecoder(signed(4)), IntDecoder(signed(4))))


def test_minifloat_unit_converts_to_verilog():
    mult = Multiplier(MinifloatDecoder(MinifloatFormat.E4M3FN),
                      MinifloatDecoder(MinifloatFormat.E2M1FN))
    weights = np.random.default_rng(2).choice(_finite(MinifloatFormat.E2M1FN), size=(2, 4))
    dut = MatrixVectorUnit(weights=weights, acc_shape=signed(24), pe=1, simd=2,
                           multiplier=mult)
    assert "module mfmvu" in verilog.convert(dut, name="mfmvu")


def test_wide_minifloat_sums_beyond_int64():
    # E5M2 x E5M2 products span 2**66 units: model and hardware must not wrap at 64 bits
    rng = np.random.default_rng(4)
    fmt = MinifloatFormat.E5M2
    mult = Multiplier(MinifloatDecoder(fmt), MinifloatDecoder(fmt))
    big = _finite(fmt)[np.abs(fmt.decode(_finite(fmt))) >= 2.0 ** 14]
    weights = rng.choice(big, size=(2, 4))
    vectors = rng.choice(big, size=(3, 4))
    lo, hi = dot_product_bounds(weights, mult)
    assert hi >= 1 << 64
    dut = MatrixVectorUnit(weights=weights, acc_shape=shape_for_range(lo, hi), pe=2, simd=2,
                           multiplier=mult)
    logs = run_streams(dut, inputs={"i_stream": array_beats(vectors, 2)},
                       outputs={"o_stream": 3}, rng=rng, p_idle=0.2, p_stall=0.2, max_wait=500)
    got = np.array(logs["o_stream"].beats, dtype=object)
    expected = mvu_model(weights, vectors, mult)
    assert expected.dtype == object and np.abs(expected).max() >= 1 << 63
    assert (got == expected).all()
    exact = [[sum(Fraction(float(a)) * Fraction(float(b)) for a, b in zip(row, col, strict=True))
              for col in fmt.decode(weights)] for row in fmt.decode(vectors)]
    assert (got * Fraction(2) ** mult.lsb_exponent == np.array(exact, dtype=object)).all()
