"""Fuse a requantizer with the activation after it.

QDQ exporters write Conv -> Q -> DQ -> Relu -> Q: a requant, then a second quantizer with the
same scale and zero point whose only effect is the clamp. The second one is exact to fold into
the first (clamp bounds intersect), which saves a hardware stage.
"""

from __future__ import annotations

import numpy as np
from qfab.compiler.ir import Graph, Node, clipped_range


def _is_identity_requant(n: Node, g: Graph) -> bool:
    a = n.attrs
    src, dst = g.tensors[n.inputs[0]], g.tensors[n.outputs[0]]
    return (n.op == "requant" and src.fmt == dst.fmt and np.all(np.asarray(a["scale"]) == 1)
            and np.all(np.asarray(a["offset"]) == 0)
            and np.all(np.asarray(a["in_zero_point"]) == a["zero_point"]))


def fuse_activations(graph: Graph) -> Graph:
    """Fold clamps and identity requants into the requant that feeds them."""
    changed = True
    while changed:
        changed = False
        for node in graph.nodes:
            if not (node.op == "clamp" or _is_identity_requant(node, graph)):
                continue
            prev = graph.producer(node.inputs[0])
            if (prev is None or prev.op != "requant" or node.inputs[0] in graph.outputs
                    or len(graph.consumers(node.inputs[0])) != 1):
                continue
            prev.attrs["lo"], prev.attrs["hi"] = clipped_range(
                prev.attrs["lo"], prev.attrs["hi"], node.attrs["lo"], node.attrs["hi"])
            # prev now writes the fused node's output directly.
            del graph.tensors[node.inputs[0]]
            prev.outputs = list(node.outputs)
            graph.nodes.remove(node)
            changed = True
            break
    return graph
