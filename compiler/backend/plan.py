"""Plan: map the lowered IR onto a chain of hardware stages and choose their folding.

A stage is one IR op that does work (conv, dense, requant, threshold, clamp, maxpool, sumpool,
globalsum, add); layout ops (reshape, transpose) cost nothing and only change the order in
which elements stream. A residual block's two branches are chains too: the main one in line,
the shortcut's stages (if any) after it, reading the stream forked where the block starts.
Each stage is a list of ``BlockSpec`` (an hw/ block and its keyword arguments), so the cost
model can read a plan without elaborating any hardware.

This module keeps the stream state and the folding; what each IR op becomes is its mapping's,
registered with ``@maps`` in a module of ``compiler/backend/mappings/`` (matrix-vector,
threshold, window and pool, elementwise, layout).

Streams carry tensors channels-last, pixel by pixel: ``order`` arrays map stream position to
the element's index in the IR's flattened (NCHW) tensor, and weights are permuted to match.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from amaranth.hdl import Shape, signed, unsigned
from qfab.compiler.backend.mappings import all_mappings
from qfab.compiler.backend.tail import is_tail_op, split_tail
from qfab.compiler.ir import Acc, Graph, Node, Tensor
from qfab.numerics import FixedFormat, IntFormat, MinifloatFormat

from qfab.errors import QfabError

SUM_KINDS = ("avgpool", "globalavgpool")  # blocks that emit raw sums, not codes
DEFAULT_MAX_PE = 4
DEFAULT_MAX_SIMD = 8


@dataclass
class BlockSpec:
    """One hw/ block: ``kind`` names the class, ``params`` are its keyword arguments."""

    kind: str
    params: dict[str, Any]
    in_elems: int
    out_elems: int


@dataclass
class Stage:
    """The hardware for one IR op. Beats and cycles are per inference.

    A stage reads the output stream of stage ``source`` (None: the stage before it; -1 is the
    accelerator's input). A residual add's stage also has a ``skip`` path: the blocks (a FIFO,
    a width converter) that carry the output stream of stage ``skip_from`` to the add's
    second input. That stream is forked where the skip starts; with a layer on the skip path
    (a projection shortcut), the skip's own stages, marked ``on_skip``, come after the main
    path's in ``HwPlan.stages``, the first reading the forked stream.
    """

    name: str
    op: str
    blocks: list[BlockSpec]
    in_beats: int
    out_beats: int
    cycles: int
    folding: dict[str, int] = field(default_factory=dict)
    macs: int = 0
    input: str = ""
    output: str = ""
    skip: list[BlockSpec] = field(default_factory=list)
    skip_from: int = -1
    source: int | None = None
    on_skip: bool = False


@dataclass
class _MainEnd:
    """The main branch of a residual block where the planner left it for the shortcut."""

    tensor: str
    order: np.ndarray
    elems: int
    last_stage: int


@dataclass
class _Fork:
    """A tensor the chain streams on and a residual add takes again later; once the planner
    is on the skip path, where the main path stopped."""

    tensor: str
    stage: int  # the stage whose output stream is forked
    order: np.ndarray
    elems: int
    main: _MainEnd | None = None  # where the main path stopped, once on the skip path
    first_skip: int | None = None  # index of the skip path's first stage


def residual_order(nodes: list[Node]) -> list[Node]:
    """``nodes`` with each residual block's nodes together: its longer branch, its shorter
    one (the skip path, maybe empty), then the add. A branch must be a chain of single-input
    nodes each read once; anything else keeps its place (and is refused by the planner)."""
    readers: dict[str, list[Node]] = {}
    for n in nodes:
        for t in n.inputs:
            readers.setdefault(t, []).append(n)
    out = list(nodes)
    for fork_t, users in readers.items():
        if len(users) != 2 or any(n.op == "add" and len(set(n.inputs)) == 1 for n in users):
            continue
        walks = [_branch(u, fork_t, readers) for u in users]
        if any(w is None for w in walks) or walks[0][1] is not walks[1][1]:
            continue
        (a, add), (b, _) = walks
        main, skip = (a, b) if len(a) >= len(b) else (b, a)
        block = main + skip + [add]
        ids = {id(n) for n in block}
        at = min(out.index(n) for n in block)
        rest = [n for n in out if id(n) not in ids]
        out = rest[:at] + block + rest[at:]
    return out


def _branch(node: Node, tensor: str, readers) -> tuple[list[Node], Node] | None:
    """The chain from ``node`` (which reads ``tensor``) to the two-input add that ends it."""
    chain = []
    while not (node.op == "add" and len(node.inputs) == 2):
        if node.inputs != [tensor] or len(readers.get(node.outputs[0], [])) != 1:
            return None
        chain.append(node)
        tensor = node.outputs[0]
        node = readers[tensor][0]
    return chain, node


@dataclass
class HwPlan:
    graph: Graph
    stages: list[Stage]
    input: str
    output: str
    in_shape: Shape
    out_shape: Shape
    in_elems: int
    out_elems: int
    in_order: np.ndarray
    out_order: np.ndarray
    clock_hz: float = 100e6
    # IR nodes after the accelerator's output that the SoC's control core runs (tail.py)
    tail: list[Node] = field(default_factory=list)
    # figures derived from the plan, kept by who computes them (the cycle model's runs)
    derived: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def in_beats(self) -> int:
        return self.in_order.size // self.in_elems

    @property
    def out_beats(self) -> int:
        return self.out_order.size // self.out_elems

    @property
    def ii_cycles(self) -> int:
        """Initiation interval: the slowest stage's cycles per inference."""
        return max(s.cycles for s in self.stages)


def element_shape(fmt) -> Shape:
    if isinstance(fmt, Acc):
        return signed(fmt.bits)
    if isinstance(fmt, IntFormat | FixedFormat):
        return signed(fmt.bits) if fmt.signed else unsigned(fmt.bits)
    if hasattr(fmt, "exp_bits"):
        return unsigned(fmt.bits)
    raise QfabError(f"format {fmt} has no hardware representation yet")


def sum_out_shape(spec: BlockSpec) -> Shape:
    """Element shape of the raw sums an avgpool or globalavgpool block emits."""
    from qfab.hw.pool import sum_shape

    p = spec.params
    terms = p["kernel"][0] * p["kernel"][1] if spec.kind == "avgpool" else p["height"] * p["width"]
    return sum_shape(Shape.cast(p["elem_shape"]), terms)


def stream_order(shape: tuple[int, ...]) -> np.ndarray:
    """NCHW (or NCL, a 1-D convolution's) per-sample flat indices in channels-last streaming
    order: position by position, channels fastest."""
    per_sample = shape[1:]
    n = int(np.prod(per_sample))
    if len(per_sample) in (2, 3):
        c = per_sample[0]
        return np.arange(n).reshape(c, n // c).T.ravel()
    return np.arange(n)


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _largest_divisor(n: int, limit: int) -> int:
    return max(d for d in divisors(n) if d <= limit)


def choose_folding(mh: int, mw: int, vectors: int, budget: int | None,
                   max_pe: int = DEFAULT_MAX_PE, max_simd: int = DEFAULT_MAX_SIMD) -> tuple:
    """(pe, simd): the fewest multipliers meeting ``budget`` cycles per inference, or the
    default limits when there is no budget."""
    if budget is None:
        return _largest_divisor(mh, max_pe), _largest_divisor(mw, max_simd)
    options = sorted(((pe * simd, pe, simd) for pe in divisors(mh) for simd in divisors(mw)),
                     key=lambda o: (o[0], -o[2]))
    for _, pe, simd in options:
        if vectors * (mh // pe) * (mw // simd) <= budget:
            return pe, simd
    return mh, mw


def block_cycles(spec: BlockSpec, elements: int) -> int:
    """Steady-state cycles one inference keeps this block busy (it moves ``elements``
    input elements), from the block's own timing properties."""
    from qfab.compiler.backend.accelerator import make_block

    if spec.kind not in ("window", "maxpool", "avgpool", "mvu"):
        return max(elements // spec.in_elems, 1)
    blk = make_block(spec)
    blk._MustUse__silence = True  # asked for its timing only, never elaborated
    if spec.kind == "mvu":
        return elements // blk.mw * blk.cycles_per_vector
    return blk.cycles_per_image


class Planner:
    """Walks the IR nodes in stream order and hands each to its mapping; keeps what the
    stream is between stages (``order``, ``elems``, ``pending_bias``, the open ``fork``)."""

    def __init__(self, graph: Graph, budget: int | None, max_pe: int, max_simd: int,
                 layer_folding: dict[str, tuple[int, int]] | None = None):
        self.g = graph
        self.budget = budget
        self.max_pe, self.max_simd = max_pe, max_simd
        self.layer_folding = dict(layer_folding or {})
        self.stages: list[Stage] = []
        self.order: np.ndarray | None = None
        self.elems = 1  # elements per beat of the stream so far
        self.pending_bias: np.ndarray | None = None  # integer added by the next stage
        self.fork: _Fork | None = None  # the open skip connection, if any
        self.consumers: dict[str, int] = {}

    def t(self, name: str) -> Tensor:
        return self.g.tensors[name]

    def folding(self, node: Node, mh: int, mw: int, vectors: int) -> tuple[int, int]:
        """(pe, simd) of a MAC node: its entry in ``layer_folding`` (checked to divide the
        matrix), else :func:`choose_folding`'s."""
        if node.name not in self.layer_folding:
            return choose_folding(mh, mw, vectors, self.budget, self.max_pe, self.max_simd)
        pe, simd = self.layer_folding[node.name]
        if pe < 1 or simd < 1 or mh % pe or mw % simd:
            raise QfabError(f"node {node.name!r}: folding pe={pe}, simd={simd} does not divide "
                            f"its {mh} x {mw} matrix")
        return pe, simd

    def plan(self) -> HwPlan:
        g = self.g
        for n in g.nodes:
            if n.op == "dynamic_quantize":
                raise QfabError(f"node {n.name!r} (DynamicQuantizeLinear): the hardware cannot "
                                "compute a quantization scale from the data at run time; it "
                                "needs static scales (the reference runs this model)")
        if len(g.inputs) != 1:
            raise QfabError(f"the hardware backend handles one input (model has "
                            f"{len(g.inputs)}); build one output of {', '.join(g.outputs)} "
                            "on its own with --output-name")
        mappings = all_mappings()
        nodes = list(g.nodes)
        start = g.inputs[0]
        if nodes and nodes[0].op == "quantize":
            start = nodes.pop(0).outputs[0]
        nodes, end, tail = split_tail(g, nodes)
        current = start
        self.order = stream_order(self.t(start).shape)
        self.elems = 1
        first_elems = None
        for node in nodes:
            for name in node.inputs:
                self.consumers[name] = self.consumers.get(name, 0) + 1
        for node in residual_order(nodes):
            if node.op not in mappings and is_tail_op(node.op):
                raise QfabError(f"node {node.name!r} ({node.op}) runs on the control core, "
                                "after the accelerator; only at the model's end, not before "
                                "more layers")
            if node.op not in mappings:
                raise QfabError(f"node {node.name!r}: op {node.op!r} has no hardware block yet "
                                f"(supported: {', '.join(mappings)})")
            fork = self.fork
            if fork is not None and fork.main is None and current != fork.tensor \
                    and node.inputs == [fork.tensor]:
                current = self._enter_skip(current)
            if node.op == "add" and current in node.inputs:
                self._open_fork_check(node, current)
            elif node.inputs != [current]:
                raise QfabError(f"node {node.name!r} ({node.op}): the hardware backend maps "
                                "chains of single-input layers and residual blocks; this "
                                "graph branches otherwise")
            if self.consumers.get(current, 0) > 1 and (fork is None
                                                         or fork.tensor != current):
                self._fork(node, current)
            before = len(self.stages)
            mappings[node.op](self, node)
            if self.fork is not None and self.fork.main is not None:
                for s in self.stages[before:]:
                    s.on_skip = True
                if before == self.fork.first_skip and len(self.stages) > before:
                    self.stages[before].source = self.fork.stage
            if first_elems is None and self.stages:
                first_elems = self.stages[0].blocks[0].in_elems
            current = node.outputs[0]
        if current != end:
            raise QfabError(f"graph output {end!r} is not the end of the layer chain")
        if self.pending_bias is not None:
            self._bias_stage(current)
        if not self.stages:
            raise QfabError("the model has no layer to put in hardware")
        head = self.stages[0].blocks
        if head[0].kind == "widthconv" and len(head) > 1:
            # Feed the first block at its own width instead of regrouping a narrow input.
            first_elems = head.pop(0).out_elems
            s0 = self.stages[0]
            self.finish_stage(self.t(s0.input), self.t(s0.output), stage=s0)
        return HwPlan(graph=g, stages=self.stages, input=start, output=end,
                      in_shape=element_shape(self.t(start).fmt),
                      out_shape=self._out_shape(end),
                      in_elems=first_elems, out_elems=self.elems,
                      in_order=stream_order(self.t(start).shape), out_order=self.order,
                      tail=tail)

    def _out_shape(self, name: str) -> Shape:
        last = self.stages[-1].blocks[-1]
        if last.kind == "minifloat_requant":
            return unsigned(last.params["fmt"].bits)
        if last.kind in SUM_KINDS:
            return sum_out_shape(last)
        if last.kind == "maxpool":  # the largest of the codes arriving: their own shape
            return Shape.cast(last.params["elem_shape"])
        return Shape.cast(last.params.get("out_shape") or last.params["acc_shape"])

    # ---- for the mappings (compiler/backend/mappings/) ----------------------------------
    def adapt(self, blocks: list[BlockSpec], elem_shape: Shape, want: int) -> None:
        """Regroup the stream to ``want`` elements a beat if it is not already."""
        if self.elems != want:
            blocks.append(BlockSpec("widthconv", dict(elem_shape=elem_shape, n_in=self.elems,
                                                      n_out=want), self.elems, want))
            self.elems = want

    def channels(self, t: Tensor) -> int:
        return t.shape[1] if len(t.shape) in (3, 4) else int(np.prod(t.shape[1:]))

    def take_bias(self, channels: int) -> np.ndarray:
        b = self.pending_bias
        self.pending_bias = None
        return np.zeros(channels, np.int64) if b is None else b

    def per_channel(self, v, channels: int) -> np.ndarray:
        return np.broadcast_to(np.asarray(v, np.int64).reshape(-1), (channels,)).copy() \
            if np.size(v) in (1, channels) else None

    def check_channel_order(self, node: Node, t: Tensor) -> None:
        if not np.array_equal(self.order, stream_order(t.shape)):
            raise QfabError(f"node {node.name!r}: per-channel op on a re-ordered tensor")

    def finish_stage(self, in_t: Tensor, out_t: Tensor, stage: Stage | None = None) -> None:
        s = stage or self.stages[-1]
        s.input, s.output = in_t.name, out_t.name
        n_in = int(np.prod(in_t.shape[1:]))
        s.in_beats = n_in // s.blocks[0].in_elems
        s.out_beats = int(np.prod(out_t.shape[1:])) // s.blocks[-1].out_elems
        # The slowest block sets the stage's pace; each block sees the elements entering it.
        elements, busiest = n_in, 0
        for b in s.blocks:
            busiest = max(busiest, block_cycles(b, elements))
            if b.kind == "window":
                k = b.params["kernel"]
                out_h = (b.params["height"] + b.params["padding"][0] + b.params["padding"][2]
                         - k[0]) // b.params["stride"][0] + 1
                out_w = (b.params["width"] + b.params["padding"][1] + b.params["padding"][3]
                         - k[1]) // b.params["stride"][1] + 1
                elements = out_h * out_w * k[0] * k[1] * b.params["channels"]
        s.cycles = max(busiest, s.in_beats)

    def _fork(self, node: Node, name: str) -> None:
        """``name`` streams on into ``node`` and is taken again by a later residual add."""
        if self.fork is not None:
            raise QfabError(f"node {node.name!r}: tensor {name!r} starts a skip connection "
                            f"while the one from {self.fork.tensor!r} is still open; nested "
                            "residual adds have no hardware mapping yet")
        if self.consumers[name] != 2 or node.op == "add":
            raise QfabError(f"node {node.name!r}: tensor {name!r} feeds "
                            f"{self.consumers[name]} layers; the hardware forks a stream "
                            "only into a residual block and its add")
        if not self.stages:
            raise QfabError(f"node {node.name!r}: the skip connection starts at the model "
                            "input; the hardware forks a stream only after a layer")
        t = self.t(name)
        if self.pending_bias is not None or not isinstance(t.fmt, IntFormat):
            raise QfabError(f"node {node.name!r}: a skip connection of {t.fmt} values has no "
                            "hardware mapping yet")
        self.fork = _Fork(name, len(self.stages) - 1, self.order.copy(), self.elems)

    def _enter_skip(self, current: str) -> str:
        """Leave the main path at ``current`` and plan the skip path from the fork."""
        f = self.fork
        if self.pending_bias is not None:
            raise QfabError(f"tensor {current!r}: a residual branch must end quantized")
        f.main = _MainEnd(current, self.order, self.elems, len(self.stages) - 1)
        f.first_skip = len(self.stages)
        self.order, self.elems = f.order.copy(), f.elems
        return f.tensor

    def _open_fork_check(self, node: Node, current: str) -> None:
        other = [n for n in node.inputs if n != current]
        f = self.fork
        joined = f is not None and other == [f.tensor if f.main is None else f.main.tensor]
        if not joined:
            raise QfabError(f"node {node.name!r} (add): its inputs are not the two ends of "
                            "one residual block; the hardware maps residual blocks whose "
                            "branches are chains of layers")

    def elementwise(self, node: Node, block: BlockSpec) -> None:
        in_t, out_t = self.t(node.inputs[0]), self.t(node.outputs[0])
        self.check_channel_order(node, in_t)
        pixels = int(np.prod(in_t.shape[1:])) // self.channels(in_t)
        self.stages.append(Stage(node.name, node.op, [block], 0, 0,
                                 cycles=pixels * self.channels(in_t) // block.in_elems))
        self.finish_stage(in_t, out_t)

    def raw_shape(self) -> Shape | None:
        """The element shape of the raw sums arriving (an MVU's, a depthwise MAC's or a
        pool's), if any."""
        from qfab.hw.depthwise import depthwise_acc_shape

        last = self.stages[-1].blocks[-1] if self.stages else None
        if last is not None and last.kind in ("mvu", "cmvm"):
            return last.params["acc_shape"]
        if last is not None and last.kind == "depthwise":
            return depthwise_acc_shape(last.params["weights"], last.params["in_shape"])
        if last is not None and last.kind in SUM_KINDS:
            return sum_out_shape(last)
        return None

    def after_adder_graph(self) -> bool:
        """Whether the raw sums arriving come from an adder graph (a fully unrolled layer,
        whose constants all go to logic, its scale's too)."""
        return bool(self.stages) and self.stages[-1].blocks[-1].kind == "cmvm"

    def input_shape(self, node: Node) -> Shape:
        """The element shape arriving: the raw sums of the MVU or pool before, or codes."""
        raw = self.raw_shape()
        if raw is not None:
            return raw
        fmt = self.t(node.inputs[0]).fmt
        if isinstance(fmt, MinifloatFormat):  # sign-magnitude codes: not integers to compare
            raise QfabError(f"node {node.name!r}: {node.op} of {fmt} codes has no hardware "
                            "block yet")
        return element_shape(fmt)

    def _bias_stage(self, name: str) -> None:
        t = self.t(name)
        c = self.channels(t)
        self.stages.append(Stage(name + "_bias", "bias", [BlockSpec("requant", dict(
            acc_shape=self.raw_shape(), channels=c,
            pe=self.elems, bias=self.take_bias(c), mult=1, shift=0, zero_point=0,
            out_shape=element_shape(t.fmt)), self.elems, self.elems)], 0, 0,
            cycles=int(np.prod(t.shape[1:])) // self.elems))
        self.finish_stage(t, t)


def target_cycles(target_fps: float | None, target_ii: int | None,
                  clock_hz: float) -> int | None:
    """The cycles per inference asked for by ``--target-fps`` or ``--target-ii``, if any."""
    if target_fps is not None and target_ii is not None:
        raise QfabError("--target-fps and --target-ii both ask for a speed; give one")
    if target_ii is not None:
        if isinstance(target_ii, bool) or not isinstance(target_ii, int) or target_ii < 1:
            raise QfabError(f"--target-ii must be a whole number of cycles >= 1, "
                            f"not {target_ii}")
        return target_ii
    if target_fps is None:
        return None
    if not target_fps > 0 or target_fps == float("inf"):
        raise QfabError(f"--target-fps must be a positive number, not {target_fps}")
    return max(int(clock_hz // target_fps), 1)


def plan(graph: Graph, *, target_fps: float | None = None, clock_hz: float = 100e6,
         max_pe: int = DEFAULT_MAX_PE, max_simd: int = DEFAULT_MAX_SIMD,
         budget_cycles: int | None = None,
         layer_folding: dict[str, tuple[int, int]] | None = None) -> HwPlan:
    """Map a lowered graph to hardware stages. With ``target_fps`` every MAC stage gets the
    fewest multipliers that meet ``clock_hz / target_fps`` cycles per inference (or, with
    ``budget_cycles``, that many cycles); otherwise at most ``max_pe`` x ``max_simd``.
    ``layer_folding`` (MAC node name -> (pe, simd)) overrides that choice per layer."""
    budget = budget_cycles
    if target_fps is not None:
        budget = target_cycles(target_fps, None, clock_hz)
    for name, value in (("--max-pe", max_pe), ("--max-simd", max_simd)):
        if value < 1:
            raise QfabError(f"{name} must be at least 1, not {value}")
    p = Planner(graph, budget, max_pe, max_simd, layer_folding).plan()
    p.clock_hz = clock_hz
    return p
