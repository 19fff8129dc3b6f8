"""Threshold and requantization mappings: a per-channel stage that turns the raw sums (or
codes) arriving into the next layer's codes, adding the bias the stage before left pending."""

from __future__ import annotations

import numpy as np
from amaranth.hdl import unsigned
from qfab.compiler.backend.mappings import maps
from qfab.compiler.backend.plan import BlockSpec, Planner, element_shape
from qfab.compiler.ir import Acc, Node, Tensor
from qfab.numerics import FixedFormat, IntFormat, MinifloatFormat

from qfab.errors import QfabError


@maps("requant")
def requant(p: Planner, node: Node) -> None:
    a = node.attrs
    in_t, out_t = p.t(node.inputs[0]), p.t(node.outputs[0])
    c = p.channels(in_t)
    bias = p.take_bias(c) + p.per_channel(a["bias_int"], c) \
        - p.per_channel(a["in_zero_point"], c)
    if isinstance(out_t.fmt, MinifloatFormat):
        minifloat_requant(p, node, in_t, out_t, bias)
        return
    if isinstance(out_t.fmt, Acc) or not isinstance(out_t.fmt, IntFormat | FixedFormat) \
            or isinstance(in_t.fmt, MinifloatFormat):
        raise QfabError(f"node {node.name!r}: requantization from {in_t.fmt} to "
                        f"{out_t.fmt} has no hardware block yet")
    params = dict(
        acc_shape=p.input_shape(node), channels=c, pe=p.elems, bias=bias,
        mult=p.per_channel(a["mult"], c), shift=p.per_channel(a["shift"], c),
        zero_point=int(a["zero_point"]), lo=int(a["lo"]), hi=int(a["hi"]),
        out_shape=element_shape(out_t.fmt), rounding=a["rounding"],
        shift_add=p.after_adder_graph() or p.pipelining.requant_shift_add)
    if p.pipelining.requant_adders is not None:
        params["adders_per_stage"] = p.pipelining.requant_adders
    p.elementwise(node, BlockSpec("requant", params, p.elems, p.elems))


def minifloat_requant(p: Planner, node: Node, in_t: Tensor, out_t: Tensor,
                      bias: np.ndarray) -> None:
    """A requant to a minifloat: encode_fixed of the dyadic product, ReLU fused."""
    a, fmt = node.attrs, out_t.fmt
    if fmt.decode(np.asarray(a["zero_point"], np.int64)) != 0:
        raise QfabError(f"node {node.name!r}: a non-zero {fmt} zero point has no "
                        "hardware block")
    c = p.channels(in_t)
    minifloat_in = isinstance(in_t.fmt, MinifloatFormat)  # codes, not an MVU's sums
    acc_shape = unsigned(in_t.fmt.bits) if minifloat_in else p.input_shape(node)
    params = dict(acc_shape=acc_shape, channels=c, pe=p.elems, fmt=fmt,
                  bias=bias, mult=p.per_channel(a["mult"], c),
                  shift=p.per_channel(a["shift"], c), relu=bool(a.get("relu", False)))
    if minifloat_in:
        params["in_fmt"] = in_t.fmt
    p.elementwise(node, BlockSpec("minifloat_requant", params, p.elems, p.elems))


@maps("threshold")
def threshold(p: Planner, node: Node) -> None:
    from qfab.hw.multipliers import shape_for_range

    a = node.attrs
    in_t = p.t(node.inputs[0])
    c = p.channels(in_t)
    # acc + bias - zp >= t  <=>  acc >= t - bias + zp
    shift = p.take_bias(c) - p.per_channel(a["in_zero_point"], c)
    thr = np.asarray(a["thresholds"], np.int64) - shift[:, None]
    # base + step * count: step 2 from base -1 is a bipolar activation's -1/+1
    step = int(a.get("step", 1))
    lo, hi = sorted((int(a["base"]), int(a["base"]) + step * thr.shape[1]))
    out_shape = shape_for_range(min(lo, 0), hi)
    out_fmt = p.t(node.outputs[0]).fmt
    if isinstance(out_fmt, IntFormat) and out_fmt.min <= lo and hi <= out_fmt.max:
        # The next stage reads the output tensor's format (an int8 Brevitas QCDQ activation
        # with only a few levels), not just the levels' range.
        out_shape = element_shape(out_fmt)
    p.elementwise(node, BlockSpec("threshold", dict(
        acc_shape=p.input_shape(node), channels=c, pe=p.elems, thresholds=thr,
        out_shape=out_shape, out_bias=int(a["base"]), out_scale=step), p.elems, p.elems))


@maps("lookup")
def lookup(p: Planner, node: Node) -> None:
    """A table of one output code per input code inside the model (Sigmoid, Tanh; at the
    model's end the control core runs it) on the threshold block: a non-decreasing table is
    its first entry plus the number of steps up to the input code, each step a threshold."""
    a = node.attrs
    steps = np.diff(np.asarray(a["table"], np.int64))
    if (steps < 0).any() or not steps.any():
        raise QfabError(f"node {node.name!r}: a {a.get('fn', 'lookup')} table that is not "
                        "increasing has no hardware block (at the model's end the control "
                        "core runs it)")
    codes = int(a["in_min"]) + 1 + np.repeat(np.arange(steps.size), steps)
    c = p.channels(p.t(node.inputs[0]))
    threshold(p, Node("threshold", node.name, node.inputs, node.outputs, dict(
        thresholds=np.tile(codes, (c, 1)), base=int(a["table"][0]), in_zero_point=0)))


@maps("clamp")
def clamp(p: Planner, node: Node) -> None:
    in_t, out_t = p.t(node.inputs[0]), p.t(node.outputs[0])
    c = p.channels(in_t)
    p.elementwise(node, BlockSpec("requant", dict(
        acc_shape=p.input_shape(node), channels=c, pe=p.elems,
        bias=p.take_bias(c), mult=1, shift=0, zero_point=0, lo=node.attrs["lo"],
        hi=node.attrs["hi"], out_shape=element_shape(out_t.fmt)), p.elems, p.elems))
