"""The handshake models run from event to event instead of clock by clock.

:func:`qfab.cost_model.handshake.run_chain` defines the figures: every block ticks every
clock. Here a block is visited only when something it sees changes (a neighbour's ``valid``
or ``ready``) or when its own ``valid``, ``ready`` or folding step is due to change, which
it says in advance (:func:`_horizon`): it looks ahead with its inputs held, skipping counted
stretches (an MVU inside a neuron fold, a window inside a row, a FIFO filling or draining)
in closed form, and stops at a fixed point (an idle block stays idle). Between its visits a
block's inputs are constant, so catching it up is the same lookahead again. A stream
transfers in every cycle in which its producer is valid and its consumers ready, so its
transfers are runs of consecutive cycles, recorded when they start and stop. The trace is
the clock-by-clock one, cycle for cycle.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

from qfab.cost_model.handshake import Skip, Trace
from qfab.cost_model.handshake_blocks import _Mvu, _Source
from qfab.cost_model.handshake_image import _Join

NEVER = 1 << 62
LOOKAHEAD = 1 << 12  # ticks a block looks ahead at most before it asks to be visited again
CHECK_EVERY = 500  # cycles between progress calls and checks of the visits' density


def _advance(block, inputs: tuple, memo: dict | None, state: tuple) -> tuple[int, int]:
    """Tick ``block`` with ``inputs`` held until its signature changes, ``(k, k)`` ticks from
    now, or until it reaches a fixed point, ``(NEVER, ticks)``, or ``LOOKAHEAD`` ticks have
    passed, ``(ticks, ticks)``. With a ``memo`` (a block whose states recur), a state and
    inputs seen before lead where they led then, without ticking. ``state`` is the block's
    saved state."""
    if memo is None:
        return _ticks_ahead(block, inputs)
    key = (state, inputs)
    seen = memo.get(key)
    if seen is None:
        ahead = _ticks_ahead(block, inputs)
        memo[key] = (ahead, block.save())
        return ahead
    block.load(seen[1])
    return seen[0]


def _ticks_ahead(block, inputs: tuple) -> tuple[int, int]:
    in_valid, out_ready = inputs[0], inputs[1]
    save, signature, step, quiet = block.save, block.signature, block.step, block.quiet
    before = save()
    first = signature(in_valid, out_ready)
    ticks = 0
    while ticks < LOOKAHEAD:
        skip = quiet(in_valid, out_ready)
        if skip:
            block.jump(skip, in_valid, out_ready)
            ticks += skip
            before = save()
            continue
        step(in_valid, out_ready)
        ticks += 1
        if signature(in_valid, out_ready) != first:
            break
        after = save()
        if after == before:
            return NEVER, ticks - 1
        before = after
    return ticks, ticks


def _catch_up(block, ticks: int, inputs: tuple, memo: dict | None) -> None:
    """Tick ``block`` ``ticks`` times with ``inputs`` held (never past its horizon),
    remembered as :func:`_advance` does."""
    if memo is None:
        return _tick(block, ticks, inputs)
    key = (block.save(), inputs, ticks)
    seen = memo.get(key)
    if seen is None:
        _tick(block, ticks, inputs)
        memo[key] = block.save()
    else:
        block.load(seen)


def _tick(block, ticks: int, inputs: tuple) -> None:
    in_valid, out_ready = inputs[0], inputs[1]
    while ticks > 0:
        skip = block.quiet(in_valid, out_ready)
        if skip:
            skip = min(skip, ticks)
            block.jump(skip, in_valid, out_ready)
            ticks -= skip
            continue
        before = block.save()
        block.step(in_valid, out_ready)
        ticks -= 1
        if block.save() == before:
            return


class _Runs:
    """The cycles in which something holds (a stream transfers, an MVU steps), kept as it
    starts and stops holding: the cycles of a run are added when it stops."""

    def __init__(self) -> None:
        self.on, self.since, self.cycles = False, 0, []

    def set(self, on: bool, t: int) -> None:
        if on != self.on:
            if on:
                self.since = t
            else:
                self.cycles.extend(range(self.since, t))
            self.on = on


class _Graph:
    """Who feeds whom: stream ``s`` has one producer and its consumers ``(block, port)``,
    port 0 the main input, 1 a join's second; a stream without consumers is always taken."""

    def __init__(self, chain: list, in_beats: int, skips: tuple[Skip, ...]):
        n = len(chain)
        self.blocks = [_Source(in_beats)] + list(chain)
        self.producer = list(range(n + 1))  # stream i (0..n) comes from block i
        self.consumers: list[list[tuple[int, int]]] = [[(i + 1, 0)] for i in range(n)] + [[]]
        self.inputs: list[list[int]] = [[]] + [[i] for i in range(n)]
        self.output = list(range(n + 1))
        self.skip_streams, self.skip_blocks = [], []
        for s in skips:
            streams, ids = [s.fork], []
            for k, block in enumerate(s.blocks):
                b = len(self.blocks)
                self.blocks.append(block)
                self.consumers[streams[-1]].append((b, 0))
                self.inputs.append([streams[-1]])
                streams.append(len(self.producer))
                self.producer.append(b)
                self.consumers.append([(s.join + 1, 1)] if k == len(s.blocks) - 1 else [])
                self.output.append(streams[-1])
                ids.append(b)
            self.inputs[s.join + 1].append(streams[-1])
            self.skip_streams.append(streams)
            self.skip_blocks.append(ids)
        # The blocks that read a block's valid or ready: its consumers, its producers and the
        # other consumers of the streams it reads (a fork offers to both or neither).
        self.readers: list[list[int]] = []
        for b in range(len(self.blocks)):
            near = {c for c, _ in self.consumers[self.output[b]]}
            for s in self.inputs[b]:
                near.add(self.producer[s])
                near.update(c for c, _ in self.consumers[s])
            near.discard(b)
            self.readers.append(sorted(near))


