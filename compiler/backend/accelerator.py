"""The accelerator top: the plan's blocks chained by streams, with per-stage activity.

A residual block, a Concat's branches or an output taken from the middle of the chain start
at a fork of a stage's output stream: a beat leaves when all its takers are ready (the main
path, and each skip path's stages or its FIFO). The FIFO before a join holds a whole
inference of the skip, so the fork never waits on it for long. Several outputs leave on one
stream, one after the other (``StreamConcat``); the plan says where each begins.
"""

from __future__ import annotations

from typing import Any

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from qfab.compiler.backend.plan import BlockSpec, HwPlan

__all__ = ["Accelerator", "make_block"]


def make_block(spec: BlockSpec) -> wiring.Component:
    """Instantiate the hw/ block a spec names."""
    p = dict(spec.params)
    if spec.kind == "mvu":
        from qfab.hw.mvu import MatrixVectorUnit
        from qfab.hw.xnor_mvu import XnorPopcountUnit, is_xnor

        return (XnorPopcountUnit if is_xnor(p.get("multiplier")) else MatrixVectorUnit)(**p)
    if spec.kind == "cmvm":
        from qfab.hw.cmvm import ConstantMatrixVectorUnit

        return ConstantMatrixVectorUnit(**p)
    if spec.kind == "unrolled":
        from qfab.hw.unrolled import UnrolledPipeline

        return UnrolledPipeline(**p)
    if spec.kind == "add":
        from qfab.hw.eltwise import ResidualAdd

        return ResidualAdd(**p)
    if spec.kind == "concat":
        from qfab.hw.concat import StreamConcat

        return StreamConcat(**p)
    if spec.kind == "select":
        from qfab.hw.select import StreamSelect

        return StreamSelect(**p)
    if spec.kind == "fifo":
        from qfab.hw.fifo import StreamFIFO

        return StreamFIFO(payload_shape=data.ArrayLayout(p["elem_shape"], p["n"]),
                          depth=p["depth"])
    if spec.kind == "slice":
        from qfab.hw.slice import RegisterSlice

        return RegisterSlice(**p)
    if spec.kind == "depthwise":
        from qfab.hw.depthwise import DepthwiseUnit

        return DepthwiseUnit(**p)
    if spec.kind == "window":
        from qfab.hw.window import SlidingWindow

        return SlidingWindow(**p)
    if spec.kind == "requant":
        from qfab.hw.requant import Requantizer

        return Requantizer(**p)
    if spec.kind == "minifloat_requant":
        from qfab.hw.minifloat_requant import MinifloatRequantizer

        return MinifloatRequantizer(**p)
    if spec.kind == "threshold":
        from qfab.hw.threshold import Thresholder

        return Thresholder(**p)
    if spec.kind == "widthconv":
        from qfab.hw.widthconv import WidthConverter

        return WidthConverter(**p)
    if spec.kind == "maxpool":
        from qfab.hw.pool import MaxPool

        return MaxPool(**p)
    if spec.kind == "avgpool":
        from qfab.hw.pool import AvgPool

        return AvgPool(**p)
    if spec.kind == "globalavgpool":
        from qfab.hw.pool import GlobalAvgPool

        return GlobalAvgPool(**p)
    if spec.kind == "upsample":
        from qfab.hw.upsample import NearestUpsample

        return NearestUpsample(**p)
    raise ValueError(f"unknown block kind {spec.kind!r}")


def accelerator_signature(plan: HwPlan) -> wiring.Signature:
    """The ports of ``plan``'s :class:`Accelerator` (without elaborating anything)."""
    return wiring.Signature({
        "i_stream": In(stream.Signature(data.ArrayLayout(plan.in_shape, plan.in_elems))),
        "o_stream": Out(stream.Signature(data.ArrayLayout(plan.out_shape, plan.out_elems))),
        "o_stage_active": Out(len(plan.stages)),
    })


