"""One-dimensional convolution and pooling ([N, C, L], Keras's Conv1D and MaxPooling1D) as
the two-dimensional ops on an image of height 1.

The IR keeps the model's 3-D tensors: a reshape to [N, C, 1, L] before the 2-D op and one
back after it. Both are free in hardware: a [N, C, L] tensor streams position by position,
channels fastest, exactly as [N, C, 1, L] does (plan.stream_order).
"""

from __future__ import annotations

import onnx
from onnx import helper
from qfab.compiler.frontend.values import Const, Real

# 1-D attribute -> its 2-D form on an image of height 1.
_LIFT = {"kernel_shape": lambda v: [1, *v], "strides": lambda v: [1, *v],
         "dilations": lambda v: [1, *v], "pads": lambda v: [0, v[0], 0, v[1]]}


def node_2d(node: onnx.NodeProto) -> onnx.NodeProto:
    """``node`` with its 1-D window attributes written for height 1."""
    out = onnx.NodeProto()
    out.CopyFrom(node)
    for a in out.attribute:
        if a.name in _LIFT and len(a.ints) == (2 if a.name == "pads" else 1):
            values = _LIFT[a.name](list(a.ints))
            a.CopyFrom(helper.make_attribute(a.name, values))
    return out


def reshape(imp, name: str, shape: tuple[int, ...], node_name: str) -> str:
    """An IR reshape of ``name`` keeping its quantization (an accumulator's per-channel
    scale stays on axis 1)."""
    t = imp.tensor(name)
    out = imp.new_tensor(name + ("_2d" if len(shape) == 4 else "_1d"), shape, t.fmt,
                         scale=t.scale, zero_point=t.zero_point, bias=t.bias, axis=t.axis)
    imp.graph.add_node("reshape", f"{node_name}_to_{len(shape)}d", [name], [out],
                       shape=tuple(shape))
    return out.name


def lift(imp, node, r: Real) -> Real:
    """[N, C, L] -> [N, C, 1, L], the pending clamp kept."""
    n, c, length = imp.tensor(r.tensor).shape
    return Real(reshape(imp, r.tensor, (n, c, 1, length), node.name), r.lo, r.hi)


def lower(imp, node, r: Real) -> Real:
    """[N, C, 1, L] -> [N, C, L]."""
    n, c, _, length = imp.tensor(r.tensor).shape
    return Real(reshape(imp, r.tensor, (n, c, length), node.name), r.lo, r.hi)


def lift_weight(w: Const) -> Const:
    """[M, C/g, k] -> [M, C/g, 1, k]."""
    return Const(w.value[:, :, None, :], codes=w.codes[:, :, None, :], fmt=w.fmt,
                 scale=w.scale, zero_point=w.zero_point, axis=w.axis)
