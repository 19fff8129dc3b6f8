"""Runs of unrolled stages fused into one pipeline stage.

An adder-graph stage and the stages after it that have a lane a channel (requantizers,
thresholds) and the next adder graphs form one :class:`qfab.hw.unrolled.UnrolledPipeline`:
registers by logic depth across the layers instead of an output register and a handshake
at every layer. Only a straight chain is fused (no stage reading another's stream or a
side branch), so every stream between the fused stages had one reader.
"""

from __future__ import annotations

from qfab.compiler.backend.plan import BlockSpec, Stage

__all__ = ["fuse_unrolled"]


def _layer(stage: Stage, first: bool) -> bool:
    """Whether ``stage`` is a layer of a run: its last block an adder graph (with blocks
    that feed it in front, for a run's first), or its only block a lane a channel."""
    from qfab.hw.unrolled import fusable

    *front, last = stage.blocks
    if last.kind == "cmvm":
        return first or not front
    return not first and not front and fusable(last.kind, last.params)


def _fused(run: list[Stage]) -> Stage:
    first, last = run[0], run[-1]
    layers = [(s.blocks[-1].kind, s.blocks[-1].params) for s in run]
    params: dict = dict(layers=layers)
    # a board's pipelining (pipelining.py) cuts the adder graphs more often: the whole run too
    cuts = [p["adders_per_stage"] for k, p in layers if k == "cmvm" and "adders_per_stage" in p]
    if cuts:
        params["levels_per_stage"] = min(cuts)
    block = BlockSpec("unrolled", params, first.blocks[-1].in_elems, last.blocks[-1].out_elems)
    return Stage(f"{first.name}..{last.name}", "unrolled", first.blocks[:-1] + [block],
                 in_beats=first.in_beats, out_beats=last.out_beats,
                 cycles=max(s.cycles for s in run), macs=sum(s.macs for s in run),
                 input=first.input, output=last.output)


def fuse_unrolled(stages: list[Stage]) -> list[Stage]:
    """``stages`` with every run of two or more unrolled layers (:func:`_layer`) one stage."""
    if any(s.source is not None or s.skip or s.on_skip for s in stages):
        return stages
    out: list[Stage] = []
    run: list[Stage] = []
    for s in stages + [None]:
        if s is not None and _layer(s, first=not run):
            run.append(s)
            continue
        if s is not None and run and _layer(s, first=True):
            out += [_fused(run)] if len(run) > 1 else run
            run = [s]
            continue
        out += [_fused(run)] if len(run) > 1 else run
        run = []
        if s is not None:
            out.append(s)
    return out
