"""The cocotb test that runs one co-simulation job; loaded by the simulator, not imported.

It reads ``job.json`` and ``inputs.bin`` (the input beats as memory words, see
:mod:`qfab.sim.vpi_arrays`) from the run directory named by ``QFAB_COSIM_DIR``, fills the
harness's input ring, pulses ``start``, raises ``free_run`` and waits for ``done``. The
simulator main (``cosim_main.cpp``) drives the clock in C++ and, while ``free_run`` is high,
runs it without calling into VPI, so no Python runs per cycle: Python wakes only when the
harness moves past half a ring, to refill that half with the next input beats or to read its
output beats (one call a half), and at ``done``. It writes ``outputs.bin`` and
``stamps.bin`` (the output words and their 32-bit cycle stamps, in the same packing) and
``result.json`` beside them.
Only the standard library, cocotb and :mod:`qfab.sim.vpi_arrays` are imported here, to keep the
simulator's start fast.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import cocotb
from cocotb.triggers import ClockCycles, Edge, FallingEdge, RisingEdge
from qfab.sim.vpi_arrays import VpiArray

# What the parent process asks for: file names and keys shared with qfab.sim.cosim.
JOB_FILE, INPUT_FILE, RESULT_FILE = "job.json", "inputs.bin", "result.json"
OUTPUT_FILE, STAMP_FILE = "outputs.bin", "stamps.bin"
RESET_CYCLES = 2


class _Inputs:
    """The input beats, written into the input ring a half at a time."""

    def __init__(self, ring: VpiArray, data: bytes, depth: int) -> None:
        self.ring, self.data, self.depth = ring, data, depth
        self.n_beats = len(data) // ring.element_bytes

    def write(self, first_beat: int, count: int) -> None:
        size = self.ring.element_bytes
        self.ring.write(first_beat % self.depth,
                        self.data[first_beat * size:(first_beat + count) * size])

    async def refill(self, in_half) -> None:
        """Each time the harness leaves a half of the ring, write the next beats there."""
        half = self.depth // 2
        fed = min(self.depth, self.n_beats)  # written before the start
        while fed < self.n_beats:
            await Edge(in_half)
            count = min(half, self.n_beats - fed)
            self.write(fed, count)
            fed += count


class _Outputs:
    """The output beats and their stamps, read from the rings half by half as they fill."""

    def __init__(self, words: VpiArray, stamps: VpiArray, depth: int) -> None:
        self.rings, self.depth = (words, stamps), depth
        self.read_beats = 0
        self.data = (bytearray(), bytearray())

    def read(self, upto: int) -> None:
        count = upto - self.read_beats
        if count > 0:
            for ring, data in zip(self.rings, self.data, strict=True):
                data += ring.read(self.read_beats % self.depth, count)
            self.read_beats = upto

    async def drain(self, out_half) -> None:
        half = self.depth // 2
        while True:
            await Edge(out_half)
            self.read(self.read_beats + half)


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


@cocotb.test()
async def run_job(dut) -> None:
    """Load the inputs, run the accelerator to ``done`` and save what it produced."""
    run_dir = Path(os.environ["QFAB_COSIM_DIR"])
    job = json.loads((run_dir / JOB_FILE).read_text())
    top = job["top"]
    inputs = _Inputs(VpiArray(f"{top}.in_mem", job["in_width"]),
                     (run_dir / INPUT_FILE).read_bytes(), job["in_depth"])
    outputs = _Outputs(VpiArray(f"{top}.out_mem", job["out_width"]),
                       VpiArray(f"{top}.stamp_mem", job["stamp_width"]), job["out_depth"])

    dut.rst.value = 1
    dut.start.value = 0
    dut.n_in_beats.value = inputs.n_beats
    dut.n_out_beats.value = job["n_out_beats"]
    dut.timeout_cycles.value = job["timeout_cycles"]
    await ClockCycles(dut.clk, RESET_CYCLES)
    # After the first evaluation, so the memory's initial block cannot overwrite the inputs;
    # before the start, so every read of the ring sees them.
    inputs.write(0, min(inputs.depth, inputs.n_beats))
    tasks = [cocotb.start_soon(inputs.refill(dut.in_half)),
             cocotb.start_soon(outputs.drain(dut.out_half))]
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
    _write_atomically(run_dir / OUTPUT_FILE, bytes(outputs.data[0]))
    _write_atomically(run_dir / STAMP_FILE, bytes(outputs.data[1]))
    result = {
        "timed_out": bool(dut.timed_out.value),
        "cycles": int(dut.cycles.value),
        "in_count": int(dut.in_count.value),
        "out_count": n_out,
        "stage_cycles": format(dut.stage_cycles.value.to_unsigned(), "x")
        if job["n_stages"] else "0",
        "wall_seconds": wall,
        "cpu_seconds": cpu,
    }
    _write_atomically(run_dir / RESULT_FILE, json.dumps(result).encode())