class Accelerator(wiring.Component):
    """A dataflow accelerator built from an :class:`HwPlan`.

    Members
    -------
    i_stream : In(stream.Signature(ArrayLayout(plan.in_shape, plan.in_elems)))
        Input codes, channels last.
    o_stream : Out(stream.Signature(ArrayLayout(plan.out_shape, plan.out_elems)))
    o_stage_active : Out(len(plan.stages))
        Bit i is high while stage i holds work of an inference (the co-simulation harness
        counts these cycles per stage).
    """

    def __init__(self, plan: HwPlan):
        self.plan = plan
        self.stage_names = [s.name for s in plan.stages]
        super().__init__(accelerator_signature(plan))

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        stages = self.plan.stages
        # Who reads each stage's output stream (-1: the accelerator's input): the next stage
        # or the one naming it its source, a residual add's skip path, the accelerator output.
        readers: dict[int, list] = {}
        for i, s in enumerate(stages):
            readers.setdefault(i - 1 if s.source is None else s.source, []).append((i, "in"))
            if s.skip:
                readers.setdefault(s.skip_from, []).append((i, "skip"))
        readers.setdefault(len(stages) - 1, []).append((None, "out"))
        streams = {}  # reader -> the stream it takes

        def publish(i: int, stream_) -> None:
            rs = readers.get(i, [])
            if not rs:
                raise ValueError(f"stage {i}'s output has no reader")
            for r, taker in zip(rs, self._fork(m, i, stream_, len(rs)), strict=True):
                streams[r] = taker

        publish(-1, wiring.flipped(self.i_stream))
        for i, stage in enumerate(stages):
            upstream = streams.pop((i, "in"))
            blocks = [make_block(b) for b in stage.blocks]
            for j, block in enumerate(blocks):
                m.submodules[f"s{i}_{j}_{stage.blocks[j].kind}"] = block
                if hasattr(block, "i_b"):  # a join: its second input is the skip path
                    wiring.connect(m, upstream, block.i_a)
                    wiring.connect(m, self._skip_path(m, i, stage, streams.pop((i, "skip"))),
                                   block.i_b)
                else:
                    wiring.connect(m, upstream, block.i_stream)
                upstream = block.o_stream
            self._activity(m, i, stage, _input_port(blocks[0]), blocks[-1].o_stream)
            publish(i, upstream)
        wiring.connect(m, streams.pop((None, "out")), wiring.flipped(self.o_stream))
        return m

    def _fork(self, m: Module, i: int, source, ways: int) -> list:
        """``source`` split ``ways`` ways: a beat leaves when all its takers are ready."""
        if ways == 1:
            return [source]
        takers = [source.signature.create(path=(f"s{i}_fork_{k}",)) for k in range(ways)]
        everyone = 1
        for t in takers:
            everyone &= t.ready
        m.d.comb += source.ready.eq(everyone)
        for k, t in enumerate(takers):
            others = 1
            for j, u in enumerate(takers):
                if j != k:
                    others &= u.ready
            m.d.comb += [t.p.eq(source.p), t.valid.eq(source.valid & others)]
        return takers

    def _skip_path(self, m: Module, i: int, stage, source):
        """The blocks of stage ``i``'s skip path (a FIFO, a width converter) after
        ``source``; returns the path's output stream."""
        for j, spec in enumerate(stage.skip):
            block = make_block(spec)
            m.submodules[f"s{i}_skip{j}_{spec.kind}"] = block
            wiring.connect(m, source, block.i_stream)
            source = block.o_stream
        return source

    def _activity(self, m: Module, i: int, stage, i_port, o_port) -> None:
        """Active from the cycle an inference's first beat enters until its last leaves."""
        in_pos = Signal(range(max(stage.in_beats, 2)), name=f"s{i}_in_pos")
        out_pos = Signal(range(max(stage.out_beats, 2)), name=f"s{i}_out_pos")
        open_ = Signal(8, name=f"s{i}_open")  # inferences started and not finished
        in_first, out_last = Signal(name=f"s{i}_in_first"), Signal(name=f"s{i}_out_last")
        m.d.comb += [in_first.eq(i_port.valid & i_port.ready & (in_pos == 0)),
                     out_last.eq(o_port.valid & o_port.ready & (out_pos == stage.out_beats - 1))]
        with m.If(i_port.valid & i_port.ready):
            m.d.sync += in_pos.eq(Mux(in_pos == stage.in_beats - 1, 0, in_pos + 1))
        with m.If(o_port.valid & o_port.ready):
            m.d.sync += out_pos.eq(Mux(out_pos == stage.out_beats - 1, 0, out_pos + 1))
        # The count as of the cycle before, and that cycle's first and last beats, are
        # registers: the handshakes (a block's ready can be long logic) end in two flip-flops
        # rather than in the count's adders, and the count is the same cycle for cycle.
        before = Signal(8, name=f"s{i}_open_before")
        first_before, last_before = Signal(), Signal()
        m.d.comb += open_.eq(before + first_before - last_before)
        m.d.sync += [before.eq(open_), first_before.eq(in_first), last_before.eq(out_last)]
        m.d.comb += self.o_stage_active[i].eq((open_ != 0) | in_first)


def _input_port(block: wiring.Component):
    """The stream a block takes its stage's input on (a residual add's first input)."""
    return block.i_a if hasattr(block, "i_a") else block.i_stream
