"""Window and pool mappings: max and average pooling over a sliding window, global average
pooling. The average pools sum raw codes (the division is the next requant's); the zero
point's share of each sum, like the MVU's, moves into the bias of the stage after them."""

from __future__ import annotations

import math

import numpy as np
from amaranth.hdl import Shape
from qfab.compiler.backend.mappings import maps
from qfab.compiler.backend.plan import BlockSpec, Planner, Stage, element_shape, stream_order
from qfab.compiler.ir import Acc, Node, Tensor
from qfab.numerics import MinifloatFormat

from qfab.errors import QfabError


def pool_input(p: Planner, node: Node, what: str) -> tuple[Tensor, Tensor, Shape, int, list]:
    """Checks shared by the pools; the input tensor, output tensor, element shape, simd and
    the stage's first blocks (a width converter to ``simd`` if needed)."""
    in_t, out_t = p.t(node.inputs[0]), p.t(node.outputs[0])
    if p.pending_bias is not None or isinstance(in_t.fmt, Acc):
        raise QfabError(f"node {node.name!r}: {what} of a raw accumulator")
    p.check_channel_order(node, in_t)
    if isinstance(in_t.fmt, MinifloatFormat):
        raise QfabError(f"node {node.name!r}: {what} of {in_t.fmt} codes has no "
                        "hardware block yet")
    elem = element_shape(in_t.fmt)
    simd = math.gcd(in_t.shape[1], p.elems)
    blocks: list[BlockSpec] = []
    p.adapt(blocks, elem, simd)
    return in_t, out_t, elem, simd, blocks


def window_pool(p: Planner, node: Node, kind: str, what: str, **extra) -> None:
    a = node.attrs
    in_t, out_t, elem, simd, blocks = pool_input(p, node, what)
    _, c, h, w = in_t.shape
    blocks.append(BlockSpec(kind, dict(
        channels=c, height=h, width=w, kernel=tuple(a["kernel"]),
        stride=tuple(a["strides"]), padding=tuple(a["pads"]), elem_shape=elem,
        simd=simd, **extra, **p.pipelining.ready_params(),
        **({"registered_taps": True} if p.pipelining.pool_register else {})), simd, simd))
    oh, ow = out_t.shape[2:]
    p.stages.append(Stage(node.name, node.op, blocks, 0, 0,
                          cycles=max(h * w * c // simd, oh * ow * c // simd)))
    p.finish_stage(in_t, out_t)
    p.order = stream_order(out_t.shape)


@maps("maxpool")
def maxpool(p: Planner, node: Node) -> None:
    window_pool(p, node, "maxpool", "max pooling")


@maps("sumpool")
def sumpool(p: Planner, node: Node) -> None:
    # AvgPool sums raw codes, padding with the zero point; the reference sums x - zp, so
    # kh*kw*zp per output moves into the next stage's bias, as the MVU's zero point does.
    a = node.attrs
    zp = int(a["x_zero_point"])
    window_pool(p, node, "avgpool", "average pooling", pad_value=zp)
    c = p.t(node.inputs[0]).shape[1]
    p.pending_bias = np.full(c, -zp * a["kernel"][0] * a["kernel"][1], np.int64)


@maps("globalsum")
def globalsum(p: Planner, node: Node) -> None:
    in_t, out_t, elem, simd, blocks = pool_input(p, node, "global average pooling")
    _, c, h, w = in_t.shape
    blocks.append(BlockSpec("globalavgpool", dict(
        channels=c, height=h, width=w, elem_shape=elem, simd=simd), simd, simd))
    p.stages.append(Stage(node.name, node.op, blocks, 0, 0, cycles=h * w * c // simd))
    p.finish_stage(in_t, out_t)
    p.order = stream_order(out_t.shape)
    p.pending_bias = np.full(c, -int(node.attrs["x_zero_point"]) * h * w, np.int64)
