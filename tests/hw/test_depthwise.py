# amaranth: UnusedElaboratable=no
"""DepthwiseUnit against its model, alone and behind a depthwise SlidingWindow, against a
depthwise convolution written out loop by loop."""

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import Fragment, Module, Shape, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from qfab.hw._checks import shape_range
from qfab.hw.depthwise import DepthwiseUnit, depthwise_conv_reference
from qfab.hw.window import SlidingWindow
from streams import array_beats, run_streams


def _loop_depthwise(x, w, kernel, stride, padding, pad_value):
    n, h, wd, c = x.shape
    (kh, kw), (sh, sw), (pt, pl, pb, pr) = kernel, stride, padding
    oh, ow = (h + pt + pb - kh) // sh + 1, (wd + pl + pr - kw) // sw + 1
    out = np.zeros((n, oh, ow, c), dtype=np.int64)
    for b in range(n):
        for oy in range(oh):
            for ox in range(ow):
                for ch in range(c):
                    for ky in range(kh):
                        for kx in range(kw):
                            iy, ix = oy * sh + ky - pt, ox * sw + kx - pl
                            inside = 0 <= iy < h and 0 <= ix < wd
                            v = int(x[b, iy, ix, ch]) if inside else pad_value
                            out[b, oy, ox, ch] += v * int(w[ch, ky * kw + kx])
    return out


