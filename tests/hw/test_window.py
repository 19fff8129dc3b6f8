# amaranth: UnusedElaboratable=no
"""SlidingWindow against im2col_reference: random geometry, several images, random stalls,
exact cycle counts without back-pressure."""

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import Fragment, Shape, signed, unsigned
from qfab.hw._checks import shape_range
from qfab.hw.window import SlidingWindow, WindowGeometry, im2col_reference
from streams import array_beats, run_streams


def _random_params(rng, *, depthwise=None, taps=False):
    kh, kw = (int(v) for v in rng.integers(1, 4, size=2))
    if taps:  # several kernel columns a beat: whole pixels, a kernel width they divide
        kw = int(rng.choice([2, 3, 4]))
    padding = tuple(int(v) for v in rng.integers(0, 2, size=4))
    height = int(rng.integers(max(1, kh - padding[0] - padding[2]), 7))
    width = int(rng.integers(max(1, kw - padding[1] - padding[3]), 7))
    simd = int(rng.choice([1, 2, 3]))
    bits = int(rng.integers(2, 9))
    elem = signed(bits) if rng.random() < 0.6 else unsigned(bits)
    lo, hi = shape_range(elem)
    params = dict(
        channels=simd * int(rng.integers(1, 4)), height=height, width=width, kernel=(kh, kw),
        stride=tuple(int(v) for v in rng.integers(1, 3, size=2)), padding=padding,
        pad_value=int(rng.integers(lo, hi + 1)), elem_shape=elem, simd=simd,
        depthwise=bool(rng.integers(0, 2)) if depthwise is None else depthwise,
    )
    if taps:  # without depthwise, whole pixels a beat
        if not params["depthwise"]:
            params["channels"] = simd
        params["taps"] = int(rng.choice([t for t in range(2, kw + 1) if kw % t == 0]))
    return params


def _run(params, images, rng, **stalls):
    lo, hi = shape_range(params["elem_shape"])
    x = rng.integers(lo, hi + 1, size=(images, params["height"], params["width"],
                                       params["channels"]))
    expected = im2col_reference(x, kernel=params["kernel"], stride=params["stride"],
                                padding=params["padding"], pad_value=params["pad_value"],
                                simd=params["simd"], depthwise=params.get("depthwise", False))
    dut = SlidingWindow(**params)
    assert dut.model(x).tolist() == expected.tolist()
    out_beats = array_beats(expected, params["simd"] * params.get("taps", 1))
    logs = run_streams(dut, inputs={"i_stream": array_beats(x, params["simd"])},
                       outputs={"o_stream": len(out_beats)}, rng=rng, **stalls)
    return dut, logs, out_beats


@pytest.mark.parametrize("seed", range(30))
def test_random_geometry_under_stalls(seed):
    rng = np.random.default_rng(seed)
    params = _random_params(rng)
    params["registered_read"] = seed % 2 == 1  # odd seeds: the words read registered
    _, logs, expected = _run(params, int(rng.integers(1, 3)), rng,
                             p_idle=float(rng.uniform(0, 0.7)), p_stall=float(rng.uniform(0, 0.7)),
                             tail=6)
    assert logs["o_stream"].beats == expected


@pytest.mark.parametrize("seed", range(200, 220))
def test_several_columns_a_beat_under_stalls(seed):
    # taps ports read neighbouring kernel columns, those in the padding included
    rng = np.random.default_rng(seed)
    params = _random_params(rng, taps=True)
    params["registered_read"] = seed % 2 == 1
    _, logs, expected = _run(params, int(rng.integers(1, 3)), rng,
                             p_idle=float(rng.uniform(0, 0.7)), p_stall=float(rng.uniform(0, 0.7)),
                             tail=6)
    assert logs["o_stream"].beats == expected


