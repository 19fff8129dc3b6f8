"""onnxruntime as exporter and as executor for the tests: ``quantize_static`` on a float model
with calibration inputs given as arrays, and a model run row by row (its batch is fixed at 1).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from ort_oracle import session


def quantize(model: onnx.ModelProto, path: Path, calibration: np.ndarray, **options) -> Path:
    """``model`` quantized by onnxruntime's ``quantize_static`` to ``path`` (QDQ with seven-bit
    weights unless ``options`` say otherwise, else onnxruntime's defaults: int8 activations
    and weights), calibrated on the rows of ``calibration`` fed to the model's one input."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    name = model.graph.input[0].name

    class Rows(CalibrationDataReader):
        feeds = iter([{name: row[None].astype(np.float32)} for row in calibration])

        def get_next(self):
            return next(self.feeds, None)

    src = Path(path).with_suffix(".float.onnx")
    onnx.save(model, src)
    options = {"quant_format": QuantFormat.QDQ, "reduce_range": True, **options}
    quantize_static(str(src), str(path), Rows(), **options)
    src.unlink()
    return Path(path)


def run_rows(model: onnx.ModelProto | str | Path, x: np.ndarray, *,
             fused: bool = False) -> list[np.ndarray]:
    """Every output of ``model`` for each row of ``x`` (``fused=False``: a QDQ graph as
    written, the float op between its quantizers)."""
    sess = session(model if isinstance(model, onnx.ModelProto) else str(model), fused=fused)
    name = sess.get_inputs()[0].name
    outs = [sess.run(None, {name: row[None]}) for row in x]
    return [np.concatenate([o[i] for o in outs]) for i in range(len(outs[0]))]
