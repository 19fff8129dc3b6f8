"""The committed residual digits CNN (examples/digits_resnet): its int8 model compiles to a
depthwise stage and a residual add whose skip path has no layer, co-simulates eight test
images bit-exactly in Verilator with the cycle model exact, and scores what accuracy.json
records, by onnxruntime and by qfab's integer reference."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper
from qfab.cost_model.timing import cosim_differences
from sklearn.datasets import load_digits

import qfab

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "digits_resnet"
INT8 = EXAMPLE / "digits_resnet_int8.onnx"
# examples/digits_resnet is a folder of scripts, not a package; make_models.py finds resnet.py
# through sys.path, and is loaded by path under its own name (other examples have one too).
sys.path.insert(0, str(EXAMPLE))
import resnet  # noqa: E402

_spec = importlib.util.spec_from_file_location("digits_resnet_make_models",
                                               EXAMPLE / "make_models.py")
make_models = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_models)


@pytest.fixture(scope="module")
def held_out_digits() -> tuple[np.ndarray, np.ndarray]:
    """The last 360 digits, scaled to [0, 1], written out here rather than imported so that a
    change of split in make_models.py shows up as a failure."""
    digits = load_digits()
    x = (digits.images[1437:] / 16.0).astype(np.float32)[:, None]
    return x, digits.target[1437:]


@pytest.fixture(scope="module")
def record() -> dict:
    return json.loads((EXAMPLE / "accuracy.json").read_text())


@pytest.fixture(scope="module")
def design():
    return qfab.compile(INT8)


def test_float_graph_has_a_depthwise_conv_and_an_identity_add() -> None:
    model = onnx.load(str(EXAMPLE / "digits_resnet_float.onnx"))
    onnx.checker.check_model(model, full_check=True)
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 21)]
    nodes = {n.name: n for n in model.graph.node}
    assert helper.get_node_attr_value(nodes["dw"], "group") == resnet.CHANNELS
    # The add's second input is the block's input itself: no layer on the skip path.
    assert list(nodes["add"].input) == ["pw_out", "conv1_relu"]
    assert list(nodes["dw"].input)[0] == "conv1_relu"


def test_plan_has_depthwise_stage_and_residual_add(design) -> None:
    stages = design.plan.stages
    dw = [s for s in stages if any(b.kind == "depthwise" for b in s.blocks)]
    assert [s.name for s in dw] == ["dw"]
    (add,) = [s for s in stages if s.op == "add"]
    assert add.skip and add.skip[0].kind == "fifo"
    fork = stages[add.skip_from]
    assert fork.name == "conv1_out_QuantizeLinear"  # the block's input: conv1 after its Relu
    # The skip holds one inference of the block's input: 8x8 pixels of 8 channels.
    assert add.skip[0].params["depth"] == 8 * 8 * 8 // add.skip[0].in_elems + 2
    between = stages[add.skip_from + 1 : stages.index(add)]
    assert {"dw", "pw"} <= {s.name for s in between}


def test_cosimulation_is_bit_exact_with_the_cycle_model_exact(design, held_out_digits) -> None:
    pytest.importorskip("cocotb")
    x = np.load(EXAMPLE / "sample_images.npy")
    images, labels = held_out_digits
    assert x.shape == (8, 1, 8, 8) and x.dtype == np.float32
    np.testing.assert_array_equal(x, images[:8])
    res = qfab.simulate(design, x)
    assert res.bit_exact, res.first_mismatch
    assert cosim_differences(design.plan, res) == []
    ref = qfab.reference(INT8, x)["logits"]
    assert np.array_equal(res.outputs["logits"], ref)
    assert res.outputs["logits"].argmax(1).tolist() == labels[:8].tolist()


def test_reference_accuracy_equals_record(held_out_digits, record: dict) -> None:
    images, labels = held_out_digits
    correct = int(np.sum(qfab.reference(INT8, images)["logits"].argmax(1) == labels))
    assert record["test_images"] == len(labels) == 360
    assert correct == record["reference_correct"]["int8"]
    assert correct / len(labels) == record["reference_accuracy"]["int8"]
    assert correct / len(labels) >= 0.90


@pytest.mark.parametrize("kind", ["float", "int8"])
def test_onnxruntime_accuracy_equals_record(kind: str, held_out_digits, record: dict) -> None:
    images, labels = held_out_digits
    path = EXAMPLE / f"digits_resnet_{kind}.onnx"
    assert make_models.ort_accuracy(path, images, labels) == record["accuracy"][kind]
    assert record["correct"][kind] == round(record["accuracy"][kind] * 360)
    assert record["accuracy"][kind] >= 0.90


def test_float_model_is_the_numpy_network(held_out_digits) -> None:
    """Exporting the committed float weights again gives the committed bytes, and the NumPy
    forward pass agrees with onnxruntime (float arithmetic, so to float32 rounding)."""
    model = onnx.load(str(EXAMPLE / "digits_resnet_float.onnx"))
    params = {t.name.replace("_", "."): onnx.numpy_helper.to_array(t).astype(np.float64)
              for t in model.graph.initializer}
    assert make_models.to_onnx(params).SerializeToString() == model.SerializeToString()
    images, _ = held_out_digits
    expected = make_models.ort_session(EXAMPLE / "digits_resnet_float.onnx").run(
        None, {"input": images})[0]
    got, _ = resnet.forward(params, images.astype(np.float64))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_numpy_gradients_match_finite_differences() -> None:
    """The hand-written backward pass (shortcut, depthwise and all), checked against central
    differences in float64."""
    rng = np.random.default_rng(7)
    params = {k: v + rng.normal(0, 0.1, v.shape) for k, v in resnet.init_params(rng).items()}
    x = rng.random((3, 1, 8, 8))
    labels = np.array([1, 5, 9])
    logits, cache = resnet.forward(params, x)
    _, dlogits = resnet.softmax_xent(logits, labels)
    grads = resnet.backward(params, cache, dlogits)
    assert sorted(grads) == sorted(params)
    for key, value in params.items():
        flat = value.reshape(-1)
        for i in rng.choice(flat.size, 4, replace=False):
            old = flat[i]
            flat[i] = old + 1e-6
            plus, _ = resnet.softmax_xent(resnet.forward(params, x)[0], labels)
            flat[i] = old - 1e-6
            minus, _ = resnet.softmax_xent(resnet.forward(params, x)[0], labels)
            flat[i] = old
            assert grads[key].reshape(-1)[i] == pytest.approx((plus - minus) / 2e-6, abs=1e-6)


def test_readme_table_is_accuracy_json(record: dict) -> None:
    readme = (EXAMPLE / "README.md").read_text()
    rows = [("float", "onnxruntime", record["accuracy"]["float"], record["correct"]["float"]),
            ("int8", "onnxruntime", record["accuracy"]["int8"], record["correct"]["int8"]),
            ("int8", "`qfab.reference` (integer-only, dyadic requantization)",
             record["reference_accuracy"]["int8"], record["reference_correct"]["int8"])]
    for kind, evaluator, acc, correct in rows:
        assert f"| {kind} | {evaluator} | {100 * acc:.2f}% ({correct}/360) |" in readme
