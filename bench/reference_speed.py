"""Inferences per second of the integer reference against onnxruntime, on the same inputs,
measured side by side in one run.

Models: TFC_2W2A (QONNX; onnxruntime runs its QCDQ form, made by qonnx's QuantToQCDQ) and
ort_conv_qdq_s8s8 (QDQ). Both executors are single-threaded (onnxruntime with
intra_op_num_threads=1; the reference limits BLAS to one thread itself), so the ratio compares
implementations, not core counts. Usage: ``python -m bench reference_speed`` or
``python bench/reference_speed.py [--seconds S]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

MODELS = Path("/work/shared/models")
TFC = MODELS / "qonnx" / "TFC_2W2A.onnx"
CONV = MODELS / "qdq" / "ort_conv_qdq_s8s8.onnx"
BATCHES = (1, 64)


def rates(fns: list[Callable[[], object]], batch: int, seconds: float,
          rounds: int = 12) -> list[float]:
    """Inferences per second of each of ``fns``: the best of ``rounds`` short stretches each,
    taken in turns (on a loaded machine a stretch that nobody preempted comes round for both
    alike, and long stretches are rarely such)."""
    for fn in fns:
        fn()  # warm up (first-call allocations, BLAS/onnxruntime initialization)
    best = [0.0] * len(fns)
    for _ in range(rounds):
        for k, fn in enumerate(fns):
            n, start = 0, time.perf_counter()
            while True:
                fn()
                n += 1
                elapsed = time.perf_counter() - start
                if elapsed >= seconds / (rounds * len(fns)):
                    break
            best[k] = max(best[k], n * batch / elapsed)
    return best


def _session(model_bytes: bytes):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])


def _tfc_qcdq(batch: int) -> bytes:
    """TFC_2W2A as QuantizeLinear/Clip/DequantizeLinear, which onnxruntime can execute."""
    import warnings

    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.change_batchsize import ChangeBatchSize
    from qonnx.transformation.qonnx_to_qcdq import QuantToQCDQ
    from qonnx.util.cleanup import cleanup_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # opset upgrade notices
        model = cleanup_model(ModelWrapper(str(TFC))).transform(QuantToQCDQ())
        model = cleanup_model(model.transform(ChangeBatchSize(batch)))
    return model.model.SerializeToString()


def _cases():
    """(label, path, input shape without batch, input range, batch -> onnxruntime model)."""
    yield "TFC_2W2A", TFC, (1, 28, 28), 0.0, 1.0, _tfc_qcdq
    yield "ort_conv_qdq_s8s8", CONV, (3, 24, 24), -2.0, 2.0, lambda batch: CONV.read_bytes()


def _output_lsb(graph) -> np.ndarray:
    """The real weight of one output code (the dequantized tensor's scale)."""
    node = next(n for n in graph.nodes if n.op == "dequantize")
    src = graph.tensors[node.inputs[0]]
    return src.broadcast(np.asarray(src.unit, np.float64))


def run(seconds: float = 2.0) -> list[str]:
    """Measure every model at batch 1 and 64; return the printed table as lines."""
    import qfab
    from qfab.api import lower_model

    lines = [f"{'model':20} {'batch':>5} {'qfab inf/s':>11} {'onnxruntime':>12} "
             f"{'qfab/ort':>9}  check"]
    for label, path, shape, lo, hi, ort_model in _cases():
        graph = lower_model(path)
        name = graph.inputs[0]
        for batch in BATCHES:
            x = np.random.default_rng(batch).uniform(lo, hi, (batch, *shape)).astype(np.float32)
            session = _session(ort_model(batch))
            feed = {session.get_inputs()[0].name: x}
            ours, theirs = rates([partial(qfab.reference, graph, {name: x}),
                                  partial(session.run, None, feed)], batch, seconds)
            (got,) = qfab.reference(graph, {name: x}).values()
            (expected,) = session.run(None, feed)
            steps = np.abs(got - expected) / _output_lsb(graph)
            check = f"max |diff| {steps.max():.3g} LSB"
            lines.append(f"{label:20} {batch:5d} {ours:11.0f} {theirs:12.0f} "
                         f"{ours / theirs:9.3f}  {check}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0,
                        help="time per measurement (both executors)")
    args = parser.parse_args(argv)
    print("\n".join(run(args.seconds)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
