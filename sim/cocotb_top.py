"""The cocotb test that runs one co-simulation job; loaded by the simulator, not imported.

It reads ``job.json`` and ``inputs.hex`` from the run directory named by ``QFAB_COSIM_DIR``,
fills the harness's input ring through VPI, pulses ``start``, raises ``free_run`` and waits
for ``done``. The simulator main (``cosim_main.cpp``) drives the clock in C++ and, while
``free_run`` is high, runs it without calling into VPI, so no Python runs per cycle: Python
wakes only when the harness moves past half a ring, to refill that half with the next input
beats or to read its output beats, and at ``done``. It writes ``result.json`` beside them.
Only the standard library and cocotb are imported here, to keep the simulator's start fast.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import cocotb
from cocotb.triggers import ClockCycles, Edge, FallingEdge, RisingEdge

# What the parent process asks for: file names and keys shared with qfab.sim.cosim.
JOB_FILE, INPUT_FILE, RESULT_FILE = "job.json", "inputs.hex", "result.json"
RESET_CYCLES = 2


def _word(handle) -> str:
    return format(handle.value.to_unsigned(), "x")


async def _refill(dut, words: list[str], depth: int) -> None:
    """Each time the harness leaves a half of the input ring, write the next beats there."""
    in_mem, half = dut.in_mem, depth // 2
    fed, left = depth, 0  # beats written so far; the half the harness leaves next
    while fed < len(words):
        await Edge(dut.in_half)
        for k, word in enumerate(words[fed:fed + half]):
            in_mem[left * half + k].value = int(word, 16)
        fed += half
        left ^= 1


class _Outputs:
    """The output beats and their stamps, read from the rings half by half as they fill."""

    def __init__(self, dut, depth: int) -> None:
        self.dut, self.depth = dut, depth
        self.words: list[str] = []
        self.stamps: list[int] = []

    def read(self, upto: int) -> None:
        out_mem, stamp_mem = self.dut.out_mem, self.dut.stamp_mem
        for k in range(len(self.words), upto):
            self.words.append(_word(out_mem[k % self.depth]))
            self.stamps.append(int(stamp_mem[k % self.depth].value))

    async def drain(self) -> None:
        half = self.depth // 2
        while True:
            await Edge(self.dut.out_half)
            self.read(len(self.words) + half)


@cocotb.test()
async def run_job(dut) -> None:
    """Load the inputs, run the accelerator to ``done`` and save what it produced."""
    run_dir = Path(os.environ["QFAB_COSIM_DIR"])
    job = json.loads((run_dir / JOB_FILE).read_text())
    words = (run_dir / INPUT_FILE).read_text().split()

    dut.rst.value = 1
    dut.start.value = 0
    dut.n_in_beats.value = len(words)
    dut.n_out_beats.value = job["n_out_beats"]
    dut.timeout_cycles.value = job["timeout_cycles"]
    await ClockCycles(dut.clk, RESET_CYCLES)
    # After the first evaluation, so the memory's initial block cannot overwrite the inputs.
    in_mem = dut.in_mem
    for addr, word in enumerate(words[:job["in_depth"]]):
        in_mem[addr].value = int(word, 16)
    outputs = _Outputs(dut, job["out_depth"])
    tasks = [cocotb.start_soon(_refill(dut, words, job["in_depth"])),
             cocotb.start_soon(outputs.drain())]
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    dut.start.value = 1
    await FallingEdge(dut.clk)
    dut.start.value = 0
    # From here on Python waits only for done and the rings' halves: the clock runs freely.
    dut.free_run.value = 1

    began, began_cpu = time.perf_counter(), time.process_time()
    await RisingEdge(dut.done)
    wall, cpu = time.perf_counter() - began, time.process_time() - began_cpu

    for task in tasks:
        task.cancel()
    n_out = int(dut.out_count.value)
    outputs.read(n_out)
    result = {
        "timed_out": bool(dut.timed_out.value),
        "cycles": int(dut.cycles.value),
        "in_count": int(dut.in_count.value),
        "out_count": n_out,
        "words": outputs.words,
        "stamps": outputs.stamps,
        "stage_cycles": _word(dut.stage_cycles) if job["n_stages"] else "0",
        "wall_seconds": wall,
        "cpu_seconds": cpu,
    }
    tmp = run_dir / (RESULT_FILE + ".tmp")
    tmp.write_text(json.dumps(result))
    os.replace(tmp, run_dir / RESULT_FILE)
