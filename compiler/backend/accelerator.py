"""The accelerator top: the plan's blocks chained by streams, with per-stage activity.

A residual add's skip path starts at a fork of a stage's output stream: a beat leaves when
both the next stage and the skip FIFO take it (the FIFO holds a whole inference of it, so the
fork never waits on the skip path for long).
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

        return MatrixVectorUnit(**p)
    if spec.kind == "add":
        from qfab.hw.eltwise import ResidualAdd

        return ResidualAdd(**p)
    if spec.kind == "fifo":
        from qfab.hw.fifo import StreamFIFO

        return StreamFIFO(payload_shape=data.ArrayLayout(p["elem_shape"], p["n"]),
                          depth=p["depth"])
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
    raise ValueError(f"unknown block kind {spec.kind!r}")


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
        super().__init__({
            "i_stream": In(stream.Signature(data.ArrayLayout(plan.in_shape, plan.in_elems))),
            "o_stream": Out(stream.Signature(data.ArrayLayout(plan.out_shape, plan.out_elems))),
            "o_stage_active": Out(len(plan.stages)),
        })

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        upstream = wiring.flipped(self.i_stream)
        forks = {s.skip_from: i for i, s in enumerate(self.plan.stages) if s.skip}
        skips = {}  # stage index of an add -> the skip path's output stream
        for i, stage in enumerate(self.plan.stages):
            blocks = [make_block(b) for b in stage.blocks]
            for j, block in enumerate(blocks):
                m.submodules[f"s{i}_{j}_{stage.blocks[j].kind}"] = block
                if stage.blocks[j].kind == "add":
                    wiring.connect(m, upstream, block.i_a)
                    wiring.connect(m, skips.pop(i), block.i_b)
                else:
                    wiring.connect(m, upstream, block.i_stream)
                upstream = block.o_stream
            self._activity(m, i, stage, _input_port(blocks[0]), blocks[-1].o_stream)
            if i in forks:
                upstream, skips[forks[i]] = self._fork(m, i, upstream,
                                                       self.plan.stages[forks[i]])
        wiring.connect(m, upstream, wiring.flipped(self.o_stream))
        return m

    def _fork(self, m: Module, i: int, source, add_stage) -> tuple:
        """Split ``source`` into the stream on to stage ``i + 1`` and the skip path of
        ``add_stage``; returns both paths' downstream ends."""
        on = source.signature.create(path=(f"s{i}_fork_on",))
        path = [make_block(b) for b in add_stage.skip]
        for j, block in enumerate(path):
            m.submodules[f"s{i}_skip{j}_{add_stage.skip[j].kind}"] = block
        first = path[0].i_stream
        m.d.comb += [
            on.p.eq(source.p), first.p.eq(source.p),
            on.valid.eq(source.valid & first.ready),
            first.valid.eq(source.valid & on.ready),
            source.ready.eq(on.ready & first.ready),
        ]
        for a, b in zip(path, path[1:], strict=False):
            wiring.connect(m, a.o_stream, b.i_stream)
        return on, path[-1].o_stream

    def _activity(self, m: Module, i: int, stage, i_port, o_port) -> None:
        """Active from the cycle an inference's first beat enters until its last leaves."""
        in_pos = Signal(range(max(stage.in_beats, 2)), name=f"s{i}_in_pos")
        out_pos = Signal(range(max(stage.out_beats, 2)), name=f"s{i}_out_pos")
        open_ = Signal(8, name=f"s{i}_open")  # inferences started and not finished
        in_first = i_port.valid & i_port.ready & (in_pos == 0)
        out_last = o_port.valid & o_port.ready & (out_pos == stage.out_beats - 1)
        with m.If(i_port.valid & i_port.ready):
            m.d.sync += in_pos.eq(Mux(in_pos == stage.in_beats - 1, 0, in_pos + 1))
        with m.If(o_port.valid & o_port.ready):
            m.d.sync += out_pos.eq(Mux(out_pos == stage.out_beats - 1, 0, out_pos + 1))
        m.d.sync += open_.eq(open_ + in_first - out_last)
        m.d.comb += self.o_stage_active[i].eq((open_ != 0) | in_first)


def _input_port(block: wiring.Component):
    """The stream a block takes its stage's input on (a residual add's first input)."""
    return block.i_a if hasattr(block, "i_a") else block.i_stream
