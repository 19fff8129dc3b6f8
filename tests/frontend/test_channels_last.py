"""The channels-last rewrite (compiler/frontend/channels_last.py): transposes moved through
elementwise ops with per-channel constants and cancelled, checked against qonnx's execution
of the model before and after."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from qfab.compiler.frontend.channels_last import channels_first
from qonnx_graphs import Builder, qonnx_run

import qfab
from qfab.errors import QfabError

pytest.importorskip("qonnx")


def _tf2onnx_style(rng) -> onnx.ModelProto:
    """NHWC input; transposes around the Conv and the MaxPool as tf2onnx writes them, a
    per-channel Mul and Add (a folded BatchNorm) and a ReLU on the channels-last tensor."""
    b = Builder()
    h = b.quant(b.node("Transpose", ["x"], perm=[0, 3, 1, 2]), 2.0 ** -6, 8, signed=0)
    w = b.quant(b.weight(rng.normal(0, 1, (3, 2, 3, 3))), 2.0 ** -2, 4, narrow=1)
    h = b.node("Transpose", [b.node("Conv", [h, w], kernel_shape=[3, 3], pads=[1, 1, 1, 1])],
               perm=[0, 2, 3, 1])
    h = b.node("Mul", [h, b.const(rng.uniform(0.5, 1.5, 3))])
    h = b.node("Add", [b.const(rng.normal(0, 1, (1, 1, 3))), h])
    h = b.quant(b.node("Relu", [h]), 2.0 ** -3, 4, signed=0)
    h = b.node("MaxPool", [b.node("Transpose", [h], perm=[0, 3, 1, 2])], kernel_shape=[2, 2],
               strides=[2, 2])
    h = b.node("Flatten", [b.node("Transpose", [h], perm=[0, 2, 3, 1])])
    w = b.quant(b.weight(rng.normal(0, 1, (12, 4))), 2.0 ** -2, 4, narrow=1)
    return b.model((1, 4, 4, 2), b.quant(b.node("MatMul", [h, w]), 2.0 ** -2, 8))


def test_transposes_cancel_through_per_channel_constants():
    rng = np.random.default_rng(0)
    model = _tf2onnx_style(rng)
    rewritten = channels_first(model)
    ops = [n.op_type for n in rewritten.graph.node]
    # One transpose onto the input (the host's), one before the Flatten (the stream order).
    assert ops.count("Transpose") == 2 and ops.index("Transpose") == 0
    x = rng.uniform(0, 1, (6, 1, 4, 4, 2)).astype(np.float32)
    before = np.concatenate([qonnx_run(model, xi) for xi in x])
    after = np.concatenate([qonnx_run(rewritten, xi) for xi in x])
    assert np.array_equal(before, after)
    (got,) = qfab.reference(model, x[:, 0]).values()
    assert np.array_equal(got, before)


def test_model_without_transposes_is_untouched():
    b = Builder()
    model = b.model((1, 4), b.quant("x", 0.5, 4))
    assert channels_first(model) is model


def test_conv3d_names_the_node():
    b = Builder()
    h = b.quant("x", 2.0 ** -6, 8, signed=0)
    w = b.quant(b.weight(np.ones((2, 1, 1, 1, 1))), 1.0, 4)
    model = b.model((1, 1, 2, 2, 2), b.node("Conv", [h, w], kernel_shape=[1, 1, 1]))
    with pytest.raises(QfabError, match=r"Conv node .conv\d+.: only 1-D and 2-D convolution"):
        qfab.reference(model, np.zeros((1, 1, 2, 2, 2), np.float32))


def test_global_average_pooling_as_reduce_mean():
    """tf2onnx's GlobalAveragePooling2D: ReduceMean over H, W of the NHWC tensor, no
    keepdims; the transpose before it goes, the mean is the global sum."""
    rng = np.random.default_rng(1)
    b = Builder()
    h = b.quant(b.node("Transpose", ["x"], perm=[0, 3, 1, 2]), 2.0 ** -6, 8, signed=0)
    w = b.quant(b.weight(rng.normal(0, 1, (4, 2, 3, 3))), 2.0 ** -2, 4, narrow=1)
    h = b.quant(b.node("Relu", [b.node("Conv", [h, w], kernel_shape=[3, 3])]), 2.0 ** -3, 4,
                signed=0)
    h = b.node("ReduceMean", [b.node("Transpose", [h], perm=[0, 2, 3, 1])], axes=[1, 2],
               keepdims=0)
    h = b.quant(h, 2.0 ** -4, 8, signed=0)
    w = b.quant(b.weight(rng.normal(0, 1, (4, 3))), 2.0 ** -2, 4, narrow=1)
    model = b.model((1, 4, 4, 2), b.quant(b.node("MatMul", [h, w]), 2.0 ** -3, 8))
    assert [n.op_type for n in channels_first(model).graph.node].count("Transpose") == 1
    x = rng.uniform(0, 1, (6, 4, 4, 2)).astype(np.float32)
    want = qonnx_run(model, x)
    (got,) = qfab.reference(model, x).values()
    assert np.array_equal(got, want)
    assert len(np.unique(want, axis=0)) > 1
    assert {s.op for s in qfab.compile(model, soc=False).plan.stages} >= {"globalsum"}


def _residual_nhwc(rng) -> onnx.ModelProto:
    """A Keras residual block as tf2onnx writes it: the block's input and the Add are NHWC,
    each Conv between its own pair of transposes."""
    b = Builder()

    def conv(h, c_in, c_out, signed):
        w = b.quant(b.weight(rng.normal(0, 1, (c_out, c_in, 3, 3))), 2.0 ** -3, 4, narrow=1)
        h = b.node("Conv", [b.node("Transpose", [h], perm=[0, 3, 1, 2]), w],
                   kernel_shape=[3, 3], pads=[1, 1, 1, 1])
        return b.quant(b.node("Transpose", [b.node("Relu", [h]) if not signed else h],
                              perm=[0, 2, 3, 1]), 2.0 ** -3, 6, signed=signed)

    block_in = conv(b.quant("x", 2.0 ** -6, 8, signed=0), 2, 3, signed=0)
    h = b.quant(b.node("Add", [block_in, conv(block_in, 3, 3, signed=1)]), 2.0 ** -2, 6,
                signed=1)
    h = b.node("Flatten", [h])
    w = b.quant(b.weight(rng.normal(0, 1, (48, 4))), 2.0 ** -3, 4, narrow=1)
    return b.model((1, 4, 4, 2), b.quant(b.node("MatMul", [h, w]), 2.0 ** -2, 8))


def test_residual_block_transposes_cancel():
    rng = np.random.default_rng(2)
    model = _residual_nhwc(rng)
    rewritten = channels_first(model)
    assert [n.op_type for n in rewritten.graph.node].count("Transpose") == 2
    x = rng.uniform(0, 1, (6, 4, 4, 2)).astype(np.float32)
    want = qonnx_run(model, x)
    (got,) = qfab.reference(model, x).values()
    assert np.array_equal(got, want)
    assert len(np.unique(want, axis=0)) > 1
    assert "add" in {s.op for s in qfab.compile(model, soc=False).plan.stages}


def test_zero_padding_folds_into_the_conv():
    """Keras's ZeroPadding2D before a 'valid' Conv2D, as tf2onnx writes it (a Pad of the
    NHWC tensor, then the transpose): the padding becomes the Conv's."""
    rng = np.random.default_rng(3)
    b = Builder()
    h = b.quant("x", 2.0 ** -6, 8, signed=0)
    pads = b.const(np.array([0, 1, 2, 0, 0, 1, 0, 0]), "pads")
    b.inits[-1] = onnx.numpy_helper.from_array(np.array([0, 1, 2, 0, 0, 1, 0, 0]), pads)
    h = b.node("Transpose", [b.node("Pad", [h, pads])], perm=[0, 3, 1, 2])
    w = b.quant(b.weight(rng.normal(0, 1, (3, 2, 3, 3))), 2.0 ** -2, 4, narrow=1)
    h = b.quant(b.node("Conv", [h, w], kernel_shape=[3, 3]), 2.0 ** -2, 8)
    model = b.model((1, 4, 4, 2), b.node("Flatten", [h]))
    rewritten = channels_first(model)
    assert "Pad" not in [n.op_type for n in rewritten.graph.node]
    x = rng.uniform(0, 1, (4, 4, 4, 2)).astype(np.float32)
    want = qonnx_run(model, x)
    (got,) = qfab.reference(model, x).values()
    assert got.shape == want.shape == (4, 3 * 4 * 4)
    assert np.array_equal(got, want)


