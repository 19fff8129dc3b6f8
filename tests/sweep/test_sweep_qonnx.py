"""Sweeps of an already-quantized QONNX model in place: Brevitas's export of a small CNN
(tests/corpus/MANIFEST.md: 4-bit weights and ReLUs, an 8-bit input, int32 bias quantizers,
initializers listed as graph inputs, a batch fixed at one)."""

import json
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from qfab.cost_model.quantize import QuantSpec
from qfab.cost_model.reformat import float_path, reformat_qonnx

import qfab
from qfab.cli import main

sys.path.insert(0, str(Path(__file__).parents[1] / "frontend"))
from qonnx_graphs import qonnx_run  # noqa: E402

pytest.importorskip("qonnx")

BREVITAS_CNN = Path(__file__).parents[1] / "corpus" / "brevitas" / "cnn_w4a4_int32bias_qonnx.onnx"


def _inputs(n: int) -> np.ndarray:
    return np.random.default_rng(0).uniform(0, 1, (n, 3, 10, 10)).astype(np.float32)


def _quant_params(model: onnx.ModelProto, biases: bool) -> list[tuple]:
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    return [(n.input[0], float(inits[n.input[3]]), inits[n.input[1]].tolist())
            for n in model.graph.node if n.op_type == "Quant"
            and ("bias" in n.input[0]) == biases]


def test_reformat_at_its_own_formats_keeps_every_quantizer():
    """At the widths it was exported with, every weight and activation quantizer keeps its
    scale and width exactly, and each bias quantizer's scale (the input's times the
    weights') is Brevitas's to float32 rounding."""
    model = onnx.load(BREVITAS_CNN)
    four = QuantSpec("int", 4)
    same = reformat_qonnx(model, four, [QuantSpec("int", 8), four, four])
    assert _quant_params(same, biases=False) == _quant_params(model, biases=False)
    for got, want in zip(_quant_params(same, True), _quant_params(model, True), strict=True):
        assert got[:2] == want[:2]
        np.testing.assert_allclose(got[2], want[2], rtol=2e-7)
    assert [v.name for v in same.graph.input] == [model.graph.input[0].name]


@pytest.mark.parametrize("weights, activations", [
    (QuantSpec("int", 6), QuantSpec("int", 8)),
    (QuantSpec("fixed", 5), QuantSpec("int", 3)),
    (QuantSpec("minifloat", minifloat="E2M1"), QuantSpec("int", 4)),
])
def test_reformatted_model_matches_qonnx(weights, activations):
    """qfab's integer reference of a reformatted model equals qonnx's execution of it, up to
    qonnx's float32 rounding, with the same argmax."""
    model = reformat_qonnx(onnx.load(BREVITAS_CNN), weights, activations)
    x = _inputs(6)
    expected = qonnx_run(model, x)
    got = next(iter(qfab.reference(model, x).values()))
    scale = np.abs(expected).max(axis=-1, keepdims=True)
    assert np.all(np.abs(got - expected) <= 1e-5 * scale), np.abs(got - expected).max()
    assert np.array_equal(got.argmax(-1), expected.argmax(-1))


def test_float_path_bypasses_the_quantizers():
    bypassed = float_path(onnx.load(BREVITAS_CNN))
    assert {n.op_type for n in bypassed.graph.node} == {"Conv", "Relu", "MaxPool", "Flatten",
                                                        "Gemm"}


def test_sweep_in_place_with_data(tmp_path: Path):
    """`qfab sweep` of the Brevitas model with inputs only: scored by the SNR against its
    float network, which grows with the width; hardware for every point."""
    np.savez(tmp_path / "x.npz", x=_inputs(160))
    space = tmp_path / "space.yaml"
    space.write_text(f"model: {BREVITAS_CNN}\ncalibration_images: 32\nformats:\n"
                     "  int: [3, 5, 8]\n  minifloat_weights: [E2M1]\n"
                     "folding:\n  - {max_pe: 2, max_simd: 4}\n")
    out = tmp_path / "out"
    assert main(["sweep", "--space", str(space), "--data", str(tmp_path / "x.npz"), "-o",
                 str(out), "--workers", "1", "--quiet"]) == 0
    rows = {r["label"].split("_")[0]: r for r in json.loads((out / "results.json").read_text())}
    assert all(r["metric"] == "snr_db" and r["hw"] == "ok" for r in rows.values())
    assert all(r["accuracy_by"] == "qfab.reference" for r in rows.values())
    assert rows["int3"]["score"] + 6 < rows["int5"]["score"] < rows["int8"]["score"] - 6


ZOO_TFC = Path("/work/shared/models/qonnx/TFC_2W2A.onnx")  # QONNX model zoo, trained
MNIST4 = Path("/work/shared/models/mnist4/digits.npy")     # labels 7, 2, 1, 0


@pytest.mark.skipif(not ZOO_TFC.is_file(), reason="the shared QONNX model zoo file is absent")
def test_model_zoo_tfc_reformats_through_its_transposes():
    """TFC_2W2A's weight quantizers reach each MatMul through a Transpose: they take the
    weights' format (E2M1 here), the activations keep 2 bits, and qfab's reference of the
    result equals qonnx's execution and still reads the four MNIST digits right."""
    model = reformat_qonnx(onnx.load(ZOO_TFC), QuantSpec("minifloat", minifloat="E2M1"),
                           QuantSpec("int", 2))
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("FloatQuant") == ops.count("MatMul") == 4
    x = np.load(MNIST4) / np.float32(255)
    expected = qonnx_run(model, x)
    got = next(iter(qfab.reference(model, x).values()))
    scale = np.abs(expected).max(axis=-1, keepdims=True)
    assert np.all(np.abs(got - expected) <= 1e-5 * scale), np.abs(got - expected).max()
    assert list(got.argmax(-1)) == [7, 2, 1, 0]
