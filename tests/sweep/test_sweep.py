"""Sweeps: space files, the post-training quantizer, the Pareto front, and a few points run
locally and on a Dask LocalCluster with the same results, resumed from the cache."""

import json
from pathlib import Path

import onnx
import pytest
from qfab.cost_model.datasets import digits
from qfab.cost_model.plots import pareto_front
from qfab.cost_model.quantize import QuantSpec, quantize_model
from qfab.cost_model.space import load_space

from qfab.cli import main
from qfab.errors import QfabError

ROOT = Path(__file__).resolve().parents[2]
FLOAT_MODEL = ROOT / "examples" / "digits" / "digits_float.onnx"
SMALL_SPACE = f"""\
model: {FLOAT_MODEL}
test_images: 60
calibration_images: 64
formats:
  int: [3, 8]
  minifloat: [E4M3]
  minifloat_weights: [E2M1]
folding:
  - {{max_pe: 2, max_simd: 4}}
"""


def _space(tmp_path: Path, text: str = SMALL_SPACE) -> Path:
    path = tmp_path / "space.yaml"
    path.write_text(text)
    return path


def test_example_space_parses():
    space = load_space(ROOT / "examples" / "digits_sweep.yaml")
    kinds = {p.kind for p in space.points}
    assert kinds == {"int", "fixed", "minifloat", "minifloat_weights", "per_layer"}
    assert space.model.is_file()
    assert len({p.label for p in space.points}) == len(space.points)


@pytest.mark.parametrize("edit, key", [
    (("int: [3, 8]", "int: [3, nine]"), "formats.int"),
    (("minifloat: [E4M3]", "minifloat: [E9]"), "formats.minifloat"),
    (("minifloat: [E4M3]", "float: [E4M3]"), "formats.float"),
    (("{max_pe: 2, max_simd: 4}", "{max_pe: -2}"), "folding[0].max_pe"),
    (("test_images: 60", "test_images: 60\nbogus: 1"), "bogus"),
    (("test_images: 60", "test_images: 60\nptq: best"), "ptq"),
])
def test_bad_space_names_key(tmp_path: Path, edit, key):
    path = _space(tmp_path, SMALL_SPACE.replace(*edit))
    with pytest.raises(QfabError) as info:
        load_space(path)
    assert key in str(info.value) and "\n" not in str(info.value)


def test_quantizer_inserts_qonnx_nodes_and_lowers():
    import qfab

    d = digits()
    x_train, x_test, y_test = d.x_calibration, d.x_test, d.y_test
    model = onnx.load(FLOAT_MODEL)
    q = quantize_model(model, QuantSpec("int", 8), QuantSpec("int", 8), x_train[:64])
    ops = [n.op_type for n in q.graph.node]
    assert ops.count("Quant") == 1 + 3 + 2  # input, three weight tensors, two Relu outputs
    logits = next(iter(qfab.reference(q, x_test[:100]).values()))
    assert (logits.argmax(-1) == y_test[:100]).mean() > 0.9
    mf = quantize_model(model, QuantSpec("minifloat", minifloat="E4M3"),
                        QuantSpec("minifloat", minifloat="E4M3"), x_train[:64])
    assert [n.op_type for n in mf.graph.node].count("FloatQuant") == 6


def test_quantizer_handles_a_residual_add():
    """The Add's inputs and output get signed Quants (the Relu output feeding it keeps its
    own), the QONNX sum lowers to a residual add the hardware maps, and the integer model
    scores as the float one does, to within the rounding of its three extra quantizers."""
    import qfab

    d = digits()
    x_train, x_test, y_test = d.x_calibration, d.x_test, d.y_test
    model = onnx.load(ROOT / "examples" / "digits_resnet" / "digits_resnet_float.onnx")
    q = quantize_model(model, QuantSpec("int", 8), QuantSpec("int", 8), x_train[:128])
    quants = {n.input[0]: n for n in q.graph.node if n.op_type == "Quant"}
    assert {"pw_out", "add_out", "conv1_relu"} <= set(quants)
    assert [n.op_type for n in q.graph.node].count("Quant") == 1 + 5 + 4 + 2
    assert onnx.helper.get_node_attr_value(quants["add_out"], "signed") == 1
    design = qfab.compile(q)
    assert [s.op for s in design.plan.stages].count("add") == 1
    logits = next(iter(qfab.reference(q, x_test).values()))
    assert (logits.argmax(-1) == y_test).mean() > 0.93


def test_pareto_front():
    pts = [(10, 0.5), (20, 0.9), (15, 0.4), (30, 0.9), (5, 0.1), (20, 0.95)]
    assert pareto_front(pts) == [4, 0, 5]


def _rows(out: Path) -> list[dict]:
    rows = json.loads((out / "results.json").read_text())
    for r in rows:
        r.pop("seconds")
    return rows


def test_sweep_local_then_dask_same_results_and_resume(tmp_path: Path, capsys):
    distributed = pytest.importorskip("distributed")
    space = _space(tmp_path)
    local = tmp_path / "local"
    assert main(["sweep", "--space", str(space), "-o", str(local), "--workers", "1"]) == 0
    rows = _rows(local)
    assert [r["label"] for r in rows] == ["int3_pe2_simd4", "int8_pe2_simd4",
                                         "E4M3_pe2_simd4", "E2M1w-int4a_pe2_simd4"]
    by = {r["label"]: r for r in rows}
    assert by["int8_pe2_simd4"]["hw"] == "ok" and by["int8_pe2_simd4"]["accuracy"] > 0.9
    assert by["int3_pe2_simd4"]["lut"] < by["int8_pe2_simd4"]["lut"]
    assert by["E4M3_pe2_simd4"]["hw"].startswith("proxy")
    assert by["E2M1w-int4a_pe2_simd4"]["hw"] == "ok"
    for name in ("results.csv", "lut_vs_bits.png", "dsp_vs_bits.png", "accuracy_vs_lut.png"):
        assert (local / name).stat().st_size > 0
    assert (local / "results.csv").read_text().count("\n") == 5

    # Resuming: every point comes from the cache, nothing is recomputed.
    stamps = {p: p.stat().st_mtime_ns for p in (local / "cache").glob("*.json")}
    capsys.readouterr()
    assert main(["sweep", "--space", str(space), "-o", str(local), "--workers", "1"]) == 0
    assert "4 cached" in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in (local / "cache").glob("*.json")} == stamps

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        address = cluster.scheduler_address.replace("tcp://", "dask://")
        on_dask = tmp_path / "dask"
        assert main(["sweep", "--space", str(space), "-o", str(on_dask), "--executor",
                     address, "--quiet"]) == 0
    assert _rows(on_dask) == rows


def test_sweep_errors(tmp_path: Path, capsys):
    space = _space(tmp_path)
    assert main(["sweep", str(tmp_path / "missing.onnx"), "--space", str(space), "-o",
                 str(tmp_path / "o")]) == 2
    assert main(["sweep", "--space", str(space), "-o", str(tmp_path / "o"), "--executor",
                 "ray://x"]) == 2
    err = capsys.readouterr().err
    assert "missing.onnx" in err and "unknown executor" in err
