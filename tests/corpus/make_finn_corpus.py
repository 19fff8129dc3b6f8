"""Writes the FINN / QONNX corpus models built with onnx.helper (tests/corpus/finn/*.onnx).

These are the forms no exporter installable here writes (Brevitas's own exports are in
brevitas/, made by make_brevitas_corpus.py). Each follows a documented pattern (see
MANIFEST.md beside this file): Brevitas's bnn_pynq TFC in QONNX with each BatchNormalization
followed by a MultiThreshold (FINN's activation op) instead of a BipolarQuant, and FINN's
streamlined FINN-ONNX form (datatype annotations on the graph input and on integer weight
initializers, MultiThreshold activations, a TopK at the end). Weights are random with a fixed
seed; BatchNorm scales are negative on about a third of the channels, as trained binary
networks have them.

    .venv/bin/python tests/corpus/make_finn_corpus.py      # rewrites tests/corpus/finn/
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

sys.path.insert(0, str(Path(__file__).parents[1] / "frontend"))
from qonnx_graphs import DOMAIN, Builder  # noqa: E402

OUT = Path(__file__).parent / "finn"
FINN_DOMAIN = "finn.custom_op.general"


def _batchnorm(b: Builder, x: str, rng, channels: int, acc_std: float) -> str:
    """A trained-looking BatchNormalization: about a third of the scales negative."""
    gamma = rng.uniform(0.5, 1.5, channels) * np.where(rng.random(channels) < 0.35, -1, 1)
    beta = rng.normal(0, 0.3, channels)
    mean = rng.normal(0, acc_std * 0.3, channels)
    var = (acc_std * rng.uniform(0.7, 1.3, channels)) ** 2
    return b.node("BatchNormalization", [x, b.const(gamma, "gamma"), b.const(beta, "beta"),
                                         b.const(mean, "mean"), b.const(var, "var")],
                  epsilon=1e-4)


def _act(b: Builder, x: str, abits: int, threshold: bool = False) -> str:
    """Brevitas's bnn_pynq activation: bipolar at 1 bit (as a BipolarQuant, or as FINN
    writes it, a MultiThreshold at 0 with out_scale 2, out_bias -1), else a signed Quant
    on [-1, 1)."""
    if abits == 1 and threshold:
        return b.node("MultiThreshold", [x, b.const([[0.0]], "thr")], DOMAIN,
                      out_dtype="BIPOLAR", out_scale=2.0, out_bias=-1.0)
    if abits == 1:
        return b.bipolar(x)
    return b.quant(x, 2.0 ** (1 - abits), abits, signed=1, narrow=0)


def _weight(b: Builder, w: np.ndarray, wbits: int) -> str:
    if wbits == 1:
        return b.bipolar(b.weight(w))
    return b.quant(b.weight(w), 2.0 ** (1 - wbits), wbits, signed=1, narrow=1)


def _scaled_input(b: Builder, x: str) -> str:
    """bnn_pynq's ``2 * x - 1`` on [0, 1] inputs."""
    return b.node("Sub", [b.node("Mul", [x, b.const(2.0, "two")]), b.const(1.0, "one")])


def tfc(seed: int, wbits: int = 1, abits: int = 1, hidden: int = 64,
        threshold: bool = False) -> onnx.ModelProto:
    """TFC as Brevitas exports it to QONNX: 784 -> 3 x hidden -> 10, BatchNorm between;
    with ``threshold``, each BatchNorm followed by a MultiThreshold instead of BipolarQuant
    (FINN's form before it absorbs the BatchNorm into the thresholds)."""
    rng = np.random.default_rng(seed)
    b = Builder()
    h = b.node("Reshape", ["x", b.const(np.array([1, 784]), "shape")])
    b.inits[-1] = helper.make_tensor(b.inits[-1].name, TensorProto.INT64, [2], [1, 784])
    h = _act(b, _scaled_input(b, h), abits)
    width = 784
    for _ in range(3):
        w = rng.normal(0, 1, (width, hidden))
        h = b.node("MatMul", [h, _weight(b, w, wbits)])
        h = _act(b, _batchnorm(b, h, rng, hidden, np.sqrt(width)), abits, threshold)
        width = hidden
    y = b.node("MatMul", [h, _weight(b, rng.normal(0, 1, (width, 10)), wbits)])
    # Brevitas's TensorNorm at the end: a scalar affine.
    y = b.node("Add", [b.node("Mul", [y, b.const(0.05, "tn_w")]), b.const(0.1, "tn_b")])
    return b.model((1, 1, 28, 28), y)


