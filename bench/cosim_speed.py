"""Co-simulation speed: one Verilog design run four ways, side by side.

1. ``cosim``: :func:`qfab.sim.cosim.run`, Verilator under cocotb, its clock driven in C++ by
   qfab's simulator main, which runs freely (no VPI call) while Python waits for ``done``.
2. plain C++: a C++ loop toggling the clock, the model built with the same options as the
   cocotb build (only the harness signals cocotb touches are public): the same model with
   no VPI and no cocotb, the ceiling for (1).
3. plain C++, ``--public-flat-rw``: the loop with every signal public, as cocotb's runner
   builds by default; qfab's build avoids that.
4. ``py-stepped``: the cocotb build with ``free_run`` left low and a Python monitor awaiting
   every rising edge, the way block-level cocotb tests usually run (their clock is often
   Python's too, which costs more again).

The design is a dense layer with argmax: each input beat of 16 int8 codes is multiplied by
ROWS weight rows, one row a cycle, and the largest dot product and its row leave as one
output beat. Its timing does not depend on the data, so every variant runs the same number
of cycles per beat. Rates are cycles per CPU second of the simulating process, which the
other jobs on a shared machine disturb less than wall time (printed too).

A second table runs (1) and (2) on the cheapest design there is per beat, a register stage
taking and giving a beat of 16 int8 codes every cycle: there the rings' traffic (a Python
wake-up and a copy of 512 beats every 512 beats each way) weighs most against the model's own
work.

Usage: ``python bench/cosim_speed.py [--beats N] [--rows R] [--py-beats N] [--stream-beats N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cocotb
import numpy as np
from amaranth.hdl import Module, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge
from qfab.sim import cosim
from qfab.sim.toolchain import fix_verilator, verilator_env
from qfab.sim.verilator_build import (
    BUILD_ARGS,
    TOP,
    QfabVerilator,
    build_model,
    model_binary_dir,
    public_signals_vlt,
)

N = 16  # elements per input beat


class DenseArgmax(wiring.Component):
    """``rows`` dot products per input beat, one a cycle, then (max, argmax) as one beat."""

    def __init__(self, weights: np.ndarray) -> None:
        self._weights = weights
        super().__init__({
            "i_stream": In(stream.Signature(data.ArrayLayout(signed(8), N))),
            "o_stream": Out(stream.Signature(data.ArrayLayout(signed(32), 2))),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        rows = len(self._weights)
        m.submodules.rom = rom = Memory(shape=data.ArrayLayout(signed(8), N), depth=rows,
                                        init=[list(map(int, r)) for r in self._weights])
        rd = rom.read_port(domain="comb")
        busy, row = Signal(), Signal(range(rows))
        x = Signal(data.ArrayLayout(signed(8), N))
        best, best_row = Signal(signed(32)), Signal(signed(32))
        dot = sum(x[j] * rd.data[j] for j in range(N))
        o = self.o_stream
        m.d.comb += [rd.addr.eq(row), self.i_stream.ready.eq(~busy & ~o.valid)]
        with m.If(o.valid & o.ready):
            m.d.sync += o.valid.eq(0)
        with m.If(self.i_stream.valid & self.i_stream.ready):
            m.d.sync += [x.eq(self.i_stream.payload), busy.eq(1), row.eq(0)]
        with m.If(busy):
            m.d.sync += row.eq(row + 1)
            is_best = (row == 0) | (dot > best)
            with m.If(is_best):
                m.d.sync += [best.eq(dot), best_row.eq(row)]
            with m.If(row == rows - 1):
                m.d.sync += [busy.eq(0), o.valid.eq(1),
                             o.payload[0].eq(best), o.payload[1].eq(best_row)]
                with m.If(is_best):
                    m.d.sync += [o.payload[0].eq(dot), o.payload[1].eq(row)]
        return m


class RegisterStage(wiring.Component):
    """One register between input and output: a beat a cycle, as fast as a stream goes."""

    def __init__(self) -> None:
        beat = stream.Signature(data.ArrayLayout(signed(8), N))
        super().__init__({"i_stream": In(beat), "o_stream": Out(beat)})

    def elaborate(self, platform) -> Module:
        m = Module()
        o = self.o_stream
        m.d.comb += self.i_stream.ready.eq(~o.valid | o.ready)
        with m.If(self.i_stream.ready):
            m.d.sync += [o.valid.eq(self.i_stream.valid), o.payload.eq(self.i_stream.payload)]
        return m


def dense_argmax_model(beats: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """NumPy model: ``[n_beats, 2]`` of (max dot product, first row reaching it)."""
    dots = beats.astype(np.int64) @ weights.astype(np.int64).T
    return np.stack([dots.max(axis=1), dots.argmax(axis=1)], axis=1)


MAIN_CPP = r"""
#include <chrono>
#include <cstdio>
#include <ctime>
#include <cstdlib>
#include "Vcosim_top.h"
#include "verilated.h"

