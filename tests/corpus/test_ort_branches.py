"""A CNN that is no chain, quantized by onnxruntime (tests/corpus/MANIFEST.md): a stem whose
output is a graph output and feeds a residual block holding another, two branches
concatenated along channels, and the logits. One accelerator computes both outputs."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from qfab.cost_model.timing import cosim_differences

import qfab

sys.path.insert(0, str(Path(__file__).parents[1] / "frontend"))
from ort_quantizer import run_rows  # noqa: E402

MODEL = Path(__file__).parent / "onnxruntime" / "cnn_branches_qdq.onnx"


def _inputs(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 1, (n, 3, 8, 8)).astype(np.float32)


def test_reference_equals_onnxruntime_on_both_outputs():
    """With onnxruntime's requantization every code of both outputs is onnxruntime's (the
    dyadic default differs by one code on about 0.6% of the logits, 0.03% of the stem)."""
    x = _inputs(100, 5)
    logits, stem = run_rows(MODEL, x)
    got = qfab.reference(MODEL, x, requant="onnx")
    assert np.array_equal(got["logits"], logits)
    assert np.array_equal(got["stem"], stem)


def test_one_accelerator_builds_both_outputs_bit_exact():
    design = qfab.compile(MODEL, soc=False)
    plan = design.plan
    ops = [s.op for s in plan.stages]
    # the nested residual adds, the concatenation and the second output on the stream
    assert ops.count("add") == 2 and ops.count("concat") == 1 and ops[-1] == "output"
    inner, outer = (s for s in plan.stages if s.op == "add")
    assert plan.stages.index(inner) < plan.stages.index(outer)
    assert outer.skip_from < inner.skip_from  # the outer block's fork comes first
    assert [design.graph.tensors[t].shape[1:] for t in plan.outputs] == [(10,), (8, 8, 8)]
    assert plan.out_beats * plan.out_elems == 10 + 8 * 8 * 8
    x = _inputs(2, 9)
    res = qfab.simulate(design, x)
    assert res.bit_exact, res.first_mismatch
    assert res.checked_codes == 2 * (10 + 512)
    ref = qfab.reference(MODEL, x)
    assert res.outputs.keys() == ref.keys() == {"logits", "stem"}
    for name in ref:
        assert np.array_equal(res.outputs[name], ref[name]), name
    assert not cosim_differences(plan, res)  # the cycle model's figures, exactly


INCEPTION = Path(__file__).parent / "onnxruntime" / "cnn_inception_qdq.onnx"


def test_inception_block_and_two_heads_bit_exact():
    """Three branches from one tensor into one Concat (joined two at a time, in the Concat's
    order), and two heads on the pooled features: one accelerator, equal to onnxruntime."""
    x = _inputs(100, 6)
    logits, aux = run_rows(INCEPTION, x)
    got = qfab.reference(INCEPTION, x, requant="onnx")
    assert np.array_equal(got["logits"], logits) and np.array_equal(got["aux"], aux)
    design = qfab.compile(INCEPTION, soc=False)
    plan = design.plan
    concats = [s for s in plan.stages if s.op == "concat"]
    assert len(concats) == 2
    sides = [s for s in plan.stages if s.on_skip and s.source is not None]
    assert len([s for s in sides if s.source == 1]) == 2  # two side branches off the stem
    assert [design.graph.tensors[t].shape[1:] for t in plan.outputs] == [(10,), (3,)]
    x = _inputs(2, 9)
    res = qfab.simulate(design, x)
    assert res.bit_exact, res.first_mismatch
    ref = qfab.reference(INCEPTION, x)
    assert all(np.array_equal(res.outputs[k], ref[k]) for k in ("logits", "aux"))
    assert not cosim_differences(plan, res)
