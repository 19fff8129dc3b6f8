"""The blocks the cost model is calibrated on (:mod:`qfab.cost_model.calibrate`): a grid of
widths, formats and foldings of every block kind, as the plan would specify them, and the
blocks held out of the fit to check it out of sample.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from amaranth.hdl import Module, Shape, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from qfab.compiler.backend.plan import BlockSpec


def _mvu(name: str, mh: int, mw: int, pe: int, simd: int, w_bits: int, act) -> tuple:
    from qfab.hw.multipliers import IntDecoder, MinifloatDecoder, Multiplier
    from qfab.hw.mvu import dot_product_bounds

    rng = np.random.default_rng(mh * mw + w_bits)
    lo = -(1 << (w_bits - 1))
    weights = rng.integers(lo, -lo, (mh, mw))
    a = IntDecoder(act) if isinstance(act, Shape) else MinifloatDecoder(act)
    mult = Multiplier(a, IntDecoder(signed(w_bits)))
    lo_, hi_ = dot_product_bounds(weights, mult)
    acc = Shape(max(max(abs(lo_), abs(hi_)).bit_length() + 1, 2), True)
    return name, BlockSpec("mvu", dict(weights=weights, multiplier=mult, acc_shape=acc, pe=pe,
                                       simd=simd), simd, pe)


def _xnor_mvu(name: str, mh: int, mw: int, pe: int, simd: int) -> tuple:
    """A binary layer's XNOR-popcount unit: weight bits, -1/+1 activation codes in
    ``signed(2)`` (a bipolar threshold's)."""
    from qfab.hw.multipliers import BipolarDecoder, Multiplier, shape_for_range
    from qfab.hw.mvu import dot_product_bounds
    from qfab.hw.xnor_mvu import BipolarCodeDecoder

    bits = np.random.default_rng(mh * mw).integers(0, 1, (mh, mw), endpoint=True)
    mult = Multiplier(BipolarCodeDecoder(2), BipolarDecoder())
    acc = shape_for_range(*dot_product_bounds(bits, mult))
    return name, BlockSpec("mvu", dict(weights=bits, multiplier=mult, acc_shape=acc, pe=pe,
                                       simd=simd), simd, pe)


def _depthwise(name: str, channels: int, taps: int, simd: int, w_bits: int, act: Shape):
    rng = np.random.default_rng(channels * taps + w_bits)
    lo = -(1 << (w_bits - 1))
    return name, BlockSpec("depthwise", dict(
        channels=channels, taps=taps, weights=rng.integers(lo, -lo, (channels, taps)),
        in_shape=act, weight_shape=signed(w_bits), simd=simd), simd, simd)


def _add(name: str, bits: int, n: int, mult_a: int, mult_b: int, shift: int):
    lo = -(1 << (bits - 1))
    return name, BlockSpec("add", dict(
        a_shape=signed(bits), b_shape=signed(bits), out_shape=signed(bits), n=n,
        mult_a=mult_a, mult_b=mult_b, shift=shift, zero_point=-3, lo=lo, hi=-lo - 1,
        offset=5 * mult_a - 7 * mult_b), n, n)


def _fifo(name: str, bits: int, n: int, depth: int):
    return name, BlockSpec("fifo", dict(elem_shape=signed(bits), n=n, depth=depth), n, n)


def _requant(name: str, acc: int, channels: int, pe: int, per_channel: bool, out: int):
    rng = np.random.default_rng(acc * channels)
    mult = rng.integers(1 << 14, 1 << 15, channels) if per_channel else 23170
    shift = 22 if per_channel else 21
    bias = rng.integers(-100, 100, channels)
    return name, BlockSpec("requant", dict(
        acc_shape=signed(acc), channels=channels, pe=pe, bias=bias, mult=mult, shift=shift,
        zero_point=0, out_shape=signed(out)), pe, pe)


def _threshold(name: str, acc: int, channels: int, pe: int, n_thr: int):
    rng = np.random.default_rng(acc * channels + n_thr)
    thr = np.sort(rng.integers(-(1 << (acc - 2)), 1 << (acc - 2), (channels, n_thr)), axis=1)
    return name, BlockSpec("threshold", dict(
        acc_shape=signed(acc), channels=channels, pe=pe, thresholds=thr,
        out_shape=unsigned(max(n_thr.bit_length(), 1)), out_bias=0), pe, pe)


def _window(name: str, c: int, hw: int, k: int, simd: int, bits: int):
    return name, BlockSpec("window", dict(
        channels=c, height=hw, width=hw, kernel=(k, k), stride=(1, 1),
        padding=(k // 2,) * 4, pad_value=0, elem_shape=signed(bits), simd=simd), simd, simd)


def _maxpool(name: str, c: int, hw: int, simd: int, bits: int):
    return name, BlockSpec("maxpool", dict(
        channels=c, height=hw, width=hw, kernel=(2, 2), stride=(2, 2), padding=(0, 0, 0, 0),
        elem_shape=signed(bits), simd=simd), simd, simd)


def _widthconv(name: str, n_in: int, n_out: int, bits: int):
    return name, BlockSpec("widthconv", dict(elem_shape=signed(bits), n_in=n_in, n_out=n_out),
                           n_in, n_out)


def _activity(name: str, in_beats: int, out_beats: int):
    return name, BlockSpec("activity", dict(in_beats=in_beats, out_beats=out_beats), 1, 1)


class StageActivity(wiring.Component):
    """A stage's activity counters, as the accelerator builds them, around a stream passed
    through: the cost of a stage beyond its blocks'."""

    def __init__(self, *, in_beats: int, out_beats: int):
        self.beats = SimpleNamespace(in_beats=in_beats, out_beats=out_beats)
        super().__init__({"i_stream": In(stream.Signature(8)),
                          "o_stream": Out(stream.Signature(8)), "o_stage_active": Out(1)})

    def elaborate(self, platform) -> Module:
        from qfab.compiler.backend.accelerator import Accelerator

        m = Module()
        wiring.connect(m, wiring.flipped(self.i_stream), wiring.flipped(self.o_stream))
        Accelerator._activity(self, m, 0, self.beats, self.i_stream, self.o_stream)
        return m


def grid(small: bool = False) -> list[tuple[str, BlockSpec]]:
    """The calibration blocks; ``small`` is the subset CI synthesizes."""
    from qfab.numerics import MinifloatFormat

    blocks = [
        _mvu("mvu_w2a2_p2s4", 16, 32, 2, 4, 2, signed(2)),
        _mvu("mvu_w4a4_p2s4", 16, 32, 2, 4, 4, signed(4)),
        _requant("requant_pc_a16_p2", 16, 16, 2, True, 8),
        _threshold("thr_a8_p4_t3", 8, 16, 4, 3),
        _widthconv("wconv_8to2_b8", 8, 2, 8),
    ]
    if small:
        return blocks + held_out()[2:3]
    blocks += [
        _mvu("mvu_w8a8_p2s4", 16, 32, 2, 4, 8, signed(8)),
        _mvu("mvu_w4a8_p4s8", 16, 64, 4, 8, 4, unsigned(8)),
        _mvu("mvu_w2a2_p4s8_deep", 64, 256, 4, 8, 2, signed(2)),
        _mvu("mvu_w4_e4m3_p2s4", 16, 32, 2, 4, 4, MinifloatFormat.E4M3FN),
        _mvu("mvu_w4_e2m1_p2s8", 16, 32, 2, 8, 4, MinifloatFormat.E2M1FN),
        _requant("requant_u_a12_p4", 12, 16, 4, False, 4),
        _threshold("thr_a12_p2_t15", 12, 16, 2, 15),
        _window("window_c8_8x8_k3_s4_b8", 8, 8, 3, 4, 8),
        _window("window_c16_12x12_k3_s8_b4", 16, 12, 3, 8, 4),
        _maxpool("maxpool_c8_8x8_s4_b8", 8, 8, 4, 8),
        _widthconv("wconv_2to8_b4", 2, 8, 4),
        _widthconv("wconv_4to6_b8", 4, 6, 8),
        # shaped like the layers of the example designs (a first conv, an MLP layer)
        _mvu("mvu_w8a8u_p4s3", 8, 9, 4, 3, 8, unsigned(8)),
        _mvu("mvu_w2a2u_p4s8", 64, 64, 4, 8, 2, unsigned(2)),
        _requant("requant_pc_a18_p4", 18, 8, 4, True, 8),
        _threshold("thr_a8_p4_t3_c64", 8, 64, 4, 3),
        # 2-bit products in wide trees (weights in block RAM), a weight ROM 1,024 words deep
        # in logic, a threshold ROM of 64 words, as balanced folding makes them
        _mvu("mvu_w2a2_p2s16", 16, 64, 2, 16, 2, signed(2)),
        _mvu("mvu_w2a2_p1s32", 32, 256, 1, 32, 2, signed(2)),
        _mvu("mvu_w2a2_p1s4_rom1k", 32, 128, 1, 4, 2, signed(2)),
        _threshold("thr_a10_p1_t3_c64", 10, 64, 1, 3),
        # a stage's activity counters beyond its blocks
        _activity("activity_1_6", 1, 6),
        _activity("activity_16_64", 16, 64),
        _activity("activity_64_10", 64, 10),
    ]
    return blocks + held_out()


def held_out() -> list[tuple[str, BlockSpec]]:
    """Grid blocks the fit does not see, so their rows test the model out of sample: the
    depthwise MACs, residual adds, skip FIFOs and XNOR-popcount units, added after the
    weights were fitted."""
    return [
        _depthwise("dw_c16_k9_s4_w8a8u", 16, 9, 4, 8, unsigned(8)),
        _depthwise("dw_c32_k9_s8_w4a4", 32, 9, 8, 4, signed(4)),
        _depthwise("dw_c16_k9_s2_w3a3", 16, 9, 2, 3, signed(3)),
        _depthwise("dw_c8_k4_s8_w2a4u", 8, 4, 8, 2, unsigned(4)),
        _add("add_a8_n4", 8, 4, 23170, 17001, 15),
        _add("add_a8_n1_pow2", 8, 1, 1 << 14, 3 << 13, 15),
        _fifo("fifo_b8_n4_d38", 8, 4, 38),
        _fifo("fifo_b8_n2_d290", 8, 2, 290),
        # shaped like binary TFC's and CNV's layers, and a wide one
        _xnor_mvu("xnor_64x64_p4s8", 64, 64, 4, 8),
        _xnor_mvu("xnor_10x64_p2s8", 10, 64, 2, 8),
        _xnor_mvu("xnor_32x288_p4s8", 32, 288, 4, 8),
        _xnor_mvu("xnor_64x256_p4s16", 64, 256, 4, 16),
    ]