int main(int argc, char **argv) {
    VerilatedContext ctx;
    Vcosim_top top{&ctx};
    const unsigned n_in = std::atoi(argv[1]), n_out = std::atoi(argv[2]);
    auto tick = [&] { top.clk = 0; top.eval(); top.clk = 1; top.eval(); };
    top.rst = 1; tick(); tick(); top.rst = 0;
    top.n_in_beats = n_in; top.n_out_beats = n_out; top.timeout_cycles = 0xffffffffu;
    top.start = 1; tick(); top.start = 0;
    const auto began = std::chrono::steady_clock::now();
    const std::clock_t began_cpu = std::clock();
    while (!top.done) tick();
    const double cpu = double(std::clock() - began_cpu) / CLOCKS_PER_SEC;
    const std::chrono::duration<double> wall = std::chrono::steady_clock::now() - began;
    std::printf("{\"cycles\": %u, \"wall_seconds\": %.9f, \"cpu_seconds\": %.9f}\n",
                (unsigned)top.cycles, wall.count(), cpu);
    top.final();
    return 0;
}
"""


def run_cpp(verilog: str, n_in: int, n_out: int, *, public: bool, work: Path) -> dict:
    """Build the Verilog with a plain C++ main and time the free run to ``done``."""
    folder = work / ("cpp_public" if public else "cpp")
    folder.mkdir()
    (folder / f"{TOP}.v").write_text(verilog)
    (folder / f"{TOP}.vlt").write_text(public_signals_vlt())
    (folder / "main.cpp").write_text(MAIN_CPP)
    # Tracing compiled in but off, as in qfab's builds.
    visibility = ["--trace", *(["--public-flat-rw"] if public else [f"{TOP}.vlt"])]
    args = [str(fix_verilator()), "--cc", "--exe", "--build", "-j", "2", "--top-module", TOP,
            "-Mdir", str(folder / "obj"), *BUILD_ARGS, *visibility, "main.cpp", f"{TOP}.v"]
    began = time.perf_counter()
    subprocess.run(args, cwd=folder, env=verilator_env(), check=True, capture_output=True)
    build = time.perf_counter() - began
    out = subprocess.run([str(folder / "obj" / f"V{TOP}"), str(n_in), str(n_out)],
                         check=True, capture_output=True, text=True)
    return {**json.loads(out.stdout), "build_seconds": build}


@cocotb.test()
async def python_stepped(dut) -> None:
    """A Python check of ``done`` on every rising edge of the simulator main's clock."""
    run_dir = Path(os.environ["QFAB_COSIM_DIR"])
    job = json.loads((run_dir / "job.json").read_text())
    dut.rst.value, dut.start.value = 1, 0
    dut.n_in_beats.value, dut.n_out_beats.value = job["n_in_beats"], job["n_out_beats"]
    dut.timeout_cycles.value = job["timeout_cycles"]
    await ClockCycles(dut.clk, 2)
    await FallingEdge(dut.clk)
    dut.rst.value, dut.start.value = 0, 1
    await FallingEdge(dut.clk)
    dut.start.value = 0
    began, began_cpu = time.perf_counter(), time.process_time()
    while not dut.done.value:
        await RisingEdge(dut.clk)
    wall, cpu = time.perf_counter() - began, time.process_time() - began_cpu
    (run_dir / "result.json").write_text(json.dumps(
        {"cycles": int(dut.cycles.value), "wall_seconds": wall, "cpu_seconds": cpu}))


