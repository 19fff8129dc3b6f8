"""Train the digits CNN in NumPy and write the float, int8 and int4 QDQ models beside this file.

Run ``.venv/bin/python examples/digits/make_models.py`` from the repository root (about half a
minute on one core). It is deterministic: the same machine writes the same bytes each time.

Data: scikit-learn's digits (1797 8x8 grey images, shipped with sklearn, no download), scaled
from 0..16 to [0, 1] as float32 NCHW [N,1,8,8]. Fixed split: the first 1437 images train, the
last 360 test (the test writers are mostly not in the training set, so this split is harder
than a shuffled one). Training sees each image at nine one-pixel shifts.

Outputs (each written to a temporary name, then renamed into place):

- ``digits_float.onnx``  float32 model, opset 21, input ``input`` [N,1,8,8], output ``logits``.
- ``digits_int8.onnx``   QDQ: activations QUInt8, weights QInt8 symmetric, bias int32, all
  per-tensor; MinMax calibration on the training images.
- ``digits_int4.onnx``   QDQ: activations QUInt4, weights QInt4 symmetric, bias int32, all
  per-tensor, except the logits, which stay QUInt8. The same network, fine-tuned for 5 epochs
  through 4-bit fake quantization (weights, input and Relu outputs); the Relu ranges are fixed
  at 0.7 of their training maximum, in training and in the model alike. Plain post-training
  4-bit quantization of the float model reaches only about 84%.
- ``accuracy.json``      float and quantized test accuracy (onnxruntime, see ``ort_accuracy``).
- ``sample_input.npy``   the first test image, [1,1,8,8] float32.
- ``sample_batch.npz``   ``images`` [8,1,8,8] float32 and ``labels`` [8] int64: test images 0-7.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from sklearn.datasets import load_digits

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cnn  # noqa: E402  (sibling module; examples/ is not a package)

HERE = Path(__file__).resolve().parent
N_TRAIN = 1437
OPSET = 21
SEED = 0
TRAIN_OPTIONS = {"epochs": 30, "batch": 64, "lr": 1e-2, "weight_decay": 1e-3}
# Fine-tuning of the trained network for 4 bits: few epochs, small steps, so it stays the
# same network and only settles onto the 4-bit grids.
QAT_OPTIONS = {"epochs": 5, "batch": 64, "lr": 1e-3, "weight_decay": 1e-3, "qat_bits": 4}
# 4-bit activations clip at this fraction of the largest Relu output seen in training: 16
# levels spent on rare peaks cost more than clipping those peaks.
ACT_CLIP_4BIT = 0.7
QUANT_TYPES = {
    "int8": (QuantType.QUInt8, QuantType.QInt8),  # name -> (activations, weights)
    "int4": (QuantType.QUInt4, QuantType.QInt4),
}
# Tensors that carry each range of cnn.activation_ranges in the QDQ graph: onnxruntime gives
# a Conv's output and its Relu's output one quantizer each, with the same parameters.
RANGE_TENSORS = {
    "input": ["input"],
    "conv1": ["conv1_out", "conv1_relu"],
    "conv2": ["conv2_out", "conv2_relu"],
}


def load_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x_train, y_train, x_test, y_test)``: images float32 [N,1,8,8] in [0,1], labels int64."""
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None, :, :]
    y = digits.target.astype(np.int64)
    return x[:N_TRAIN], y[:N_TRAIN], x[N_TRAIN:], y[N_TRAIN:]


