"""DepthToSpace (pixel shuffle): a reordering of codes, which costs no hardware.

Super-resolution networks (FINN's ESPCN) end in a conv whose channels are the pixels of an
upscaled image, then DepthToSpace, then the activation and its quantizer. The quantizer needs
the conv's accumulator, so the shuffle first moves after the elementwise ops that follow it
(an ONNX rewrite run before import); on codes it becomes reshape, transpose, reshape, which
the backend carries out by the order in which the stream's elements are read.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper
from qfab.compiler.frontend.importer import handles
from qfab.compiler.frontend.values import Codes, Real
from qfab.compiler.ir import Acc

# Elementwise ops a shuffle moves through when their other inputs are one number each.
_ELEMENTWISE = {"Relu", "Clip", "Quant", "IntQuant", "BipolarQuant", "Trunc", "FloatQuant",
                "QuantizeLinear", "DequantizeLinear", "Identity", "Cast"}


def sink_depth_to_space(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` with each DepthToSpace moved after the elementwise ops with per-tensor
    parameters that read it alone; ``model`` itself when nothing moves."""
    graph = model.graph
    if not any(n.op_type == "DepthToSpace" for n in graph.node):
        return model
    scalars = {i.name for i in graph.initializer if numpy_helper.to_array(i).size == 1}
    scalars |= {n.output[0] for n in graph.node if n.op_type == "Constant" and all(
        a.name != "value" or numpy_helper.to_array(a.t).size == 1 for a in n.attribute)}
    outputs = {o.name for o in graph.output}
    nodes = list(graph.node)
    moved = False
    for shuffle in [n for n in nodes if n.op_type == "DepthToSpace"]:
        while True:
            readers = [n for n in nodes if shuffle.output[0] in n.input]
            nxt = readers[0] if len(readers) == 1 else None
            if (nxt is None or shuffle.output[0] in outputs or nxt.op_type not in _ELEMENTWISE
                    or nxt.input[0] != shuffle.output[0]
                    or any(i and i not in scalars for i in nxt.input[1:])):
                break
            # x -> shuffle -> t -> nxt -> y   becomes   x -> nxt -> t -> shuffle -> y
            x, t, y = shuffle.input[0], shuffle.output[0], nxt.output[0]
            nxt.input[0], nxt.output[0] = x, t
            shuffle.input[0], shuffle.output[0] = t, y
            i, j = nodes.index(shuffle), nodes.index(nxt)
            nodes[i], nodes[j] = nodes[j], nodes[i]
            moved = True
    if not moved:
        return model
    out = onnx.ModelProto()
    out.CopyFrom(model)
    del out.graph.node[:]
    out.graph.node.extend(nodes)
    return out


@handles("DepthToSpace")
def DepthToSpace(imp, node):
    v = imp.value(node, 0)
    name = imp.materialize(v, node.name) if isinstance(v, Real) else getattr(v, "tensor", None)
    t = imp.tensor(name) if isinstance(v, Real | Codes) else None
    if t is None or isinstance(t.fmt, Acc) or np.size(t.scale) > 1:
        raise imp.error(node, f"input {node.input[0]!r} must be quantized with one scale (a "
                              "per-tensor quantizer between the conv and the shuffle)")
    b, mode = imp.attr(node, "blocksize"), imp.attr(node, "mode", "DCR")
    if (len(t.shape) != 4 or not isinstance(b, int) or b < 1 or t.shape[1] % (b * b)
            or mode not in ("DCR", "CRD")):
        raise imp.error(node, "needs a 4-D input, a blocksize whose square divides its channels "
                              f"and mode DCR or CRD (got shape {list(t.shape)}, blocksize "
                              f"{b!r}, mode {mode!r})")
    n, c, h, w = t.shape
    if mode == "DCR":  # channel = (row offset, column offset, output channel)
        split, perm = (n, b, b, c // (b * b), h, w), (0, 3, 4, 1, 5, 2)
    else:  # channel = (output channel, row offset, column offset)
        split, perm = (n, c // (b * b), b, b, h, w), (0, 1, 4, 2, 5, 3)
    image = (n, c // (b * b), h * b, w * b)
    steps = [("reshape", split, {"shape": split}),
             ("transpose", tuple(split[p] for p in perm), {"perm": perm}),
             ("reshape", image, {"shape": image})]
    for op, shape, attrs in steps:
        out = imp.new_tensor(node.name or node.output[0], shape, t.fmt, scale=t.scale,
                             zero_point=t.zero_point, axis=1)
        imp.graph.add_node(op, out.name, [name], [out], **attrs)
        name = out.name
    return [type(v)(name)]
