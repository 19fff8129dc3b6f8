"""Layout ops between quantized tensors: Flatten, Reshape, Squeeze and Unsqueeze, Transpose,
Identity and Concat. Each moves codes without arithmetic (a quantized input keeps its format,
scale and zero point); on a float graph input, a reshape or transpose becomes the host's
pre-processing before its quantizer.
"""

from __future__ import annotations

import numpy as np
from qfab.compiler.frontend.importer import handles
from qfab.compiler.frontend.values import Cat, Codes, FloatIn, Real, Sum
from qfab.compiler.ir import Acc


def _layout(imp, node, op: str, out_shape, **attrs):
    v = imp.value(node, 0)
    if isinstance(v, Sum | Cat | FloatIn) or v is None:
        raise imp.error(node, f"input {node.input[0]!r} is not quantized")
    name = imp.materialize(v, node.name) if isinstance(v, Real) else v.tensor
    t = imp.tensor(name)
    if out_shape[0] != t.shape[0]:
        raise imp.error(node, f"changes the batch dimension ({t.shape} -> {tuple(out_shape)})")
    if np.size(t.scale) > 1 or isinstance(t.fmt, Acc):
        raise imp.error(node, "needs a per-tensor quantized input (a quantizer before this "
                              "layout op, or a transpose that cancels with another through "
                              "elementwise ops)")
    out = imp.new_tensor(node.name or node.output[0], out_shape, t.fmt, scale=t.scale,
                         zero_point=t.zero_point, axis=1)
    imp.graph.add_node(op, node.name or node.output[0], [name], [out], **attrs)
    return [type(v)(out.name)]


def _float_input_layout(imp, node, v: FloatIn, op: str, shape, arg) -> list:
    """A layout op on a float graph input: float pre-processing before its quantizer (the
    host computes it, as it quantizes the input)."""
    if shape[0] != v.shape[0]:
        raise imp.error(node, f"changes the batch dimension ({v.shape} -> {tuple(shape)})")
    return [FloatIn(v.tensor, tuple(shape), v.pre + [(op, np.asarray(arg))])]


@handles("Flatten")
def Flatten(imp, node):
    v = imp.value(node, 0)
    axis = int(imp.attr(node, "axis", 1))
    old = v.shape if isinstance(v, FloatIn) else imp.tensor(v.tensor).shape
    shape = (int(np.prod(old[:axis])), int(np.prod(old[axis:])))
    if isinstance(v, FloatIn):
        return _float_input_layout(imp, node, v, "Reshape", shape, shape)
    if isinstance(v, Real) and _unit_axes_only(old, shape):  # a global pool's [N, C, 1, 1]
        from qfab.compiler.frontend.conv1d import reshape

        return [Real(reshape(imp, v.tensor, shape, node.name), v.lo, v.hi)]
    return _layout(imp, node, "reshape", shape, shape=shape)


@handles("Reshape", "Squeeze", "Unsqueeze")
def Reshape(imp, node):
    v = imp.value(node, 0)
    if isinstance(v, Sum | Cat):
        raise imp.error(node, f"input {node.input[0]!r} is not quantized")
    old = v.shape if isinstance(v, FloatIn) else imp.tensor(v.tensor).shape
    # A zero-stride probe: shape arithmetic without allocating the tensor.
    probe = np.broadcast_to(np.empty((), np.int8), old)
    try:
        if node.op_type == "Reshape":
            target = [int(d) for d in imp.const(node, 1, "shape")]
            target = [old[i] if d == 0 else d for i, d in enumerate(target)]
            shape = probe.reshape(target).shape
        else:
            axes = imp.const(node, 1, "axes") if len(node.input) > 1 else imp.attr(node, "axes")
            shape = (np.squeeze(probe, tuple(axes)) if node.op_type == "Squeeze"
                     else np.expand_dims(probe, tuple(axes))).shape
    except (ValueError, TypeError, IndexError) as e:  # numpy's word for a shape that does not fit
        raise imp.error(node, f"cannot change shape {tuple(old)} this way ({e})") from None
    if isinstance(v, FloatIn):
        return _float_input_layout(imp, node, v, "Reshape", shape, shape)
    if isinstance(v, Real) and _unit_axes_only(old, shape):
        # Unit axes after the channels (tf2onnx's Conv1D squeezes the conv's height): the
        # accumulator or per-channel codes keep their channel axis, so no requantizer first.
        from qfab.compiler.frontend.conv1d import reshape

        return [Real(reshape(imp, v.tensor, tuple(shape), node.name), v.lo, v.hi)]
    return _layout(imp, node, "reshape", tuple(shape), shape=tuple(shape))


def _unit_axes_only(old, new) -> bool:
    """Whether ``old`` -> ``new`` keeps batch and channels and only drops or adds unit
    axes after them."""
    return len(old) > 2 and len(new) >= 2 and tuple(old[:2]) == tuple(new[:2]) and \
        [d for d in old[2:] if d != 1] == [d for d in new[2:] if d != 1]


@handles("Transpose")
def Transpose(imp, node):
    v = imp.value(node, 0)
    old = v.shape if isinstance(v, FloatIn) else imp.tensor(v.tensor).shape
    perm = tuple(imp.attr(node, "perm", list(range(len(old)))[::-1]))
    if sorted(perm) != list(range(len(old))):  # (the importer knows shapes onnx cannot infer)
        raise imp.error(node, f"perm {list(perm)} is not a permutation of the axes of its "
                              f"{len(old)}-D input {tuple(old)}")
    shape = tuple(old[p] for p in perm)
    if isinstance(v, FloatIn):  # a channels-last model's NHWC -> NCHW at the input
        return _float_input_layout(imp, node, v, "Transpose", shape, perm)
    return _layout(imp, node, "transpose", shape, perm=perm)


@handles("Identity")
def Identity(imp, node):
    return [imp.value(node, 0)]


@handles("Concat")
def Concat(imp, node):
    axis = int(imp.attr(node, "axis", 1))
    vals = [imp.value(node, i) for i in range(len(node.input))]
    if not all(isinstance(v, Real | Codes) for v in vals):
        raise imp.error(node, "inputs must be quantized")
    names = [imp.materialize(v, node.name) if isinstance(v, Real) else v.tensor for v in vals]
    ts = [imp.tensor(n) for n in names]
    axis = axis + len(ts[0].shape) if axis < 0 else axis
    if axis == 0:
        raise imp.error(node, "concatenating along the batch dimension is not supported")
    if any(not np.array_equal(t.scale, ts[0].scale) or t.fmt != ts[0].fmt
           or not np.array_equal(t.zero_point, ts[0].zero_point) for t in ts):
        if not all(isinstance(v, Real) for v in vals):
            raise imp.error(node, "inputs with different quantization must be dequantized")
        return [Cat([Real(n) for n in names], axis)]
    shape = list(ts[0].shape)
    shape[axis] = sum(t.shape[axis] for t in ts)
    out = imp.new_tensor(node.name or node.output[0], shape, ts[0].fmt, scale=ts[0].scale,
                         zero_point=ts[0].zero_point, axis=1)
    imp.graph.add_node("concat", node.name or node.output[0], names, [out], axis=axis)
    return [type(vals[0])(out.name)]