def _annotate(model: onnx.ModelProto, types: dict[str, str]) -> None:
    for name, datatype in types.items():
        qa = onnx.TensorAnnotation(tensor_name=name)
        qa.quant_parameter_tensor_names.append(
            onnx.StringStringEntryProto(key="finn_datatype", value=datatype))
        model.graph.quantization_annotation.append(qa)


def tfc_streamlined(seed: int, hidden: int = 64) -> onnx.ModelProto:
    """A binary TFC in FINN's streamlined dialect: the UINT8 input pre-processed by
    ``(x / 255 * 2 - 1)`` and thresholded to bipolar (MultiThreshold out_scale 2,
    out_bias -1), BIPOLAR-annotated float weights, per-channel integer thresholds between
    layers, a scalar Mul and TopK at the end."""
    rng = np.random.default_rng(seed)
    nodes, inits, types = [], [], {"global_in": "UINT8"}

    def const(name, value, datatype=None):
        inits.append(onnx.numpy_helper.from_array(np.asarray(value, np.float32), name))
        if datatype:
            types[name] = datatype
        return name

    def node(op, inputs, out, domain="", **attrs):
        nodes.append(helper.make_node(op, inputs, [out], name=out, domain=domain, **attrs))
        return out

    h = node("Div", ["global_in", const("div255", 255.0)], "scaled")
    h = node("Add", [node("Mul", [h, const("two", 2.0)], "doubled"), const("minus1", -1.0)],
             "centred")
    h = node("MultiThreshold", [h, const("thr_in", [[0.0]])], "act0", FINN_DOMAIN,
             out_dtype="BIPOLAR", out_scale=2.0, out_bias=-1.0, data_layout="NC")
    width = 784
    for i in range(3):
        w = np.where(rng.random((width, hidden)) < 0.5, -1.0, 1.0)
        h = node("MatMul", [h, const(f"w{i}", w, "BIPOLAR")], f"mm{i}")
        # A streamlined BatchNorm + sign: one threshold a channel on the integer sum of an
        # even number of +-1 terms (an even integer), so odd thresholds.
        thr = 2.0 * rng.integers(-4, 5, (hidden, 1)) + 1
        h = node("MultiThreshold", [h, const(f"thr{i}", thr)], f"act{i + 1}", FINN_DOMAIN,
                 out_dtype="BIPOLAR", out_scale=2.0, out_bias=-1.0, data_layout="NC")
        width = hidden
    w = np.where(rng.random((width, 10)) < 0.5, -1.0, 1.0)
    y = node("MatMul", [h, const("w3", w, "BIPOLAR")], "mm3")
    y = node("Mul", [y, const("out_scale", 0.25)], "scores")
    k = onnx.numpy_helper.from_array(np.array([1], np.int64), "k")
    inits.append(k)
    nodes.append(helper.make_node("TopK", [y, "k"], ["top_values", "global_out"], name="topk",
                                  axis=-1, largest=1, sorted=1))
    graph = helper.make_graph(
        nodes, "tfc_w1a1_streamlined",
        [helper.make_tensor_value_info("global_in", TensorProto.FLOAT, [1, 784])],
        [helper.make_tensor_value_info("global_out", TensorProto.INT64, [1, 1])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11),
                                                    helper.make_opsetid(FINN_DOMAIN, 1)])
    _annotate(model, types)
    return model


MODELS = {
    "tfc_w1a1_finn": lambda: tfc_streamlined(2),
    "tfc_w1a1_bn_multithreshold": lambda: tfc(0, threshold=True),
}


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for name, make in MODELS.items():
        model = make()
        onnx.save(model, str(OUT / f"{name}.onnx"))
        print(f"wrote {OUT / name}.onnx")


if __name__ == "__main__":
    main()
