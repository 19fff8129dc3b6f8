"""Bit-exact co-simulation of real models in Verilator, written as a user's own regression
test would be: compile, simulate, assert bit_exact and a cycle budget."""

from pathlib import Path

import numpy as np
import pytest
from qfab.cost_model.timing import cosim_differences
from shared_models import SHARED

import qfab

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "examples" / "digits"


def _check(design, inputs, result):
    assert result.bit_exact, result.first_mismatch
    # Latency, total cycles, each inference's completion and each stage's active cycles are
    # the cycle model's, exactly; so is the estimate's initiation interval.
    assert not cosim_differences(design.plan, result)
    ends = result.cosim.completion_cycles
    if len(ends) > 1:
        assert qfab.estimate(design).ii_cycles == design.ii_cycles == ends[-1] - ends[-2]


def test_digits_int8_batch_of_eight():
    x = np.load(DIGITS / "sample_images.npy")
    design = qfab.compile(DIGITS / "digits_int8.onnx")
    res = qfab.simulate(design, x)
    _check(design, x, res)
    logits = res.outputs["logits"]
    ref = qfab.reference(DIGITS / "digits_int8.onnx", x)["logits"]
    assert np.array_equal(logits, ref)
    assert logits.argmax(1).tolist() == [2, 3, 4, 5, 6, 7, 8, 9]
    # balanced and double-buffered: the slowest stage's 512 steps (at most 4 x 8 a layer,
    # conv2's MVU took input in its first neuron fold only, and the interval was 640; 576
    # while conv1's window emitted one pixel a beat, not a kernel row)
    assert (design.ii_cycles, design.plan.ii_cycles) == (512, 512)


def test_tfc_2w2a_digits():
    x = (np.load(SHARED / "mnist4" / "digits.npy") / 255).astype(np.float32)
    design = qfab.compile(SHARED / "qonnx" / "TFC_2W2A.onnx")
    res = qfab.simulate(design, x)
    _check(design, x, res)
    assert res.outputs["90"].argmax(1).tolist() == [7, 2, 1, 0]


@pytest.mark.parametrize("name", sorted(p.name for p in (SHARED / "qdq").glob("*.onnx")
                                         if p.name != "ort_qdq_convs.onnx"))
def test_qdq_models(name):
    model = SHARED / "qdq" / name
    design = qfab.compile(model)
    graph = design.graph
    t = graph.tensors[graph.inputs[0]]
    rng = np.random.default_rng(1)
    shape = (1,) + t.shape[1:]
    x = (rng.uniform(-2, 2, shape).astype(np.float32) if t.is_float
         else rng.integers(t.fmt.min, t.fmt.max + 1, shape).astype(np.uint8))
    _check(design, x, qfab.simulate(design, x))


def test_model_with_three_independent_convs():
    """Three inputs, three outputs, one accelerator: the inputs arrive one after the other on
    the input stream, each conv's select keeps its own; the outputs leave likewise."""
    model = SHARED / "qdq" / "ort_qdq_convs.onnx"
    rng = np.random.default_rng(2)
    x = {f"X_{i}": rng.integers(0, 256, (2, 1, 5, 5)).astype(np.uint8) for i in range(3)}
    design = qfab.compile(model)
    assert design.plan.inputs == ["X_0", "X_1", "X_2"]
    assert design.plan.outputs == ["Y_0", "Y_1", "Y_2"]
    res = qfab.simulate(design, x)
    _check(design, x, res)
    ref = qfab.reference(model, x)
    assert all(np.array_equal(res.outputs[k], ref[k]) for k in ("Y_0", "Y_1", "Y_2"))


def test_pool_stride_drops_a_trailing_row(tmp_path):
    """conv1 padded by 2 makes conv2's output 5x5, and the 2x2 stride-2 pool reads its
    trailing row and column but uses neither: the accelerator's last output comes while the
    stages before the pool still stream them, and the cycle model times them to the end of
    the run (it raised on the stage spans before)."""
    import onnx

    model = onnx.load(DIGITS / "digits_int4.onnx")
    conv1 = next(n for n in model.graph.node if n.op_type == "Conv")
    next(a for a in conv1.attribute if a.name == "pads").ints[:] = [2, 2, 2, 2]
    del model.graph.value_info[:]  # the shapes recorded for the unpadded model no longer hold
    path = tmp_path / "padded.onnx"
    onnx.save(model, path)
    x = np.load(DIGITS / "sample_images.npy")[:3]
    design = qfab.compile(path)
    res = qfab.simulate(design, x)
    _check(design, x, res)
    assert np.array_equal(res.outputs["logits"], qfab.reference(path, x)["logits"])


@pytest.mark.parametrize("folding", [dict(max_pe=4, max_simd=8), {}],
                         ids=["folded", "unrolled"])
def test_digits_pipelined_for_ecp5(folding):
    # Compiled for the ULX3S: pipelined MVUs with their byte products in LUTs and
    # requantizers multiplying by their one scale in shifts and adds (folded: no DSP), the
    # windows' line-buffer words registered after the read (folded), two carry chains a
    # register across the unrolled layers' pipelines (unrolled); still bit-exact, and the
    # cycle model still exact.
    x = np.load(DIGITS / "sample_images.npy")[:3]
    design = qfab.compile(DIGITS / "digits_int8.onnx", board="ulx3s-85f", **folding)
    kinds = {b.kind: b.params for s in design.plan.stages for b in s.blocks}
    if folding:
        assert kinds["mvu"].get("pipelined") and kinds["requant"]["adders_per_stage"] == 1
        assert kinds["mvu"].get("lut_products") and kinds["requant"]["shift_add"]
        assert kinds["window"]["registered_ready"] and kinds["maxpool"]["registered_ready"]
        assert "registered_ready" not in kinds["widthconv"]  # the slices after it do
        assert qfab.estimate(design).dsp == 0
        assert kinds["window"]["registered_read"] and kinds["maxpool"]["registered_read"]
        # a register slice on every edge between blocks, the input's and the output's
        chain = [b.kind for s in design.plan.stages for b in s.blocks]
        assert chain[0] == chain[-1] == "slice" and "slice" not in chain[1::2]
        assert all(k == "slice" for k in chain[::2])
    else:
        assert kinds["unrolled"]["levels_per_stage"] == 2 and "mvu" not in kinds
    res = qfab.simulate(design, x)
    _check(design, x, res)
    assert res.outputs["logits"].argmax(1).tolist() == [2, 3, 4]