def _tf2onnx_conv1d(rng) -> onnx.ModelProto:
    """Keras Conv1D as tf2onnx writes it: the [N, L, C] sequence unsqueezed to
    [N, 1, L, C], transposed to NCHW, a Conv of kernel [1, k], transposed back and squeezed."""
    b = Builder()

    def axes(values):
        name = b.const(np.array(values), "axes")
        b.inits[-1] = onnx.numpy_helper.from_array(np.array(values, np.int64), name)
        return name

    def conv1d(h, c_in, c_out):
        h = b.node("Transpose", [b.node("Unsqueeze", [h, axes([1])])], perm=[0, 3, 1, 2])
        w = b.quant(b.weight(rng.normal(0, 1, (c_out, c_in, 1, 3))), 2.0 ** -2, 4, narrow=1)
        h = b.node("Conv", [h, w], kernel_shape=[1, 3], pads=[0, 1, 0, 1])
        h = b.node("Squeeze", [b.node("Transpose", [h], perm=[0, 2, 3, 1]), axes([1])])
        return b.quant(b.node("Relu", [h]), 2.0 ** -3, 4, signed=0)

    h = conv1d(conv1d(b.quant("x", 2.0 ** -6, 8, signed=0), 2, 3), 3, 4)
    w = b.quant(b.weight(rng.normal(0, 1, (24, 3))), 2.0 ** -2, 4, narrow=1)
    return b.model((1, 6, 2), b.quant(b.node("MatMul", [b.node("Flatten", [h]), w]),
                                      2.0 ** -2, 8))


