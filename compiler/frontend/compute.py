"""Conv and dense layers on quantized operands: integer weights, exact accumulators."""

from __future__ import annotations

import numpy as np
from qfab.compiler.frontend.values import Const, Real
from qfab.compiler.ir import Acc, Tensor
from qfab.numerics import IntFormat, MinifloatFormat

from qfab.errors import QfabError


def quantized_weight(imp, node, i: int, what: str = "weight") -> Const:
    """A constant input that carries integer codes (DequantizeLinear of an initializer, a QONNX
    Quant of weights, or already-integer data)."""
    v = imp.value(node, i)
    if not isinstance(v, Const):
        raise imp.error(node, f"{what} {node.input[i]!r} must be a constant (initializer)")
    if v.codes is None:
        if np.issubdtype(v.value.dtype, np.integer):
            return Const(v.value, codes=v.value.astype(np.int64),
                         fmt=IntFormat(bits=32, signed=True), scale=np.float64(1),
                         zero_point=np.int64(0))
        raise imp.error(node, f"{what} {node.input[i]!r} is float; qfab needs quantized "
                              "weights (DequantizeLinear of integers, or a Quant node)")
    return v


def _channel_param(p, channels: int, axis: int, ndim: int, what: str, node, imp) -> np.ndarray:
    p = np.asarray(p)
    if p.size == 1:
        return np.broadcast_to(p.reshape(()), (channels,))
    if p.ndim == 1 and p.size == channels and axis == 0:
        return p
    raise imp.error(node, f"{what} must be per-tensor or per output channel (got shape "
                          f"{p.shape}); blocked weight quantization is not supported in compute")


def input_operand(imp, node, x: Real) -> tuple[Tensor, str]:
    name = imp.materialize(x, node.name)
    t = imp.tensor(name)
    if isinstance(t.fmt, Acc) or np.asarray(t.bias).any():
        raise imp.error(node, f"input {x.tensor!r} must be requantized before this layer")
    if np.size(t.zero_point) > 1:
        raise imp.error(node, f"input {x.tensor!r}: per-channel activation zero points "
                              "are not supported")
    return t, name


