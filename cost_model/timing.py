"""Cycle model of a plan: when every stream beat leaves every block.

The figures come from the handshake model (:mod:`qfab.cost_model.handshake`), which steps the
blocks' valid/ready registers clock by clock; the beat schedule below, which ignores
back-pressure, gives each stage's last beat and stands in for blocks without a handshake
model.

Each block maps the cycles at which its input beats arrive to the cycles at which its output
beats leave, using the block's own schedule (hw/ documents each: one beat a cycle through
requantizers and thresholders, ``NF x SF`` steps of the MVU with input taken during the first
neuron fold, output rows of the sliding window once their input rows are written, and the
blocks' latencies). Inputs arrive one beat a cycle from cycle 0; the output is never blocked.
This schedule does not model back-pressure between blocks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from qfab.compiler.backend.plan import BlockSpec, HwPlan


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
        Steady-state cycles between inferences: the slowest stage.
    stage_done : list of int
        Cycle of each stage's last output beat by the beat schedule (no back-pressure).
    """

    latency_cycles: int
    cycles: int
    ii_cycles: int
    stage_done: list[int]


def _serial(t_in: np.ndarray, latency: int) -> np.ndarray:
    """One beat a cycle, in order: each beat leaves ``latency`` cycles after it is taken."""
    out = np.empty_like(t_in)
    t = -1
    for k, arrive in enumerate(t_in.tolist()):
        t = max(t + 1, arrive)
        out[k] = t + latency
    return out


def _mvu(spec: BlockSpec, t_in: np.ndarray) -> np.ndarray:
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
            out[v * nf + n] = t + 3
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
                       beats_per_pixel=p["channels"] // p["simd"])
    row_beats = g.width * g.beats_per_pixel
    per_image = g.height * row_beats
    images = t_in.size // per_image
    row_end = _serial(t_in, 0)[row_beats - 1::row_beats]
    out = []
    next_read = 0
    for image in range(images):
        for oy in range(g.out_height):
            need = image * g.height + g.rows_needed(oy)
            start = max(next_read, int(row_end[need - 1]) + 1)
            out.append(np.arange(start, start + g.out_row_beats) + 1)
            next_read = start + g.out_row_beats
    return np.concatenate(out)


def _maxpool(spec: BlockSpec, t_in: np.ndarray) -> np.ndarray:
    taps = spec.params["kernel"][0] * spec.params["kernel"][1]
    t = _window(spec, t_in)
    return _serial(t, 0)[taps - 1::taps] + 1


def block_times(spec: BlockSpec, t_in: np.ndarray) -> np.ndarray:
    """Cycles at which ``spec``'s output beats leave, given its input beats' arrivals."""
    if spec.kind == "mvu":
        return _mvu(spec, t_in)
    if spec.kind == "requant":
        return _serial(t_in, 3)
    if spec.kind == "minifloat_requant":
        return _serial(t_in, 4)
    if spec.kind == "threshold":
        return _serial(t_in, 2)
    if spec.kind == "widthconv":
        return _widthconv(spec, t_in)
    if spec.kind == "window":
        return _window(spec, t_in)
    if spec.kind == "maxpool":
        return _maxpool(spec, t_in)
    raise ValueError(f"no cycle model for block kind {spec.kind!r}")


def plan_timing(plan: HwPlan, batch: int = 1) -> Timing:
    """Cycle figures of ``batch`` inferences fed back to back from cycle 0: the handshake
    model (back-pressure included) where every block has one, else the beat schedule."""
    from qfab.cost_model.handshake import simulate_handshakes

    specs = [spec for stage in plan.stages for spec in stage.blocks]
    t = np.arange(plan.in_beats * batch, dtype=np.int64)
    done = []
    for stage in plan.stages:
        for spec in stage.blocks:
            t = block_times(spec, t)
        done.append(int(t[-1]))
    try:
        stamps = simulate_handshakes(specs, plan.in_beats * batch, plan.out_beats * batch)
        first, last = stamps[0], stamps[-1]
    except ValueError:
        first, last = int(t[0]), int(t[-1])
    # The co-simulation counts cycles inclusively: the last beat of cycle c makes c + 1.
    return Timing(latency_cycles=first, cycles=last + 1, ii_cycles=plan.ii_cycles,
                  stage_done=done)