def run_events(chain: list, in_beats: int, out_beats: int, max_cycles: int = 5_000_000,
               skips: tuple[Skip, ...] = (),
               progress: Callable[[int], None] | None = None,
               give_way: float | None = None) -> Trace | None:
    """What :func:`qfab.cost_model.handshake.run_chain` returns for the same arguments,
    computed from event to event. ``progress`` is called now and then with the cycle
    reached. With ``give_way``, returns None as soon as blocks are visited more often than
    that fraction of the cycles (a dense design, cheaper clock by clock). Raises
    ``RuntimeError`` when the chain stops for good (a deadlock) or runs past
    ``max_cycles``."""
    g = _Graph(chain, in_beats, skips)
    blocks, producer, output, readers = g.blocks, g.producer, g.output, g.readers
    nb, ns = len(blocks), len(producer)
    # A stream's takers: (consumer, 1) for a main input, (consumer, 2) for a join's second,
    # indexing the consumer's signals; ``others[b]``: the takers of b's input but b.
    takers = [tuple((c, 1 + port) for c, port in g.consumers[s]) for s in range(ns)]
    first_in = [ins[0] if ins else -1 for ins in g.inputs]
    others = [tuple((c, k) for c, k in takers[first_in[b]] if c != b) if first_in[b] >= 0
              else () for b in range(nb)]
    joins = [isinstance(block, _Join) for block in blocks]
    second_in = [g.inputs[b][1] if joins[b] else -1 for b in range(nb)]
    sig = [(False, False, False)] * nb  # (o_valid, ready, a join's second ready)
    held: list[tuple] = [()] * nb  # (in_valid, out_ready) the block ticks with
    seen: list[tuple] = [()] * nb  # the inputs a block's signal was last made from
    # A block is ticked ahead to where its signature next changes, or to its fixed point:
    # ``at`` is the cycle its state is at, ``base`` the cycle and state it was last
    # scheduled from (to go back to, should a neighbour change first).
    at = [0] * nb
    fixed = [False] * nb
    base: list[tuple] = [(0, ())] * nb
    version = [0] * nb
    heap: list[tuple[int, int, int]] = []
    flows = [_Runs() for _ in range(ns)]
    # Where each state of a block whose states recur led, with its inputs held: ticked
    # ahead to its horizon, and ticked a number of cycles (a visit before its horizon).
    ahead = [{} if block.RECURS else None for block in blocks]
    caught = [{} if block.RECURS else None for block in blocks]
    steppers = [b for b in range(nb) if isinstance(blocks[b], _Mvu)]
    stepping = {b: _Runs() for b in steppers}
    out_stream = len(chain)

    def inputs_of(b: int) -> tuple:
        out_ready = True
        for c, k in takers[output[b]]:
            if not sig[c][k]:
                out_ready = False
                break
        s = first_in[b]
        if s < 0:
            return (False, out_ready)
        offered = sig[producer[s]][0]
        in_valid = offered
        for c, k in others[b]:
            if not sig[c][k]:
                in_valid = False
                break
        if joins[b]:  # the join reads both inputs' valids as they are
            return (in_valid, out_ready, sig[producer[second_in[b]]][0], offered)
        return (in_valid, out_ready)

    def held_of(b: int) -> tuple:
        # A block sees its input's valid only through a transfer and its output's ready only
        # while it is valid: held as such, its inputs change only when a transfer starts or
        # stops (a join reads both valids, as they are). Its inputs are those its signal was
        # last made from: settling visits a block again whenever a signal it reads changes.
        inputs = seen[b]
        if joins[b]:
            return inputs
        valid, ready = sig[b][0], sig[b][1]
        return (inputs[0] and ready, inputs[1] and valid)

    def catch_up(b: int, t: int) -> None:
        p = at[b]
        if t == p or (t > p and fixed[b]):
            return
        block = blocks[b]
        if t < p:  # ticked too far ahead: a neighbour changed first
            start, state = base[b]
            block.load(state)
            p = start
            fixed[b] = False
        _catch_up(block, t - p, held[b], caught[b])
        at[b] = t

    def signal(b: int) -> tuple:
        block = blocks[b]
        inputs = seen[b] = inputs_of(b)
        if joins[b]:
            block.b_valid, block.a_valid = inputs[2], inputs[3]
            return (block.o_valid, block.ready(inputs[1]), block.ready_b(inputs[3], inputs[1]))
        return (block.o_valid, block.ready(inputs[1]), False)

    def schedule(b: int, t: int) -> None:
        inputs = held[b]
        if joins[b]:
            blocks[b].b_valid, blocks[b].a_valid = inputs[2], inputs[3]
        state = blocks[b].save()
        base[b] = (t, state)
        ticks, reached = _advance(blocks[b], inputs, ahead[b], state)
        version[b] += 1
        at[b] = t + reached
        fixed[b] = ticks == NEVER  # any later cycle finds the fixed point
        if not fixed[b]:
            heapq.heappush(heap, (t + ticks, b, version[b]))

    def settle(t: int, due: list[int]) -> tuple[set[int], set[int]]:
        """Bring ``due`` to cycle ``t`` and settle the signals; the blocks visited and those
        whose signals changed."""
        work, touched, moved = list(due), set(), set()
        while work:
            b = work.pop()
            catch_up(b, t)
            touched.add(b)
            new = signal(b)
            if new != sig[b]:
                sig[b] = new
                moved.add(b)
                work.extend(readers[b])
        return touched, moved

    def record(t: int, moved: set[int], changed: list[int]) -> None:
        streams = set()
        for b in moved:
            if first_in[b] >= 0:
                streams.add(first_in[b])
                if joins[b]:
                    streams.add(second_in[b])
            streams.add(output[b])
        for b in changed:
            if b in stepping:
                stepping[b].set(blocks[b].firing(held[b][0]), t)
        for s in streams:
            flowing = sig[producer[s]][0]
            if flowing:
                for c, k in takers[s]:
                    if not sig[c][k]:
                        flowing = False
                        break
            flows[s].set(flowing, t)

    t = 0
    settle(0, list(range(nb)))
    for b in range(nb):
        held[b] = held_of(b)
    record(0, set(range(nb)), list(range(nb)))
    for b in range(nb):
        schedule(b, 0)
    reported = visits = 0
    while True:
        nxt = heap[0][0] if heap else NEVER
        out = flows[out_stream]
        if out.on:
            last = out.since + out_beats - len(out.cycles) - 1
            if last < nxt:
                end = last + 1
                break
        if nxt == NEVER:
            raise RuntimeError(f"handshake model stopped for good at cycle {t}: no block can "
                               f"move ({out_beats - len(out.cycles)} of {out_beats} "
                               f"output beats left)")
        if nxt >= max_cycles:
            raise RuntimeError(f"handshake model did not finish in {max_cycles} cycles")
        t = nxt
        due = []
        while heap and heap[0][0] == t:
            _, b, v = heapq.heappop(heap)
            if v == version[b]:
                due.append(b)
        if not due:
            continue
        touched, moved = settle(t, due)
        visits += len(touched)
        changed = []
        for b in touched:
            inputs = held_of(b)
            if inputs != held[b] or b in due:
                held[b] = inputs
                changed.append(b)
        record(t, moved, changed)
        for b in changed:
            schedule(b, t)
        if t - reported >= CHECK_EVERY:
            reported = t
            if give_way is not None and visits > give_way * t * nb:
                return None
            if progress is not None:
                progress(t)
    for runs in [*flows, *stepping.values()]:
        runs.set(False, end)

    def steps_of(b: int) -> list[int]:
        return stepping[b].cycles if b in stepping else []

    n = len(chain)
    return Trace(
        transfers=[flows[s].cycles for s in range(n + 1)],
        steps=[steps_of(b) for b in range(1, n + 1)],
        skip_transfers=[[list(flows[s].cycles) for s in streams] for streams in g.skip_streams],
        skip_steps=[[steps_of(b) for b in ids] for ids in g.skip_blocks])
