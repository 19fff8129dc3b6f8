"""Range analysis is sound: on real runs, every integer tensor stays inside the interval the
pass derived, and every accumulator fits the width it was given (so hardware built to those
widths never wraps)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from frontend_harness import lowered
from qfab.compiler.ir import Acc
from qfab.compiler.passes.ranges import ranges
from qfab.sim.reference import Reference
from test_qonnx import GRAPHS

MODELS = sorted(Path("/work/shared/models/qdq").glob("*.onnx")) + [
    Path("/work/shared/models/qonnx/TFC_2W2A.onnx")]


def _random_feeds(graph, rng, batch: int = 4) -> dict[str, np.ndarray]:
    feeds = {}
    for name in graph.inputs:
        t = graph.tensors[name]
        shape = (batch, *t.shape[1:])
        if t.is_float:
            # Wide inputs: saturate the input quantizers as well as exercise their middle.
            feeds[name] = (rng.standard_cauchy(shape) * 2).astype(np.float32)
        else:
            feeds[name] = rng.integers(t.fmt.min, t.fmt.max + 1, shape)
    return feeds


def _check(graph, feeds) -> int:
    bounds = ranges(graph)
    checked = 0
    for mode in ("dyadic", "onnx"):
        env = Reference(graph, mode).run(feeds, keep=True)
        for name, (lo, hi) in bounds.items():
            v = np.asarray(env[name])
            t = graph.tensors[name]
            assert v.min() >= lo and v.max() <= hi, f"{name}: [{v.min()}, {v.max()}] " \
                                                    f"outside [{lo}, {hi}]"
            if isinstance(t.fmt, Acc):
                half = 1 << (t.fmt.bits - 1)
                assert -half <= v.min() and v.max() < half, f"{name} overflows {t.fmt}"
            checked += 1
    return checked


@pytest.mark.parametrize("path", MODELS, ids=[p.stem for p in MODELS])
def test_ranges_hold_on_shared_models(path):
    graph = lowered(str(path))
    assert _check(graph, _random_feeds(graph, np.random.default_rng(0))) > 0


@pytest.mark.parametrize("name", ["bipolar_mlp", "multithreshold_conv", "quant_conv",
                                  "trunc_round_mlp", "floatquant_E5M2_mlp",
                                  "floatquant_E4M3_conv"])
def test_ranges_hold_on_built_qonnx_graphs(name):
    model, _ = GRAPHS[name](np.random.default_rng(1))
    graph = lowered(model)
    assert _check(graph, _random_feeds(graph, np.random.default_rng(2))) > 0


def test_bipolar_activations_range_both_signs():
    """A bipolar threshold counts in steps of 2 (-1, +1): the next layer's accumulator must
    cover both signs of every input."""
    model, _ = GRAPHS["bipolar_mlp"](np.random.default_rng(0))
    graph = lowered(model)
    bounds = ranges(graph)
    thresholds = [n for n in graph.nodes if n.op == "threshold" and n.attrs.get("step") == 2]
    assert thresholds
    for node in thresholds:
        assert bounds[node.outputs[0]] == (-1, 1)
