"""Joins of two streams: the main branch's stream (the planner's current one) and a side
branch's end (``Planner.skip_end``: the forked stream itself, or the side's last stage),
which waits in a FIFO deep enough to hold a whole inference of it. A residual add joins them
beat for beat; a Concat takes runs of each in turns (``StreamConcat``), as does the sequence
of the accelerator's outputs on its one output stream."""

from __future__ import annotations

import math

import numpy as np
from amaranth.hdl import Shape, signed, unsigned
from qfab.compiler.backend.mappings import maps
from qfab.compiler.backend.plan import BlockSpec, Planner, Stage, element_shape, stream_order
from qfab.compiler.backend.topology import StreamEnd
from qfab.compiler.ir import Node
from qfab.hw._checks import shape_range
from qfab.numerics import IntFormat

from qfab.errors import QfabError


def _skip_path(skip: StreamEnd, shape: Shape, beats: int, n: int) -> list[BlockSpec]:
    """The side's FIFO (a whole inference, ``beats`` of ``skip.elems``) and a width
    converter to ``n`` elements a beat if needed."""
    path = [BlockSpec("fifo", dict(elem_shape=shape, n=skip.elems, depth=max(beats + 2, 3)),
                      skip.elems, skip.elems)]
    if skip.elems != n:
        path.append(BlockSpec("widthconv", dict(elem_shape=shape, n_in=skip.elems, n_out=n),
                              skip.elems, n))
    return path


def _main_fifo(shape: Shape, n: int, tensor_shape: tuple) -> BlockSpec:
    """A FIFO holding a whole inference of the main branch, ``n`` elements a beat."""
    beats = int(np.prod(tensor_shape[1:])) // n
    return BlockSpec("fifo", dict(elem_shape=shape, n=n, depth=max(beats + 2, 3)), n, n)


def _join_width(runs: int, *elems: int) -> int:
    """Elements a beat of a join whose runs are multiples of ``runs``, fed ``elems`` a beat:
    as many as its wider input gives, so that the join keeps pace with it (a branch of
    fewer multipliers, one element a beat, would otherwise make the join as slow as that)."""
    return max(d for d in range(1, runs + 1) if runs % d == 0 and d <= max(elems))


def _take_skip(p: Planner, node: Node) -> StreamEnd:
    skip, p.skip_end = p.skip_end, None
    if skip is None:  # e.g. QLinearAdd(x, x): one stream, nothing forked to join
        raise QfabError(f"node {node.name!r}: {node.op} of inputs that are not two branches "
                        "forked from one stream has no hardware mapping")
    if p.pending_bias is not None:
        raise QfabError(f"node {node.name!r}: {node.op} of a raw accumulator")
    return skip


@maps("add")
def add(p: Planner, node: Node) -> None:
    """A residual add: the main branch's stream (``i_a``) joined beat for beat with the
    side's."""
    a = node.attrs
    skip = _take_skip(p, node)
    main = p.current
    in_t, skip_t, out_t = p.t(main), p.t(skip.tensor), p.t(node.outputs[0])
    if not all(isinstance(t.fmt, IntFormat) for t in (in_t, skip_t, out_t)):
        raise QfabError(f"node {node.name!r}: residual add of {in_t.fmt} and "
                        f"{skip_t.fmt} into {out_t.fmt} has no hardware block yet")
    if not np.array_equal(p.order, skip.order):
        raise QfabError(f"node {node.name!r}: the residual add's inputs stream in "
                        "different orders")
    # IR: round_half_even(((x_a - zp_a) * mult_a + (x_b - zp_b) * mult_b) / 2**shift)
    first = main == node.inputs[0]
    ma, mb = (a["mult_a"], a["mult_b"]) if first else (a["mult_b"], a["mult_a"])
    za, zb = ((a["a_zero_point"], a["b_zero_point"]) if first
              else (a["b_zero_point"], a["a_zero_point"]))
    n = math.gcd(p.elems, skip.elems)
    skip_shape = element_shape(skip_t.fmt)
    beats = int(np.prod(skip_t.shape[1:])) // skip.elems
    blocks: list[BlockSpec] = []
    p.adapt(blocks, element_shape(in_t.fmt), n)
    if skip.waits:  # another input: it arrives once the main one has passed
        blocks.append(_main_fifo(element_shape(in_t.fmt), n, in_t.shape))
    blocks.append(BlockSpec("add", dict(
        a_shape=element_shape(in_t.fmt), b_shape=skip_shape,
        out_shape=element_shape(out_t.fmt), n=n, mult_a=int(ma), mult_b=int(mb),
        shift=int(a["shift"]), zero_point=int(a["zero_point"]), lo=int(a["lo"]),
        hi=int(a["hi"]), offset=-int(za) * int(ma) - int(zb) * int(mb)), n, n))
    elements = int(np.prod(out_t.shape[1:]))
    p.stages.append(Stage(node.name, node.op, blocks, 0, 0, cycles=elements // n,
                          skip=_skip_path(skip, skip_shape, beats, n),
                          skip_from=skip.stage))
    p.finish_stage(in_t, out_t)


