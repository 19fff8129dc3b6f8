"""How the planner walks a graph that is more than one chain: forks, joins, several outputs.

The walk follows the stream from the accelerator's input. Where a tensor feeds two layers
(a fork), one branch must be a plain chain (the *side*: a residual shortcut, a Concat's
other branch, or a head ending at an output); the other (the *main* branch) may fork and
join again inside, so residual blocks nest. The main branch is planned first, in line; then
the side, whose stages (``on_skip``) read the forked stream; then the join (a residual add
or a Concat), whose second input is the side's end. A tensor that is a graph output and also
feeds later layers (a *tap*) is forked to the output as it streams past. Every output leaves
on the accelerator's one output stream, the first planned first and each further one after
it, through a ``StreamConcat`` whose FIFO keeps a whole inference of it
(:func:`qfab.compiler.backend.mappings.joins.sequence_outputs`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from qfab.compiler.backend.plan import stream_order
from qfab.compiler.ir import Node, Tensor

from qfab.errors import QfabError

if TYPE_CHECKING:
    from qfab.compiler.backend.plan import Planner

JOIN_OPS = ("add", "concat")


@dataclass
class StreamEnd:
    """A tensor as a stage's output stream carries it: ``stage`` makes it (-1 the
    accelerator's input), ``order`` maps stream position to its flat NCHW index, ``elems``
    elements a beat."""

    tensor: str
    stage: int
    order: np.ndarray
    elems: int
    waits: bool = False  # a side that streams only after the main branch's inference


def binary_concats(p: Planner, node: Node) -> list[Node]:
    """A Concat of several tensors as Concats of two, the first ones' joined first (a
    pixel's channels come in the same order); the tensors between are the planner's."""
    if node.op != "concat" or len(node.inputs) <= 2:
        return [node]
    axis, out = node.attrs["axis"], p.t(node.outputs[0])
    nodes, acc = [], node.inputs[0]
    for k, name in enumerate(node.inputs[1:], start=1):
        last = k == len(node.inputs) - 1
        joined = node.outputs[0] if last else f"{node.name}_first{k + 1}"
        if not last:
            shape = list(p.t(acc).shape)
            shape[axis] += p.t(name).shape[axis]
            p.extra[joined] = Tensor(joined, tuple(shape), out.fmt, out.scale,
                                     out.zero_point)
        nodes.append(Node("concat", node.name if last else joined, [acc, name], [joined],
                          dict(node.attrs)))
        acc = joined
    return nodes


def is_join(node: Node) -> bool:
    return node.op in JOIN_OPS and len(set(node.inputs)) >= 2


class Walk:
    """Plans ``nodes`` (the accelerator's, in graph order) onto ``planner`` from its input
    to the output tensors ``ends``; ``outputs`` gathers every output's stream end in the
    order they leave."""

    def __init__(self, planner: Planner, nodes: list[Node], ends: list[str]):
        self.p = planner
        self.ends = ends
        nodes = [b for n in nodes for b in binary_concats(planner, n)]
        self.index = {id(n): i for i, n in enumerate(nodes)}
        self.readers: dict[str, list[Node]] = {}
        for n in nodes:
            for t in dict.fromkeys(n.inputs):
                self.readers.setdefault(t, []).append(n)
        self.outputs: list[StreamEnd] = []
        self.on_side = False

    def run(self, starts: list[str]) -> None:
        """Walk from the first input; each further input (a period of the input stream, see
        :meth:`Planner.select_input`) is a side branch, a chain of layers ending at an output
        or at a join with the branch walked so far."""
        if len(starts) > 1:
            self.p.select_input(0)
        chains = {k: self.input_chain(start) for k, start in enumerate(starts) if k}
        t = starts[0]
        while True:
            end, join = self.walk(t)
            if join is None:
                break
            k = next((k for k, c in chains.items() if c[1] is join), None)
            if k is None:
                raise QfabError(f"node {join.name!r} ({join.op}): its inputs are not the two "
                                "ends of one fork; the hardware joins branches that start at "
                                "the same tensor or at two inputs")
            if self.p.pending_bias is not None:
                raise QfabError(f"tensor {end.tensor!r}: a branch must end quantized before "
                                f"{join.name!r}")
            side = self.input_side(k, starts[k], chains.pop(k)[0], ends_at_output=False)
            side.waits = True  # it streams only after the main branch's whole inference
            self.resume(end)
            self.p.skip_end = side
            self.plan_node(join)
            t = join.outputs[0]
        self.outputs.insert(0, self.close(end))
        for k, (nodes, join) in chains.items():
            if join is not None:
                raise QfabError(f"input {starts[k]!r} joins {join.name!r}, which the first "
                                "input's branch does not reach")
            self.outputs.append(self.input_side(k, starts[k], nodes, ends_at_output=True))
        missing = [t for t in self.ends if t not in {e.tensor for e in self.outputs}]
        if missing:
            raise QfabError(f"graph output {missing[0]!r} is not computed from the model "
                            "input's stream; build the others with --output-name")

    def input_chain(self, start: str) -> tuple[list[Node], Node | None]:
        readers = self.readers.get(start, [])
        chain = self.side_chain(readers[0], start) if len(readers) == 1 else None
        if chain is None:
            raise QfabError(f"input {start!r}: the hardware takes a further input only into "
                            "a chain of single-input layers ending at an output or a join; "
                            "build one output at a time with --output-name")
        return chain

    def input_side(self, k: int, start: str, nodes: list[Node],
                   ends_at_output: bool) -> StreamEnd:
        at = StreamEnd(start, -1, stream_order(self.p.t(start).shape), 1)
        return self.plan_side(at, nodes, ends_at_output, lead=lambda: self.p.select_input(k))

    # ---- the walk --------------------------------------------------------------------------
    def walk(self, t: str, node: Node | None = None) -> tuple[StreamEnd, Node | None]:
        """Plan from the stream of ``t`` (into ``node``, or into its readers) until an
        output with no more readers, or a join whose other input this walk does not make:
        that tensor's stream end and the join (None at an output)."""
        while True:
            if node is None:
                readers = self.readers.get(t, [])
                if t in self.ends:
                    if not readers:
                        return self.here(t), None
                    self.tap(t)
                if not readers:
                    raise QfabError(f"tensor {t!r} is computed and never used")
                if len(readers) > 1:
                    return self.fork(t, readers)
                node = readers[0]
            if is_join(node):
                return self.here(t), node
            self.plan_node(node)
            t, node = node.outputs[0], None

    def fork(self, t: str, readers: list[Node]) -> tuple[StreamEnd, Node | None]:
        """Plan the branches from ``t``: the main one, then each side where the main one
        reaches the side's join (or, for a side ending at an output, where the main one
        ends); the walk goes on after the last join. Where the main branch ended."""
        at = self.forkable(t, readers[0])
        chains = [self.side_chain(r, t) for r in readers]
        plain = [k for k, c in enumerate(chains) if c is not None]
        if len(plain) < len(readers) - 1:
            raise QfabError(f"tensor {t!r}: of its branches "
                            f"({', '.join(repr(r.name) for r in readers)}) only one may fork "
                            "or join again; the others must be chains of single-input layers")
        if len(plain) == len(readers):  # the main one: the first to a join, then the longest
            main = max(plain, key=lambda k: (-self.position(chains[k][1]), len(chains[k][0]),
                                             k == 0))
        else:
            main = next(k for k, c in enumerate(chains) if c is None)
        sides = [chains[k] for k in range(len(readers)) if k != main]
        end, join = self.walk(t, readers[main])
        while join is not None and any(j is join for _, j in sides):
            nodes, _ = next(c for c in sides if c[1] is join)
            sides = [c for c in sides if c[1] is not join]
            if self.p.pending_bias is not None:
                raise QfabError(f"tensor {end.tensor!r}: a branch must end quantized before "
                                f"{join.name!r}")
            side_end = self.plan_side(at, nodes, ends_at_output=False)
            self.resume(end)
            self.p.skip_end = side_end
            self.plan_node(join)
            end, join = self.walk(join.outputs[0])
        if any(j is not None for _, j in sides):
            stray = next(j for _, j in sides if j is not None)
            raise QfabError(f"tensor {t!r}: its branches end at different joins "
                            f"({stray.name!r} and {join.name if join else 'an output'!r})")
        if sides and join is None:
            end = self.close(end)
        elif sides and self.p.pending_bias is not None:
            raise QfabError(f"tensor {end.tensor!r}: a branch must end quantized before "
                            f"{join.name!r}")
        for nodes, _ in sides:  # heads of their own, each ending at an output
            self.outputs.append(self.plan_side(at, nodes, ends_at_output=True))
            self.resume(end)
        return end, join

    def position(self, node: Node | None) -> int:
        """Where ``node`` comes in the graph (an output: after every node)."""
        return len(self.index) if node is None else self.index[id(node)]

    def side_chain(self, node: Node, t: str) -> tuple[list[Node], Node | None] | None:
        """The plain chain from ``node`` (reading ``t``): its nodes and the join that ends
        it (None: it ends at an output), or None if it forks or joins on the way."""
        chain = []
        while not is_join(node):
            chain.append(node)
            t = node.outputs[0]
            readers = self.readers.get(t, [])
            if t in self.ends:
                return (chain, None) if not readers else None
            if len(readers) != 1:
                return None
            node = readers[0]
        return chain, node

    def plan_side(self, at: StreamEnd, nodes: list[Node], ends_at_output: bool,
                  lead: Callable[[], None] | None = None) -> StreamEnd:
        """Plan the side branch ``nodes`` from the forked stream ``at`` (after ``lead``'s
        stage, if any)."""
        p = self.p
        self.resume(at)
        first = len(p.stages)
        self.on_side = True
        if lead is not None:
            lead()
        for n in nodes:
            self.plan_node(n)
        end = nodes[-1].outputs[0] if nodes else at.tensor
        if ends_at_output:
            side_end = self.close(self.here(end))
        elif p.pending_bias is not None:
            raise QfabError(f"tensor {end!r}: a branch must end quantized before its join")
        else:
            side_end = self.here(end)
        self.on_side = False
        for s in p.stages[first:]:
            s.on_skip = True
        if len(p.stages) > first:
            p.stages[first].source = at.stage
        return side_end

    def tap(self, t: str) -> None:
        """``t`` is an output and feeds later layers: its stream is forked to the output."""
        self.forkable(t, None)
        self.outputs.append(self.here(t))

    # ---- stream state ----------------------------------------------------------------------
    def plan_node(self, node: Node) -> None:
        p = self.p
        p.check_mapped(node)
        before = len(p.stages)
        p.mappings[node.op](p, node)
        if len(p.stages) > before:
            if p.head != before - 1 and p.stages[before].source is None:
                p.stages[before].source = p.head
            p.head = len(p.stages) - 1
        p.current = node.outputs[0]

    def here(self, t: str) -> StreamEnd:
        return StreamEnd(t, self.p.head, self.p.order.copy(), self.p.elems)

    def resume(self, end: StreamEnd) -> None:
        p = self.p
        p.current, p.head, p.order, p.elems = end.tensor, end.stage, end.order.copy(), end.elems

    def close(self, end: StreamEnd) -> StreamEnd:
        """``end`` as an output: a raw accumulator gets its pending bias added first."""
        if self.p.pending_bias is None:
            return end
        self.resume(end)
        self.p.bias_stage(end.tensor)
        if self.on_side:
            self.p.stages[-1].on_skip = True
        self.p.head = len(self.p.stages) - 1
        return self.here(end.tensor)

    def forkable(self, t: str, node: Node | None) -> StreamEnd:
        """The stream end of ``t``, which is about to be forked, if the hardware can."""
        p = self.p
        what = f"node {node.name!r}: tensor {t!r}" if node is not None else f"output {t!r}"
        if self.on_side:
            raise QfabError(f"{what} forks inside a branch beside another; the hardware "
                            "forks a side branch only where it ends")
        if p.pending_bias is not None:
            raise QfabError(f"{what} is a raw accumulator whose bias the next layer adds; "
                            "the hardware forks only finished tensors")
        return self.here(t)
