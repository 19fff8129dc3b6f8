# amaranth: UnusedElaboratable=no
"""MaxPool, AvgPool and GlobalAvgPool against their models under random stalls, with exact
cycle counts."""

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import Fragment, Shape, signed, unsigned
from qfab.hw._checks import shape_range
from qfab.hw.pool import (
    AvgPool,
    GlobalAvgPool,
    MaxPool,
    avgpool_reference,
    global_avgpool_reference,
    maxpool_reference,
)
from streams import array_beats, run_streams


def _geometry(rng):
    kh, kw = (int(v) for v in rng.integers(1, 4, size=2))
    # Padding below the kernel size, as ONNX requires, so no window is all padding.
    padding = (int(rng.integers(0, min(2, kh))), int(rng.integers(0, min(2, kw))),
               int(rng.integers(0, min(2, kh))), int(rng.integers(0, min(2, kw))))
    simd = int(rng.choice([1, 2, 3]))
    bits = int(rng.integers(2, 9))
    return dict(
        channels=simd * int(rng.integers(1, 4)), kernel=(kh, kw), padding=padding, simd=simd,
        height=int(rng.integers(max(1, kh - padding[0] - padding[2]), 6)),
        width=int(rng.integers(max(1, kw - padding[1] - padding[3]), 6)),
        stride=tuple(int(v) for v in rng.integers(1, 3, size=2)),
        elem_shape=signed(bits) if rng.random() < 0.6 else unsigned(bits),
    )


def _images(rng, p, images):
    lo, hi = shape_range(p["elem_shape"])
    return rng.integers(lo, hi + 1, size=(images, p["height"], p["width"], p["channels"]))


def _check(dut, x, expected, rng, stalls):
    simd = dut.simd
    out = array_beats(expected, simd)
    logs = run_streams(dut, inputs={"i_stream": array_beats(x, simd)},
                       outputs={"o_stream": len(out)}, rng=rng, tail=6 if stalls else 0,
                       p_idle=0.4 if stalls else 0.0, p_stall=0.4 if stalls else 0.0)
    assert logs["o_stream"].beats == out
    assert dut.model(x).tolist() == np.asarray(expected).tolist()
    return logs


@pytest.mark.parametrize("stalls", [True, False])
@pytest.mark.parametrize("seed", range(8))
def test_maxpool(seed, stalls):
    rng = np.random.default_rng(seed)
    p = _geometry(rng)
    x = _images(rng, p, images := int(rng.integers(1, 3)))
    # odd seeds: a register before the max; seeds 2, 3, 6, 7: the window's words registered
    dut = MaxPool(**p, registered_taps=seed % 2 == 1, registered_read=seed % 4 >= 2)
    assert dut.cycles(images) == (MaxPool(**p).cycles(images) + dut.registered_taps
                                  + dut.registered_read)
    expected = maxpool_reference(x, kernel=p["kernel"], stride=p["stride"],
                                 padding=p["padding"], pad_value=shape_range(p["elem_shape"])[0])
    logs = _check(dut, x, expected, rng, stalls)
    if not stalls:
        assert logs["o_stream"].cycles[-1] - logs["i_stream"].cycles[0] + 1 == dut.cycles(images)