def _runs(node: Node, main: str, skip: str, shapes: dict[str, tuple], orders) -> tuple:
    """(main's run, the side's run, whether the side's comes first) in elements: the output
    of ``node`` in stream order alternates between runs of each input, each in its own
    stream order (``orders``), or the Concat has no hardware mapping."""
    axis = node.attrs["axis"]
    out_shape = list(shapes[main])
    out_shape[axis] += shapes[skip][axis]
    out_index = stream_order(tuple(out_shape))
    coords = np.array(np.unravel_index(out_index, out_shape[1:]))
    first_in = node.inputs[0]
    split = shapes[first_in][axis]
    from_first = coords[axis - 1] < split
    coords[axis - 1] -= np.where(from_first, 0, split)
    source = {first_in: from_first, (skip if first_in == main else main): ~from_first}
    for name in (main, skip):
        at = source[name]
        flat = np.ravel_multi_index(tuple(coords[:, at]), shapes[name][1:])
        if not np.array_equal(flat, orders[name]):
            raise QfabError(f"node {node.name!r}: input {name!r} does not stream in the "
                            "order the concatenation takes it")
    edges = np.flatnonzero(np.diff(from_first.astype(np.int8))) + 1
    runs = np.diff(np.concatenate([[0], edges, [from_first.size]]))
    lead, other = runs[0::2], runs[1::2]
    if lead.min() != lead.max() or other.min() != other.max() or len(lead) != len(other):
        raise QfabError(f"node {node.name!r}: the concatenation does not take its inputs in "
                        "runs of fixed lengths in turns; it has no hardware mapping")
    first_run, second_run = int(lead[0]), int(other[0])
    if first_in == main:
        return first_run, second_run, False
    return second_run, first_run, True


@maps("concat")
def concat(p: Planner, node: Node) -> None:
    """A Concat of two branches: runs of each input's stream in turns (along channels, a
    pixel's channels of one, then of the other)."""
    if len(node.inputs) != 2:
        raise QfabError(f"node {node.name!r}: Concat of {len(node.inputs)} tensors; the "
                        "hardware joins two branches at a time")
    skip = _take_skip(p, node)
    main = p.current
    shapes = {name: p.t(name).shape for name in (main, skip.tensor)}
    main_run, skip_run, skip_first = _runs(node, main, skip.tensor, shapes,
                                           {main: p.order, skip.tensor: skip.order})
    n = _join_width(math.gcd(main_run, skip_run), p.elems, skip.elems)
    out_t = p.t(node.outputs[0])
    shape = element_shape(out_t.fmt)
    skip_beats = int(np.prod(shapes[skip.tensor][1:])) // skip.elems
    blocks: list[BlockSpec] = []
    main_shape = element_shape(p.t(main).fmt)
    p.adapt(blocks, main_shape, n)
    # Either branch may lag the other by rows (a 3x3 window beside a 1x1 conv): the main one
    # waits in a FIFO too, so the fork never stalls the branch that is behind.
    blocks.append(_main_fifo(main_shape, n, shapes[main]))
    blocks.append(BlockSpec("concat", dict(
        a_shape=element_shape(p.t(main).fmt), b_shape=element_shape(p.t(skip.tensor).fmt),
        out_shape=shape, n=n, a_beats=main_run // n, b_beats=skip_run // n,
        b_first=skip_first), n, n))
    elements = int(np.prod(out_t.shape[1:]))
    p.stages.append(Stage(node.name, node.op, blocks, 0, 0, cycles=elements // n,
                          skip=_skip_path(skip, element_shape(p.t(skip.tensor).fmt),
                                          skip_beats, n), skip_from=skip.stage))
    p.finish_stage(p.t(main), out_t)
    p.stages[-1].cycles = max(p.stages[-1].cycles, p.stages[-1].out_beats)
    p.order = stream_order(out_t.shape)


def holding(a: Shape, b: Shape) -> Shape:
    """The narrowest element shape that holds every value of ``a`` and of ``b``."""
    lo = min(shape_range(a)[0], shape_range(b)[0])
    hi = max(shape_range(a)[1], shape_range(b)[1])
    if lo >= 0:
        return unsigned(max(hi.bit_length(), 1))
    return signed(max(hi.bit_length(), (-lo - 1).bit_length()) + 1)


def sequence_outputs(p: Planner, ends: list[StreamEnd]) -> Shape:
    """Put every output on the accelerator's one output stream, one after the other: a stage
    a further output that takes the stream so far, then that output from its FIFO. Leaves
    the planner's order as the concatenation of the outputs' flat indices; returns the
    output element shape."""
    first = ends[0]
    p.current, p.head, p.order, p.elems = first.tensor, first.stage, first.order, first.elems
    shape = p.stream_shape(first.stage)
    size = int(np.prod(p.t(first.tensor).shape[1:]))
    order = [first.order]
    for k, end in enumerate(ends[1:], start=1):
        n = math.gcd(p.elems, end.elems)
        end_shape = p.stream_shape(end.stage)
        end_size = int(np.prod(p.t(end.tensor).shape[1:]))
        blocks: list[BlockSpec] = []
        p.adapt(blocks, shape, n)
        out_shape = holding(shape, end_shape)
        blocks.append(BlockSpec("concat", dict(
            a_shape=shape, b_shape=end_shape, out_shape=out_shape, n=n, a_beats=size // n,
            b_beats=end_size // n), n, n))
        beats = (size + end_size) // n
        stage = Stage(f"output_{k}_{end.tensor}", "output", blocks,
                      in_beats=size // blocks[0].in_elems, out_beats=beats, cycles=beats,
                      input=p.current, output=end.tensor,
                      skip=_skip_path(end, end_shape, end_size // end.elems, n),
                      skip_from=end.stage)
        if p.head != len(p.stages) - 1:
            stage.source = p.head
        p.stages.append(stage)
        p.head = len(p.stages) - 1
        order.append(end.order + size)
        size += end_size
        shape = out_shape
    p.order = np.concatenate(order)
    return shape
