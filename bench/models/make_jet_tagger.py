"""Make ``jet_tagger_standin.onnx``: a QONNX stand-in for the hls4ml jet tagger.

The QONNX model zoo's ``qkeras_jettagging.onnx`` carries no license to copy here, so this
builds the same architecture with the same number formats: a 16-64-32-32-5 MLP with ReLU,
6-bit weights and biases (QKeras ``quantized_bits(6, 0, alpha=1)``: codes -32..31 in units of
2**-5), 6-bit unsigned activations (``quantized_relu(6)``: codes 0..63 in units of 2**-6),
and a 16-bit ``fixed<16,6>`` input (codes in units of 2**-10). The last layer's output is the
raw dense output, as in the original (its softmax runs off the fabric).

The weights are drawn to look like trained ones: a Laplacian spread (most small, a few large,
as L1-regularised training leaves them) with the smallest fifth pruned to zero. Run
``python bench/models/make_jet_tagger.py``; a fixed seed makes the same file every time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUT = Path(__file__).with_name("jet_tagger_standin.onnx")
LAYERS = (16, 64, 32, 32, 5)
DOMAIN = "qonnx.custom_op.general"
SEED = 2026
PRUNED = 0.2  # fraction of each layer's weights set to zero


def trained_looking(rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    """Float weights [fan_in, fan_out] on the 6-bit grid (multiples of 2**-5)."""
    w = rng.laplace(0.0, 0.6 / np.sqrt(fan_in), size=(fan_in, fan_out))
    w[np.abs(w) < np.quantile(np.abs(w), PRUNED)] = 0.0
    return np.clip(np.round(w * 32), -32, 31) / 32


def build() -> onnx.ModelProto:
    rng = np.random.default_rng(SEED)
    nodes, inits = [], []

    def const(name: str, value) -> str:
        inits.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name

    def quant(x: str, name: str, scale: float, bits: int, signed: bool) -> str:
        ins = [x, const(f"{name}_scale", scale), const(f"{name}_zp", 0.0),
               const(f"{name}_bits", bits)]
        nodes.append(helper.make_node("Quant", ins, [name], name=name, domain=DOMAIN,
                                      signed=int(signed), narrow=0, rounding_mode="ROUND"))
        return name

    x = quant("x", "input_q", 2.0 ** -10, 16, True)
    last = len(LAYERS) - 2
    for i, (fan_in, fan_out) in enumerate(zip(LAYERS[:-1], LAYERS[1:], strict=True)):
        w = quant(const(f"dense{i}_w", trained_looking(rng, fan_in, fan_out)),
                  f"dense{i}_wq", 2.0 ** -5, 6, True)
        b = quant(const(f"dense{i}_b", np.round(rng.normal(0, 4, fan_out)) / 32),
                  f"dense{i}_bq", 2.0 ** -5, 6, True)
        nodes.append(helper.make_node("MatMul", [x, w], [f"dense{i}_mm"], name=f"dense{i}_mm"))
        out = "y" if i == last else f"dense{i}_out"
        nodes.append(helper.make_node("Add", [f"dense{i}_mm", b], [out], name=f"dense{i}_add"))
        if i != last:
            nodes.append(helper.make_node("Relu", [out], [f"relu{i}"], name=f"relu{i}"))
            x = quant(f"relu{i}", f"act{i}_q", 2.0 ** -6, 6, False)
    graph = helper.make_graph(
        nodes, "jet_tagger_standin",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, LAYERS[0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, LAYERS[-1]])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13),
                                                    helper.make_opsetid(DOMAIN, 1)],
                              producer_name="qfab bench/models/make_jet_tagger.py")
    onnx.checker.check_model(model)
    return model


if __name__ == "__main__":
    data = build().SerializeToString()
    tmp = OUT.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(OUT)
    print(f"wrote {OUT} ({len(data)} bytes)")
