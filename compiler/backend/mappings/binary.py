"""Binary layers: a dense layer or convolution whose weights and activations are all -1/+1
runs on the XNOR-popcount unit (:mod:`qfab.hw.xnor_mvu`), as FINN maps binarized networks.

The activations stay the codes -1/+1 of the IR's bipolar thresholds (signed, in the
tensor's format on the stream; the unit reads their sign bit); the weights are stored as one
bit each.
"""

from __future__ import annotations

import numpy as np
from qfab.compiler.ir import Graph, Node
from qfab.numerics import IntFormat

# Ops that pass -1/+1 codes through unchanged in value set.
_CODE_PRESERVING = ("maxpool", "reshape", "transpose")


def bipolar_codes(graph: Graph, name: str) -> bool:
    """Whether every code of tensor ``name`` is -1 or +1: a bipolar threshold's or a
    bipolar input quantizer's output, maybe max-pooled or reshaped since."""
    node = graph.producer(name)
    while node is not None and node.op in _CODE_PRESERVING:
        node = graph.producer(node.inputs[0])
    if node is None:
        return False
    a = node.attrs
    if node.op == "threshold":
        return (a.get("step", 1) == 2 and int(a["base"]) == -1
                and np.asarray(a["thresholds"]).shape[-1] == 1)
    return node.op == "quantize" and bool(a.get("bipolar"))


def xnor_operands(graph: Graph, node: Node, weights: np.ndarray, padded: bool):
    """(multiplier, stored weight bits) of the XNOR unit for a MAC layer, or None when its
    weights or activations are not all -1/+1 (or padding would feed the unit zeros)."""
    from qfab.hw.multipliers import BipolarDecoder, Multiplier
    from qfab.hw.xnor_mvu import BipolarCodeDecoder

    w = np.asarray(weights)
    if padded or node.attrs["x_zero_point"] or not np.all(np.abs(w) == 1):
        return None
    fmt = graph.tensors[node.inputs[0]].fmt
    if not (isinstance(fmt, IntFormat) and fmt.signed) or not bipolar_codes(graph,
                                                                           node.inputs[0]):
        return None
    return (Multiplier(BipolarCodeDecoder(fmt.bits), BipolarDecoder()),
            (w > 0).astype(np.int64))