@pytest.mark.parametrize("seed", [*range(100, 130), *range(230, 240)])
def test_exact_cycles_without_back_pressure(seed):
    rng = np.random.default_rng(seed)
    params = _random_params(rng, taps=seed >= 230)
    params["registered_read"] = seed % 2 == 1
    images = int(rng.integers(1, 4))
    dut, logs, expected = _run(params, images, rng)
    assert logs["o_stream"].beats == expected
    first_in, last_out = logs["i_stream"].cycles[0], logs["o_stream"].cycles[-1]
    assert last_out - first_in + 1 == dut.cycles(images)
    if images == 1:
        assert dut.tensor_cycles == dut.cycles(1)
    else:
        per_image = len(expected) // images
        ends = logs["o_stream"].cycles[per_image - 1::per_image]
        assert ends[-1] - ends[-2] == (dut.cycles_per_image if images == 3 else
                                       dut.cycles(2) - dut.cycles(1))
    need = dut.geometry.rows_needed(0)
    completing = logs["i_stream"].cycles[need * params["width"] * params["channels"]
                                          // params["simd"] - 1]
    assert logs["o_stream"].cycles[0] - completing == dut.latency


@pytest.mark.parametrize("seed", range(300, 330))
def test_registered_ready_keeps_every_cycle(seed):
    # ready and "rows available" kept as flip-flops from the counters' next values: every
    # transfer in the same cycle as computed in the cycle, under idle input and back-pressure
    params = _random_params(np.random.default_rng(seed), taps=seed % 3 == 0)
    params["registered_read"] = seed % 2 == 1  # with the words read registered, too
    runs = []
    for registered in (False, True):
        rng = np.random.default_rng(seed)
        images = int(rng.integers(1, 4))
        _, logs, expected = _run(dict(params, registered_ready=registered), images, rng,
                                 p_idle=float(rng.uniform(0, 0.7)),
                                 p_stall=float(rng.uniform(0, 0.7)), tail=6)
        assert logs["o_stream"].beats == expected
        runs.append([logs[name].cycles for name in ("i_stream", "o_stream")])
    assert runs[0] == runs[1]


@pytest.mark.parametrize("height", [1, 2, 3])
def test_registered_ready_with_a_step_a_row(height):
    # every step ends an output row (a 1x1 kernel on a column, a beat a pixel), and with one
    # output row every step ends an image: the carries kept as flip-flops are set throughout
    params = dict(channels=1, height=height, width=1, kernel=(1, 1), stride=(1, 1),
                  padding=(0, 0, 0, 0), pad_value=0, elem_shape=unsigned(4), simd=1)
    runs = []
    for registered in (False, True):
        rng = np.random.default_rng(height)
        _, logs, expected = _run(dict(params, registered_ready=registered), 3, rng,
                                 p_idle=0.3, p_stall=0.3, tail=6)
        assert logs["o_stream"].beats == expected
        runs.append([logs[name].cycles for name in ("i_stream", "o_stream")])
    assert runs[0] == runs[1]


def test_stride_skips_trailing_rows_across_images():
    # Rows below the last window are released before they are written; the next image must
    # still start at its own row 0.
    params = dict(channels=2, height=6, width=3, kernel=(1, 1), stride=(2, 2),
                  padding=(0, 0, 0, 0), pad_value=0, elem_shape=unsigned(8), simd=1)
    _, logs, expected = _run(params, 3, np.random.default_rng(5), p_idle=0.2, p_stall=0.5)
    assert logs["o_stream"].beats == expected


@pytest.mark.parametrize(("height", "width"), [(1, 21), (20, 1)])
def test_long_thin_images(height, width):
    # Row and column coordinates are sized separately; a wide, short image must not wrap.
    params = dict(channels=1, height=height, width=width, kernel=(1, 3), stride=(1, 2),
                  padding=(1, 1, 0, 1), pad_value=-1, elem_shape=signed(5), simd=1)
    if width == 1:
        params.update(kernel=(3, 1), stride=(2, 1), padding=(1, 0, 1, 1))
    _, logs, expected = _run(params, 2, np.random.default_rng(9), p_idle=0.2, p_stall=0.2)
    assert logs["o_stream"].beats == expected


@pytest.mark.parametrize(("kernel", "stride", "padding"), [
    ((5, 5), (1, 1), (2, 2, 2, 2)), ((2, 2), (3, 3), (0, 0, 1, 1)), ((7, 1), (2, 1), (3, 0, 3, 0)),
])
def test_larger_kernels_strides_and_padding(kernel, stride, padding):
    params = dict(channels=2, height=6, width=5, kernel=kernel, stride=stride, padding=padding,
                  pad_value=3, elem_shape=signed(6), simd=1, depthwise=False)
    dut, logs, expected = _run(params, 2, np.random.default_rng(11))
    assert logs["o_stream"].beats == expected
    assert logs["o_stream"].cycles[-1] - logs["i_stream"].cycles[0] + 1 == dut.cycles(2)


def test_depthwise_order():
    x = np.arange(2 * 2 * 4).reshape(1, 2, 2, 4)
    got = im2col_reference(x, kernel=(2, 2), stride=(1, 1), padding=(0, 0, 0, 0), pad_value=0,
                           simd=2, depthwise=True)
    # One output pixel; channel group 0 (channels 0, 1) over the four taps, then group 1.
    assert got.reshape(-1).tolist() == [0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15]


@pytest.mark.parametrize(("change", "bad"), [
    ({"simd": 3}, "3"), ({"kernel": (0, 1)}, r"\(0, 1\)"), ({"stride": (1,)}, r"\(1,\)"),
    ({"padding": (0, 0, -1, 0)}, "-1"), ({"pad_value": 300}, "300"), ({"kernel": (6, 1)}, "6"),
    ({"height": 0}, "0"), ({"taps": 3}, "taps 3"), ({"simd": 4, "taps": 2}, "taps 2"),
    ({"taps": 2, "depthwise": True}, "taps 2"), ({"taps": 0}, "0"),
])
def test_rejects_bad_parameters(change, bad):
    params = dict(channels=4, height=3, width=3, kernel=(3, 3), stride=(1, 1),
                  padding=(1, 1, 1, 1), pad_value=0, elem_shape=signed(8), simd=2)
    with pytest.raises(ValueError, match=bad):
        SlidingWindow(**{**params, **change})


def test_taps_shorten_an_output_row():
    # three kernel columns a beat: a third of the beats, a three-pixel-wide payload
    params = dict(channels=3, height=8, width=8, kernel=(3, 3), stride=(1, 1),
                  padding=(0, 0, 0, 0), pad_value=0, elem_shape=unsigned(8), simd=3)
    one, three = SlidingWindow(**params), SlidingWindow(**params, taps=3)
    assert one.geometry.out_row_beats == 3 * three.geometry.out_row_beats == 6 * 9
    assert len(three.o_stream.payload) == 9
    assert three.cycles_per_image < one.cycles_per_image


@pytest.mark.parametrize("depthwise", [False, True])
def test_converts_to_verilog(depthwise):
    dut = SlidingWindow(channels=8, height=5, width=7, kernel=(3, 3), stride=(2, 1),
                        padding=(1, 1, 1, 1), pad_value=-3, elem_shape=signed(8), simd=4,
                        depthwise=depthwise)
    assert "o_stream__payload" in verilog.convert(dut)


def test_line_buffer_size_matches_the_memory():
    dut = SlidingWindow(channels=6, height=4, width=5, kernel=(3, 2), stride=(2, 1),
                        padding=(1, 0, 0, 1), pad_value=0, elem_shape=signed(7), simd=3)
    module = dut.elaborate(None)
    Fragment.get(module, None)  # elaborated for real, so Amaranth sees it used
    lines = module.submodules["lines"]
    assert dut.row_slots == 8  # kh + sh = 5 rounded up to a power of two
    assert dut.line_buffer == (lines.depth, Shape.cast(lines.shape).width) == (8 * 5 * 2, 21)


@pytest.mark.parametrize("padding, slots", [((0, 0, 0, 0), 8), ((1, 1, 1, 1), 4)])
def test_line_buffer_holds_the_next_images_first_rows(padding, slots):
    # unpadded 3 x 3: the last output row holds three rows and the next image's first needs
    # three, six in all; padded: two and two, within kh + sh = 4
    geom = WindowGeometry(height=12, width=12, kernel=(3, 3), stride=(1, 1), padding=padding,
                          beats_per_pixel=1)
    assert geom.row_slots == slots