def run_python_stepped(verilog: str, n_in: int, n_out: int, *, work: Path) -> dict:
    """The cached cocotb model, stepped from Python (memory left as zeros; timing is the same)."""
    build = build_model(verilog)
    run_dir = work / "py"
    run_dir.mkdir()
    (run_dir / "job.json").write_text(json.dumps(
        {"n_in_beats": n_in, "n_out_beats": n_out, "timeout_cycles": 2**32 - 1}))
    spec = globals().get("__spec__")
    module = spec.name if spec is not None and spec.name != "__main__" else Path(__file__).stem
    QfabVerilator(waves=False).test(
        test_module=module, hdl_toplevel=TOP, hdl_toplevel_lang="verilog",
        build_dir=model_binary_dir(build), test_dir=run_dir,
        results_xml=str(run_dir / "results.xml"), extra_env={"QFAB_COSIM_DIR": str(run_dir)},
        log_file=run_dir / "sim.log")
    return json.loads((run_dir / "result.json").read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--beats", type=int, default=4096, help="input beats (inferences)")
    parser.add_argument("--rows", type=int, default=256, help="weight rows: cycles per beat")
    parser.add_argument("--py-beats", type=int, default=256,
                        help="input beats for the Python-stepped run (it is ~20x slower)")
    parser.add_argument("--stream-beats", type=int, default=1 << 18,
                        help="beats through the register stage (one a cycle)")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    weights = rng.integers(-128, 128, size=(args.rows, N))
    beats = rng.integers(-128, 128, size=(args.beats, N))
    accel = DenseArgmax(weights)
    verilog = cosim.cosim_verilog(accel)

    rows = []
    res = cosim.run(verilog, beats, n_out_beats=args.beats)
    exact = np.array_equal(res.outputs, dense_argmax_model(beats, weights))
    print(f"cosim: {res.cycles} cycles, bit-exact {exact}, build {res.build_seconds:.1f} s "
          f"(cached {res.cached})", flush=True)
    rows.append(("cosim (free-running, C++ clock)", res.cycles, res.sim_seconds,
                 res.sim_cpu_seconds))
    with tempfile.TemporaryDirectory(prefix="qfab-bench-") as tmp:
        for public in (False, True):
            cpp = run_cpp(verilog, args.beats, args.beats, public=public, work=Path(tmp))
            label = "plain C++ loop" + (", --public-flat-rw" if public else ", same model")
            rows.append((label, cpp["cycles"], cpp["wall_seconds"], cpp["cpu_seconds"]))
        py = run_python_stepped(verilog, args.py_beats, args.py_beats, work=Path(tmp))
        rows.append(("cocotb, Python-stepped", py["cycles"], py["wall_seconds"],
                     py["cpu_seconds"]))

    _print_table(rows)

    beats = rng.integers(-128, 128, size=(args.stream_beats, N))
    verilog = cosim.cosim_verilog(RegisterStage())
    res = cosim.run(verilog, beats, n_out_beats=args.stream_beats)
    exact &= np.array_equal(res.outputs, beats)
    print(f"\nregister stage, a beat a cycle: bit-exact {np.array_equal(res.outputs, beats)}, "
          f"build {res.build_seconds:.1f} s (cached {res.cached})", flush=True)
    rows = [("cosim (free-running, C++ clock)", res.cycles, res.sim_seconds,
             res.sim_cpu_seconds)]
    with tempfile.TemporaryDirectory(prefix="qfab-bench-") as tmp:
        cpp = run_cpp(verilog, args.stream_beats, args.stream_beats, public=False,
                      work=Path(tmp))
    rows.append(("plain C++ loop, same model", cpp["cycles"], cpp["wall_seconds"],
                 cpp["cpu_seconds"]))
    _print_table(rows)
    return 0 if exact else 1


def _print_table(rows: list[tuple[str, int, float, float]]) -> None:
    """Rows of (variant, cycles, wall s, CPU s), each rate against the first row's."""
    cosim_rate = rows[0][1] / rows[0][3]
    print(f"\n{'variant':36} {'cycles':>9} {'wall s':>7} {'cycles/wall s':>13} {'cpu s':>7} "
          f"{'cycles/cpu s':>12} {'vs cosim':>8}")
    for label, cycles, wall, cpu in rows:
        rate = cycles / cpu
        print(f"{label:36} {cycles:9d} {wall:7.3f} {cycles / wall:13.0f} {cpu:7.3f} "
              f"{rate:12.0f} {rate / cosim_rate:8.2f}")


if __name__ == "__main__":
    sys.exit(main())
