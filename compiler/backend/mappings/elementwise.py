"""Elementwise mappings of two streams: the residual add, which joins the main branch's
stream with the shortcut's (the forked stream, or the output of the shortcut's stages)."""

from __future__ import annotations

import math

import numpy as np
from qfab.compiler.backend.mappings import maps
from qfab.compiler.backend.plan import BlockSpec, Planner, Stage, element_shape
from qfab.compiler.ir import Node
from qfab.numerics import IntFormat

from qfab.errors import QfabError


@maps("add")
def add(p: Planner, node: Node) -> None:
    """A residual add: the main branch's stream (``i_a``) joined beat for beat with the
    shortcut's, which waits in a FIFO deep enough to hold a whole inference of it."""
    a = node.attrs
    fork, p.fork = p.fork, None
    if p.pending_bias is not None:
        raise QfabError(f"node {node.name!r}: residual add of a raw accumulator")
    source = None
    if fork.main is None:  # an identity shortcut: the skip is the forked stream itself
        skip_name, skip_from = fork.tensor, fork.stage
        skip_order, skip_elems = fork.order, fork.elems
        (main,) = [x for x in node.inputs if x != skip_name]
    else:  # the skip path's stages end here; the main path resumes
        end = fork.main
        main = end.tensor
        (skip_name,) = [x for x in node.inputs if x != main]
        skip_order, skip_elems = p.order, p.elems
        skip_from = len(p.stages) - 1 if len(p.stages) > fork.first_skip else fork.stage
        p.order, p.elems = end.order, end.elems
        source = end.last_stage if end.last_stage != len(p.stages) - 1 else None
    in_t, skip_t, out_t = p.t(main), p.t(skip_name), p.t(node.outputs[0])
    if not all(isinstance(t.fmt, IntFormat) for t in (in_t, skip_t, out_t)):
        raise QfabError(f"node {node.name!r}: residual add of {in_t.fmt} and "
                        f"{skip_t.fmt} into {out_t.fmt} has no hardware block yet")
    if not np.array_equal(p.order, skip_order):
        raise QfabError(f"node {node.name!r}: the residual add's inputs stream in "
                        "different orders")
    # IR: round_half_even(((x_a - zp_a) * mult_a + (x_b - zp_b) * mult_b) / 2**shift)
    first = main == node.inputs[0]
    ma, mb = (a["mult_a"], a["mult_b"]) if first else (a["mult_b"], a["mult_a"])
    za, zb = ((a["a_zero_point"], a["b_zero_point"]) if first
              else (a["b_zero_point"], a["a_zero_point"]))
    n = math.gcd(p.elems, skip_elems)
    skip_shape = element_shape(skip_t.fmt)
    beats = int(np.prod(skip_t.shape[1:])) // skip_elems
    skip = [BlockSpec("fifo", dict(elem_shape=skip_shape, n=skip_elems,
                                   depth=max(beats + 2, 3)), skip_elems, skip_elems)]
    if skip_elems != n:
        skip.append(BlockSpec("widthconv", dict(elem_shape=skip_shape, n_in=skip_elems,
                                                n_out=n), skip_elems, n))
    blocks: list[BlockSpec] = []
    p.adapt(blocks, element_shape(in_t.fmt), n)
    blocks.append(BlockSpec("add", dict(
        a_shape=element_shape(in_t.fmt), b_shape=skip_shape,
        out_shape=element_shape(out_t.fmt), n=n, mult_a=int(ma), mult_b=int(mb),
        shift=int(a["shift"]), zero_point=int(a["zero_point"]), lo=int(a["lo"]),
        hi=int(a["hi"]), offset=-int(za) * int(ma) - int(zb) * int(mb)), n, n))
    elements = int(np.prod(out_t.shape[1:]))
    p.stages.append(Stage(node.name, node.op, blocks, 0, 0, cycles=elements // n,
                          skip=skip, skip_from=skip_from, source=source))
    p.finish_stage(in_t, out_t)
