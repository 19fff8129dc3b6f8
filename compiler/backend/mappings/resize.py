"""Resize mappings: nearest-neighbour upsampling by integer factors, a row buffer that gives
each row its repeats (:class:`qfab.hw.upsample.NearestUpsample`)."""

from __future__ import annotations

import math

from qfab.compiler.backend.mappings import maps
from qfab.compiler.backend.plan import BlockSpec, Planner, Stage, element_shape, stream_order
from qfab.compiler.ir import Node

from qfab.errors import QfabError


@maps("upsample")
def upsample(p: Planner, node: Node) -> None:
    in_t, out_t = p.t(node.inputs[0]), p.t(node.outputs[0])
    if p.pending_bias is not None or len(in_t.shape) != 4:
        raise QfabError(f"node {node.name!r}: upsampling needs quantized codes of an image "
                        "(a quantizer before it)")
    p.check_channel_order(node, in_t)
    _, c, h, w = in_t.shape
    elem = element_shape(in_t.fmt)
    n = math.gcd(c, p.elems)
    blocks: list[BlockSpec] = []
    p.adapt(blocks, elem, n)
    sh, sw = node.attrs["scale"]
    blocks.append(BlockSpec("upsample", dict(channels=c, height=h, width=w, scale=(sh, sw),
                                             elem_shape=elem, n=n), n, n))
    p.stages.append(Stage(node.name, node.op, blocks, 0, 0,
                          cycles=h * w * (c // n) * (1 + sh * sw)))
    p.finish_stage(in_t, out_t)
    p.order = stream_order(out_t.shape)
