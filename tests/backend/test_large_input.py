"""A large image (512x512x3, channels-last, as a Keras model exports it, UpSampling2D on
the NHWC tensor too) is planned like a small one: every buffer holds rows, never the
image; the integer reference equals qonnx's execution on it."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parents[1] / "frontend"))
from qfab.compiler.backend.accelerator import make_block  # noqa: E402
from qfab.compiler.backend.plan import plan  # noqa: E402
from qonnx_graphs import Builder  # noqa: E402

from qfab.api import lower_model, reference  # noqa: E402

SIZE, CHANNELS = 512, 3


def _large_nhwc_model():
    rng = np.random.default_rng(0)
    b = Builder()

    def conv(h, c_in, c_out):
        w = b.quant(b.weight(rng.normal(0, 1, (c_out, c_in, 3, 3))), 2.0 ** -3, 4, narrow=1)
        h = b.node("Conv", [b.node("Transpose", [h], perm=[0, 3, 1, 2]), w],
                   kernel_shape=[3, 3], pads=[1, 1, 1, 1])
        return b.quant(b.node("Relu", [b.node("Transpose", [h], perm=[0, 2, 3, 1])]),
                       2.0 ** -3, 4, signed=0)

    def pool(h, k):
        h = b.node("MaxPool", [b.node("Transpose", [h], perm=[0, 3, 1, 2])],
                   kernel_shape=[k, k], strides=[k, k])
        return b.node("Transpose", [h], perm=[0, 2, 3, 1])

    h = pool(conv(b.quant("x", 2.0 ** -8, 8, signed=0), CHANNELS, 4), 4)
    h = b.node("Resize", [conv(h, 4, 4), "", b.const([1, 2, 2, 1], "scales")],
               mode="nearest", coordinate_transformation_mode="asymmetric",
               nearest_mode="floor")
    h = pool(pool(conv(h, 4, 8), 8), 8)
    w = b.quant(b.weight(rng.normal(0, 1, (8 * 4 * 4, 5))), 2.0 ** -3, 4, narrow=1)
    h = b.quant(b.node("MatMul", [b.node("Flatten", [h]), w]), 2.0 ** -2, 8)
    return b.model((1, SIZE, SIZE, CHANNELS), h)


def test_buffers_hold_rows_not_images():
    graph = lower_model(_large_nhwc_model())
    hw = plan(graph)
    image_bits = SIZE * SIZE * CHANNELS * 8
    buffered = []
    for spec in (b for s in hw.stages for b in s.blocks):
        block = make_block(spec)
        block._MustUse__silence = True
        for name in ("line_buffer", "row_memory"):
            if hasattr(block, name):
                depth, width = getattr(block, name)
                buffered.append(depth * width)
                # rows: a window's slots (a power of two >= kernel + stride: 16 for the
                # 8x8 pool) or the upsampler's one
                row_bits = spec.params["width"] * spec.params["channels"] * width // \
                    spec.in_elems
                assert depth * width <= 16 * row_bits, (spec.kind, depth, width)
    assert len(buffered) >= 5  # four windows (3 convs' and pools') and the upsampler
    assert sum(buffered) < image_bits / 8


def test_reference_equals_qonnx_on_the_large_image():
    from qonnx_graphs import qonnx_run

    model = _large_nhwc_model()
    x = np.random.default_rng(1).uniform(0, 1, (1, SIZE, SIZE, CHANNELS)).astype(np.float32)
    (y,) = reference(model, x).values()
    assert np.array_equal(y, qonnx_run(model, x))
