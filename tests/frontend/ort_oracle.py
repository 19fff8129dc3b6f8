"""What onnxruntime computes exactly on this CPU, found by asking it.

onnxruntime's uint8 x int8 integer kernels on x86 CPUs with AVX2 but no VNNI multiply with
VPMADDUBSW, which saturates the sum of two adjacent products to int16: 255 * -128 * 2 comes
out as -32768, not -65280. onnxruntime documents this and its remedy, weights quantized to
seven bits (``reduce_range``), under which no pair can reach the int16 limit. Where the
probe finds the saturation, the tests that compare against onnxruntime quantize with
``reduce_range`` and draw seven-bit weights, and a fixed model with full-range weights is
compared against onnxruntime's unfused float path instead (DequantizeLinear, the float op,
QuantizeLinear), which float32 rounding may tip by one code.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper


@cache
def int8_products_saturate() -> bool:
    """True if onnxruntime's uint8 x int8 MatMulInteger saturates pairs of products."""
    a = helper.make_tensor_value_info("a", TensorProto.UINT8, [1, 2])
    y = helper.make_tensor_value_info("y", TensorProto.INT32, [1, 1])
    b = numpy_helper.from_array(np.full((2, 1), -128, np.int8), "b")
    graph = helper.make_graph([helper.make_node("MatMulInteger", ["a", "b"], ["y"])], "probe",
                              [a], [y], [b])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 8
    (got,) = session(model).run(None, {"a": np.full((1, 2), 255, np.uint8)})
    return int(got[0, 0]) != 255 * -128 * 2


def session(model: onnx.ModelProto | str, *, fused: bool = True) -> ort.InferenceSession:
    """A CPU session; ``fused=False`` runs a QDQ graph op by op in float, as written."""
    options = ort.SessionOptions()
    if not fused:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    source = model if isinstance(model, str) else model.SerializeToString()
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def weight_range() -> tuple[int, int]:
    """The int8 weight codes onnxruntime multiplies exactly here (``high`` exclusive)."""
    return (-64, 64) if int8_products_saturate() else (-128, 128)
