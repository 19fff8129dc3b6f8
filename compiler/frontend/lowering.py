"""The integer lowerings shared by the dialects: requantization and thresholds."""

from __future__ import annotations

import numpy as np
from qfab.compiler.frontend.values import Real
from qfab.compiler.ir import Acc, Tensor, clipped_range
from qfab.compiler.passes.dyadic import MIN_RATIO, check_ratio
from qfab.numerics import IntFormat, MinifloatFormat

from qfab.errors import QfabError

# Quantizers to at most this many levels after a float affine (folded BatchNorm) become
# thresholds: exact against the float definition, and cheap in hardware (FINN's MultiThreshold).
MAX_THRESHOLD_LEVELS = 16


def _flip_negative_channels(imp, src: Tensor, ratio: np.ndarray) -> np.ndarray:
    """Make every per-channel multiplier positive by negating the producer's weight rows."""
    neg = ratio < 0
    if not neg.any():
        return ratio
    producer = imp.graph.producer(src.name)
    if producer is None or producer.op not in ("conv", "dense"):
        raise QfabError(f"tensor {src.name!r}: a negative scale needs a conv/dense producer")
    sign = np.where(neg, -1, 1).astype(np.int64)
    w = producer.attrs["weight"]
    producer.attrs["weight"] = w * sign.reshape((-1,) + (1,) * (w.ndim - 1))
    if producer.attrs.get("bias") is not None:
        producer.attrs["bias"] = producer.attrs["bias"] * sign
    src.scale = np.abs(src.scale)
    src.bias = np.asarray(src.bias, np.float64) * 1.0
    return np.abs(ratio)


# A channel whose every reachable accumulator moves its output by less than this many codes
# is constant: its output is its offset's rounding (see _silence_dead_channels).
DEAD_CHANNEL_REACH = 2.0**-20


def _silence_dead_channels(imp, src: Tensor, ratio: np.ndarray) -> np.ndarray:
    """Give channels with a vanishing multiplier (below MIN_RATIO) zero weights and a live
    channel's multiplier.

    Trained models have them: a pruned channel whose BatchNorm weight is 1e-41, so its
    multiplier is 1e-52 and its output the rounded BatchNorm bias whatever the input. The
    integer form of that multiplier would need a shift of 170, so such a channel gets zero
    weights instead, which gives the same outputs whenever the accumulator's largest
    reachable value times the multiplier stays below DEAD_CHANNEL_REACH codes (checked here
    from the weights and the input's range). When every channel vanishes, or one could still
    move, check_ratio refuses the model: its scales contradict each other."""
    dead = ratio < MIN_RATIO
    producer = imp.graph.producer(src.name)
    if (not dead.any() or dead.all() or producer is None or producer.op not in ("conv", "dense")
            or not isinstance(imp.tensor(producer.inputs[0]).fmt, IntFormat)):
        return ratio
    x = imp.tensor(producer.inputs[0]).fmt
    zp = producer.attrs["x_zero_point"]
    w = producer.attrs["weight"]
    bias = producer.attrs.get("bias")
    reach = np.abs(w).reshape(len(w), -1).sum(axis=1) * max(abs(x.min - zp), abs(x.max - zp))
    if bias is not None:
        reach = reach + np.abs(bias)
    if np.any(ratio[dead] * reach[dead] >= DEAD_CHANNEL_REACH):
        return ratio
    new = np.where(dead, ratio[~dead].max(), ratio)
    producer.attrs["weight"] = np.where(dead.reshape((-1,) + (1,) * (w.ndim - 1)), 0, w)
    if bias is not None:
        producer.attrs["bias"] = np.where(dead, 0, bias)
    src.scale = np.broadcast_to(np.asarray(src.scale, np.float64), ratio.shape) * (new / ratio)
    return new


