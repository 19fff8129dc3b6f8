"""A per-layer summary of a lowered IR graph: what ``qfab inspect`` prints.

An analysis in FINN's sense: it reads the graph and changes nothing. Every value is plain
JSON (ints, strings, lists), so the CLI can dump it as is.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from qfab.compiler.ir import Acc, Graph, Node, Tensor


def format_name(t: Tensor) -> str:
    """``int8``, ``uint4``, ``E4M3FN``, ``acc17``, ``Q3.4`` or ``float32``."""
    if t.fmt is None:
        return "float32"
    return str(t.fmt)


def _tensor(t: Tensor) -> dict[str, Any]:
    return {"name": t.name, "shape": list(t.shape), "format": format_name(t)}


def macs(graph: Graph, node: Node) -> int:
    """Multiply-accumulates for one sample (batch dimension excluded)."""
    out = graph.tensors[node.outputs[0]]
    per_out = int(np.prod(out.shape[1:]))
    w = node.attrs.get("weight")
    if node.op in ("conv", "dense") and w is not None:
        return per_out * int(np.prod(w.shape[1:]))
    return 0


def _ints(a) -> list[int] | int:
    a = np.asarray(a)
    return int(a) if a.ndim == 0 else [int(v) for v in a.reshape(-1)]


def _requant(node: Node) -> dict[str, Any] | None:
    a = node.attrs
    if node.op == "requant" and "mult" in a:
        return {"mult": _ints(a["mult"]), "shift": _ints(a["shift"]),
                "zero_point": int(a["zero_point"]), "rounding": a["rounding"],
                "rel_error": float(a.get("rel_error", 0.0))}
    if node.op == "add" and "mult_a" in a:
        return {"mult_a": int(a["mult_a"]), "mult_b": int(a["mult_b"]),
                "shift": int(a["shift"]), "zero_point": int(a["zero_point"])}
    return None


def layer(graph: Graph, node: Node) -> dict[str, Any]:
    out = graph.tensors[node.outputs[0]]
    entry: dict[str, Any] = {
        "name": node.name,
        "op": node.op,
        "inputs": [_tensor(graph.tensors[i]) for i in node.inputs],
        "outputs": [_tensor(graph.tensors[o]) for o in node.outputs],
        "macs": macs(graph, node),
        "acc_bits": out.fmt.bits if isinstance(out.fmt, Acc) else None,
        "requant": _requant(node),
    }
    if "weight" in node.attrs:
        entry["weight_shape"] = list(node.attrs["weight"].shape)
    if node.op == "threshold":
        entry["thresholds"] = list(node.attrs["thresholds"].shape)
    if node.op == "dynamic_quantize":
        entry["dynamic"] = "scale, zero point from the input's min/max at run time"
    elif node.op in ("quantize", "dequantize"):
        t = graph.tensors[node.outputs[0] if node.op == "quantize" else node.inputs[0]]
        entry["scale"] = _floats(t.scale)
        entry["zero_point"] = _ints(t.zero_point)
    return entry


def _floats(a) -> list[float] | float:
    # A layer of one output channel has a per-channel scale of shape (1,): one number.
    a = np.asarray(a, np.float64).reshape(-1)
    return float(a[0]) if a.size == 1 else [float(v) for v in a]


def summarize(graph: Graph) -> dict[str, Any]:
    """The graph's inputs, outputs and layers (one entry per IR node), and total MACs."""
    layers = [layer(graph, n) for n in graph.nodes]
    return {
        "name": graph.name,
        "inputs": [_tensor(graph.tensors[n]) for n in graph.inputs],
        "outputs": [_tensor(graph.tensors[n]) for n in graph.outputs],
        "layers": layers,
        "total_macs": sum(entry["macs"] for entry in layers),
    }