@pytest.mark.parametrize("stalls", [True, False])
@pytest.mark.parametrize("seed", range(20, 28))
def test_avgpool_sums(seed, stalls):
    rng = np.random.default_rng(seed)
    p = _geometry(rng)
    p["pad_value"] = int(rng.integers(*shape_range(p["elem_shape"]), endpoint=True))
    x = _images(rng, p, images := int(rng.integers(1, 3)))
    dut = AvgPool(**p, registered_taps=seed % 2 == 1, registered_read=seed % 4 >= 2)
    assert dut.latency == AvgPool(**p).latency + dut.registered_taps + dut.registered_read
    expected = avgpool_reference(x, kernel=p["kernel"], stride=p["stride"],
                                 padding=p["padding"], pad_value=p["pad_value"])
    logs = _check(dut, x, expected, rng, stalls)
    if not stalls:
        assert logs["o_stream"].cycles[-1] - logs["i_stream"].cycles[0] + 1 == dut.cycles(images)
        need = dut.window.geometry.rows_needed(0)
        completing = logs["i_stream"].cycles[need * p["width"] * p["channels"] // p["simd"] - 1]
        assert logs["o_stream"].cycles[0] - completing == dut.latency


def test_avgpool_sum_fits_extremes():
    # All elements at the minimum and at the maximum: the sum must not wrap.
    p = dict(channels=2, height=3, width=3, kernel=(3, 3), stride=(1, 1), padding=(1, 1, 1, 1),
             elem_shape=signed(4), simd=2, pad_value=-8)
    for value in (-8, 7):
        x = np.full((1, 3, 3, 2), value)
        _check(AvgPool(**p), x, avgpool_reference(x, kernel=(3, 3), stride=(1, 1),
                                                  padding=(1, 1, 1, 1), pad_value=-8),
               np.random.default_rng(0), False)


@pytest.mark.parametrize("stalls", [True, False])
@pytest.mark.parametrize("seed", range(40, 46))
def test_global_avgpool(seed, stalls):
    rng = np.random.default_rng(seed)
    simd = int(rng.choice([1, 2, 4]))
    bits = int(rng.integers(2, 9))
    p = dict(channels=simd * int(rng.integers(1, 4)), height=int(rng.integers(1, 6)),
             width=int(rng.integers(1, 6)), simd=simd,
             elem_shape=signed(bits) if rng.random() < 0.6 else unsigned(bits))
    x = _images(rng, p, images := int(rng.integers(1, 4)))
    dut = GlobalAvgPool(**p)
    logs = _check(dut, x, global_avgpool_reference(x), rng, stalls)
    if not stalls:
        assert logs["o_stream"].cycles[-1] - logs["i_stream"].cycles[0] + 1 == dut.cycles(images)
        assert logs["o_stream"].cycles[0] - logs["i_stream"].cycles[
            dut.cycles_per_image - p["channels"] // simd] == dut.latency


def test_global_avgpool_extremes():
    x = np.full((2, 4, 4, 1), -128)
    x[1] = 127
    _check(GlobalAvgPool(channels=1, height=4, width=4, elem_shape=signed(8), simd=1), x,
           global_avgpool_reference(x), np.random.default_rng(0), True)


@pytest.mark.parametrize(("cls", "change", "bad"), [
    (MaxPool, {"simd": 3}, "3"), (AvgPool, {"kernel": (0, 2)}, r"\(0, 2\)"),
    (AvgPool, {"pad_value": 99}, "99"), (MaxPool, {"elem_shape": "q"}, "'q'"),
])
def test_rejects_bad_parameters(cls, change, bad):
    p = dict(channels=4, height=3, width=3, kernel=(2, 2), stride=(1, 1), padding=(0, 0, 0, 0),
             elem_shape=signed(4), simd=2)
    with pytest.raises(ValueError, match=bad):
        cls(**{**p, **change})


def test_global_rejects_bad_simd():
    with pytest.raises(ValueError, match="5"):
        GlobalAvgPool(channels=4, height=2, width=2, elem_shape=signed(8), simd=5)


def test_convert_to_verilog():
    p = dict(channels=4, height=5, width=5, kernel=(3, 3), stride=(2, 2), padding=(1, 1, 1, 1),
             elem_shape=signed(8), simd=2)
    for dut in (MaxPool(**p), AvgPool(**p, pad_value=-5),
                GlobalAvgPool(channels=4, height=5, width=5, elem_shape=unsigned(8), simd=2)):
        assert "o_stream__payload" in verilog.convert(dut)


def test_memory_sizes_match_the_memories():
    gap = GlobalAvgPool(channels=12, height=3, width=5, elem_shape=signed(8), simd=4)
    module = gap.elaborate(None)
    Fragment.get(module, None)  # elaborated for real, so Amaranth sees it used
    sums = module.submodules["sums"]
    assert gap.sum_memory == (sums.depth, Shape.cast(sums.shape).width) == (3, 4 * 12)
    pool = MaxPool(channels=4, height=6, width=6, kernel=(2, 2), stride=(2, 2),
                   padding=(0, 0, 0, 0), elem_shape=unsigned(8), simd=2)
    assert pool.line_buffer == pool.window.line_buffer == (4 * 6 * 2, 16)