class _Chain(wiring.Component):
    def __init__(self, window, unit):
        self._window, self._unit = window, unit
        super().__init__({
            "i_stream": In(stream.Signature(data.ArrayLayout(window.elem_shape, window.simd))),
            "o_stream": Out(stream.Signature(data.ArrayLayout(unit.acc_shape, unit.simd))),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.window, m.submodules.unit = self._window, self._unit
        wiring.connect(m, wiring.flipped(self.i_stream), self._window.i_stream)
        wiring.connect(m, self._window.o_stream, self._unit.i_stream)
        wiring.connect(m, self._unit.o_stream, wiring.flipped(self.o_stream))
        return m


def _random_weights(rng, channels, taps, shape):
    return rng.integers(*shape_range(shape), endpoint=True, size=(channels, taps))


@pytest.mark.parametrize("stalls", [True, False])
@pytest.mark.parametrize("seed", range(10))
def test_unit_against_model(seed, stalls):
    rng = np.random.default_rng(seed)
    simd, taps = int(rng.choice([1, 2, 4])), int(rng.integers(1, 10))
    columns = int(rng.choice([c for c in (1, 2, 3) if taps % c == 0])) if seed >= 6 else 1
    channels = simd * int(rng.integers(1, 4))
    in_shape = signed(int(rng.integers(2, 9))) if rng.random() < 0.5 else unsigned(8)
    w_shape = signed(int(rng.integers(2, 9)))
    weights = _random_weights(rng, channels, taps, w_shape)
    dut = DepthwiseUnit(channels=channels, taps=taps, weights=weights, in_shape=in_shape,
                        weight_shape=w_shape, simd=simd, columns=columns)
    pixels = int(rng.integers(1, 6))
    windows = rng.integers(*shape_range(in_shape), endpoint=True, size=(pixels, taps * channels))
    expected = dut.model(windows)
    logs = run_streams(dut, inputs={"i_stream": array_beats(windows, simd * columns)},
                       outputs={"o_stream": pixels * channels // simd}, rng=rng,
                       p_idle=0.4 if stalls else 0, p_stall=0.4 if stalls else 0,
                       tail=4 if stalls else 0)
    assert logs["o_stream"].beats == array_beats(expected, simd)
    if not stalls:
        assert logs["o_stream"].cycles[-1] - logs["i_stream"].cycles[0] + 1 == dut.cycles(pixels)


def test_extreme_values_fit_acc_shape():
    weights = np.array([[-128, -128, -128, -128], [127, 127, 127, 127]])
    dut = DepthwiseUnit(channels=2, taps=4, weights=weights, in_shape=signed(8),
                        weight_shape=signed(8), simd=2)
    windows = np.array([[-128] * 8, [127] * 8, [-128, 127] * 4])
    logs = run_streams(dut, inputs={"i_stream": array_beats(windows, 2)},
                       outputs={"o_stream": 3})
    assert logs["o_stream"].beats == array_beats(dut.model(windows), 2)
    # (-128) * (-128) * 4 = 65536 needs 18 signed bits.
    assert dut.acc_shape == signed(18)


@pytest.mark.parametrize("seed", range(8))
def test_behind_sliding_window_equals_depthwise_conv(seed):
    # seeds 4 on: the window's ports read several kernel columns a beat, the unit's lanes
    # multiply them
    rng = np.random.default_rng(100 + seed)
    kernel = tuple(int(v) for v in rng.integers(1, 4, size=2))
    if seed >= 4:
        kernel = (kernel[0], int(rng.choice([2, 3])))
    columns = kernel[1] if seed >= 4 else 1
    stride = tuple(int(v) for v in rng.integers(1, 3, size=2))
    padding = tuple(int(v) for v in rng.integers(0, 2, size=4))
    simd = int(rng.choice([1, 2]))
    channels = simd * int(rng.integers(1, 3))
    height, width = int(rng.integers(kernel[0], 6)), int(rng.integers(kernel[1], 6))
    pad_value = int(rng.integers(-3, 4))
    window = SlidingWindow(channels=channels, height=height, width=width, kernel=kernel,
                           stride=stride, padding=padding, pad_value=pad_value,
                           elem_shape=signed(6), simd=simd, depthwise=True, taps=columns)
    weights = _random_weights(rng, channels, kernel[0] * kernel[1], signed(5))
    unit = DepthwiseUnit(channels=channels, taps=kernel[0] * kernel[1], weights=weights,
                         in_shape=signed(6), weight_shape=signed(5), simd=simd,
                         columns=columns)
    x = rng.integers(-32, 32, size=(2, height, width, channels))
    expected = _loop_depthwise(x, weights, kernel, stride, padding, pad_value)
    assert depthwise_conv_reference(x, weights, kernel=kernel, stride=stride, padding=padding,
                                    pad_value=pad_value).tolist() == expected.tolist()
    logs = run_streams(_Chain(window, unit), inputs={"i_stream": array_beats(x, simd)},
                       outputs={"o_stream": expected.size // simd}, rng=rng,
                       p_idle=0.3, p_stall=0.3, tail=4)
    assert logs["o_stream"].beats == array_beats(expected, simd)


@pytest.mark.parametrize(("change", "bad"), [
    ({"simd": 3}, "3"), ({"taps": 0}, "0"), ({"weights": np.zeros((2, 4), int)}, r"\(2, 4\)"),
    ({"columns": 3}, "columns 3"), ({"columns": 0}, "0"),
    ({"weights": np.full((4, 4), 9)}, "9"),
])
def test_rejects_bad_parameters(change, bad):
    p = dict(channels=4, taps=4, weights=np.zeros((4, 4), int), in_shape=signed(8),
             weight_shape=signed(4), simd=2)
    with pytest.raises(ValueError, match=bad):
        DepthwiseUnit(**{**p, **change})


def test_converts_to_verilog():
    dut = DepthwiseUnit(channels=4, taps=9, weights=np.arange(36).reshape(4, 9) - 18,
                        in_shape=unsigned(8), weight_shape=signed(6), simd=2)
    assert "o_stream__payload" in verilog.convert(dut)


def test_weight_memory_size_matches_the_rom():
    dut = DepthwiseUnit(channels=6, taps=4, weights=np.ones((6, 4), int), in_shape=signed(8),
                        weight_shape=signed(3), simd=3)
    module = dut.elaborate(None)
    Fragment.get(module, None)  # elaborated for real, so Amaranth sees it used
    rom = module.submodules["rom"]
    assert dut.weight_memory == (rom.depth, Shape.cast(rom.shape).width) == (8, 9)
    assert dut.multiplier_count == 3
