"""Spatial ops Keras exports write as standard ONNX ops: GlobalAveragePooling (tf2onnx:
ReduceMean over the spatial axes) becomes the global sum, its 1/count a scale; UpSampling
(Resize or Upsample, nearest) the repeat of each pixel."""

from __future__ import annotations

import numpy as np
from qfab.compiler.frontend.conv1d import reshape
from qfab.compiler.frontend.float_ops import average_pool
from qfab.compiler.frontend.importer import handles
from qfab.compiler.frontend.values import Codes, Const, Real


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


@handles("Resize", "Upsample")
def Resize(imp, node):
    """Nearest-neighbour resizing by integer factors along H and W (Keras's UpSampling2D,
    UpSampling1D on [N, C, L]): which input pixel each output pixel takes is asked of ONNX's
    own Resize on a tensor of indices, so every coordinate mode that repeats pixels counts."""
    v = imp.value(node, 0)
    r = v if isinstance(v, Codes) else imp.real(node, 0)
    t = imp.tensor(r.tensor)
    if imp.attr(node, "mode", "nearest") != "nearest":
        raise imp.error(node, f"mode {imp.attr(node, 'mode')!r}: qfab resizes by repeating "
                              "pixels (mode 'nearest')")
    if len(t.shape) not in (3, 4):
        raise imp.error(node, f"resizing a {len(t.shape)}-D tensor; qfab resizes [N, C, H, W] "
                              "or [N, C, L]")
    index = np.arange(int(np.prod(t.shape)), dtype=np.float32).reshape(t.shape)
    feeds = {name: imp.values[name].value for name in node.input[1:] if name}
    missing = [n for n in feeds if not isinstance(imp.values[n], Const)]
    if missing:
        raise imp.error(node, f"{missing[0]!r} must be a constant")
    feeds[node.input[0]] = index
    picked = np.asarray(imp._evaluate(node, feeds)[0])
    factors = [o // i if o % i == 0 else 0 for o, i in zip(picked.shape, t.shape, strict=True)]
    if factors[:2] != [1, 1] or 0 in factors:
        raise imp.error(node, f"resizes {t.shape} to {picked.shape}; qfab upsamples H and W "
                              "by whole factors")
    scale = tuple(factors[2:]) if len(t.shape) == 4 else (1, factors[2])
    repeated = index
    for axis, f in enumerate(factors[2:], start=2):
        repeated = np.repeat(repeated, f, axis=axis)
    if not np.array_equal(picked, repeated):
        raise imp.error(node, "this coordinate transformation does not repeat each pixel; "
                              "qfab upsamples as coordinate_transformation_mode 'asymmetric' "
                              "with nearest_mode 'floor' does")
    name = r.tensor
    lifted = len(t.shape) == 3
    if lifted:
        name = reshape(imp, name, (t.shape[0], t.shape[1], 1, t.shape[2]), node.name)
    shape = (t.shape[0], t.shape[1], imp.tensor(name).shape[2] * scale[0],
             imp.tensor(name).shape[3] * scale[1])
    out = imp.new_tensor(node.name or node.output[0], shape, t.fmt, scale=t.scale,
                         zero_point=t.zero_point, axis=1)
    imp.graph.add_node("upsample", node.name or node.output[0], [name], [out], scale=scale)
    name = out.name
    if lifted:
        name = reshape(imp, name, (shape[0], shape[1], shape[3]), node.name)
    return [Codes(name) if isinstance(v, Codes) else Real(name, r.lo, r.hi)]
