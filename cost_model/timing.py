"""Cycle model of a plan: when every stream beat leaves every block.

The figures come from the handshake model (:mod:`qfab.cost_model.handshake`), which steps the
blocks' valid/ready registers clock by clock (run from event to event by
:mod:`qfab.cost_model.events`, with the same figures): latency, total cycles, each inference's
completion, and per stage the cycles it holds an inference (the accelerator's
``o_stage_active``), split into steady-state work and fill. The beat schedule below, which
ignores back-pressure, gives each stage's last beat.

Each block maps the cycles at which its input beats arrive to the cycles at which its output
beats leave, using the block's own schedule (hw/ documents each: one beat a cycle through
requantizers and thresholders, ``NF x SF`` steps of the MVU, each input word stepped over
in the first neuron fold as it arrives, output rows of the sliding window once their input
rows are written, and the blocks' latencies). Inputs arrive one beat a cycle from cycle 0;
the output is never blocked. This schedule does not model back-pressure between blocks.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field

import numpy as np
from qfab.compiler.backend.plan import BlockSpec, HwPlan, Stage


@dataclass
class StageTiming:
    """One stage's cycles in a batch, by the handshake model.

    Members
    -------
    name : str
    steady_cycles : int
        Cycles one inference keeps the stage busy at steady state: ``MH/PE x MW/SIMD x
        pixels`` MVU steps for a stage with an MVU, the plan's ``Stage.cycles`` otherwise.
    active_cycles : int
        Cycles in which the stage holds an inference, from its first input beat to its last
        output beat (what the accelerator's ``o_stage_active`` counts).
    fill_cycles : int
        The active cycles that are not steady-state work: ``active - batch x steady``. For an
        MVU stage the model counts them itself, as the active cycles in which the MVU does
        not step (filling its pipeline, waiting for input or for the stage after it).
    """

    name: str
    steady_cycles: int
    active_cycles: int
    fill_cycles: int


@dataclass
class Timing:
    """Cycle figures of ``batch`` inferences streamed back to back.

    Members
    -------
    latency_cycles : int
        Cycle of the first output beat (cycle 0 is the first input beat).
    cycles : int
        Cycles from the first input beat to the last output beat, both counted.
    ii_cycles : int
        Steady-state cycles between inferences: the spacing of the batch's last two
        completions (for a batch of one, the plan's slowest stage, which is a lower bound).
    stage_done : list of int
        Cycle of each stage's last output beat by the beat schedule (no back-pressure).
    completion_cycles : list of int
        For each inference, the cycle count at which its last output beat has left (the
        cycle of that beat + 1, as the co-simulation reports it).
    stages : list of StageTiming
        Each stage's steady-state, fill and active cycles.
    exact : bool
        True when the handshake model made the figures (cycle for cycle what the hardware
        does); False for a design too long to run it on (:data:`MODEL_CYCLES`), whose figures
        are then lower bounds (:func:`lower_bounds`; ``fill_cycles`` 0) and ``stage_done``
        is empty.
    """

    latency_cycles: int
    cycles: int
    ii_cycles: int
    stage_done: list[int]
    completion_cycles: list[int] = field(default_factory=list)
    stages: list[StageTiming] = field(default_factory=list)
    exact: bool = True


def _serial(t_in: np.ndarray, latency: int) -> np.ndarray:
    """One beat a cycle, in order: each beat leaves ``latency`` cycles after it is taken."""
    out = np.empty_like(t_in)
    t = -1
    for k, arrive in enumerate(t_in.tolist()):
        t = max(t + 1, arrive)
        out[k] = t + latency
    return out


def _mvu(spec: BlockSpec, t_in: np.ndarray) -> np.ndarray:
    from qfab.hw.mvu import mvu_block_latency

    latency = mvu_block_latency(**spec.params)
    mh, mw = np.asarray(spec.params["weights"]).shape
    nf, sf = mh // spec.params["pe"], mw // spec.params["simd"]
    vectors = t_in.size // sf
    out = np.empty(vectors * nf, dtype=np.int64)
    t = -1
    arrivals = t_in.tolist()
    for v in range(vectors):
        for n in range(nf):
            for s in range(sf):
                t = t + 1 if n else max(t + 1, arrivals[v * sf + s])
            out[v * nf + n] = t + latency
    return out


def _widthconv(spec: BlockSpec, t_in: np.ndarray) -> np.ndarray:
    n_in, n_out = spec.params["n_in"], spec.params["n_out"]
    word = math.lcm(n_in, n_out)
    t = t_in
    if word != n_in:  # gather: a word leaves the cycle after its last beat arrives
        k = word // n_in
        t = _serial(t, 0)[k - 1::k] + 1
    if word != n_out:  # split: a word is taken as its last part leaves, parts one a cycle
        k = word // n_out
        out = np.empty(t.size * k, dtype=np.int64)
        last = -1
        for j, arrive in enumerate(t.tolist()):
            load = max(arrive, last)
            out[j * k:(j + 1) * k] = np.arange(load + 1, load + k + 1)
            last = load + k
        t = out
    return t


def _window(spec: BlockSpec, t_in: np.ndarray) -> np.ndarray:
    from qfab.hw._window_timing import WindowGeometry

    p = spec.params
    g = WindowGeometry(height=p["height"], width=p["width"], kernel=tuple(p["kernel"]),
                       stride=tuple(p["stride"]), padding=tuple(p["padding"]),
                       beats_per_pixel=p["channels"] // p["simd"], taps=p.get("taps", 1))
    row_beats = g.width * g.beats_per_pixel
    per_image = g.height * row_beats
    registered = int(bool(p.get("registered_read")))  # a cycle in the read's register
    images = t_in.size // per_image
    row_end = _serial(t_in, 0)[row_beats - 1::row_beats]
    out = []
    next_read = 0
    for image in range(images):
        for oy in range(g.out_height):
            need = image * g.height + g.rows_needed(oy)
            start = max(next_read, int(row_end[need - 1]) + 1)
            out.append(np.arange(start, start + g.out_row_beats) + 1 + registered)
            next_read = start + g.out_row_beats
    return np.concatenate(out)


def _maxpool(spec: BlockSpec, t_in: np.ndarray) -> np.ndarray:
    taps = spec.params["kernel"][0] * spec.params["kernel"][1]
    t = _window(spec, t_in)  # (a register between the window and the reducer: a cycle)
    return _serial(t, int(bool(spec.params.get("registered_taps"))))[taps - 1::taps] + 1


def _depthwise(spec: BlockSpec, t_in: np.ndarray) -> np.ndarray:
    taps = spec.params["taps"] // spec.params.get("columns", 1)  # beats a channel group
    return _serial(t_in, 0)[taps - 1::taps] + 1  # a channel group's sums after its last tap


def _globalavgpool(spec: BlockSpec, t_in: np.ndarray) -> np.ndarray:
    p = spec.params
    groups, pixels = p["channels"] // p["simd"], p["height"] * p["width"]
    t = _serial(t_in, 0).reshape(-1, pixels, groups)
    return t[:, -1, :].ravel() + 1  # the last pixel's beats, one cycle later


def _select(spec: BlockSpec, t_in: np.ndarray) -> np.ndarray:
    """StreamSelect: its window's beats, a cycle after each is taken."""
    p = spec.params
    kept = _serial(t_in, 0).reshape(-1, p["period"])[:, p["first"]:p["first"] + p["count"]]
    return kept.ravel() + 1


def _upsample(spec: BlockSpec, t_in: np.ndarray) -> np.ndarray:
    """A row taken a beat a cycle; from the cycle after its last beat, its repeats given a
    beat a cycle (each leaving the cycle after it is read); the next row taken from the
    cycle after the last read."""
    p = spec.params
    row_beats = p["width"] * p["channels"] // p["n"]
    repeats = p["scale"][0] * p["scale"][1] * row_beats
    out, free = [], 0
    for row in t_in.reshape(-1, row_beats).tolist():
        for arrive in row:
            free = max(free, arrive) + 1
        out.append(np.arange(free + 1, free + repeats + 1))
        free += repeats
    return np.concatenate(out)


# Blocks that take a beat a cycle and give it this many cycles later.
SERIAL_LATENCY = {"minifloat_requant": 4, "fifo": 2, "add": 2, "slice": 1}
SCHEDULES = {"mvu": _mvu, "widthconv": _widthconv, "window": _window, "maxpool": _maxpool,
             "avgpool": _maxpool, "globalavgpool": _globalavgpool, "depthwise": _depthwise,
             "select": _select, "upsample": _upsample}


# Blocks with a second input, fed by a stage's skip path.
JOINS = ("add", "concat")


def _concat(spec: BlockSpec, t_a: np.ndarray, t_b: np.ndarray) -> np.ndarray:
    """StreamConcat: the runs of both inputs in turns, one beat a cycle a cycle later."""
    p = spec.params
    a = t_a.reshape(-1, p["a_beats"])
    b = t_b.reshape(-1, p["b_beats"])
    runs = (b, a) if p.get("b_first") else (a, b)
    return _serial(np.concatenate(runs, axis=1).ravel(), 1)


def pipeline_stages(spec: BlockSpec) -> int:
    """Registers a beat passes before the output register of a block whose depth depends
    on its parameters (the hardware's own ``*_stages`` function)."""
    module, name = PIPELINE_STAGES[spec.kind]
    return getattr(importlib.import_module(module), name)(**spec.params)


PIPELINE_STAGES = {"cmvm": ("qfab.hw.cmvm", "cmvm_stages"),
                   "requant": ("qfab.hw.requant", "requant_stages"),
                   "threshold": ("qfab.hw.threshold", "threshold_stages"),
                   "unrolled": ("qfab.hw.unrolled", "unrolled_stages")}


def block_times(spec: BlockSpec, t_in: np.ndarray) -> np.ndarray:
    """Cycles at which ``spec``'s output beats leave, given its input beats' arrivals."""
    if spec.kind in SERIAL_LATENCY:
        return _serial(t_in, SERIAL_LATENCY[spec.kind])
    if spec.kind in PIPELINE_STAGES:  # its stages, then the output register
        return _serial(t_in, pipeline_stages(spec) + 1)
    if spec.kind in SCHEDULES:
        return SCHEDULES[spec.kind](spec, t_in)
    raise ValueError(f"no cycle model for block kind {spec.kind!r}")


def _active(firsts: list[int], lasts: list[int]) -> int:
    """Cycles covered by the inclusive spans ``[firsts[k], lasts[k]]``, in order."""
    total, end = 0, -1
    for first, last in zip(firsts, lasts, strict=True):
        total += max(0, last - max(first, end + 1) + 1)
        end = max(end, last)
    return total


def _stage_timing(stage: Stage, batch: int, transfers, steps, lo: int,
                  hi: int) -> StageTiming:
    """``stage``'s figures from the trace of a chain's (or a skip path's) blocks
    ``lo .. hi - 1``: its ``transfers`` a stream and ``steps`` a block. The run ends with
    the accelerator's last output beat: a stage whose last beats a later window drops
    (a pool's stride leaving a trailing row) is still busy then, to the run's end."""
    firsts = transfers[lo][::stage.in_beats]
    lasts = transfers[hi][stage.out_beats - 1::stage.out_beats]
    lasts = lasts + [transfers[-1][-1]] * (len(firsts) - len(lasts))
    active = _active(firsts, lasts)
    steps = [t for i in range(lo, hi) for t in steps[i]]
    if not steps:
        return StageTiming(stage.name, stage.cycles, active, active - batch * stage.cycles)
    f = stage.folding
    steady = f["mh"] // f["pe"] * (f["mw"] // f["simd"]) * (stage.macs // (f["mh"] * f["mw"]))
    k = np.searchsorted(lasts, steps)  # the inference whose span a step would fall in
    inside = sum(1 for t, j in zip(steps, k.tolist(), strict=True)
                 if j < len(lasts) and firsts[j] <= t)
    return StageTiming(stage.name, steady, active, active - inside)


# Block visits per block and cycle above which the event-driven run gives way to the
# clocked one: a visit costs a few ticks (bench/cycle_model_speed.py measures both; the
# ResNet-8-sized model at 16 PEs, 0.2 visits a block-cycle, runs faster from event to event
# since blocks remember their states, the digits CNN, 0.4, clock by clock).
STEP_DENSITY = 0.3


def plan_timing(plan: HwPlan, batch: int = 1, exact: bool = False) -> Timing:
    """Cycle figures of ``batch`` inferences fed back to back from cycle 0, by the handshake
    model (back-pressure included), run from event to event or, for a design whose blocks
    change almost every cycle, clock by clock; ``stage_done`` by the beat schedule. Kept in
    ``plan.derived`` and, for a run of seconds, on disk (:mod:`.timing_cache`). A design
    whose work exceeds :data:`MODEL_CYCLES` gets :func:`lower_bounds` instead (minutes of
    the model), unless ``exact`` asks for the model's figures however long they take."""
    import time

    from qfab.cost_model import timing_cache

    from qfab.progress import ticking

    key = ("timing", batch)
    if key not in plan.derived and not exact and serial_cycles(plan, batch) > MODEL_CYCLES:
        return lower_bounds(plan, batch)
    if key not in plan.derived:
        timing = timing_cache.load(plan, batch)
        if timing is None:
            start = time.process_time()
            with ticking(f"running the cycle model on {batch} inference{'s' * (batch > 1)}"):
                timing = _plan_timing(plan, batch)
            if time.process_time() - start >= KEEP_SECONDS:
                timing_cache.save(plan, batch, timing)
        plan.derived[key] = timing
    return plan.derived[key]


# CPU seconds of a cycle-model run above which its figures are kept on disk
# (qfab.cost_model.timing_cache): the quick ones are not worth a file.
KEEP_SECONDS = 0.5


# Cycles of work (batch x the stages' cycles, as :func:`serial_cycles` counts them) above
# which the figures are bounds rather than the handshake model's: past this, the model runs
# for minutes (a 1e9-MAC super-resolution network at the default folding needs tens of
# millions of cycles an inference).
MODEL_CYCLES = 4_000_000


def serial_cycles(plan: HwPlan, batch: int) -> int:
    """Cycles of ``batch`` inferences if no two stages ever overlapped, each taking and giving
    its beats apart from its work: more than the handshake model's run of the same batch."""
    return batch * sum(s.cycles + s.in_beats + s.out_beats for s in plan.stages)


def _cycle_cap(plan: HwPlan, batch: int) -> int:
    """Cycles past which the handshake model stops as stuck: well past :func:`serial_cycles`
    (with each block's pipeline), so no design that runs is cut short."""
    blocks = sum(len(s.blocks) + len(s.skip) for s in plan.stages)
    return 4 * (serial_cycles(plan, batch) + plan.in_beats * batch + 16 * blocks) + 10_000


def lower_bounds(plan: HwPlan, batch: int) -> Timing:
    """Figures that no run of ``plan`` beats, without running the model. The slowest stage
    does each inference's work in turn, a step a cycle, and takes inference ``k``'s beats only
    after all of the ones before: inference ``k`` completes no sooner than ``k`` times its
    cycles plus the output's beats (one a cycle), and the steady spacing is no less than its
    cycles. The first output beat leaves no sooner than one cycle a block (every block's
    output is a register), and a stage is active at least a cycle for each output beat (its
    trailing work may be dropped downstream, so no more is sure). ``exact`` is False."""
    slowest = plan.ii_cycles
    completions = [slowest * k + plan.out_beats for k in range(batch)]
    return Timing(latency_cycles=len(_chains(plan.stages)[0]), cycles=completions[-1],
                  ii_cycles=slowest, stage_done=[], completion_cycles=completions,
                  stages=[StageTiming(s.name, s.cycles, batch * s.out_beats, 0)
                          for s in plan.stages],
                  exact=False)


def _plan_timing(plan: HwPlan, batch: int) -> Timing:
    from qfab.cost_model.events import run_events
    from qfab.cost_model.handshake import run_chain

    stages = plan.stages
    inputs = np.arange(plan.in_beats * batch, dtype=np.int64)
    done, outputs = [], []
    for i, stage in enumerate(stages):
        src = i - 1 if stage.source is None else stage.source
        t = inputs if src < 0 else outputs[src]
        for spec in stage.blocks:
            if spec.kind in JOINS:
                skip = inputs if stage.skip_from < 0 else outputs[stage.skip_from]
                for b in stage.skip:
                    skip = block_times(b, skip)
                if spec.kind == "concat":
                    t = _concat(spec, t, skip)
                    continue
                t = np.maximum(t, skip)
            t = block_times(spec, t)
        done.append(int(t[-1]))
        outputs.append(t)
    beats = (plan.in_beats * batch, plan.out_beats * batch)
    chain, spans, skips, places = _chains(stages)
    cap = _cycle_cap(plan, batch)
    trace = run_events(chain, *beats, skips=tuple(skips), give_way=STEP_DENSITY,
                       max_cycles=cap)
    if trace is None:  # the blocks change almost every cycle: cheaper clock by clock
        chain, spans, skips, places = _chains(stages)
        trace = run_chain(chain, *beats, skips=tuple(skips), max_cycles=cap)
    timings = []
    for i, stage in enumerate(stages):
        if stage.on_skip:
            k, lo, hi = places[i]
            timings.append(_stage_timing(stage, batch, trace.skip_transfers[k],
                                         trace.skip_steps[k], lo, hi))
        else:
            timings.append(_stage_timing(stage, batch, trace.transfers, trace.steps,
                                         *spans[i]))
    stamps = trace.transfers[-1]
    # The co-simulation counts cycles inclusively: the last beat of cycle c makes c + 1.
    completions = [c + 1 for c in stamps[plan.out_beats - 1::plan.out_beats]]
    ii = completions[-1] - completions[-2] if batch > 1 else plan.ii_cycles
    return Timing(latency_cycles=stamps[0], cycles=stamps[-1] + 1, ii_cycles=ii,
                  stage_done=done, stages=timings, completion_cycles=completions)


def _chains(stages: list[Stage]) -> tuple[list, dict, list, dict]:
    """The handshake models of a plan: the main path is one chain; each residual add's skip
    path (its stages' blocks, then its FIFO) hangs off the chain's stream after the stage
    it forks. Also where each stage's blocks are: ``spans[i]`` in the chain, ``places[i]``
    (skip, first, last) on a skip path."""
    from qfab.cost_model.handshake import Skip, blocks_for

    chain, spans, skips, places = [], {-1: (0, 0)}, [], {}
    for i, stage in enumerate(stages):
        if stage.on_skip:
            continue
        start = len(chain)
        for spec in stage.blocks:
            if spec.kind in JOINS:
                own = _skip_stages(stages, i)
                path, cuts = [], [0]
                for j in own:
                    path += [b for spec_ in stages[j].blocks for b in blocks_for(spec_)]
                    cuts.append(len(path))
                path += [b for s in stage.skip for b in blocks_for(s)]
                fork = stages[own[0]].source if own else stage.skip_from
                for j, first, last in zip(own, cuts, cuts[1:], strict=False):
                    places[j] = (len(skips), first, last)
                skips.append(Skip(spans[fork][1], path, len(chain)))
            chain += blocks_for(spec)
        spans[i] = (start, len(chain))
    return chain, spans, skips, places


def _skip_stages(stages: list[Stage], add: int) -> list[int]:
    """Indices of the stages on the skip path of the residual add at ``add``, in order."""
    j = stages[add].skip_from
    own = []
    while j >= 0 and stages[j].on_skip:
        own.insert(0, j)
        if stages[j].source is not None:
            break
        j -= 1
    return own


def steady_ii(plan: HwPlan) -> int:
    """Cycles between inferences streamed back to back, by the handshake model: the plan's
    slowest stage, or more where one stage's handshakes hold another (an MVU takes input
    only in its first neuron fold, so a window before it waits): the spacing of two. For a
    design too long for the model (:data:`MODEL_CYCLES`), the slowest stage, a lower bound."""
    return plan_timing(plan, 2).ii_cycles


def cosim_differences(plan: HwPlan, result) -> list[str]:
    """The cycle figures of a co-simulation (a ``qfab.simulate`` result) that differ from the
    model's for the same batch: latency, total cycles, each inference's completion and each
    stage's active cycles, one line each; empty when all agree."""
    timing = plan_timing(plan, result.hw_codes.shape[0], exact=True)
    pairs = [("latency", result.latency_cycles, timing.latency_cycles),
             ("cycles", result.cycles, timing.cycles),
             ("completions", result.cosim.completion_cycles, timing.completion_cycles)]
    pairs += [(f"stage {s.name} active", m["cycles"], s.active_cycles)
              for m, s in zip(result.stages, timing.stages, strict=True)]
    return [f"{what}: measured {m}, model {p}" for what, m, p in pairs if m != p]
