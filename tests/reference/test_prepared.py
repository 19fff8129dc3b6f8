"""qfab.reference prepares a graph's weights once and runs a graph changed since as changed."""

from pathlib import Path

import numpy as np
from qfab.sim.reference import Reference, prepared

import qfab
from qfab.api import lower_model

DIGITS = Path(__file__).resolve().parents[2] / "examples" / "digits" / "digits_int8.onnx"


def test_a_graph_is_prepared_once_and_again_when_changed():
    graph = lower_model(DIGITS)
    x = np.load(DIGITS.parent / "sample_images.npy")[:2]
    first = qfab.reference(graph, x)
    assert prepared(graph) is prepared(graph)
    before = prepared(graph)
    dense = next(n for n in graph.nodes if n.op in ("dense", "conv"))
    dense.attrs["weight"] = -dense.attrs["weight"]  # a new array: the graph changed
    assert prepared(graph) is not before
    changed = qfab.reference(graph, x)
    (name,) = graph.outputs
    expected = Reference(graph).run({graph.inputs[0]: qfab.api._input_codes(
        graph, graph.inputs[0], x)})[name]
    assert np.array_equal(changed[name], expected)
    assert not np.array_equal(changed[name], first[name])