def _input_scale(imp, node, xt: Tensor, op: str, group: int, channels: int) -> np.ndarray:
    """The input's scale for each output channel. A scale per input channel (MobileNet's
    activations before each depthwise conv) is read only by a depthwise conv, whose output
    channel sums one input channel: its accumulator scale is that channel's times the
    weight's. Any other layer would sum channels of different scales."""
    s = np.asarray(xt.scale, np.float64).reshape(-1)
    if s.size == 1:
        return np.broadcast_to(s[0], (channels,))
    c = xt.shape[1] if len(xt.shape) > 1 else 0
    if op == "conv" and xt.axis == 1 and s.size == c and group == c:
        return np.repeat(s, channels // c)
    raise imp.error(node, f"input {xt.name!r} has a scale per channel; only a depthwise conv "
                          "(group = channels) can read it, other layers need one scale")


def add_mac_layer(imp, node, op: str, x: Real, w: Const, *, out_axis_channels: int,
                  weight: np.ndarray, bias_codes: np.ndarray | None,
                  bias_float: np.ndarray | None, out_shape, out_axis: int, **attrs) -> Real:
    """Emit a conv/dense node: acc = sum((x - zx) * (w - zw)) + bias, exactly.

    ``weight`` is the codes array already arranged for ``op`` ([M, C/g, kh, kw] or [N, K]),
    output channels first; ``w`` supplies format, scale and zero point."""
    xt, xname = input_operand(imp, node, x)
    channels = out_axis_channels
    wfmt = w.fmt
    w_scale = _channel_param(w.scale, channels, w.axis, w.value.ndim, "weight scale", node, imp)
    w_zp = _channel_param(w.zero_point, channels, w.axis, w.value.ndim, "weight zero point",
                          node, imp).astype(np.int64)
    wv = wfmt.to_fixed(weight) - w_zp.reshape((-1,) + (1,) * (weight.ndim - 1))
    if isinstance(wfmt, MinifloatFormat) and not w_zp.any():
        # The backend can store these weights as codes (8 bits for E4M3) with a decoder.
        attrs["weight_format"] = wfmt
    lsb = xt.fmt.lsb_exponent + wfmt.lsb_exponent
    x_scale = _input_scale(imp, node, xt, op, attrs.get("group", 1), channels)
    acc_scale = x_scale * w_scale.astype(np.float64)
    bias = None
    if bias_codes is not None:
        bias = np.asarray(bias_codes, np.int64).reshape(-1)
        if lsb:
            bias = bias * (1 << -lsb)
        bias = np.broadcast_to(bias, (channels,)).copy()
    out = imp.new_tensor(node.name or node.output[0], out_shape, Acc(lsb_exponent=lsb),
                         scale=acc_scale,
                         bias=(np.zeros(channels) if bias_float is None
                               else np.broadcast_to(bias_float, (channels,)).astype(np.float64)),
                         axis=out_axis)
    if all(isinstance(f, IntFormat) and f.bits == 8 for f in (xt.fmt, wfmt)):
        # onnxruntime runs 8-bit layers as QLinearConv/QLinearMatMul, which form x_scale *
        # w_scale in float32; the "onnx" reference mode repeats that (other widths it runs
        # in float, which the float64 requantization models).
        attrs["acc_scale_f32"] = x_scale.astype(np.float32) * w_scale.astype(np.float32)
    imp.graph.add_node(op, node.name or node.output[0], [xname], [out], weight=wv, bias=bias,
                       x_zero_point=int(xt.zero_point), **attrs)
    return Real(out.name)


def check_window_fits(imp, node, in_hw: tuple[int, int], out_hw: tuple[int, int]) -> None:
    """A window (kernel, dilations, pads, strides) that leaves no output position is an
    error naming the node (valid ONNX attributes can still not fit a small input)."""
    if min(out_hw) < 1:
        raise imp.error(node, f"the window does not fit the {in_hw[0]}x{in_hw[1]} input "
                              f"(the output would be {out_hw[0]}x{out_hw[1]})")


def same_pads(auto_pad: str, size_hw, kernel, strides, dilations) -> list[int]:
    """ONNX's SAME_UPPER/SAME_LOWER padding: [top, left, bottom, right] giving
    ceil(size / stride) outputs, the odd pixel at the end (UPPER) or the start (LOWER)."""
    pads = []
    for size, k, s, d in zip(size_hw, kernel, strides, dilations, strict=True):
        total = max(0, (-(-size // s) - 1) * s + (k - 1) * d + 1 - size)
        small = total // 2
        pads.append((small, total - small) if auto_pad == "SAME_UPPER" else
                    (total - small, small))
    return [pads[0][0], pads[1][0], pads[0][1], pads[1][1]]


def conv_geometry(imp, node, x_shape, w_shape) -> dict:
    if len(x_shape) != 4 or len(w_shape) != 4:
        raise imp.error(node, f"only 1-D and 2-D convolution are supported (input shape "
                              f"{x_shape}, weight shape {w_shape})")
    kh, kw = w_shape[2], w_shape[3]
    strides = list(imp.attr(node, "strides", [1, 1]))
    dil = list(imp.attr(node, "dilations", [1, 1]))
    group = int(imp.attr(node, "group", 1))
    auto_pad = imp.attr(node, "auto_pad", "NOTSET")
    pads = list(imp.attr(node, "pads", [0, 0, 0, 0]))
    h, w = x_shape[2], x_shape[3]
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        pads = same_pads(auto_pad, (h, w), (kh, kw), strides, dil)
    elif auto_pad == "VALID":
        pads = [0, 0, 0, 0]
    oh = (h + pads[0] + pads[2] - dil[0] * (kh - 1) - 1) // strides[0] + 1
    ow = (w + pads[1] + pads[3] - dil[1] * (kw - 1) - 1) // strides[1] + 1
    check_window_fits(imp, node, (h, w), (oh, ow))
    if x_shape[1] != w_shape[1] * group:
        raise imp.error(node, f"input has {x_shape[1]} channels, weights expect "
                              f"{w_shape[1] * group}")
    return dict(strides=tuple(strides), pads=tuple(pads), dilations=tuple(dil), group=group,
                out_shape=(x_shape[0], w_shape[0], oh, ow))


def conv(imp, node, x: Real, w: Const, bias_codes=None, bias_float=None) -> Real:
    xt = imp.tensor(x.tensor)
    if len(xt.shape) == 3 and w.codes.ndim == 3:  # Conv1D: a 2-D conv of height 1
        from qfab.compiler.frontend import conv1d

        out = conv(imp, conv1d.node_2d(node), conv1d.lift(imp, node, x),
                   conv1d.lift_weight(w), bias_codes, bias_float)
        return conv1d.lower(imp, node, out)
    geo = conv_geometry(imp, node, xt.shape, w.codes.shape)
    out_shape = geo.pop("out_shape")
    return add_mac_layer(imp, node, "conv", x, w, out_axis_channels=w.codes.shape[0],
                         weight=w.codes, bias_codes=bias_codes, bias_float=bias_float,
                         out_shape=out_shape, out_axis=1, **geo)


def dense(imp, node, x: Real, w: Const, *, transposed: bool, bias_codes=None,
          bias_float=None) -> Real:
    """x [..., K] times a constant matrix: ``w`` is [K, N], or [N, K] when ``transposed``."""
    xt = imp.tensor(x.tensor)
    codes = w.codes
    if codes.ndim > 2:
        # A batched MatMul: the IR's dense layer has one matrix for every sample, so the
        # stacked matrices must all be the same (broadcasting then gives the same product).
        stack = codes.reshape((-1,) + codes.shape[-2:])
        if codes.ndim > len(xt.shape) or not (stack == stack[:1]).all():
            raise imp.error(node, f"constant B of shape {codes.shape} holds different matrices "
                                  "along its leading dimensions; only one shared weight matrix "
                                  "is supported")
        codes = stack[0]
    codes = codes if transposed else codes.T
    if codes.ndim != 2 or codes.shape[1] != xt.shape[-1]:
        raise imp.error(node, f"weight shape {w.codes.shape} does not fit input {xt.shape}")
    wq = Const(w.value, codes=codes, fmt=w.fmt, scale=w.scale, zero_point=w.zero_point,
               axis=0 if (transposed and w.axis == 0) or (not transposed and w.axis == 1) else 1)
    if np.size(w.scale) > 1 and wq.axis != 0:
        raise QfabError(f"node {node.name!r}: weights quantized along the reduction axis")
    out_shape = xt.shape[:-1] + (codes.shape[0],)
    return add_mac_layer(imp, node, "dense", x, wq, out_axis_channels=codes.shape[0],
                         weight=codes, bias_codes=bias_codes, bias_float=bias_float,
                         out_shape=out_shape, out_axis=len(out_shape) - 1)