def shifted(x: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``x`` moved by (dy, dx) pixels, zero-filled (the digits' background is zero)."""
    out = np.zeros_like(x)
    h, w = x.shape[-2:]
    out[..., max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = x[
        ..., max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


def augmented(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every image at the nine shifts by -1, 0 or +1 pixel in each direction."""
    moves = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    return np.concatenate([shifted(x, dy, dx) for dy, dx in moves]), np.tile(y, len(moves))


def to_onnx(params: dict[str, np.ndarray]) -> onnx.ModelProto:
    """The trained network as a float32 ONNX model with a symbolic batch dimension ``N``."""
    inits = [
        numpy_helper.from_array(value.astype(np.float32), name.replace(".", "_"))
        for name, value in sorted(params.items())
    ]
    conv_nodes = []
    prev = "input"
    for name, (_, _, stride) in cnn.CONV_SPECS.items():
        conv_nodes += [
            helper.make_node(
                "Conv",
                [prev, f"{name}_w", f"{name}_b"],
                [f"{name}_out"],
                name=name,
                kernel_shape=[3, 3],
                pads=[1, 1, 1, 1],
                strides=[stride, stride],
            ),
            helper.make_node("Relu", [f"{name}_out"], [f"{name}_relu"], name=f"{name}_relu"),
        ]
        prev = f"{name}_relu"
    nodes = conv_nodes + [
        helper.make_node(
            "MaxPool", [prev], ["pool_out"], name="pool", kernel_shape=[2, 2], strides=[2, 2]
        ),
        helper.make_node("Flatten", ["pool_out"], ["flat_out"], name="flatten", axis=1),
        helper.make_node("Gemm", ["flat_out", "fc_w", "fc_b"], ["logits"], name="fc", transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "digits_cnn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
        inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="qfab-examples"
    )
    model.ir_version = 10  # opset 21 needs IR 10; pinned so onnx upgrades do not change bytes
    onnx.checker.check_model(model, full_check=True)
    return model


class DigitsReader(CalibrationDataReader):
    """Feeds the training images to the calibrator in equal batches, in order (1437 = 3 x 479;
    onnxruntime's histogram calibrators need equal batches)."""

    def __init__(self, images: np.ndarray, batch: int = 479) -> None:
        self._batches = [images[i : i + batch] for i in range(0, len(images), batch)]
        self._pos = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._pos == len(self._batches):
            return None
        self._pos += 1
        return {"input": self._batches[self._pos - 1]}


def quantize(
    float_path: Path,
    out_path: Path,
    kind: str,
    calib: np.ndarray,
    act_ranges: dict[str, float] | None = None,
) -> None:
    """Static per-tensor QDQ quantization of ``float_path`` into ``out_path``.

    Ranges are MinMax-calibrated on ``calib`` except those fixed by ``act_ranges`` (the ones
    4-bit fine-tuning used). The int4 model keeps its logits at 8 bits: 16 levels over the
    logit range make ties for the top class common.
    """
    act_type, weight_type = QUANT_TYPES[kind]
    overrides: dict[str, list[dict]] = {}
    for key, rmax in (act_ranges or {}).items():
        for tensor in RANGE_TENSORS[key]:
            overrides[tensor] = [{"rmin": np.float32(0.0), "rmax": np.float32(rmax)}]
    if kind == "int4":
        overrides["logits"] = [{"quant_type": QuantType.QUInt8}]
    quantize_static(
        str(float_path),
        str(out_path),
        DigitsReader(calib),
        quant_format=QuantFormat.QDQ,
        per_channel=False,
        reduce_range=False,
        activation_type=act_type,
        weight_type=weight_type,
        calibrate_method=CalibrationMethod.MinMax,
        extra_options={
            "ActivationSymmetric": False,
            "WeightSymmetric": True,
            # Relu stays a node of its own rather than being folded into the quantizer's clamp,
            # so the graph says what the network computes.
            "QDQKeepRemovableActivations": True,
            "QuantizeBias": True,
            "TensorQuantOverrides": overrides,
        },
    )


def ort_session(path: Path) -> ort.InferenceSession:
    """The session every recorded accuracy comes from: no graph optimizations, one thread.

    With optimizations off, onnxruntime runs the QDQ graph as written (dequantize, float op,
    quantize) instead of fusing it into integer kernels whose rounding depends on the CPU
    (the AVX2 u8s8 path can saturate), so the figure is reproducible across machines.
    """
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def ort_accuracy(path: Path, images: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy of the model at ``path``, one image per run (batch 1)."""
    session = ort_session(path)
    hits = 0
    for image, label in zip(images, labels, strict=True):
        (logits,) = session.run(["logits"], {"input": image[None]})
        hits += int(np.argmax(logits[0]) == label)
    return hits / len(labels)


def _replace(write, final: Path) -> None:
    """Call ``write(tmp_path)`` on a temporary file in ``final``'s folder, then rename it."""
    fd, tmp = tempfile.mkstemp(prefix=f".{final.stem}-", suffix=final.suffix, dir=final.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; these are ordinary repository files
        os.replace(tmp, final)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def main(out_dir: Path = HERE) -> dict[str, float]:
    """Train, export, quantize, evaluate and write every output; returns the accuracies."""
    logging.getLogger().setLevel(logging.ERROR)  # quantize_static's advice on pre-processing
    x_train, y_train, x_test, y_test = load_split()
    x_aug, y_aug = augmented(x_train, y_train)
    params = cnn.train(x_aug, y_aug, seed=SEED, **TRAIN_OPTIONS)
    ranges = cnn.activation_ranges(params, x_train)
    ranges4 = {k: v if k == "input" else v * ACT_CLIP_4BIT for k, v in ranges.items()}
    scales4 = {k: v / (2**4 - 1) for k, v in ranges4.items()}
    params4 = cnn.train(
        x_aug, y_aug, seed=SEED + 1, params=params, act_scales=scales4, **QAT_OPTIONS
    )
    numpy_acc = {
        "float": float(np.mean(cnn.predict(params, x_test) == y_test)),
        "int4": float(np.mean(cnn.predict(params4, x_test, scales4, 4) == y_test)),
    }

    float_path = out_dir / "digits_float.onnx"
    model = to_onnx(params)
    _replace(lambda p: onnx.save(model, str(p)), float_path)
    accuracy = {"float": ort_accuracy(float_path, x_test, y_test)}
    _replace(lambda p: quantize(float_path, p, "int8", x_train), out_dir / "digits_int8.onnx")
    accuracy["int8"] = ort_accuracy(out_dir / "digits_int8.onnx", x_test, y_test)
    # The fine-tuned float weights only mean something through the 4-bit grids, so their
    # float model is a step on the way, not an output.
    with tempfile.TemporaryDirectory() as tmp:
        qat_path = Path(tmp) / "digits_float_qat4.onnx"
        onnx.save(to_onnx(params4), str(qat_path))
        _replace(
            lambda p: quantize(qat_path, p, "int4", x_train, ranges4),
            out_dir / "digits_int4.onnx",
        )
    accuracy["int4"] = ort_accuracy(out_dir / "digits_int4.onnx", x_test, y_test)

    record = {
        "split": f"first {N_TRAIN} train, last {len(y_test)} test",
        "test_images": len(y_test),
        "evaluator": "onnxruntime CPU, ORT_DISABLE_ALL, batch 1",
        "accuracy": accuracy,
        "correct": {k: round(v * len(y_test)) for k, v in accuracy.items()},
        "numpy_training_model": numpy_acc,
    }
    _replace(lambda p: p.write_text(json.dumps(record, indent=2) + "\n"), out_dir / "accuracy.json")
    _replace(lambda p: np.save(p, x_test[:1]), out_dir / "sample_input.npy")
    _replace(
        lambda p: np.savez(p, images=x_test[:8], labels=y_test[:8]), out_dir / "sample_batch.npz"
    )
    for key, acc in numpy_acc.items():
        print(f"{key + ' (numpy)':18s} test accuracy {acc:.4f}")
    for key, acc in accuracy.items():
        print(f"{key:18s} test accuracy {acc:.4f} ({record['correct'][key]}/{len(y_test)})")
    return accuracy


if __name__ == "__main__":
    main()
