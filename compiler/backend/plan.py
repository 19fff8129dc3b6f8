"""Plan: map the lowered IR onto a chain of hardware stages and choose their folding.

A stage is one IR op that does work (conv, dense, requant, threshold, clamp, maxpool, sumpool,
globalsum, add, concat); layout ops (reshape, transpose) cost nothing and only change the
order in which elements stream. Where the graph forks and joins (residual blocks, nested or
not, a Concat's branches, several outputs), ``topology.py`` walks it: the main branch in
line, the side branch's stages after it, reading the forked stream, then the join.
Each stage is a list of ``BlockSpec`` (an hw/ block and its keyword arguments), so the cost
model can read a plan without elaborating any hardware.

This module keeps the stream state and the folding; what each IR op becomes is its mapping's,
registered with ``@maps`` in a module of ``compiler/backend/mappings/`` (matrix-vector,
threshold, window and pool, elementwise, layout).

Streams carry tensors channels-last, pixel by pixel: ``order`` arrays map stream position to
the element's index in the IR's flattened (NCHW) tensor, and weights are permuted to match.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from amaranth.hdl import Shape, signed, unsigned
from qfab.compiler.backend.mappings import all_mappings
from qfab.compiler.backend.pipelining import DEFAULT as DEFAULT_PIPELINING
from qfab.compiler.backend.pipelining import Pipelining
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
    accelerator's input). A join's stage (a residual add, a Concat, a further output on the
    output stream) also has a ``skip`` path: the blocks (a FIFO, a width converter) that
    carry the output stream of stage ``skip_from`` to the join's second input. That stream
    is forked where the side branch starts; with layers on the side (a projection shortcut,
    a head), the side's own stages, marked ``on_skip``, come after the main branch's in
    ``HwPlan.stages``, the first reading the forked stream.
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
    # every output tensor, in the order they leave on the output stream (``output`` first):
    # ``out_order`` indexes their flattened tensors one after the other
    outputs: list[str] = field(default_factory=list)
    # every input's codes, in the order they arrive on the input stream (``input`` first)
    inputs: list[str] = field(default_factory=list)
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


def folded_cycles(mh: int, mw: int, vectors: int, pe: int, simd: int,
                  window: BlockSpec | None = None) -> int:
    """Cycles an inference of a MAC stage folded ``pe`` x ``simd``: its MVU's steps, or
    the pace of its sliding window ``window`` where slower (the window's beat is
    :func:`window_beat`'s; its own ``simd`` is ignored)."""
    cycles = vectors * (mh // pe) * (mw // simd)
    if window is not None:
        cycles = max(cycles, window_pace(window, *window_beat(window, simd, cycles)))
    return cycles


def window_beat(window: BlockSpec, simd: int, cycles: int | None) -> tuple[int, int]:
    """(channels, kernel columns) a beat of the sliding window ``window`` feeding an MVU of
    ``simd`` lanes that takes ``cycles`` an inference: ``gcd(channels, simd)`` channels and,
    where the MVU takes whole pixels a beat, the fewest neighbouring kernel columns that keep
    the window within ``cycles`` (else the most it can). ``cycles`` None (no cycle budget,
    a folding capped or given): one column."""
    c, kw = window.params["channels"], window.params["kernel"][1]
    wsimd = math.gcd(c, simd)
    if cycles is None or simd % c:
        return wsimd, 1
    taps = divisors(math.gcd(simd // c, kw))
    return wsimd, next((t for t in taps if window_pace(window, wsimd, t) <= cycles), taps[-1])


def window_pace(window: BlockSpec, simd: int, taps: int = 1) -> int:
    """Cycles an image takes the sliding window ``window`` at ``simd`` channels and ``taps``
    kernel columns a beat."""
    p = window.params
    return _window_pace(p["channels"], p["height"], p["width"], tuple(p["kernel"]),
                        tuple(p["stride"]), tuple(p["padding"]), bool(p.get("depthwise")),
                        p["elem_shape"], simd, taps)


@functools.lru_cache(maxsize=4096)
def _window_pace(channels, height, width, kernel, stride, padding, depthwise, elem_shape,
                 simd, taps) -> int:
    params = dict(channels=channels, height=height, width=width, kernel=kernel, stride=stride,
                  padding=padding, pad_value=0, elem_shape=elem_shape, simd=simd,
                  depthwise=depthwise, taps=taps)
    return block_cycles(BlockSpec("window", params, simd, simd * taps), 0)


def choose_folding(mh: int, mw: int, vectors: int, budget: int | None,
                   max_pe: int = DEFAULT_MAX_PE, max_simd: int = DEFAULT_MAX_SIMD,
                   window: BlockSpec | None = None) -> tuple:
    """(pe, simd): the fewest multipliers meeting ``budget`` cycles per inference, or the
    default limits when there is no budget. ``window``: the sliding window feeding the
    stage, whose pace bounds the stage's."""
    if budget is None:
        return _largest_divisor(mh, max_pe), _largest_divisor(mw, max_simd)
    options = sorted(((pe * simd, pe, simd) for pe in divisors(mh) for simd in divisors(mw)),
                     key=lambda o: (o[0], -o[2]))
    for _, pe, simd in options:
        if folded_cycles(mh, mw, vectors, pe, simd, window) <= budget:
            return pe, simd
    return mh, mw


def block_cycles(spec: BlockSpec, elements: int) -> int:
    """Steady-state cycles one inference keeps this block busy (it moves ``elements``
    input elements), from the block's own timing properties."""
    from qfab.compiler.backend.accelerator import make_block

    if spec.kind not in ("window", "maxpool", "avgpool", "mvu", "upsample"):
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
        self.double_buffered = False  # whether MVUs buffer two input vectors
        self.pipelining = DEFAULT_PIPELINING
        self.stages: list[Stage] = []
        self.order: np.ndarray | None = None
        self.elems = 1  # elements per beat of the stream so far
        self.pending_bias: np.ndarray | None = None  # integer added by the next stage
        self.current = ""  # the tensor the stream carries
        self.head = -1  # the stage whose output stream that is (-1: the input)
        self.skip_end = None  # a join's side branch (topology.StreamEnd), for its mapping
        self.mappings = all_mappings()
        self.extra: dict[str, Tensor] = {}  # tensors only the plan has (topology.py)

    def t(self, name: str) -> Tensor:
        return self.extra.get(name) or self.g.tensors[name]

    def folding(self, node: Node, mh: int, mw: int, vectors: int,
                window: BlockSpec | None = None) -> tuple[int, int]:
        """(pe, simd) of a MAC node: its entry in ``layer_folding`` (checked to divide the
        matrix), else :func:`choose_folding`'s (``window``: the sliding window feeding it)."""
        if node.name not in self.layer_folding:
            return choose_folding(mh, mw, vectors, self.budget, self.max_pe, self.max_simd,
                                  window)
        pe, simd = self.layer_folding[node.name]
        if pe < 1 or simd < 1 or mh % pe or mw % simd:
            raise QfabError(f"node {node.name!r}: folding pe={pe}, simd={simd} does not divide "
                            f"its {mh} x {mw} matrix")
        return pe, simd

    def plan(self) -> HwPlan:
        from qfab.compiler.backend.mappings.joins import sequence_outputs
        from qfab.compiler.backend.topology import Walk

        g = self.g
        for n in g.nodes:
            if n.op == "dynamic_quantize":
                raise QfabError(f"node {n.name!r} (DynamicQuantizeLinear): the hardware cannot "
                                "compute a quantization scale from the data at run time; it "
                                "needs static scales (the reference runs this model)")
        nodes = list(g.nodes)
        self.starts = []  # each input's codes: the graph input, or its quantizer's output
        for name in g.inputs:
            readers = [n for n in nodes if name in n.inputs]
            if len(readers) == 1 and readers[0].op == "quantize":
                nodes.remove(readers[0])
                name = readers[0].outputs[0]
            self.starts.append(name)
        nodes, ends, tail = split_tail(g, nodes)
        start = self.starts[0]
        self.current = start
        self.order = stream_order(self.t(start).shape)
        walk = Walk(self, nodes, ends)
        walk.run(self.starts)
        if not self.stages:
            raise QfabError("the model has no layer to put in hardware")
        outputs = walk.outputs
        if len(outputs) > 1:
            out_shape = sequence_outputs(self, outputs)
        else:
            out_shape = self.stream_shape(outputs[0].stage)
        first_elems = self.stages[0].blocks[0].in_elems
        head = self.stages[0].blocks
        if head[0].kind == "widthconv" and len(head) > 1 and not any(
                s.source == -1 or (s.skip and s.skip_from == -1) for s in self.stages[1:]):
            # Feed the first block at its own width instead of regrouping a narrow input.
            first_elems = head.pop(0).out_elems
            s0 = self.stages[0]
            self.finish_stage(self.t(s0.input), self.t(s0.output), stage=s0)
        if len(outputs) == 1 and outputs[0].stage == len(self.stages) - 1:
            from qfab.compiler.backend.fuse import fuse_unrolled

            self.stages = fuse_unrolled(self.stages)
        if self.pipelining.edge_slices:
            from qfab.compiler.backend.slices import with_slices

            with_slices(self.stages, self.in_shape(), first_elems)
        in_order, size = [], 0
        for name in self.starts:
            in_order.append(stream_order(self.t(name).shape) + size)
            size += int(np.prod(self.t(name).shape[1:]))
        return HwPlan(graph=g, stages=self.stages, input=start, output=outputs[0].tensor,
                      in_shape=self.in_shape(), out_shape=out_shape,
                      in_elems=first_elems, out_elems=self.elems,
                      in_order=np.concatenate(in_order), out_order=self.order,
                      tail=tail, outputs=[e.tensor for e in outputs], inputs=self.starts)

    def in_shape(self) -> Shape:
        """The input stream's element shape: one that holds every input's codes."""
        from qfab.compiler.backend.mappings.joins import holding

        shapes = [element_shape(self.t(name).fmt) for name in self.starts]
        return shapes[0] if len(shapes) == 1 else functools.reduce(holding, shapes)

    def select_input(self, k: int) -> None:
        """The stage that takes input ``k``'s period of the input stream (one element a
        beat, the inputs one after the other) and drops the others'."""
        sizes = [int(np.prod(self.t(name).shape[1:])) for name in self.starts]
        t = self.t(self.starts[k])
        self.stages.append(Stage(f"input_{self.starts[k]}", "input", [BlockSpec("select", dict(
            in_shape=self.in_shape(), out_shape=element_shape(t.fmt), n=1, period=sum(sizes),
            first=sum(sizes[:k]), count=sizes[k]), 1, 1)], in_beats=sum(sizes),
            out_beats=sizes[k], cycles=sum(sizes), input=t.name, output=t.name,
            source=-1 if k else None))
        self.head = len(self.stages) - 1

    def check_mapped(self, node: Node) -> None:
        """A one-line error unless ``node``'s op has a hardware mapping."""
        if node.op not in self.mappings and is_tail_op(node.op):
            raise QfabError(f"node {node.name!r} ({node.op}) runs on the control core, "
                            "after the accelerator; only at the model's end, not before "
                            "more layers")
        if node.op not in self.mappings:
            raise QfabError(f"node {node.name!r}: op {node.op!r} has no hardware block yet "
                            f"(supported: {', '.join(self.mappings)})")
        if node.op not in ("add", "concat") and node.inputs != [self.current]:
            raise QfabError(f"node {node.name!r} ({node.op}): the hardware backend maps "
                            "chains of single-input layers, forks and joins; this graph "
                            "branches otherwise")

    def stream_shape(self, stage: int) -> Shape:
        """The element shape of stage ``stage``'s output stream."""
        last = self.stages[stage].blocks[-1]
        if last.kind == "minifloat_requant":
            return unsigned(last.params["fmt"].bits)
        if last.kind in SUM_KINDS:
            return sum_out_shape(last)
        if last.kind in ("maxpool", "upsample"):  # codes picked from those arriving
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
            raise QfabError(f"node {node.name!r}: per-channel op on a re-ordered tensor (a "
                            "Transpose before it that no later one undoes; the hardware "
                            "streams channels-last and takes transposes only at the input "
                            "and before a Flatten)")

    def finish_stage(self, in_t: Tensor, out_t: Tensor, stage: Stage | None = None) -> None:
        s = stage or self.stages[-1]
        s.input, s.output = in_t.name, out_t.name
        if self.pipelining.window_register:
            for b in s.blocks:
                if b.kind in ("window", "maxpool", "avgpool"):
                    b.params["registered_read"] = True
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

        last = self.stages[self.head].blocks[-1] if self.head >= 0 else None
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
        return self.head >= 0 and self.stages[self.head].blocks[-1].kind == "cmvm"

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

    def bias_stage(self, name: str) -> None:
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
         layer_folding: dict[str, tuple[int, int]] | None = None,
         double_buffered: bool = False, pipelining: Pipelining = DEFAULT_PIPELINING) -> HwPlan:
    """Map a lowered graph to hardware stages. With ``target_fps`` every MAC stage gets the
    fewest multipliers that meet ``clock_hz / target_fps`` cycles per inference (or, with
    ``budget_cycles``, that many cycles); otherwise at most ``max_pe`` x ``max_simd``.
    ``layer_folding`` (MAC node name -> (pe, simd)) overrides that choice per layer.
    ``double_buffered``: matrix-vector units buffer two input vectors (hw/mvu.py).
    ``pipelining``: how deep the blocks register their logic (:mod:`.pipelining`)."""
    budget = budget_cycles
    if target_fps is not None:
        budget = target_cycles(target_fps, None, clock_hz)
    for name, value in (("--max-pe", max_pe), ("--max-simd", max_simd)):
        if value < 1:
            raise QfabError(f"{name} must be at least 1, not {value}")
    planner = Planner(graph, budget, max_pe, max_simd, layer_folding)
    planner.double_buffered = double_buffered
    planner.pipelining = pipelining
    p = planner.plan()
    p.clock_hz = clock_hz
    return p
