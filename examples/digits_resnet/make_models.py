"""Train the residual digits CNN in NumPy and write its float and int8 QDQ models beside this
file.

Run ``.venv/bin/python examples/digits_resnet/make_models.py`` from the repository root (about
half a minute on one core). It is deterministic: the same machine writes the same bytes each
time. The network (``resnet.py``) has a MobileNet-style residual block: a depthwise 3x3 Conv
and a pointwise 1x1 Conv whose output is added to the block's input (an identity shortcut).

Data: scikit-learn's digits (1797 8x8 grey images, shipped with sklearn, no download), scaled
from 0..16 to [0, 1] as float32 NCHW [N,1,8,8]. Fixed split: the first 1437 images train, the
last 360 test (the test writers are mostly not in the training set, so this split is harder
than a shuffled one). Training sees each image at nine one-pixel shifts.

Outputs (each written to a temporary name, then renamed into place):

- ``digits_resnet_float.onnx``  float32 model, opset 21, input ``input`` [N,1,8,8], output
  ``logits``.
- ``digits_resnet_int8.onnx``   QDQ: activations QUInt8, weights QInt8 symmetric, bias int32,
  all per-tensor; MinMax calibration on the training images.
- ``accuracy.json``      test accuracy: float and int8 by onnxruntime (see ``ort_accuracy``),
  int8 by qfab's integer reference (``qfab.reference``, dyadic requantization).
- ``sample_images.npy``  test images 0-7, [8,1,8,8] float32 (a ``qfab sim --input``).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
from pathlib import Path

# One BLAS thread: the training's small matrix products run faster on one thread than on
# several (most so on a busy machine), and the arithmetic does not depend on the core count.
# Set before NumPy loads OpenBLAS; a process that imported NumPy already keeps its setting.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

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
import resnet  # noqa: E402  (sibling module; examples/ is not a package)

HERE = Path(__file__).resolve().parent
N_TRAIN = 1437
OPSET = 21
SEED = 0
TRAIN_OPTIONS = {"epochs": 12, "batch": 64, "lr": 1e-2, "weight_decay": 1e-3}
N_SAMPLES = 8


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


def _conv(name: str, x: str, *, kernel: int, stride: int = 1, group: int = 1):
    pad = kernel // 2
    return helper.make_node(
        "Conv",
        [x, f"{name}_w", f"{name}_b"],
        [f"{name}_out"],
        name=name,
        kernel_shape=[kernel, kernel],
        pads=[pad] * 4,
        strides=[stride, stride],
        group=group,
    )


def _relu(name: str):
    return helper.make_node("Relu", [f"{name}_out"], [f"{name}_relu"], name=f"{name}_relu")


def to_onnx(params: dict[str, np.ndarray]) -> onnx.ModelProto:
    """The trained network as a float32 ONNX model with a symbolic batch dimension ``N``."""
    inits = [
        numpy_helper.from_array(value.astype(np.float32), name.replace(".", "_"))
        for name, value in sorted(params.items())
    ]
    nodes = [
        _conv("conv1", "input", kernel=3),
        _relu("conv1"),
        # The residual block: depthwise 3x3 -> Relu -> pointwise 1x1, plus the block's input.
        _conv("dw", "conv1_relu", kernel=3, group=resnet.CHANNELS),
        _relu("dw"),
        _conv("pw", "dw_relu", kernel=1),
        helper.make_node("Add", ["pw_out", "conv1_relu"], ["add_out"], name="add"),
        _relu("add"),
        _conv("conv2", "add_relu", kernel=3, stride=2),
        _relu("conv2"),
        helper.make_node(
            "MaxPool", ["conv2_relu"], ["pool_out"], name="pool", kernel_shape=[2, 2],
            strides=[2, 2],
        ),
        helper.make_node("Flatten", ["pool_out"], ["flat_out"], name="flatten", axis=1),
        helper.make_node("Gemm", ["flat_out", "fc_w", "fc_b"], ["logits"], name="fc", transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "digits_resnet",
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
    """Feeds the training images to the calibrator in equal batches, in order (1437 = 3 x 479)."""

    def __init__(self, images: np.ndarray, batch: int = 479) -> None:
        self._batches = [images[i : i + batch] for i in range(0, len(images), batch)]
        self._pos = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._pos == len(self._batches):
            return None
        self._pos += 1
        return {"input": self._batches[self._pos - 1]}


def quantize(float_path: Path, out_path: Path, calib: np.ndarray) -> None:
    """Static per-tensor int8 QDQ quantization of ``float_path`` into ``out_path``, with ranges
    MinMax-calibrated on ``calib``. The Add is quantized too: its inputs are dequantized, its
    sum quantized again."""
    quantize_static(
        str(float_path),
        str(out_path),
        DigitsReader(calib),
        quant_format=QuantFormat.QDQ,
        per_channel=False,
        reduce_range=False,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
        extra_options={
            "ActivationSymmetric": False,
            "WeightSymmetric": True,
            # Relu stays a node of its own rather than being folded into the quantizer's clamp,
            # so the graph says what the network computes.
            "QDQKeepRemovableActivations": True,
            "QuantizeBias": True,
        },
    )


def ort_session(path: Path) -> ort.InferenceSession:
    """The session every recorded onnxruntime accuracy comes from: no graph optimizations, one
    thread, so the QDQ graph runs as written (dequantize, float op, quantize) rather than as
    fused integer kernels whose rounding depends on the CPU."""
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


def reference_predictions(path: Path, images: np.ndarray) -> np.ndarray:
    """The class qfab's integer-only reference gives each image (one batch; the reference's
    arithmetic is exact, so the batch size changes nothing)."""
    import qfab

    return qfab.reference(path, images)["logits"].argmax(axis=1)


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
    params = resnet.train(x_aug, y_aug, seed=SEED, **TRAIN_OPTIONS)
    numpy_acc = {"float": float(np.mean(resnet.predict(params, x_test) == y_test))}

    float_path = out_dir / "digits_resnet_float.onnx"
    int8_path = out_dir / "digits_resnet_int8.onnx"
    model = to_onnx(params)
    _replace(lambda p: onnx.save(model, str(p)), float_path)
    _replace(lambda p: quantize(float_path, p, x_train), int8_path)
    accuracy = {
        "float": ort_accuracy(float_path, x_test, y_test),
        "int8": ort_accuracy(int8_path, x_test, y_test),
    }
    ref_correct = int(np.sum(reference_predictions(int8_path, x_test) == y_test))

    n = len(y_test)
    record = {
        "split": f"first {N_TRAIN} train, last {n} test",
        "test_images": n,
        "evaluator": "onnxruntime CPU, ORT_DISABLE_ALL, batch 1",
        "accuracy": accuracy,
        "correct": {k: round(v * n) for k, v in accuracy.items()},
        "reference_evaluator": "qfab.reference (integer-only, dyadic requantization)",
        "reference_accuracy": {"int8": ref_correct / n},
        "reference_correct": {"int8": ref_correct},
        "numpy_training_model": numpy_acc,
    }
    _replace(lambda p: p.write_text(json.dumps(record, indent=2) + "\n"), out_dir / "accuracy.json")
    _replace(lambda p: np.save(p, x_test[:N_SAMPLES]), out_dir / "sample_images.npy")
    print(f"{'float (numpy)':22s} test accuracy {numpy_acc['float']:.4f}")
    for key, acc in accuracy.items():
        print(f"{key + ' (onnxruntime)':22s} test accuracy {acc:.4f} "
              f"({record['correct'][key]}/{n})")
    print(f"{'int8 (qfab.reference)':22s} test accuracy {ref_correct / n:.4f} ({ref_correct}/{n})")
    return {**accuracy, "int8_reference": ref_correct / n}


if __name__ == "__main__":
    main()