def quantize_real(imp, node_name: str, r: Real, fmt, scale, zero_point, *,
                  lo: int | None = None, hi: int | None = None,
                  rounding: str = "half_even") -> str:
    """Lower "quantize the real value ``r``" to a requant (or threshold) node; returns the
    output codes tensor."""
    src = imp.tensor(r.tensor)
    scale = np.asarray(scale, np.float64)
    zp = np.asarray(zero_point, np.int64)
    channels = src.shape[src.axis] if len(src.shape) > 1 else 1
    if zp.size > 1 or scale.size not in (1, channels) or (scale.size > 1 and (
            isinstance(fmt, MinifloatFormat) or r.lo not in (0, -np.inf) or r.hi < np.inf)):
        raise QfabError(f"node {node_name!r}: per-channel quantization of activations is "
                        "supported only for integers along the channel axis, after nothing "
                        "but a ReLU")
    # One scale, or one per channel (read then only by depthwise convs: compute.py).
    scale = float(scale.reshape(())) if scale.size == 1 else scale.reshape(-1)
    zp = int(zp.reshape(()))
    relu = False
    if isinstance(fmt, MinifloatFormat):
        lo = hi = None
        # A pending ReLU rides along (attrs relu); other clamps have no minifloat requant.
        if r.hi < np.inf or r.lo not in (0, -np.inf):
            raise QfabError(f"node {node_name!r}: a clamp to [{r.lo}, {r.hi}] before a "
                            f"{fmt} quantizer is not supported (only ReLU)")
        relu = r.lo == 0
    else:
        lo = fmt.min if lo is None else lo
        hi = fmt.max if hi is None else hi
        if r.lo > -np.inf:
            lo = max(lo, int(np.round(r.lo / np.max(scale))) + zp)  # r.lo is 0 if per channel
        if r.hi < np.inf:
            hi = min(hi, int(np.round(r.hi / scale)) + zp)
    ratio = np.broadcast_to(src.unit / scale, (channels,)).copy()
    if isinstance(src.fmt, Acc):
        ratio = _flip_negative_channels(imp, src, ratio)
        ratio = _silence_dead_channels(imp, src, ratio)
    elif (ratio <= 0).any():
        raise QfabError(f"node {node_name!r}: non-positive scale")
    check_ratio(node_name, ratio)
    offset = np.broadcast_to(np.asarray(src.bias, np.float64) / scale, (channels,)).copy()
    if not np.all(np.isfinite(offset)) or np.any(np.abs(offset) > 2.0**52):
        raise QfabError(f"node {node_name!r}: the offset (bias / output scale) is not finite or "
                        "too large for exact integer arithmetic")
    out = imp.new_tensor(node_name + "_q", src.shape, fmt, scale=np.asarray(scale, np.float64),
                         zero_point=np.int64(zp), axis=src.axis)
    in_zp = np.asarray(src.zero_point, np.int64)
    per_channel = ratio.size > 1 and not np.all(ratio == ratio[0])
    if (isinstance(fmt, IntFormat) and np.any(offset != 0) and hi - lo < MAX_THRESHOLD_LEVELS
            and rounding == "half_even"):
        thresholds = thresholds_for(ratio, offset, zp, lo, hi)
        imp.graph.add_node("threshold", node_name, [src.name], [out], thresholds=thresholds,
                           base=lo, in_zero_point=in_zp)
        return out.name
    node = imp.graph.add_node(
        "requant", node_name, [src.name], [out],
        in_zero_point=in_zp,
        scale=ratio if per_channel else ratio[:1].reshape(()),
        offset=offset if np.any(offset != offset[0]) else offset[:1].reshape(()),
        zero_point=zp, lo=lo, hi=hi, rounding=rounding)
    if relu:
        node.attrs["relu"] = True
    f32 = _float32_ratio(imp, src, scale, channels)
    if f32 is not None and isinstance(fmt, IntFormat) and not np.any(offset):
        node.attrs["scale_f32"] = f32 if per_channel else f32[:1].reshape(())
    return out.name


def _float32_ratio(imp, src: Tensor, scale: float, channels: int) -> np.ndarray | None:
    """The requant multiplier as onnxruntime computes it for a conv/matmul accumulator,
    float32(float32(x_scale * w_scale) / y_scale), when ``src`` is such an accumulator whose
    scale nothing (BatchNorm, Mul) has changed since."""
    producer = imp.graph.producer(src.name)
    if producer is None or "acc_scale_f32" not in producer.attrs or src.fmt.lsb_exponent:
        return None
    acc = np.broadcast_to(producer.attrs["acc_scale_f32"], (channels,))
    if not np.allclose(acc, np.broadcast_to(src.scale, (channels,)), rtol=1e-6, atol=0):
        return None
    return (acc / np.float32(scale)).astype(np.float32)


def narrow_requant(graph, node, lo: int, hi: int) -> None:
    """Tighten a requant's output range to [lo, hi] (a later Clip on its codes); when few
    levels remain, make it the threshold node ``quantize_real`` would have chosen."""
    a = node.attrs
    a["lo"], a["hi"] = clipped_range(a["lo"], a["hi"], lo, hi)
    src = graph.tensors[node.inputs[0]]
    offset = np.asarray(a["offset"], np.float64)
    if not (isinstance(graph.tensors[node.outputs[0]].fmt, IntFormat) and np.any(offset != 0)
            and 0 < a["hi"] - a["lo"] < MAX_THRESHOLD_LEVELS and a["rounding"] == "half_even"):
        return
    channels = src.shape[src.axis] if len(src.shape) > 1 else 1
    ratio = np.broadcast_to(np.asarray(a["scale"], np.float64), (channels,))
    thresholds = thresholds_for(ratio, np.broadcast_to(offset, (channels,)), a["zero_point"],
                                a["lo"], a["hi"])
    node.op = "threshold"
    node.attrs = dict(thresholds=thresholds, base=a["lo"], in_zero_point=a["in_zero_point"])


def requant_float(v: np.ndarray, scale, offset, zero_point: int, lo, hi) -> np.ndarray:
    """Float requantization as ONNX defines it: round_half_even(v * scale + offset) + zp,
    saturated. float64, the arithmetic the thresholds are derived from."""
    y = np.round(v.astype(np.float64) * scale + offset) + zero_point
    return np.clip(y, lo, hi).astype(np.int64)


def thresholds_for(ratio: np.ndarray, offset: np.ndarray, zero_point: int, lo: int,
                   hi: int) -> np.ndarray:
    """Per channel, the smallest integer input reaching each level lo+1..hi of
    ``requant_float``: out = lo + #(thresholds <= v) reproduces it exactly."""
    levels = np.arange(lo + 1, hi + 1)
    c = ratio.size
    t = np.empty((c, levels.size), np.int64)
    big = np.int64(2**62)
    for ch in range(c):
        m, o = ratio[ch], offset[ch]
        for j, k in enumerate(levels):
            if m == 0:
                t[ch, j] = -big if requant_float(np.zeros(1), m, o, zero_point, lo, hi)[0] >= k \
                    else big
                continue
            guess = int(np.ceil((k - zero_point - 0.5 - o) / m))
            cand = np.arange(guess - 3, guess + 4)
            ok = requant_float(cand, m, o, zero_point, lo, hi) >= k
            if not ok.any() or ok.all():
                raise QfabError(f"no integer threshold reaches level {k} in channel {ch} (a "
                                f"multiplier of {m:.3g} with an offset of {o:.3g})")
            t[ch, j] = cand[np.argmax(ok)]
    return t
