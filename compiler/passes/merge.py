"""Merge duplicate nodes: the same op on the same inputs with the same constants, giving
tensors of the same format, computes the same codes, so one is kept and its readers share it.

onnxruntime's quantizer writes a QuantizeLinear per consumer of a tensor when asked to
(``extra_options={"DedicatedQDQPair": True}``): a residual block's input then comes out of
two identical requantizers, which the backend would take for a branch it cannot map.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from qfab.compiler.ir import Graph, Node, Tensor


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.shape(a) == np.shape(b) and bool(np.all(np.asarray(a) == np.asarray(b)))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _same_tensor(a: Tensor, b: Tensor) -> bool:
    return (a.shape, a.fmt, a.axis) == (b.shape, b.fmt, b.axis) and all(
        _equal(np.asarray(getattr(a, f)), np.asarray(getattr(b, f)))
        for f in ("scale", "zero_point", "bias"))


def _duplicate(g: Graph, kept: Node, node: Node) -> bool:
    return (kept.op == node.op and kept.inputs == node.inputs
            and len(kept.outputs) == len(node.outputs) and _equal(kept.attrs, node.attrs)
            and all(_same_tensor(g.tensors[a], g.tensors[b])
                    for a, b in zip(kept.outputs, node.outputs, strict=True)))


def merge_duplicates(graph: Graph) -> Graph:
    """``graph`` with each node that duplicates an earlier one dropped (unless it makes a
    graph output) and its readers reading the earlier one's outputs."""
    replaced: dict[str, str] = {}
    by_inputs: dict[tuple, list[Node]] = {}
    nodes = []
    for node in graph.nodes:
        node.inputs = [replaced.get(i, i) for i in node.inputs]
        key = (node.op, tuple(node.inputs))
        same = next((k for k in by_inputs.get(key, []) if _duplicate(graph, k, node)), None)
        if same is not None and not set(node.outputs) & set(graph.outputs):
            for old, new in zip(node.outputs, same.outputs, strict=True):
                replaced[old] = new
                del graph.tensors[old]
            continue
        by_inputs.setdefault(key, []).append(node)
        nodes.append(node)
    graph.nodes = nodes
    return graph
