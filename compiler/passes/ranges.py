"""Range analysis: the exact integer interval of every tensor, and from it the minimal
accumulator width that never overflows (so the hardware never rounds or wraps inside a layer).
"""

from __future__ import annotations

import numpy as np
from qfab.compiler.ir import Acc, Graph, Tensor
from qfab.numerics import width_for


def _code_range(t: Tensor) -> tuple[int, int]:
    fmt = t.fmt
    return int(fmt.fixed_min), int(fmt.fixed_max)


def _mac_range(weight: np.ndarray, bias, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """Per output channel, the extreme values of sum(w * x) + bias for x in [lo, hi]."""
    w = weight.reshape(weight.shape[0], -1).astype(object)
    top = np.where(w > 0, w * hi, w * lo).sum(axis=1)
    bot = np.where(w > 0, w * lo, w * hi).sum(axis=1)
    if bias is not None:
        top, bot = top + bias.astype(object), bot + bias.astype(object)
    return bot, top


def ranges(graph: Graph) -> dict[str, tuple[int, int]]:
    """Set every accumulator's width; return {tensor: (lo, hi)} of the exact integer values."""
    r: dict[str, tuple[int, int]] = {}
    for name in graph.inputs:
        t = graph.tensors[name]
        if not t.is_float:
            r[name] = _code_range(t)
    for node in graph.nodes:
        out = graph.tensors[node.outputs[0]]
        a = node.attrs
        src = graph.tensors[node.inputs[0]]
        if node.op in ("conv", "dense"):
            lo, hi = r[src.name]
            zlo, zhi = (a["x_zero_point"],) * 2 if len(node.inputs) == 1 else _code_range(
                graph.tensors[node.inputs[1]])  # a zero point computed at run time
            lo, hi = lo - zhi, hi - zlo
            if node.op == "conv" and any(a["pads"]):
                lo, hi = min(lo, 0), max(hi, 0)  # padding feeds zeros
            bot, top = _mac_range(a["weight"], a["bias"], lo, hi)
            a["acc_range"] = (bot, top)
            r[out.name] = (int(min(bot)), int(max(top)))
        elif node.op in ("sumpool", "globalsum"):
            lo, hi = r[src.name]
            zp = a["x_zero_point"]
            n = (a["kernel"][0] * a["kernel"][1] if node.op == "sumpool"
                 else src.shape[2] * src.shape[3])
            r[out.name] = (n * min(lo - zp, 0), n * max(hi - zp, 0))
        elif node.op in ("requant", "add", "clamp") and not isinstance(out.fmt, Acc) and \
                "lo" in a and a["lo"] is not None:
            r[out.name] = (int(a["lo"]), int(a["hi"]))
        elif node.op == "threshold":
            r[out.name] = (a["base"], a["base"] + a.get("step", 1) * a["thresholds"].shape[1])
        elif node.op == "quantize" and a.get("lo") is not None and a.get("hi") is not None:
            r[out.name] = (int(a["lo"]), int(a["hi"]))
        elif node.op == "concat":
            parts = [r[i] for i in node.inputs]
            r[out.name] = (min(p[0] for p in parts), max(p[1] for p in parts))
        elif node.op in ("maxpool", "reshape", "transpose", "upsample"):
            r[out.name] = r[src.name]
        elif not out.is_float:
            r[out.name] = _code_range(out)
        if isinstance(out.fmt, Acc) and out.name in r:
            bits, _ = width_for(*r[out.name])
            out.fmt = Acc(bits=max(bits, 2), lsb_exponent=out.fmt.lsb_exponent)
    return r
