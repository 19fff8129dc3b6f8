"""Stream driver and monitor for block-level tests in Amaranth's Python simulator.

Every block in hw/ talks ``amaranth.lib.stream``; these helpers feed a list of beats into an
input stream and collect beats from an output stream under random idle (valid low) and
back-pressure (ready low) patterns, so a test only has to compare lists.

Rules the helpers follow and check:

- the driver asserts ``valid`` without looking at ``ready`` and holds it, with the payload
  unchanged, until the beat is taken (a transfer is ``valid & ready`` at a clock edge);
- the monitor may drop ``ready`` at any time; with ``check_stable`` it fails the test if the
  block under test withdraws ``valid`` or changes the payload before its beat is taken;
- both record the cycle (counted from the start of the simulation) of every transfer, so a
  test can measure throughput and latency exactly.

Typical use::

    out = run_streams(dut, inputs={"i_stream": beats}, outputs={"o_stream": n_out},
                      rng=np.random.default_rng(1), p_idle=0.3, p_stall=0.3)
    assert out["o_stream"].beats == expected
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from amaranth.lib import data
from amaranth.sim import Simulator

__all__ = [
    "Transfers",
    "to_python",
    "stream_drive",
    "stream_collect",
    "run_streams",
    "array_beats",
    "beats_to_array",
]


@dataclass
class Transfers:
    """Beats seen on one stream, with the clock cycle of each transfer.

    Members
    -------
    beats : list
        Payload of every transfer, in order, as plain Python values (see :func:`to_python`).
    cycles : list of int
        Cycle index of each transfer, counted from the first clock edge of the simulation.
    """

    beats: list[Any] = field(default_factory=list)
    cycles: list[int] = field(default_factory=list)


def to_python(value: Any) -> Any:
    """Turn a sampled payload into plain Python: ints, lists (arrays) and dicts (structs)."""
    if isinstance(value, data.Const):
        layout = value.shape()
        if isinstance(layout, data.ArrayLayout):
            return [to_python(value[i]) for i in range(layout.length)]
        return {name: to_python(value[name]) for name, _ in layout}
    if hasattr(value, "value") and not isinstance(value, int):  # enum members
        return value.value
    return int(value)


def _chance(rng: np.random.Generator | None, p: float) -> bool:
    return rng is not None and p > 0 and rng.random() < p


async def stream_drive(
    ctx: Any,
    stream: Any,
    beats: Sequence[Any],
    *,
    rng: np.random.Generator | None = None,
    p_idle: float = 0.0,
    log: Transfers | None = None,
    max_wait: int = 100_000,
) -> Transfers:
    """Feed ``beats`` into ``stream`` (the DUT's input), one transfer per beat.

    Before each beat the driver stays idle (valid low) for one more cycle with probability
    ``p_idle``, repeatedly. It raises ``AssertionError`` if one beat waits more than
    ``max_wait`` cycles for ``ready``.
    """
    log = Transfers() if log is None else log
    cycle = 0
    for beat in beats:
        while _chance(rng, p_idle):
            ctx.set(stream.valid, 0)
            await ctx.tick()
            cycle += 1
        ctx.set(stream.payload, beat)
        ctx.set(stream.valid, 1)
        waited = 0
        while True:
            _, _, ready = await ctx.tick().sample(stream.ready)
            cycle += 1
            if ready:
                break
            waited += 1
            if waited > max_wait:
                raise AssertionError(f"input beat {len(log.beats)} never accepted")
        log.beats.append(beat)
        log.cycles.append(cycle - 1)
    ctx.set(stream.valid, 0)
    return log


async def stream_collect(
    ctx: Any,
    stream: Any,
    count: int,
    *,
    rng: np.random.Generator | None = None,
    p_stall: float = 0.0,
    log: Transfers | None = None,
    check_stable: bool = True,
    max_wait: int = 100_000,
) -> Transfers:
    """Take ``count`` beats from ``stream`` (the DUT's output).

    Each cycle ``ready`` is low with probability ``p_stall``. Fails if no beat arrives for
    ``max_wait`` cycles, or (with ``check_stable``) if the producer breaks the stream rules by
    dropping ``valid`` or changing the payload of a beat that was offered but not yet taken.
    """
    log = Transfers() if log is None else log
    cycle = 0
    idle = 0
    pending = None
    while len(log.beats) < count:
        ready = 0 if _chance(rng, p_stall) else 1
        ctx.set(stream.ready, ready)
        _, _, valid, payload = await ctx.tick().sample(stream.valid, stream.payload)
        cycle += 1
        payload = to_python(payload)
        if check_stable and pending is not None:
            assert valid, f"output beat {len(log.beats)} withdrawn before it was taken"
            assert payload == pending, (
                f"output beat {len(log.beats)} changed from {pending} to {payload} while waiting"
            )
        if valid and ready:
            log.beats.append(payload)
            log.cycles.append(cycle - 1)
            pending = None
            idle = 0
        else:
            pending = payload if valid else None
            idle += 1
            if idle > max_wait:
                raise AssertionError(
                    f"no output beat for {max_wait} cycles after {len(log.beats)} of {count}"
                )
    ctx.set(stream.ready, 0)
    return log


def run_streams(
    dut: Any,
    *,
    inputs: dict[str, Sequence[Any]],
    outputs: dict[str, int],
    rng: np.random.Generator | None = None,
    p_idle: float = 0.0,
    p_stall: float = 0.0,
    tail: int = 0,
    vcd: str | None = None,
    max_wait: int = 100_000,
) -> dict[str, Transfers]:
    """Simulate ``dut`` with one driver per input and one monitor per output stream.

    ``inputs`` maps a port name (``"i_stream"``) to its beats; ``outputs`` maps a port name to
    the number of beats to collect. Each driver and monitor gets its own random generator
    spawned from ``rng``, so adding a port does not change the other ports' patterns. After the
    last output beat, the simulation runs ``tail`` more cycles with ``ready`` low, then checks
    that no output offers a beat nobody asked for.
    Returns the :class:`Transfers` of every port, keyed by name.
    """
    logs = {name: Transfers() for name in [*inputs, *outputs]}
    seeds = rng.spawn(len(logs)) if rng is not None else [None] * len(logs)
    streams = dict(zip(logs, seeds, strict=True))
    sim = Simulator(dut)
    sim.add_clock(1e-6)

    def driver(name: str, beats: Sequence[Any]):
        async def testbench(ctx):
            await stream_drive(ctx, getattr(dut, name), beats, rng=streams[name],
                               p_idle=p_idle, log=logs[name], max_wait=max_wait)
        return testbench

    def monitor(name: str, count: int):
        async def testbench(ctx):
            stream = getattr(dut, name)
            await stream_collect(ctx, stream, count, rng=streams[name], p_stall=p_stall,
                                 log=logs[name], max_wait=max_wait)
            for _ in range(tail):
                _, _, valid = await ctx.tick().sample(stream.valid)
                assert not valid, f"{name} offers a beat beyond the {count} expected"
        return testbench

    for name, beats in inputs.items():
        sim.add_testbench(driver(name, beats))
    for name, count in outputs.items():
        sim.add_testbench(monitor(name, count))
    if vcd is not None:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
    return logs


def array_beats(tensor: np.ndarray, per_beat: int) -> list[list[int]]:
    """Split a tensor, channels last, into beats of ``per_beat`` consecutive channels."""
    flat = np.asarray(tensor).reshape(-1)
    if flat.size % per_beat:
        raise ValueError(f"{flat.size} elements do not split into beats of {per_beat}")
    return [[int(v) for v in row] for row in flat.reshape(-1, per_beat)]


def beats_to_array(beats: Sequence[Sequence[int]], shape: Sequence[int]) -> np.ndarray:
    """Join beats (lists of ints) back into an int64 tensor of ``shape``."""
    return np.asarray(beats, dtype=np.int64).reshape(shape)
