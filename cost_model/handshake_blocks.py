"""The handshake models of the streaming blocks (:mod:`qfab.cost_model.handshake` runs
them): the source, pipelines with and without a spare register, the matrix-vector unit,
width converters and FIFOs. Each class mirrors the ``elaborate`` of the block it names."""

from __future__ import annotations

import operator
from typing import Any


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
