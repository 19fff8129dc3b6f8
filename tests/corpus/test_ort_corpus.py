"""The onnxruntime and hls4ml corpus (tests/corpus/MANIFEST.md): onnxruntime-quantized MLPs
ending in Softmax, Sigmoid or Tanh against onnxruntime itself, and the activations running
on the SoC's control core after the accelerator (the firmware tail), bit-exact against the
reference."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from qfab.sim.reference import Reference
from qfab.sim.run_model import compare

import qfab

sys.path.insert(0, str(Path(__file__).parents[1] / "frontend"))
from ort_quantizer import run_rows  # noqa: E402

CORPUS = Path(__file__).parent
ORT_MODELS = sorted((CORPUS / "onnxruntime").glob("mlp_*.onnx"))
HLS4ML_SOFTMAX = CORPUS / "hls4ml" / "dense_softmax_qonnx.onnx"


def _inputs(n: int, seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 1.5, (n, 16)).astype(np.float32)


def _output_lsb(path: Path) -> float:
    """One code of the model's output: its quantizer's scale, else the 2**-15 of qfab's
    unquantized activation codes."""
    inits = {i.name: i for i in onnx.load(path).graph.initializer}
    return float(onnx.numpy_helper.to_array(inits["y_scale"])) if "y_scale" in inits \
        else 2.0**-15


@pytest.mark.parametrize("path", ORT_MODELS, ids=lambda p: p.stem)
def test_reference_against_onnxruntime(path, record_property):
    """With onnxruntime's requantization (``requant="onnx"``) every layer before the
    activation is equal; the quantized sigmoid is equal, the softmax within one code, the
    unquantized tanh within one 2**-15 code (its 1.0 is clamped to 32767 / 32768)."""
    x = _inputs(500)
    runs = run_rows(path, x)
    want = runs[-1]
    outputs = qfab.reference(path, x, requant="onnx")
    if "logits" in outputs:  # a second output, read by the activation too
        assert np.array_equal(outputs["logits"], runs[0])
    got = outputs["y"]
    codes_off = np.round(np.abs(got.astype(np.float64) - want) / _output_lsb(path), 2)
    share = float((codes_off > 0.5).mean())
    record_property("share_one_code_off", share)
    print(f"{path.stem}: {share:.3%} of outputs differ from onnxruntime")
    if "sigmoid" in path.stem:
        assert np.array_equal(got, want)
    elif "softmax" in path.stem:
        assert codes_off.max() <= 1.0 and share < 0.01
    else:  # rounded to 2**-15, and clamped at 32767 / 32768
        assert codes_off.max() <= 1.0
        assert codes_off[np.abs(want) < 32767 / 32768].max() <= 0.5
    assert len(np.unique(want.argmax(1))) > 2  # the inputs tell classes apart


@pytest.mark.parametrize("path, input_format", [
    (CORPUS / "onnxruntime" / "mlp_sigmoid_qdq.onnx", None),
    (HLS4ML_SOFTMAX, "fixed<16,6>"),
], ids=["onnxruntime_sigmoid", "hls4ml_softmax"])
def test_tail_on_the_soc(path, input_format):
    """The activation runs in the firmware after the accelerator; its codes, read back from
    RAM, equal the reference's, and the outputs are the dequantized firmware codes (and, for
    the two-output model, the dequantized accelerator codes: one design builds both)."""
    design = qfab.compile(path, input_format=input_format)
    assert [n.op for n in design.plan.tail] == ["lookup" if "sigmoid" in path.stem
                                                else "softmax"]
    x = _inputs(5)
    res = qfab.simulate(design, x, soc=True)
    assert res.bit_exact, res.first_mismatch
    assert res.checked_codes == 2 * res.ref_codes.size
    assert 0 < res.tail_cycles < res.control_cycles
    assert "tail cycles: " in res.console
    ref = qfab.reference(path, x, input_format=input_format)
    assert res.outputs.keys() == ref.keys()
    for name, want in ref.items():
        assert np.array_equal(res.outputs[name], want), name


def test_the_manifest_lists_the_tail(tmp_path):
    qfab.compile(HLS4ML_SOFTMAX, out_dir=tmp_path / "d", input_format="fixed<16,6>", soc=False)
    manifest = json.loads((tmp_path / "d" / "manifest.json").read_text())
    assert [(t["name"], t["op"], t["format"]) for t in manifest["tail"]] == [
        ("y", "softmax", "uint16")]
    assert manifest["tail"][0]["tensor"] != manifest["output"]["tensor"]


def test_a_wrong_tail_code_is_a_mismatch():
    """What `sim --soc` does with the firmware's tail codes: one changed code is reported
    against the tail's tensor, and the outputs carry it."""
    design = qfab.compile(HLS4ML_SOFTMAX, input_format="fixed<16,6>", soc=False)
    ref = Reference(design.graph, "dyadic")
    env = ref.run({"x": _inputs(3)}, keep=True)
    end = design.plan.tail[-1].outputs[0]
    assert compare(design, ref, env, env[design.plan.output], env[end])["bit_exact"]
    tail_codes = env[end].copy()
    tail_codes[1, 2] += 1
    fields = compare(design, ref, env, env[design.plan.output], tail_codes)
    assert not fields["bit_exact"] and fields["mismatches"] == 1
    assert (fields["first_mismatch"].tensor, fields["first_mismatch"].index) == (end, (1, 2))
    assert fields["outputs"]["y"][1, 2] == np.float32((env[end][1, 2] + 1) * 2.0**-15)
