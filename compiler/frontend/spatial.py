"""Spatial reductions Keras exports write as standard ONNX ops: GlobalAveragePooling (tf2onnx:
ReduceMean over the spatial axes) becomes the global sum, its 1/count a scale."""

from __future__ import annotations

from qfab.compiler.frontend.conv1d import reshape
from qfab.compiler.frontend.float_ops import average_pool
from qfab.compiler.frontend.importer import handles
from qfab.compiler.frontend.values import Real


@handles("ReduceMean")
def ReduceMean(imp, node):
    r = imp.real(node, 0)
    shape = imp.tensor(r.tensor).shape
    axes = imp.const(node, 1, "axes") if len(node.input) > 1 and node.input[1] else \
        imp.attr(node, "axes")
    if axes is None or not len(axes):
        raise imp.error(node, "a mean over every axis (the batch too) is not supported")
    axes = sorted(int(a) % len(shape) for a in axes)
    spatial = list(range(2, len(shape)))
    if len(shape) not in (3, 4) or axes != spatial:
        raise imp.error(node, f"a mean over axes {axes} of a {len(shape)}-D tensor; qfab "
                              f"averages over the spatial axes {spatial} of [N, C, ...] "
                              "(GlobalAveragePool)")
    out = average_pool(imp, node, r, whole=True)
    if imp.attr(node, "keepdims", 1):
        return [out]
    return [Real(reshape(imp, out.tensor, shape[:2], node.name))]
