"""Cycle-level model of the accelerator's stream handshakes, without any data.

Each hw/ block is reduced to the registers that decide when it takes and gives beats: the
valid bits of its pipeline, the output register (and the spare of ``OutputSkid``), its fold
and window counters. Stepping the chain one clock at a time gives every beat's cycle with the
back-pressure between blocks included (an MVU whose two input banks are full, a window
waiting for rows, hold the block before them). The models, each mirroring the ``elaborate``
of the block it names, are in :mod:`qfab.cost_model.handshake_blocks` (streams) and
:mod:`qfab.cost_model.handshake_image` (image blocks); here, which a plan block takes, and the
clock-by-clock run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from qfab.compiler.backend.plan import BlockSpec
from qfab.cost_model.handshake_blocks import (
    _Block,
    _Fifo,
    _Gather,
    _Mvu,
    _Register,
    _Skid,
    _Split,
)
from qfab.cost_model.handshake_image import (
    _Concat,
    _DepthwiseMac,
    _GlobalSum,
    _Join,
    _Select,
    _TapReducer,
    _Upsample,
    _Window,
)
from qfab.cost_model.timing import PIPELINE_STAGES, pipeline_stages


def blocks_for(spec: BlockSpec) -> list:
    """The handshake models of one plan block (a width converter may be two)."""
    p = spec.params
    if spec.kind == "mvu":
        from qfab.hw.mvu import mvu_block_latency

        mh, mw = np.asarray(p["weights"]).shape
        return [_Mvu(mh // p["pe"], mw // p["simd"], mvu_block_latency(**p) - 1,
                     bool(p.get("double_buffered")))]
    if spec.kind in PIPELINE_STAGES:
        stages = pipeline_stages(spec)
        # the adder graph and the units without stages have no spare (OutputRegister)
        return [_Register(stages) if spec.kind in ("cmvm", "unrolled") or not stages
                else _Skid(stages)]
    if spec.kind == "minifloat_requant":
        return [_Skid(3)]
    if spec.kind == "slice":  # an output register and its spare, nothing before them
        return [_Skid(0)]
    # a window's registered read: its read words are the register's input (OutputRegister)
    read = [_Register(0)] if p.get("registered_read") else []
    if spec.kind == "window":
        return [_Window(p, bool(p.get("depthwise", False))), *read]
    if spec.kind in ("maxpool", "avgpool"):
        taps = [_Skid(0)] if p.get("registered_taps") else []
        return [_Window(p, True), *read, *taps, _TapReducer(p["kernel"][0] * p["kernel"][1])]
    if spec.kind == "depthwise":
        return [_DepthwiseMac(p["taps"] // p.get("columns", 1))]
    if spec.kind == "globalavgpool":
        return [_GlobalSum(p["channels"] // p["simd"], p["height"] * p["width"])]
    if spec.kind == "fifo":
        return [_Fifo(p["depth"])]
    if spec.kind == "upsample":
        row_beats = p["width"] * p["channels"] // p["n"]
        return [_Upsample(row_beats, p["scale"][0] * p["scale"][1] * row_beats)]
    if spec.kind == "add":
        return [_Join()]
    if spec.kind == "select":
        return [_Select(p["period"], p["first"], p["count"])]
    if spec.kind == "concat":
        return [_Concat(p["a_beats"], p["b_beats"], bool(p.get("b_first", False)))]
    if spec.kind == "widthconv":
        n_in, n_out = p["n_in"], p["n_out"]
        word = math.lcm(n_in, n_out)
        out = []
        if word != n_in:
            out.append(_Gather(word // n_in))
        if word != n_out:
            out.append(_Split(word // n_out))
        return out
    raise ValueError(f"no handshake model for block kind {spec.kind!r}")


@dataclass
class Trace:
    """What one handshake run saw.

    Members
    -------
    transfers : list of list of int
        For each stream of the chain (0 the chain's input, ``k`` the output of block ``k-1``,
        the last one the chain's output), the cycles of its transfers, in order.
    steps : list of list of int
        For each block of the chain, the cycles in which it stepped its folding counters
        (MVUs); empty for the other blocks.
    skip_transfers, skip_steps : list
        The same for each skip path (its stream 0 is the fork's), in the order given.
    """

    transfers: list[list[int]]
    steps: list[list[int]]
    skip_transfers: list[list[list[int]]] = field(default_factory=list)
    skip_steps: list[list[list[int]]] = field(default_factory=list)


@dataclass
class Skip:
    """A skip path of a chain: the stream ``fork`` (0 the chain's input, ``k`` the output of
    block ``k-1``) also feeds the handshake models ``blocks``, whose output is the second
    input of the join (a :class:`_Join`) at chain block ``join``."""

    fork: int
    blocks: list
    join: int


def run_chain(chain: list, in_beats: int, out_beats: int, max_cycles: int = 5_000_000,
              skips: tuple[Skip, ...] = ()) -> Trace:
    """Step ``chain`` (handshake models, as :func:`blocks_for` makes them) while
    ``in_beats`` input beats are offered from cycle 0 on and the output is always taken,
    until ``out_beats`` output beats have left. A fork offers a beat to both of its
    consumers and lets it go when both take it."""
    n = len(chain)
    trace = Trace([[] for _ in range(n + 1)], [[] for _ in range(n)],
                  [[[] for _ in range(len(s.blocks) + 1)] for s in skips],
                  [[[] for _ in s.blocks] for s in skips])
    joins = {s.join: k for k, s in enumerate(skips)}
    forks = {s.fork for s in skips}  # a stream may feed several skip paths
    # Fixed per run: who has a begin() that does something, and who steps folding counters.
    everyone = chain + [b for s in skips for b in s.blocks]
    beginners = [b for b in everyone if type(b).begin is not _Block.begin]
    steppers = [i for i, b in enumerate(chain) if hasattr(b, "fired")]
    transfers, order = trace.transfers, range(n - 1, -1, -1)
    fed = cycle = 0
    while len(transfers[-1]) < out_beats:
        if cycle >= max_cycles:
            raise RuntimeError(f"handshake model did not finish in {max_cycles} cycles")
        for b in beginners:
            b.begin()
        valids = [fed < in_beats] + [b.o_valid for b in chain]
        readies = [False] * n + [True]
        out_readies = [True] * n  # what each block sees of its output's ready
        skip_ready = {}  # a fork stream -> whether all its skip paths take a beat
        skip_readies = [None] * len(skips)
        for i in order:
            out_ready = readies[i + 1] and skip_ready.get(i + 1, True)
            out_readies[i] = out_ready
            if i in joins:
                s = skips[joins[i]]
                chain[i].b_valid = s.blocks[-1].o_valid
                rs = [chain[i].ready_b(valids[i], out_ready)]
                for b in reversed(s.blocks):
                    rs.insert(0, b.ready(rs[0]))
                skip_readies[joins[i]] = rs
                skip_ready[s.fork] = skip_ready.get(s.fork, True) and rs[0]
            readies[i] = chain[i].ready(out_ready)
        offered = valids  # what each consumer sees: a fork offers to all or none
        if forks:
            offered = list(valids)
            for f in forks:
                offered[f] = valids[f] and skip_ready[f]
        for i in range(n + 1):
            if offered[i] and readies[i]:
                transfers[i].append(cycle)
        for index, s in enumerate(skips):
            rs = skip_readies[index]
            others = all(skip_readies[k][0] for k, o in enumerate(skips)
                         if o.fork == s.fork and k != index)
            ins = [valids[s.fork] and readies[s.fork] and others] + [b.o_valid for b in s.blocks]
            for k, (v, r) in enumerate(zip(ins, rs, strict=True)):
                if v and r:
                    trace.skip_transfers[index][k].append(cycle)
            for k, b in enumerate(s.blocks):
                b.tick(ins[k], ins[k] and rs[k], rs[k + 1])
                if getattr(b, "fired", False):
                    trace.skip_steps[index][k].append(cycle)
        for i in range(n):
            v = offered[i]
            chain[i].tick(v, v and readies[i], out_readies[i])
        for i in steppers:
            if chain[i].fired:
                trace.steps[i].append(cycle)
        if offered[0] and readies[0]:
            fed += 1
        cycle += 1
    return trace


def simulate_handshakes(specs: list[BlockSpec], in_beats: int, out_beats: int,
                        max_cycles: int = 5_000_000) -> list[int]:
    """Cycles of the ``out_beats`` output transfers when ``in_beats`` input beats are offered
    from cycle 0 on and the output is always taken."""
    chain = [b for spec in specs for b in blocks_for(spec)]
    return run_chain(chain, in_beats, out_beats, max_cycles).transfers[-1]
