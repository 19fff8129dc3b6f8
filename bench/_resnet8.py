"""A ResNet-8-sized int8 QDQ model (the MLPerf Tiny image-classification network's shape)
with seeded random weights, quantized by onnxruntime: the large design the compile and
cycle-model benchmarks time.

Shape (NCHW): input [N,3,32,32]; Conv 3->16 3x3 + Relu; an identity block of two 3x3 Convs
at 16 channels; two downsampling blocks (3x3 stride 2 and 3x3 beside a 1x1 stride-2 shortcut)
to 32 and 64 channels; GlobalAveragePool; Gemm 64->10.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

IN_SHAPE = (3, 32, 32)


def float_model() -> onnx.ModelProto:
    rng = np.random.default_rng(8)
    inits: dict[str, np.ndarray] = {}
    nodes = []

    def conv(name: str, x: str, c_in: int, c_out: int, k: int, stride: int = 1,
             relu: bool = True) -> str:
        inits[f"{name}_w"] = rng.normal(0, np.sqrt(2 / (c_in * k * k)), (c_out, c_in, k, k))
        inits[f"{name}_b"] = rng.normal(0, 0.05, c_out)
        nodes.append(helper.make_node("Conv", [x, f"{name}_w", f"{name}_b"], [name],
                                      name=name, pads=[k // 2] * 4, strides=[stride] * 2))
        if not relu:
            return name
        nodes.append(helper.make_node("Relu", [name], [f"{name}_relu"], name=f"{name}_relu"))
        return f"{name}_relu"

    def add(name: str, a: str, b: str) -> str:
        nodes.append(helper.make_node("Add", [a, b], [name], name=name))
        nodes.append(helper.make_node("Relu", [name], [f"{name}_relu"], name=f"{name}_relu"))
        return f"{name}_relu"

    x = conv("stem", "x", 3, 16, 3)
    y = conv("b1c1", x, 16, 16, 3)
    x = add("b1add", conv("b1c2", y, 16, 16, 3, relu=False), x)
    for block, (c_in, c_out) in enumerate([(16, 32), (32, 64)], start=2):
        short = conv(f"b{block}s", x, c_in, c_out, 1, 2, relu=False)
        y = conv(f"b{block}c1", x, c_in, c_out, 3, 2)
        x = add(f"b{block}add", conv(f"b{block}c2", y, c_out, c_out, 3, relu=False), short)
    inits["fc_w"] = rng.normal(0, 0.1, (10, 64))
    nodes += [helper.make_node("GlobalAveragePool", [x], ["gap"], name="gap"),
              helper.make_node("Flatten", ["gap"], ["flat"], name="flat"),
              helper.make_node("Gemm", ["flat", "fc_w"], ["y"], name="fc", transB=1)]
    graph = helper.make_graph(
        nodes, "resnet8", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                         ["N", *IN_SHAPE])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(w.astype(np.float32), n) for n, w in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def write_resnet8(path: Path) -> Path:
    """Write the int8 QDQ model (activations QInt8, weights QInt8) to ``path``."""
    from onnxruntime import quantization

    class Calibration(quantization.CalibrationDataReader):
        def __init__(self) -> None:
            rng = np.random.default_rng(0)
            self.batches = iter([{"x": rng.uniform(0, 1, (1, *IN_SHAPE)).astype(np.float32)}
                                 for _ in range(4)])

        def get_next(self):
            return next(self.batches, None)

    src = path.with_name(path.stem + "_float.onnx")
    onnx.save(float_model(), src)
    quantization.quantize_static(str(src), str(path), Calibration(),
                                 quant_format=quantization.QuantFormat.QDQ,
                                 activation_type=quantization.QuantType.QInt8,
                                 weight_type=quantization.QuantType.QInt8)
    src.unlink()
    return path


if __name__ == "__main__":
    import sys
    print(write_resnet8(Path(sys.argv[1])))