def test_tf2onnx_conv1d_transposes_and_unit_axes_cancel():
    rng = np.random.default_rng(4)
    model = _tf2onnx_conv1d(rng)
    ops = [n.op_type for n in channels_first(model).graph.node]
    assert ops.count("Transpose") == 2  # at the input, before the Flatten
    x = rng.uniform(0, 1, (6, 6, 2)).astype(np.float32)
    want = qonnx_run(model, x)
    (got,) = qfab.reference(model, x).values()
    assert np.array_equal(got, want)
    assert len(np.unique(want, axis=0)) > 1
    stages = qfab.compile(model, soc=False).plan.stages
    assert [s.op for s in stages if s.op in ("conv", "dense")] == ["conv", "conv", "dense"]


def test_concatenate_along_channels_last():
    """Keras's Concatenate() (axis -1) of two NHWC branches: the transposes meet after it,
    the Concat runs along NCHW's channels."""
    rng = np.random.default_rng(5)
    b = Builder()
    x = b.quant(b.node("Transpose", ["x"], perm=[0, 3, 1, 2]), 2.0 ** -6, 8, signed=0)

    def branch(c_out):
        w = b.quant(b.weight(rng.normal(0, 1, (c_out, 2, 3, 3))), 2.0 ** -2, 4, narrow=1)
        h = b.node("Conv", [x, w], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
        return b.node("Transpose", [b.quant(b.node("Relu", [h]), 2.0 ** -3, 4, signed=0)],
                      perm=[0, 2, 3, 1])

    h = b.node("Concat", [branch(2), branch(3)], axis=-1)
    model = b.model((1, 4, 4, 2), b.node("Flatten", [h]))
    rewritten = channels_first(model)
    concat = next(n for n in rewritten.graph.node if n.op_type == "Concat")
    assert concat.attribute[0].i == 1
    assert [n.op_type for n in rewritten.graph.node].count("Transpose") == 2
    x_in = rng.uniform(0, 1, (4, 4, 4, 2)).astype(np.float32)
    want = qonnx_run(model, x_in)
    (got,) = qfab.reference(model, x_in).values()
    assert np.array_equal(got, want)


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER"])
def test_max_pooling_padding_same(auto_pad):
    """Keras's MaxPooling2D(padding="same") as tf2onnx writes it: auto_pad on the pool."""
    b = Builder()
    h = b.quant("x", 2.0 ** -4, 6, signed=1)
    h = b.node("MaxPool", [h], kernel_shape=[3, 3], strides=[2, 2], auto_pad=auto_pad)
    model = b.model((1, 2, 5, 6), b.node("Flatten", [h]))
    x = np.random.default_rng(6).uniform(-2, 2, (3, 2, 5, 6)).astype(np.float32)
    want = qonnx_run(model, x)
    (got,) = qfab.reference(model, x).values()
    assert got.shape == want.shape == (3, 2 * 3 * 3) and np.array_equal(got, want)


def test_a_transpose_left_mid_network_names_the_layer():
    """Swapping H and W between two convolutions cancels with nothing: the reference runs
    it, the hardware says in one line why it cannot."""
    rng = np.random.default_rng(7)
    b = Builder()
    h = b.quant("x", 2.0 ** -6, 8, signed=0)
    for _ in range(2):
        w = b.quant(b.weight(rng.normal(0, 1, (2, 2, 1, 1))), 2.0 ** -2, 4, narrow=1)
        h = b.quant(b.node("Conv", [h, w], kernel_shape=[1, 1]), 2.0 ** -2, 8)
        if _ == 0:
            h = b.node("Transpose", [h], perm=[0, 1, 3, 2])
    model = b.model((1, 2, 3, 4), h)
    x = rng.uniform(0, 1, (2, 2, 3, 4)).astype(np.float32)
    assert np.array_equal(qfab.reference(model, x)[model.graph.output[0].name],
                          qonnx_run(model, x))
    with pytest.raises(QfabError, match=r"node 'conv\d+': per-channel op on a re-ordered "
                                        r"tensor \(a Transpose before it"):
        qfab.compile(model, soc=False)


def test_global_pool_flatten_before_the_quantizer():
    """AdaptiveAvgPool -> Flatten -> the dense layer's input quantizer (torch/Brevitas, and
    Keras's GlobalAveragePooling with keepdims): the flatten of [N, C, 1, 1] sums keeps
    their channel axis."""
    rng = np.random.default_rng(8)
    b = Builder()
    h = b.quant("x", 2.0 ** -6, 8, signed=0)
    w = b.quant(b.weight(rng.normal(0, 1, (3, 2, 3, 3))), 2.0 ** -2, 4, narrow=1)
    h = b.quant(b.node("Relu", [b.node("Conv", [h, w], kernel_shape=[3, 3])]), 2.0 ** -3, 4,
                signed=0)
    h = b.quant(b.node("Flatten", [b.node("GlobalAveragePool", [h])]), 2.0 ** -4, 8,
                signed=0)
    w = b.quant(b.weight(rng.normal(0, 1, (3, 4))), 2.0 ** -2, 4, narrow=1)
    model = b.model((1, 2, 5, 5), b.quant(b.node("MatMul", [h, w]), 2.0 ** -3, 8))
    x = rng.uniform(0, 1, (6, 2, 5, 5)).astype(np.float32)
    want = qonnx_run(model, x)
    (got,) = qfab.reference(model, x).values()
    assert np.array_equal(got, want)
    assert {"globalsum", "dense"} <= {s.op for s in qfab.compile(model, soc=False).plan.stages}
