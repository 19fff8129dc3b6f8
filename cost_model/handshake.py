"""Cycle-level model of the accelerator's stream handshakes, without any data.

Each hw/ block is reduced to the registers that decide when it takes and gives beats: the
valid bits of its pipeline, the output register (and the spare of ``OutputSkid``), its fold
and window counters. Stepping the chain one clock at a time gives every beat's cycle with the
back-pressure between blocks included (an MVU whose two input banks are full, a window
waiting for rows, hold the block before them). Each class mirrors the ``elaborate`` of the
block it names.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from qfab.compiler.backend.plan import BlockSpec
from qfab.cost_model.timing import PIPELINE_STAGES, pipeline_stages


class _Block:
    """A handshake model: ``begin`` (before any block's ``ready``), ``ready``, ``tick``.

    For the event-driven run (:mod:`qfab.cost_model.events`): ``STATE`` names the registers
    (``save``/``load`` copy them; a saved state is hashable), ``signature`` is what the
    neighbours see (``o_valid`` and ``ready``), and ``quiet``/``jump`` skip, in closed form,
    ticks that change neither (a counter counting): ``quiet`` says how many of the next
    ticks, with these inputs held, leave the signature as it is after each, and ``jump(m)``
    makes ``m`` of them at once.
    """

    STATE: tuple[str, ...] = ()
    # Whether the block's states come round again (counters that wrap, not a count of beats
    # or rows taken): the event-driven run then remembers where each state leads.
    RECURS = True

    def __init_subclass__(cls) -> None:
        # save as one attrgetter and load as one tuple assignment, made once a class: the
        # event-driven run copies states at every visit (a generated assignment took a
        # tenth of the time of dict.update over the names).
        super().__init_subclass__()
        if "STATE" in cls.__dict__ and "save" not in cls.__dict__:
            names = cls.STATE
            getter = operator.attrgetter(*names)
            cls.save = (lambda self: getter(self)) if len(names) > 1 else (
                lambda self: (getter(self),))
            if "load" not in cls.__dict__:
                scope: dict[str, Any] = {}
                targets = ", ".join(f"self.{name}" for name in names)
                exec(f"def load(self, state):\n    {targets}, = state", scope)  # noqa: S102
                cls.load = scope["load"]

    def begin(self) -> None:
        pass

    def save(self) -> tuple:
        # A block that names no STATE would look idle to the event-driven run.
        raise NotImplementedError(f"{type(self).__name__} names no STATE")

    def load(self, state: tuple) -> None:
        self.__dict__.update(zip(self.STATE, state, strict=True))

    def signature(self, in_valid: bool, out_ready: bool) -> tuple:
        return (self.o_valid, self.ready(out_ready))

    def quiet(self, in_valid: bool, out_ready: bool) -> int:
        return 0

    def jump(self, ticks: int, in_valid: bool, out_ready: bool) -> None:
        raise NotImplementedError

    def step(self, in_valid: bool, out_ready: bool) -> None:
        """One clock with ``in_valid`` offered and ``out_ready`` seen."""
        fire = in_valid and self.ready(out_ready)
        self.begin()
        self.tick(in_valid, fire, out_ready)


class _Source(_Block):
    """The chain's input: ``beats`` beats offered from cycle 0 on, one a cycle when taken."""

    STATE = ("fed",)
    RECURS = False

    def __init__(self, beats: int):
        self.beats, self.fed = beats, 0

    @property
    def o_valid(self) -> bool:
        return self.fed < self.beats

    def ready(self, out_ready: bool) -> bool:
        return False

    def tick(self, in_valid: bool, in_fire: bool, out_ready: bool) -> None:
        if out_ready and self.fed < self.beats:
            self.fed += 1

    def quiet(self, in_valid: bool, out_ready: bool) -> int:
        return self.beats - self.fed - 1 if out_ready and self.fed < self.beats else 0

    def jump(self, ticks: int, in_valid: bool, out_ready: bool) -> None:
        self.fed += ticks


class _Skid(_Block):
    """A pipeline of ``stages`` valid bits ending in OutputSkid (none: the input's valid
    goes straight to the output register)."""

    STATE = ("stages", "spare", "o_valid")

    def __init__(self, stages: int):
        self.stages = (False,) * stages  # tuples: a state is hashable (events.py keeps them)
        self.spare = False
        self.o_valid = False

    @property
    def advance(self) -> bool:
        return not self.spare

    def ready(self, out_ready: bool) -> bool:
        return self.advance

    def _push(self, new: bool, out_ready: bool) -> None:
        new = new and self.advance
        if not self.o_valid or out_ready:
            if self.spare:
                self.o_valid, self.spare = True, False
            else:
                self.o_valid = new
        elif new:
            self.spare = True

    def tick(self, in_valid: bool, in_fire: bool, out_ready: bool) -> None:
        self._push(self.stages[-1] if self.stages else in_valid, out_ready)
        if self.advance_was and self.stages:
            self.stages = (in_fire,) + self.stages[:-1]

    def begin(self) -> None:
        self.advance_was = self.advance


class _Register(_Block):
    """A pipeline of ``stages`` valid bits ending in OutputRegister (no spare): it moves
    when its output is empty or taken."""

    STATE = ("stages", "o_valid")

    def __init__(self, stages: int):
        self.stages = (False,) * stages
        self.o_valid = False

    def ready(self, out_ready: bool) -> bool:
        return not self.o_valid or out_ready

    def tick(self, in_valid: bool, in_fire: bool, out_ready: bool) -> None:
        if not self.o_valid or out_ready:
            self.o_valid = self.stages[-1] if self.stages else in_valid
            self.stages = (in_valid,) + self.stages[:-1] if self.stages else self.stages


class _Mvu(_Skid):
    """The MVU's folding counters behind ``stages`` pipeline registers; double-buffered with
    more than one neuron fold, its input side is a buffer of two vectors (``lag``: vectors
    written minus vectors computed, ``w_addr``: the word the next input beat is written
    to), else it takes input in the first neuron fold only."""

    STATE = ("stages", "spare", "o_valid", "nf", "sf", "last", "lag", "w_addr")

    def __init__(self, nf: int, sf: int, stages: int, double_buffered: bool = False):
        super().__init__(stages)
        self.nf_count, self.sf_count = nf, sf
        # one bank: input taken in the first fold only (as with one neuron fold)
        self.banks = nf > 1 and double_buffered
        self.nf = self.sf = 0
        self.last = (False,) * stages
        self.lag = self.w_addr = 0
        self.fired = False  # whether the last tick was a step (one of NF x SF a vector)

    def ready(self, out_ready: bool) -> bool:
        if not self.banks:
            return self.advance and self.nf == 0
        return self.lag != 2

    def firing(self, in_valid: bool) -> bool:
        """Whether the next tick is a step of the folding counters."""
        if not self.banks:
            return self.advance and (self.nf != 0 or in_valid)
        return self.advance and (self.lag != 0 or in_valid or self.sf != self.w_addr)

    def signature(self, in_valid: bool, out_ready: bool) -> tuple:
        return (self.o_valid, self.ready(out_ready), self.firing(in_valid))

    def quiet(self, in_valid: bool, out_ready: bool) -> int:
        # Mid-fold with the pipeline full of non-last steps: each tick only counts ``sf``
        # (and ``w_addr``, while beats are written, short of a bank's end).
        if (self.spare or not self.firing(in_valid) or not all(self.stages)
                or any(self.last) or (self.o_valid and out_ready)):
            return 0
        ticks = self.sf_count - 1 - self.sf
        if self.banks:
            if in_valid and self.lag != 2:
                ticks = min(ticks, self.sf_count - 1 - self.w_addr)
            elif self.lag == 0:
                ticks = min(ticks, self.w_addr - self.sf - 1)
        return max(ticks, 0)

    def jump(self, ticks: int, in_valid: bool, out_ready: bool) -> None:
        self.sf += ticks
        if self.banks and in_valid and self.lag != 2:
            self.w_addr += ticks

    def tick(self, in_valid: bool, in_fire: bool, out_ready: bool) -> None:
        advance = self.advance_was
        fire = self.firing(in_valid)  # before the output register moves the spare
        self._push(self.stages[-1] and self.last[-1], out_ready)
        if advance:
            self.stages = (fire,) + self.stages[:-1]
            self.last = (self.sf == self.sf_count - 1,) + self.last[:-1]
        self.fired = fire
        written = computed = False
        if self.banks and in_fire:
            written = self.w_addr == self.sf_count - 1
            self.w_addr = 0 if written else self.w_addr + 1
        if fire:
            self.sf += 1
            if self.sf == self.sf_count:
                self.sf = 0
                computed = self.nf == self.nf_count - 1
                self.nf = 0 if computed else self.nf + 1
        if self.banks:
            self.lag += written - computed


class _Gather(_Block):
    STATE = ("slot", "o_valid")

    def __init__(self, k: int):
        self.k, self.slot, self.o_valid = k, 0, False

    def quiet(self, in_valid: bool, out_ready: bool) -> int:
        return self.k - 1 - self.slot if in_valid and not self.o_valid else 0

    def jump(self, ticks: int, in_valid: bool, out_ready: bool) -> None:
        self.slot += ticks

    def ready(self, out_ready: bool) -> bool:
        return not self.o_valid or out_ready

    def tick(self, in_valid: bool, in_fire: bool, out_ready: bool) -> None:
        if self.o_valid and out_ready:
            self.o_valid = False
        if in_fire:
            if self.slot == self.k - 1:
                self.slot, self.o_valid = 0, True
            else:
                self.slot += 1


class _HeldGather(_Block):
    """The gather with ``registered_ready``: its input runs while a word waits at the output,
    until the next word's last beat, which waits in the buffer (``held``), the input
    stopped, until the output register takes the word."""

    STATE = ("slot", "held", "o_valid")

    def __init__(self, k: int):
        self.k, self.slot, self.held, self.o_valid = k, 0, False, False

    def quiet(self, in_valid: bool, out_ready: bool) -> int:
        if in_valid and not self.held and not (self.o_valid and out_ready):
            return self.k - 1 - self.slot
        return 0

    def jump(self, ticks: int, in_valid: bool, out_ready: bool) -> None:
        self.slot += ticks

    def ready(self, out_ready: bool) -> bool:
        return not self.held

    def tick(self, in_valid: bool, in_fire: bool, out_ready: bool) -> None:
        free = not self.o_valid or out_ready
        last = in_fire and self.slot == self.k - 1
        if in_fire:
            self.slot = 0 if last else self.slot + 1
        if free:
            self.o_valid, self.held = self.held or last, False
        elif last:
            self.held = True


class _Split(_Block):
    STATE = ("part", "o_valid")

    def __init__(self, k: int):
        self.k, self.part, self.o_valid = k, 0, False

    def quiet(self, in_valid: bool, out_ready: bool) -> int:
        return max(0, self.k - 2 - self.part) if self.o_valid and out_ready else 0

    def jump(self, ticks: int, in_valid: bool, out_ready: bool) -> None:
        self.part += ticks

    def ready(self, out_ready: bool) -> bool:
        return not self.o_valid or (out_ready and self.part == self.k - 1)

    def tick(self, in_valid: bool, in_fire: bool, out_ready: bool) -> None:
        if self.o_valid and out_ready:
            if self.part == self.k - 1:
                self.part, self.o_valid = 0, False
            else:
                self.part += 1
        if in_fire:
            self.part, self.o_valid = 0, True


class _TapReducer(_Block):
    STATE = ("tap", "o_valid")

    def __init__(self, taps: int):
        self.taps, self.tap, self.o_valid = taps, 0, False

    def ready(self, out_ready: bool) -> bool:
        return self.tap != self.taps - 1 or not self.o_valid or out_ready

    def tick(self, in_valid: bool, in_fire: bool, out_ready: bool) -> None:
        if self.o_valid and out_ready:
            self.o_valid = False
        if in_fire:
            last = self.tap == self.taps - 1
            self.tap = 0 if last else self.tap + 1
            if last:
                self.o_valid = True


class _DepthwiseMac(_TapReducer):
    """DepthwiseUnit: a tap reducer that waits one cycle after reset for its weight ROM."""

    STATE = ("tap", "o_valid", "primed")

    def __init__(self, taps: int):
        super().__init__(taps)
        self.primed = False

    def ready(self, out_ready: bool) -> bool:
        return self.primed and super().ready(out_ready)

    def tick(self, in_valid: bool, in_fire: bool, out_ready: bool) -> None:
        super().tick(in_valid, in_fire, out_ready)
        self.primed = True


class _GlobalSum(_Block):
    """GlobalAvgPool: a beat a cycle; the last pixel's beats wait for the output register."""

    STATE = ("group", "pixel", "o_valid")

    def __init__(self, groups: int, pixels: int):
        self.groups, self.pixels = groups, pixels
        self.group = self.pixel = 0
        self.o_valid = False

    def ready(self, out_ready: bool) -> bool:
        return self.pixel != self.pixels - 1 or not self.o_valid or out_ready

    def quiet(self, in_valid: bool, out_ready: bool) -> int:
        # Taking beats before the last pixel's: only the counters count, o_valid stays.
        if not in_valid or (self.o_valid and out_ready) or self.pixel == self.pixels - 1:
            return 0
        return (self.pixels - 1 - self.pixel) * self.groups - self.group - 1

    def jump(self, ticks: int, in_valid: bool, out_ready: bool) -> None:
        self.pixel, self.group = divmod(self.pixel * self.groups + self.group + ticks,
                                        self.groups)

    def tick(self, in_valid: bool, in_fire: bool, out_ready: bool) -> None:
        if self.o_valid and out_ready:
            self.o_valid = False
        if in_fire:
            last = self.pixel == self.pixels - 1
            if self.group == self.groups - 1:
                self.pixel = 0 if last else self.pixel + 1
            self.group = (self.group + 1) % self.groups
            if last:
                self.o_valid = True


class _Upsample(_Block):
    """NearestUpsample: takes a row, then reads it out ``repeats`` beats, a beat whenever
    the output register is free, then takes the next row."""

    STATE = ("emitting", "written", "remaining", "o_valid")

    def __init__(self, row_beats: int, repeats: int):
        self.row_beats, self.repeats = row_beats, repeats
        self.emitting, self.written, self.remaining, self.o_valid = False, 0, 0, False

    def ready(self, out_ready: bool) -> bool:
        return not self.emitting

    def tick(self, in_valid: bool, in_fire: bool, out_ready: bool) -> None:
        if self.emitting and (not self.o_valid or out_ready):
            self.o_valid = True
            self.remaining -= 1
            self.emitting = self.remaining > 0
        elif out_ready:
            self.o_valid = False
        if in_fire:
            self.written += 1
            if self.written == self.row_beats:
                self.written, self.emitting, self.remaining = 0, True, self.repeats


class _Fifo(_Block):
    """StreamFIFO (amaranth's SyncFIFOBuffered, depth >= 2): a RAM queue of ``depth - 1``
    beats behind an output register."""

    STATE = ("inner", "o_valid")

    def __init__(self, depth: int):
        self.inner_depth, self.inner, self.o_valid = depth - 1, 0, False

    def _filling(self, in_valid: bool, out_ready: bool) -> bool:
        return in_valid and self.o_valid and not out_ready and self.inner < self.inner_depth

    def quiet(self, in_valid: bool, out_ready: bool) -> int:
        if self._filling(in_valid, out_ready):  # the head waits, the queue fills
            return self.inner_depth - 1 - self.inner
        if (self.o_valid and out_ready and self.inner != self.inner_depth
                and not (in_valid and self.ready(out_ready))):  # the queue drains
            return self.inner
        return 0

    def jump(self, ticks: int, in_valid: bool, out_ready: bool) -> None:
        self.inner += ticks if self._filling(in_valid, out_ready) else -ticks

    def ready(self, out_ready: bool) -> bool:
        return self.inner != self.inner_depth

    def tick(self, in_valid: bool, in_fire: bool, out_ready: bool) -> None:
        inner_read = self.inner != 0 and (not self.o_valid or out_ready)
        self.inner += int(in_fire) - int(inner_read)
        if inner_read:
            self.o_valid = True
        elif out_ready:
            self.o_valid = False


class _Join(_Block):
    """ResidualAdd: takes a beat of both inputs at once, two pipeline registers, no skid.
    ``b_valid`` is its second input's valid, set by :func:`run_chain` each cycle."""

    STATE = ("sums_valid", "o_valid")

    def __init__(self):
        self.sums_valid = self.o_valid = self.b_valid = self.a_valid = False

    def signature(self, in_valid: bool, out_ready: bool) -> tuple:
        return (self.o_valid, self.ready(out_ready), self.ready_b(self.a_valid, out_ready))

    def advance(self, out_ready: bool) -> bool:
        return not self.o_valid or out_ready

    def ready(self, out_ready: bool) -> bool:
        return self.b_valid and self.advance(out_ready)

    def ready_b(self, a_valid: bool, out_ready: bool) -> bool:
        return a_valid and self.advance(out_ready)

    def tick(self, in_valid: bool, in_fire: bool, out_ready: bool) -> None:
        if self.advance(out_ready):
            self.o_valid, self.sums_valid = self.sums_valid, in_valid and self.b_valid


class _Concat(_Join):
    """StreamConcat: runs of ``a_beats`` of its first input and ``b_beats`` of its second in
    turns, through one output register; an input is ready only in its turn."""

    STATE = ("count", "turn_b", "o_valid")

    def __init__(self, a_beats: int, b_beats: int, b_first: bool):
        super().__init__()
        self.runs = (a_beats, b_beats)
        self.count, self.turn_b = 0, b_first

    def ready(self, out_ready: bool) -> bool:
        return not self.turn_b and self.advance(out_ready)

    def ready_b(self, a_valid: bool, out_ready: bool) -> bool:
        return self.turn_b and self.advance(out_ready)

    def tick(self, in_valid: bool, in_fire: bool, out_ready: bool) -> None:
        if not self.advance(out_ready):
            return
        self.o_valid = self.b_valid if self.turn_b else in_valid
        if self.o_valid:
            if self.count == self.runs[self.turn_b] - 1:
                self.count, self.turn_b = 0, not self.turn_b
            else:
                self.count += 1


class _Select(_Block):
    """StreamSelect: beats ``first`` to ``first + count - 1`` of every ``period`` go through
    an output register; the others are taken at once and dropped."""

    STATE = ("pos", "o_valid")

    def __init__(self, period: int, first: int, count: int):
        self.period, self.first, self.count = period, first, count
        self.pos, self.o_valid = 0, False

    def _keep(self) -> bool:
        return self.first <= self.pos < self.first + self.count

    def ready(self, out_ready: bool) -> bool:
        return not self._keep() or not self.o_valid or out_ready

    def tick(self, in_valid: bool, in_fire: bool, out_ready: bool) -> None:
        if not self.o_valid or out_ready:
            self.o_valid = in_fire and self._keep()
        if in_fire:
            self.pos = 0 if self.pos == self.period - 1 else self.pos + 1


class _Window(_Block):
    RECURS = False  # rows written and released count on

    def __init__(self, p: dict[str, Any], depthwise: bool):
        from qfab.hw._window_timing import WindowGeometry

        self.g = g = WindowGeometry(
            height=p["height"], width=p["width"], kernel=tuple(p["kernel"]),
            stride=tuple(p["stride"]), padding=tuple(p["padding"]),
            beats_per_pixel=p["channels"] // p["simd"], taps=p.get("taps", 1))
        self.row_beats = g.width * g.beats_per_pixel
        self.slots = g.row_slots
        self.written = self.released = self.base = self.wpos = 0
        self.c = {"oy": 0, "ox": 0, "ky": 0, "kx": 0, "cf": 0}
        counts = {"ox": g.out_width, "ky": g.kernel[0], "kx": g.kernel[1] // g.taps,
                  "cf": g.beats_per_pixel}
        inner = ["kx", "ky", "cf"] if depthwise else ["cf", "kx", "ky"]
        self.order = [(name, counts[name]) for name in inner + ["ox"]]
        self.o_valid = False

    def ready(self, out_ready: bool) -> bool:
        return self.written - self.released < self.slots

    def save(self) -> tuple:
        return (self.written, self.released, self.base, self.wpos, self.o_valid,
                tuple(self.c.values()))

    def load(self, state: tuple) -> None:
        self.written, self.released, self.base, self.wpos, self.o_valid, counters = state
        self.c = dict(zip(self.c, counters, strict=True))

    def _advancing(self, out_ready: bool) -> bool:
        top = self.c["oy"] * self.g.stride[0] - self.g.pad_top
        return (self.written - self.base >= self._need(top)) and (not self.o_valid or out_ready)

    def _row_position(self) -> int:
        """Ticks of the output row's inner counters done so far."""
        position, scale = 0, 1
        for name, count in self.order:
            position += self.c[name] * scale
            scale *= count
        return position

    def quiet(self, in_valid: bool, out_ready: bool) -> int:
        # Within an input row (only ``wpos`` counts) and an output row (only the inner
        # counters count), with ``o_valid`` staying as it is.
        advancing = self._advancing(out_ready)
        if advancing != self.o_valid and (advancing or out_ready):
            return 0
        limits = []
        if in_valid and self.ready(out_ready):
            limits.append(self.row_beats - 1 - self.wpos)
        if advancing:
            limits.append(self.g.out_row_beats - 1 - self._row_position())
        return min(limits) if limits else 0

    def jump(self, ticks: int, in_valid: bool, out_ready: bool) -> None:
        if self._advancing(out_ready):
            position = self._row_position() + ticks
            for name, count in self.order:
                position, self.c[name] = divmod(position, count)
        if in_valid and self.ready(out_ready):
            self.wpos += ticks

    def _need(self, top: int) -> int:
        kh, h = self.g.kernel[0], self.g.height
        return 1 if top + kh <= 1 else h if top + kh >= h else top + kh

    def tick(self, in_valid: bool, in_fire: bool, out_ready: bool) -> None:
        g, c = self.g, self.c
        top = c["oy"] * g.stride[0] - g.pad_top
        advance = (self.written - self.base >= self._need(top)) and (not self.o_valid
                                                                     or out_ready)
        if in_fire:
            if self.wpos == self.row_beats - 1:
                self.wpos = 0
                self.written += 1
            else:
                self.wpos += 1
        if self.o_valid and out_ready:
            self.o_valid = False
        if not advance:
            return
        self.o_valid = True
        carry = True
        for name, count in self.order:
            last = c[name] == count - 1
            if carry:
                c[name] = 0 if last else c[name] + 1
            carry = carry and last
        if carry:
            if c["oy"] == g.out_height - 1:
                c["oy"] = 0
                self.released = self.base + g.height
                self.base += g.height
            else:
                c["oy"] += 1
                nxt = top + g.stride[0]
                self.released = self.base + (0 if nxt <= 0 else min(nxt, g.height))


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
            out.append((_HeldGather if p.get("registered_ready") else _Gather)(word // n_in))
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
