"""SoC simulation speed: the digits CNN on the whole SoC, side by side with the bare accelerator.

1. ``soc``: the RV32I core, streamer and accelerator in the free-running C++ harness of
   ``qfab run-elf`` (``qfab sim --soc``): the firmware streams the batch and takes argmaxes.
2. ``accelerator``: the same accelerator alone under cocotb (``qfab sim``), fed by the
   co-simulation harness.

Both run the same batch from warm Verilator builds. Rates are simulated cycles per CPU second
of the simulating process (less disturbed by other jobs than wall time, printed too).
"""

from __future__ import annotations

import resource
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "examples" / "digits"
BATCH = 256


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run() -> list[str]:
    import qfab

    design = qfab.compile(DIGITS / "digits_int8.onnx")
    images = np.load(DIGITS / "sample_images.npy")
    x = np.resize(images, (BATCH,) + images.shape[1:])
    qfab.simulate(design, x[:1], soc=True)   # warm: firmware, soc.v, Verilator build
    qfab.simulate(design, x[:1])

    began, cpu0 = time.perf_counter(), _child_cpu()
    soc = qfab.simulate(design, x, soc=True)
    soc_wall, soc_cpu = time.perf_counter() - began, _child_cpu() - cpu0
    acc = qfab.simulate(design, x)
    assert soc.bit_exact and soc.argmax_matches and acc.bit_exact

    rows = [("soc (C++ loop: core + streamer + accelerator)", soc.cycles, soc_wall, soc_cpu),
            ("accelerator (cocotb, C++ clock)", acc.cycles, acc.cosim.sim_seconds,
             acc.cosim.sim_cpu_seconds)]
    lines = [f"digits CNN, batch {BATCH}: SoC job {soc.accel_cycles} cycles, bare accelerator "
             f"{acc.cycles} cycles ({soc.accel_cycles / acc.cycles:.4f}x)",
             f"{'variant':48} {'cycles':>9} {'wall s':>7} {'cycles/cpu s':>13} {'vs accel':>8}"]
    base = acc.cycles / acc.cosim.sim_cpu_seconds
    for label, cycles, wall, cpu in rows:
        lines.append(f"{label:48} {cycles:9d} {wall:7.3f} {cycles / cpu:13.0f} "
                     f"{cycles / cpu / base:7.2f}x")
    return lines


if __name__ == "__main__":
    print("\n".join(run()))
