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
from qfab.compiler.ir import Node

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


def is_join(node: Node) -> bool:
    return node.op in JOIN_OPS and len(set(node.inputs)) >= 2


class Walk:
    """Plans ``nodes`` (the accelerator's, in graph order) onto ``planner`` from its input
    to the output tensors ``ends``; ``outputs`` gathers every output's stream end in the
    order they leave."""

    def __init__(self, planner: Planner, nodes: list[Node], ends: list[str]):
        self.p = planner
        self.ends = ends
        self.readers: dict[str, list[Node]] = {}
        for n in nodes:
            for t in dict.fromkeys(n.inputs):
                self.readers.setdefault(t, []).append(n)
        self.outputs: list[StreamEnd] = []
        self.on_side = False

    def run(self, starts: list[str]) -> None:
        """Walk from the first input; each further input (a period of the input stream, see
        :meth:`Planner.select_input`) is a side branch that must end at an output."""
        if len(starts) > 1:
            self.p.select_input(0)
        end, join = self.walk(starts[0])
        if join is not None:
            raise QfabError(f"node {join.name!r} ({join.op}): its inputs are not the two "
                            "ends of one fork; the hardware joins branches that start at "
                            "the same tensor")
        self.outputs.insert(0, self.close(end))
        for k, start in enumerate(starts[1:], start=1):
            readers = self.readers.get(start, [])
            chain = self.side_chain(readers[0], start) if len(readers) == 1 else None
            if chain is None or chain[1] is not None:
                raise QfabError(f"input {start!r}: the hardware takes a further input only "
                                "into a chain of single-input layers ending at an output; "
                                "build one output at a time with --output-name")
            at = StreamEnd(start, -1, stream_order(self.p.t(start).shape), 1)
            self.outputs.append(self.plan_side(at, chain[0], True,
                                               lead=lambda k=k: self.p.select_input(k)))
        missing = [t for t in self.ends if t not in {e.tensor for e in self.outputs}]
        if missing:
            raise QfabError(f"graph output {missing[0]!r} is not computed from the model "
                            "input's stream; build the others with --output-name")

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
                if len(readers) > 2:
                    raise QfabError(f"tensor {t!r} feeds {len(readers)} layers "
                                    f"({', '.join(n.name for n in readers)}); the hardware "
                                    "forks a stream into two branches")
                if not readers:
                    raise QfabError(f"tensor {t!r} is computed and never used")
                if len(readers) == 2:
                    after = self.fork(t, readers)
                    if isinstance(after, tuple):
                        return after
                    t = after
                    continue
                node = readers[0]
            if is_join(node):
                return self.here(t), node
            self.plan_node(node)
            t, node = node.outputs[0], None

    def fork(self, t: str, readers: list[Node]) -> str | tuple[StreamEnd, Node | None]:
        """Plan both branches from ``t`` and their join: the tensor the join makes, or,
        when the side ends at an output, where the main branch ended."""
        at = self.forkable(t, readers[0])
        chains = [self.side_chain(r, t) for r in readers]
        if all(c is None for c in chains):
            raise QfabError(f"tensor {t!r}: neither of its branches ({readers[0].name!r}, "
                            f"{readers[1].name!r}) is a chain of single-input layers; the "
                            "hardware maps a branch that forks again only beside a plain one")
        # the side is the shorter plain chain (the later reader on a tie)
        side = min((k for k in (0, 1) if chains[k] is not None),
                   key=lambda k: (len(chains[k][0]), -k))
        nodes, side_join = chains[side]
        main_end, main_join = self.walk(t, readers[1 - side])
        if side_join is not None and main_join is not side_join:
            raise QfabError(f"tensor {t!r}: its branches end at different joins "
                            f"({side_join.name!r} and "
                            f"{main_join.name if main_join else 'an output'!r})")
        if main_join is None:
            main_end = self.close(main_end)
        elif self.p.pending_bias is not None:
            raise QfabError(f"tensor {main_end.tensor!r}: a branch must end quantized "
                            f"before {main_join.name!r}")
        side_end = self.plan_side(at, nodes, ends_at_output=side_join is None)
        self.resume(main_end)
        if side_join is None:
            self.outputs.append(side_end)
            return main_end, main_join
        self.p.skip_end = side_end
        self.plan_node(side_join)
        return side_join.outputs[0]

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
        if p.head < 0:
            raise QfabError(f"{what}: the branch starts at the model input; the hardware "
                            "forks a stream only after a layer")
        if p.pending_bias is not None:
            raise QfabError(f"{what} is a raw accumulator whose bias the next layer adds; "
                            "the hardware forks only finished tensors")
        return self.here(t)
