"""Writes the channels-last corpus models (tests/corpus/keras/*.onnx): the forms Keras models
(QKeras, HGQ, hls4ml's example models) reach ONNX in.

- ``*_qonnx.onnx``: a QONNX model written channels-first with onnx.helper, then made
  channels-last by qonnx's own ``ConvertToChannelsLastAndClean(make_input_channels_last=
  True)``, which gives what qonnx's ``from_keras`` path gives: a channels-last graph input,
  the channels-last Conv, MaxPool and BatchNormalization of ``qonnx.custom_op.channels_last``
  (the Conv's weights in [O, kh, kw, I]), and a Flatten of the channels-last tensor with the
  first dense layer's weights permuted to match.
- ``residual_tf2onnx_qonnx.onnx``: QKeras layers in the form qonnx's ``from_keras`` gives
  (tf2onnx's layout, Quant nodes on the NHWC tensors), written with onnx.helper (QKeras and
  tensorflow do not install here).
- ``*_tf2onnx_qdq.onnx``: tf2onnx's form of a Keras Conv2D model (an NHWC input, a Transpose
  to NCHW before the first Conv, a Transpose back to NHWC before the Reshape that flattens),
  written with onnx.helper (tensorflow does not install here) and quantized by onnxruntime's
  ``quantize_static`` (QDQ, uint8 activations, int8 weights).

Weights are random with fixed seeds; weight scales are powers of two per output channel, so
qonnx's float32 execution is exact up to the accumulator's rounding.

    .venv/bin/python tests/corpus/make_keras_corpus.py      # rewrites tests/corpus/keras/
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).parents[1] / "frontend"))
from ort_quantizer import quantize  # noqa: E402
from qonnx_graphs import Builder, pow2  # noqa: E402

OUT = Path(__file__).parent / "keras"


def _weight(b: Builder, rng, shape, bits: int = 4) -> str:
    scale = pow2(rng, -4, -2, (shape[0],) + (1,) * (len(shape) - 1))
    w = rng.normal(0, 1, shape) * scale * 2 ** (bits - 2)
    return b.quant(b.weight(w), scale, bits, narrow=1)


def _dense_weight(b: Builder, rng, k: int, n: int) -> str:
    scale = pow2(rng, -4, -2, (1, n))
    return b.quant(b.weight(rng.normal(0, 1, (k, n)) * scale * 4), scale, 4, narrow=1)


def _batchnorm(b: Builder, x: str, rng, c: int) -> str:
    return b.node("BatchNormalization", [x, b.const(rng.uniform(0.5, 1.5, c), "gamma"),
                                         b.const(rng.normal(0, .3, c), "beta"),
                                         b.const(rng.normal(0, .3, c), "mean"),
                                         b.const(rng.uniform(.5, 2, c), "var")])


def _conv(b: Builder, x: str, w: str, kernel, pads, group: int = 1) -> str:
    # qonnx's channels-last Conv needs every attribute written out.
    return b.node("Conv", [x, w], kernel_shape=list(kernel), pads=list(pads),
                  strides=[1] * len(kernel), dilations=[1] * len(kernel), group=group)


def _maxpool(b: Builder, x: str, k: int, rank: int) -> str:
    return b.node("MaxPool", [x], kernel_shape=[k] * rank, strides=[k] * rank,
                  pads=[0] * 2 * rank)


def _relu_quant(b: Builder, x: str, bits: int = 4) -> str:
    return b.quant(b.node("Relu", [x]), 2.0 ** -3, bits, signed=0)


def cnn(seed: int) -> onnx.ModelProto:
    """Conv 3x3 (2 -> 4 channels) + BatchNorm + ReLU, max pool, dense 36 -> 5, on a 6x6
    image."""
    rng = np.random.default_rng(seed)
    b = Builder()
    h = b.quant("x", 2.0 ** -6, 8, signed=0)
    h = _conv(b, h, _weight(b, rng, (4, 2, 3, 3)), (3, 3), (1, 1, 1, 1))
    h = _relu_quant(b, _batchnorm(b, h, rng, 4))
    h = b.node("Flatten", [_maxpool(b, h, 2, 2)])
    h = b.quant(b.node("MatMul", [h, _dense_weight(b, rng, 36, 5)]), 2.0 ** -2, 8)
    return b.model((1, 2, 6, 6), h)


def separable(seed: int) -> onnx.ModelProto:
    """A separable convolution as Keras's SeparableConv2D splits it (hls4ml too): depthwise
    3x3 (group = 4 channels) and pointwise 1x1 (4 -> 6), each with its quantizer, on a 5x5
    image; then dense 150 -> 4."""
    rng = np.random.default_rng(seed)
    b = Builder()
    h = b.quant("x", 2.0 ** -6, 8, signed=0)
    h = _conv(b, h, _weight(b, rng, (4, 1, 3, 3)), (3, 3), (1, 1, 1, 1), group=4)
    h = b.quant(h, 2.0 ** -4, 8)
    h = _conv(b, h, _weight(b, rng, (6, 4, 1, 1)), (1, 1), (0, 0, 0, 0))
    h = b.node("Flatten", [_relu_quant(b, _batchnorm(b, h, rng, 6))])
    h = b.quant(b.node("MatMul", [h, _dense_weight(b, rng, 150, 4)]), 2.0 ** -2, 8)
    return b.model((1, 4, 5, 5), h)


def conv1d(seed: int) -> onnx.ModelProto:
    """Conv1D (kernel 3, 3 -> 4 channels, same padding) + BatchNorm + ReLU, MaxPooling1D 2,
    dense 32 -> 5, on a sequence of 16."""
    rng = np.random.default_rng(seed)
    b = Builder()
    h = b.quant("x", 2.0 ** -6, 8, signed=0)
    h = _conv(b, h, _weight(b, rng, (4, 3, 3)), (3,), (1, 1))
    h = _relu_quant(b, _batchnorm(b, h, rng, 4))
    h = b.node("Flatten", [_maxpool(b, h, 2, 1)])
    h = b.quant(b.node("MatMul", [h, _dense_weight(b, rng, 32, 5)]), 2.0 ** -2, 8)
    return b.model((1, 3, 16), h)


def upsample(seed: int) -> onnx.ModelProto:
    """Conv 3x3 (1 -> 3 channels) + ReLU, UpSampling2D (2, 3) as Resize (nearest,
    asymmetric, floor: what tf2onnx writes), Conv 3x3 (3 -> 2), dense 108 -> 3, on a 3x3
    image: a decoder's shape, small."""
    rng = np.random.default_rng(seed)
    b = Builder()
    h = b.quant("x", 2.0 ** -6, 8, signed=0)
    h = _relu_quant(b, _conv(b, h, _weight(b, rng, (3, 1, 3, 3)), (3, 3), (1, 1, 1, 1)))
    h = b.node("Resize", [h, "", b.const([1, 1, 2, 3], "scales")], mode="nearest",
               coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    h = _relu_quant(b, _conv(b, h, _weight(b, rng, (2, 3, 3, 3)), (3, 3), (1, 1, 1, 1)))
    h = b.node("Flatten", [h])
    h = b.quant(b.node("MatMul", [h, _dense_weight(b, rng, 2 * 6 * 9, 3)]), 2.0 ** -2, 8)
    return b.model((1, 1, 3, 3), h)


def residual_tf2onnx(seed: int) -> onnx.ModelProto:
    """A QKeras residual block in the form qonnx's ``from_keras`` gives (tf2onnx's layout:
    each Conv between its own transposes on an NHWC graph): ZeroPadding2D(1) and a 'valid'
    Conv 3x3 (2 -> 4) + ReLU, a Conv 3x3 'same' (4 -> 4) added back to its input,
    MaxPooling2D(2, padding="same"), Flatten, Dense(5); input [1, 5, 5, 2]."""
    rng = np.random.default_rng(seed)
    b = Builder()

    def nchw(h):
        return b.node("Transpose", [h], perm=[0, 3, 1, 2])

    def nhwc(h):
        return b.node("Transpose", [h], perm=[0, 2, 3, 1])

    pads = b.const(np.zeros(8), "pads")
    b.inits[-1] = numpy_helper.from_array(np.array([0, 1, 1, 0, 0, 1, 1, 0]), pads)
    h = b.node("Pad", [b.quant("x", 2.0 ** -6, 8, signed=0), pads])
    h = nhwc(b.node("Conv", [nchw(h), _weight(b, rng, (4, 2, 3, 3))], kernel_shape=[3, 3]))
    block_in = _relu_quant(b, h)
    h = nhwc(b.node("Conv", [nchw(block_in), _weight(b, rng, (4, 4, 3, 3))],
                    kernel_shape=[3, 3], pads=[1, 1, 1, 1]))
    h = b.quant(b.node("Add", [block_in, b.quant(h, 2.0 ** -3, 6)]), 2.0 ** -3, 6)
    h = nhwc(b.node("MaxPool", [nchw(h)], kernel_shape=[2, 2], strides=[2, 2],
                    auto_pad="SAME_UPPER"))
    h = b.quant(b.node("MatMul", [b.node("Flatten", [h]), _dense_weight(b, rng, 36, 5)]),
                2.0 ** -2, 8)
    return b.model((1, 5, 5, 2), h)


def to_channels_last(model: onnx.ModelProto) -> onnx.ModelProto:
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.channels_last import ConvertToChannelsLastAndClean
    from qonnx.util.cleanup import cleanup_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wrapped = cleanup_model(ModelWrapper(model))
        return wrapped.transform(ConvertToChannelsLastAndClean(
            make_input_channels_last=True)).model


def tf2onnx_cnn(seed: int) -> onnx.ModelProto:
    """Keras Conv2D(4, 3x3, same) + ReLU, MaxPooling2D, Flatten, Dense(5) as tf2onnx writes
    it: NHWC input [1, 6, 6, 2], Transpose to NCHW, Conv, Relu, MaxPool, Transpose back,
    Reshape [-1, 36], MatMul, Add."""
    rng = np.random.default_rng(seed)
    inits = [numpy_helper.from_array(a.astype(np.float32), n) for n, a in (
        ("conv_w", rng.normal(0, .4, (4, 2, 3, 3))), ("conv_b", rng.normal(0, .1, 4)),
        ("dense_w", rng.normal(0, .3, (36, 5))), ("dense_b", rng.normal(0, .1, 5)))]
    inits.append(numpy_helper.from_array(np.array([-1, 36], np.int64), "flat_shape"))
    nodes = [
        helper.make_node("Transpose", ["x"], ["x_nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["x_nchw", "conv_w", "conv_b"], ["conv"],
                         kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv"], ["relu"]),
        helper.make_node("MaxPool", ["relu"], ["pool"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Transpose", ["pool"], ["pool_nhwc"], perm=[0, 2, 3, 1]),
        helper.make_node("Reshape", ["pool_nhwc", "flat_shape"], ["flat"]),
        helper.make_node("MatMul", ["flat", "dense_w"], ["dense"]),
        helper.make_node("Add", ["dense", "dense_b"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "keras_cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                           [1, 6, 6, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for name, model in (("cnn_nhwc_qonnx", cnn(0)), ("separable_nhwc_qonnx", separable(1)),
                        ("conv1d_nlc_qonnx", conv1d(2)), ("upsample_nhwc_qonnx", upsample(4))):
        onnx.save(to_channels_last(model), OUT / f"{name}.onnx")
    onnx.save(residual_tf2onnx(5), OUT / "residual_tf2onnx_qonnx.onnx")
    # onnxruntime's documented flow: quant_pre_process (shape inference and graph
    # optimization, which fuses the Dense layer's MatMul + Add into a Gemm), then
    # quantize_static.
    from onnxruntime.quantization.shape_inference import quant_pre_process

    raw, pre = OUT / "cnn_tf2onnx.float.onnx", OUT / "cnn_tf2onnx.pre.onnx"
    onnx.save(tf2onnx_cnn(3), raw)
    quant_pre_process(str(raw), str(pre))
    rng = np.random.default_rng(3)
    quantize(onnx.load(pre), OUT / "cnn_tf2onnx_qdq.onnx",
             rng.uniform(0, 1, (64, 6, 6, 2)).astype(np.float32))
    raw.unlink()
    pre.unlink()


if __name__ == "__main__":
    main()
