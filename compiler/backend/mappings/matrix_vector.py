"""Matrix-vector mappings: dense layers and convolutions on the MVU (a sliding window before
it for a convolution), depthwise convolutions on a MAC a channel.

The MVU multiplies raw codes; the input zero point's share of each dot product moves into
the bias the next stage adds (``Planner.pending_bias``).
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Shape
from qfab.compiler.backend.mappings import maps
from qfab.compiler.backend.mappings.binary import xnor_operands
from qfab.compiler.backend.plan import (
    BlockSpec,
    Planner,
    Stage,
    choose_folding,
    divisors,
    element_shape,
    folded_cycles,
    stream_order,
    window_beat,
)
from qfab.compiler.ir import Node, Tensor
from qfab.numerics import FixedFormat, IntFormat

from qfab.errors import QfabError


def constant_weights(mult, pe: int, simd: int, weights: np.ndarray) -> bool:
    """Whether a MAC stage multiplies by constants: fully unrolled (each product sees one
    weight) on integer operands, so an adder graph replaces the multipliers and the weight
    memory (:class:`qfab.hw.cmvm.ConstantMatrixVectorUnit`)."""
    from qfab.hw.multipliers import IntDecoder

    mh, mw = weights.shape
    return (pe, simd) == (mh, mw) and all(type(d) is IntDecoder for d in (mult.a, mult.b))


def mac(p: Planner, node: Node, weights: np.ndarray, vectors: int, window: BlockSpec | None,
        in_t: Tensor, out_t: Tensor) -> None:
    """An MVU stage (after ``window``, if any) for ``vectors`` products with ``weights``.
    The folding is chosen here, once; the window's beat follows from it (:func:`window_beat`)."""
    from qfab.compiler.backend.operands import mac_operands
    from qfab.hw.cmvm import DEFAULT_ADDERS_PER_STAGE
    from qfab.hw.multipliers import lut_product_bits, shape_for_range
    from qfab.hw.mvu import dot_product_bounds

    mh, mw = weights.shape
    pe, simd = p.folding(node, mh, mw, vectors, window)
    cycles = folded_cycles(mh, mw, vectors, pe, simd)  # the MVU's steps
    if window is not None:
        wsimd, taps = window_beat(window, simd, None if p.budget is None else cycles)
        window.params["simd"], window.in_elems, window.out_elems = wsimd, wsimd, wsimd * taps
        if taps > 1:
            window.params["taps"] = taps
    binary = xnor_operands(p.g, node, weights,
                           padded=window is not None and any(window.params["padding"]))
    mult, stored = binary or mac_operands(in_t.fmt, node, weights)
    zx = node.attrs["x_zero_point"]
    row_sums = weights.sum(axis=1).astype(np.int64)
    bias = np.zeros(mh, np.int64) if node.attrs["bias"] is None else node.attrs["bias"]
    p.pending_bias = np.asarray(bias, np.int64) - zx * row_sums
    lo, hi = dot_product_bounds(stored, mult)
    acc_shape = Shape(max(shape_for_range(lo, hi).width, 2), True)
    blocks = []
    elem = element_shape(in_t.fmt)
    if window is not None:
        p.adapt(blocks, elem, window.in_elems)
        window.params.update(p.pipelining.ready_params())
        blocks.append(window)
        p.elems = window.out_elems
    p.adapt(blocks, elem, simd)
    if constant_weights(mult, pe, simd, stored):
        params = dict(weights=stored, in_shape=elem, acc_shape=acc_shape)
        if p.pipelining.adders_per_stage != DEFAULT_ADDERS_PER_STAGE:
            params["adders_per_stage"] = p.pipelining.adders_per_stage
        blocks.append(BlockSpec("cmvm", params, simd, pe))
    else:
        params = dict(weights=stored, multiplier=mult, acc_shape=acc_shape, pe=pe, simd=simd)
        if p.double_buffered:
            params["double_buffered"] = True
        if p.pipelining.mvu:
            params["pipelined"] = True
            if (mh // pe) * (mw // simd) <= p.pipelining.weight_lane_words:
                params["weight_lanes"] = True
            if lut_product_bits(mult) and max(mult.a.code_shape.width, mult.b.code_shape.width) \
                    <= p.pipelining.lut_product_width:
                params["lut_products"] = True
        blocks.append(BlockSpec("mvu", params, simd, pe))
    p.elems = pe
    p.stages.append(Stage(node.name, node.op, blocks, in_beats=0, out_beats=0,
                          cycles=cycles, folding=dict(pe=pe, simd=simd, mh=mh, mw=mw),
                          macs=vectors * mh * mw))
    p.finish_stage(in_t, out_t)


@maps("conv")
def conv(p: Planner, node: Node) -> None:
    a = node.attrs
    in_t, out_t = p.t(node.inputs[0]), p.t(node.outputs[0])
    if tuple(a["dilations"]) != (1, 1):
        raise QfabError(f"node {node.name!r}: dilated convolution has no hardware block "
                        "yet")
    p.check_channel_order(node, in_t)
    if a["group"] != 1:
        if a["group"] == in_t.shape[1] == out_t.shape[1]:
            depthwise(p, node, in_t, out_t)
            return
        raise QfabError(f"node {node.name!r}: grouped convolution has no hardware block "
                        f"yet (group {a['group']}; depthwise, with group = channels in = "
                        "channels out, has one)")
    w = a["weight"]  # [M, C, kh, kw] -> [M, (ky, kx, c)] to match the window order
    m, c, kh, kw = w.shape
    weights = w.transpose(0, 2, 3, 1).reshape(m, kh * kw * c)
    _, _, h, wd = in_t.shape
    oh, ow = out_t.shape[2:]
    window = None
    if (kh, kw) != (1, 1) or tuple(a["strides"]) != (1, 1) or any(a["pads"]):
        window = BlockSpec("window", dict(
            channels=c, height=h, width=wd, kernel=(kh, kw), stride=tuple(a["strides"]),
            padding=tuple(a["pads"]), pad_value=int(a["x_zero_point"]),
            elem_shape=element_shape(in_t.fmt), simd=1), 1, 1)  # its beat: mac()'s
    mac(p, node, weights, oh * ow, window, in_t, out_t)
    p.order = stream_order(out_t.shape)


def depthwise_cycles(channels: int, taps: int, pixels: int, simd: int, columns: int) -> int:
    """Cycles an inference of a depthwise stage taking ``simd`` channels and ``columns``
    kernel columns (of its ``taps``) a beat."""
    return pixels * (channels // simd) * (taps // columns)


def depthwise_options(channels: int, taps: int, kw: int, pixels: int) -> list[tuple]:
    """A depthwise stage's foldings, ``(lanes, columns, simd, cycles)``: ``simd`` channels
    (dividing ``channels``) and ``columns`` kernel columns (dividing ``kw``) a beat, fewest
    lanes first, then fewest columns (fewest window read ports)."""
    return sorted((s * t, t, s, depthwise_cycles(channels, taps, pixels, s, t))
                  for s in divisors(channels) for t in divisors(kw))


def depthwise_folding(channels: int, taps: int, kw: int, pixels: int, budget: int | None,
                      max_simd: int) -> tuple[int, int]:
    """(simd, columns): the fewest lanes meeting ``budget`` cycles, else all; one column and
    at most ``max_simd`` channels without a budget."""
    if budget is None:
        return choose_folding(1, channels, pixels * taps, None, 1, max_simd)[1], 1
    options = depthwise_options(channels, taps, kw, pixels)
    _, t, s, _ = next((o for o in options if o[3] <= budget), options[-1])
    return s, t


def depthwise(p: Planner, node: Node, in_t: Tensor, out_t: Tensor) -> None:
    """One filter a channel: a sliding window in depthwise order, then a MAC a channel
    over the window's taps, ``simd`` channels and ``columns`` kernel columns at a time (the
    input zero point moves into the bias, as the MVU's does)."""
    from qfab.compiler.backend.operands import integer_weight_shape

    a = node.attrs
    if not isinstance(in_t.fmt, IntFormat | FixedFormat):
        raise QfabError(f"node {node.name!r}: depthwise convolution of {in_t.fmt} codes "
                        "has no hardware block yet")
    w = np.asarray(a["weight"], np.int64)  # [C, 1, kh, kw] -> [C, (ky, kx)]
    c, _, kh, kw = w.shape
    weights = w.reshape(c, kh * kw)
    _, _, h, wd = in_t.shape
    oh, ow = out_t.shape[2:]
    simd, columns = depthwise_folding(c, kh * kw, kw, oh * ow, p.budget, p.max_simd)
    lanes = simd * columns
    zx = int(a["x_zero_point"])
    bias = np.zeros(c, np.int64) if a["bias"] is None else np.asarray(a["bias"], np.int64)
    p.pending_bias = bias - zx * weights.sum(axis=1)
    elem = element_shape(in_t.fmt)
    w_shape = integer_weight_shape(w)
    blocks: list[BlockSpec] = []
    p.adapt(blocks, elem, simd)
    many = dict(taps=columns) if columns > 1 else {}
    blocks.append(BlockSpec("window", dict(
        channels=c, height=h, width=wd, kernel=(kh, kw), stride=tuple(a["strides"]),
        padding=tuple(a["pads"]), pad_value=zx, elem_shape=elem, simd=simd,
        depthwise=True, **many, **p.pipelining.ready_params()), simd, lanes))
    many = dict(columns=columns) if columns > 1 else {}
    blocks.append(BlockSpec("depthwise", dict(
        channels=c, taps=kh * kw, weights=weights, in_shape=elem, weight_shape=w_shape,
        simd=simd, **many), lanes, simd))
    p.stages.append(Stage(node.name, node.op, blocks, 0, 0,
                          cycles=depthwise_cycles(c, kh * kw, oh * ow, simd, columns),
                          folding=dict(simd=simd, **many), macs=oh * ow * c * kh * kw))
    p.finish_stage(in_t, out_t)
    p.order = stream_order(out_t.shape)
    p.elems = simd


@maps("dense")
def dense(p: Planner, node: Node) -> None:
    in_t, out_t = p.t(node.inputs[0]), p.t(node.outputs[0])
    if len(in_t.shape) != 2:
        raise QfabError(f"node {node.name!r}: dense layers need a [N, K] input")
    weights = node.attrs["weight"][:, p.order]
    mac(p, node, weights, 1, None, in_t, out_t)
    p.order = np.arange(out_t.shape[1])
