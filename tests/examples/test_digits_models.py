"""The committed digits models: they load, run, score what accuracy.json records, and use only
the ops the compiler is promised (Conv, Relu, MaxPool, Flatten, Gemm, QuantizeLinear,
DequantizeLinear) in a clean per-tensor QDQ form."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, numpy_helper
from sklearn.datasets import load_digits

DIGITS = Path(__file__).resolve().parents[2] / "examples" / "digits"
# examples/digits is a folder of scripts, not a package; make_models.py finds cnn.py through
# sys.path, and is loaded by path under its own name (examples/tiny has a make_models.py too).
sys.path.insert(0, str(DIGITS))
import cnn  # noqa: E402

_spec = importlib.util.spec_from_file_location("digits_make_models", DIGITS / "make_models.py")
make_models = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_models)

FLOAT_OPS = {"Conv", "Relu", "MaxPool", "Flatten", "Gemm"}
QDQ_OPS = {"QuantizeLinear", "DequantizeLinear"}
KINDS = ("float", "int8", "int4")
# kind -> (weight element type, activation element type, logits element type)
ELEM_TYPES = {
    "int8": (TensorProto.INT8, TensorProto.UINT8, TensorProto.UINT8),
    "int4": (TensorProto.INT4, TensorProto.UINT4, TensorProto.UINT8),
}


@pytest.fixture(scope="module")
def held_out_digits() -> tuple[np.ndarray, np.ndarray]:
    """The last 360 digits, scaled to [0, 1], written out here rather than imported so that a
    change of split in make_models.py shows up as a failure."""
    digits = load_digits()
    x = (digits.images[1437:] / 16.0).astype(np.float32)[:, None]
    return x, digits.target[1437:]


@pytest.fixture(scope="module")
def record() -> dict:
    return json.loads((DIGITS / "accuracy.json").read_text())


def load(kind: str) -> onnx.ModelProto:
    return onnx.load(str(DIGITS / f"digits_{kind}.onnx"))


def initializers(model: onnx.ModelProto) -> dict[str, TensorProto]:
    return {t.name: t for t in model.graph.initializer}


def predictions(kind: str, images: np.ndarray) -> np.ndarray:
    session = make_models.ort_session(DIGITS / f"digits_{kind}.onnx")
    return np.array([np.argmax(session.run(["logits"], {"input": im[None]})[0]) for im in images])


@pytest.mark.parametrize("kind", KINDS)
def test_model_is_valid_with_promised_interface(kind: str) -> None:
    model = load(kind)
    onnx.checker.check_model(model, full_check=True)
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 21)]
    (inp,) = model.graph.input
    (out,) = model.graph.output
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert (inp.name, inp.type.tensor_type.elem_type, dims[1:]) == ("input", 1, [1, 8, 8])
    assert out.name == "logits"
    assert [d.dim_value for d in out.type.tensor_type.shape.dim][1:] == [10]


@pytest.mark.parametrize("kind", KINDS)
def test_only_listed_ops(kind: str) -> None:
    ops = [n.op_type for n in load(kind).graph.node]
    allowed = FLOAT_OPS if kind == "float" else FLOAT_OPS | QDQ_OPS
    assert set(ops) <= allowed, set(ops) - allowed
    assert FLOAT_OPS <= set(ops)
    assert all(n.domain in ("", "ai.onnx") for n in load(kind).graph.node)
    strides = [
        list(onnx.helper.get_node_attr_value(n, "strides"))
        for n in load(kind).graph.node
        if n.op_type == "Conv"
    ]
    assert strides == [[1, 1], [2, 2]]


@pytest.mark.parametrize("kind", ["int8", "int4"])
def test_clean_per_tensor_qdq(kind: str) -> None:
    """Every input of every float op comes from a DequantizeLinear, every float op output goes
    to a QuantizeLinear; weights and biases are stored quantized; every scale is a scalar."""
    model = load(kind)
    inits = initializers(model)
    producer = {o: n for n in model.graph.node for o in n.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for n in model.graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    weight_t, act_t, logits_t = ELEM_TYPES[kind]
    for node in model.graph.node:
        if node.op_type in FLOAT_OPS:
            for name in node.input:
                assert producer[name].op_type == "DequantizeLinear", (node.name, name)
            (out,) = node.output
            assert out != "logits"
            assert [c.op_type for c in consumers[out]] == ["QuantizeLinear"], node.name
        if node.op_type in QDQ_OPS:
            scale = inits[node.input[1]]
            assert list(scale.dims) in ([], [1]), node.name  # per-tensor
        if node.op_type == "DequantizeLinear" and node.input[0] in inits:
            stored = inits[node.input[0]].data_type
            target = consumers[node.output[0]][0]
            is_bias = target.op_type in ("Conv", "Gemm") and target.input[2] == node.output[0]
            assert stored == (TensorProto.INT32 if is_bias else weight_t), node.name
        if node.op_type == "QuantizeLinear":
            zero_point = inits[node.input[2]]
            expected = logits_t if consumers[node.output[0]][0].output == ["logits"] else act_t
            assert zero_point.data_type == expected, node.name
    assert producer["logits"].op_type == "DequantizeLinear"


@pytest.mark.parametrize("kind", KINDS)
def test_accuracy_equals_record(kind: str, held_out_digits, record: dict) -> None:
    images, labels = held_out_digits
    correct = int(np.sum(predictions(kind, images) == labels))
    assert record["test_images"] == len(labels) == 360
    assert correct == record["correct"][kind]
    assert correct / len(labels) == record["accuracy"][kind]
    assert correct / len(labels) >= 0.90


def test_int4_really_has_4_bit_weights() -> None:
    """The int4 codes use the 4-bit range (not an int8 range relabelled), and more than a
    handful of the 16 levels."""
    inits = initializers(load("int4"))
    for name in ("conv1_w_quantized", "conv2_w_quantized", "fc_w_quantized"):
        codes = numpy_helper.to_array(inits[name]).astype(np.int64)
        assert codes.min() >= -8 and codes.max() <= 7
        assert len(np.unique(codes)) >= 8, name


def test_samples_are_test_images(held_out_digits) -> None:
    images, labels = held_out_digits
    sample = np.load(DIGITS / "sample_input.npy")
    assert sample.shape == (1, 1, 8, 8) and sample.dtype == np.float32
    np.testing.assert_array_equal(sample, images[:1])
    batch = np.load(DIGITS / "sample_batch.npz")
    np.testing.assert_array_equal(batch["images"], images[:8])
    np.testing.assert_array_equal(batch["labels"], labels[:8])


def test_float_model_is_the_numpy_network(held_out_digits) -> None:
    """Exporting the committed float weights again gives the committed bytes, and the NumPy
    forward pass agrees with onnxruntime (float arithmetic, so to float32 rounding)."""
    model = load("float")
    params = {
        name.replace("_", "."): numpy_helper.to_array(t).astype(np.float64)
        for name, t in initializers(model).items()
    }
    assert make_models.to_onnx(params).SerializeToString() == model.SerializeToString()
    images, _ = held_out_digits
    expected = ort.InferenceSession(model.SerializeToString()).run(None, {"input": images})[0]
    got, _ = cnn.forward(params, images.astype(np.float64))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_numpy_gradients_match_finite_differences() -> None:
    """The hand-written backward pass, checked against central differences in float64."""
    rng = np.random.default_rng(7)
    params = {k: v + rng.normal(0, 0.1, v.shape) for k, v in cnn.init_params(rng).items()}
    x = rng.random((3, 1, 8, 8))
    labels = np.array([1, 5, 9])
    logits, cache = cnn.forward(params, x)
    _, dlogits = cnn.softmax_xent(logits, labels)
    grads = cnn.backward(params, cache, dlogits)
    for key, value in params.items():
        flat = value.reshape(-1)
        for i in rng.choice(flat.size, 4, replace=False):
            old = flat[i]
            flat[i] = old + 1e-6
            plus, _ = cnn.softmax_xent(cnn.forward(params, x)[0], labels)
            flat[i] = old - 1e-6
            minus, _ = cnn.softmax_xent(cnn.forward(params, x)[0], labels)
            flat[i] = old
            assert grads[key].reshape(-1)[i] == pytest.approx((plus - minus) / 2e-6, abs=1e-6)


def test_readme_table_is_accuracy_json():
    recorded = json.loads((DIGITS / "accuracy.json").read_text())["accuracy"]
    readme = (DIGITS.parents[1] / "README.md").read_text()
    names = {"float": "float", "int8": "int8 QDQ (`digits_int8.onnx`)",
             "int4": "int4 QDQ (`digits_int4.onnx`)"}
    for kind, label in names.items():
        assert f"| {label} | {100 * recorded[kind]:.1f} % |" in readme, kind
