"""The handshake models of the image blocks (:mod:`qfab.cost_model.handshake` runs them):
tap reducers, the depthwise MAC, global sums, upsampling, joins, selects and the sliding
window. Each class mirrors the ``elaborate`` of the block it names."""

from __future__ import annotations

from typing import Any

from qfab.cost_model.handshake_blocks import _Block


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
