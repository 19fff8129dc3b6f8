"""Another batch size on the same design: how long ``qfab.simulate`` takes to start simulating
(the first Verilator line) and to finish, for a first call and for two more with other batch
sizes on the same compiled design (the digits CNN). The first call may build the Verilator
model (once per design, cached across runs); the later ones find it and the design's
co-simulation Verilog ready. Wall seconds."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "examples" / "digits" / "digits_int8.onnx"
IMAGES = ROOT / "examples" / "digits" / "sample_images.npy"


def run() -> list[str]:
    import qfab
    from qfab import progress

    design = qfab.compile(DIGITS, progress=False)
    images = np.load(IMAGES)
    lines = [f"{'call':<28} {'batch':>5} {'starts simulating':>18} {'done':>8}  bit-exact"]
    first, every = progress.FIRST, progress.EVERY
    progress.FIRST, progress.EVERY = 0.0, 60.0  # a line as each step starts
    try:
        for call, batch in (("first", 2), ("another batch size", 5), ("and another", 7)):
            start = time.perf_counter()
            started = []

            def heard(line: str, start=start, started=started) -> None:
                if line.startswith("simulating") and not started:
                    started.append(time.perf_counter() - start)

            res = qfab.simulate(design, images[:batch], progress=heard)
            lines.append(f"{call:<28} {batch:>5} {started[0]:>17.2f}s "
                         f"{time.perf_counter() - start:>7.2f}s  {res.bit_exact}")
    finally:
        progress.FIRST, progress.EVERY = first, every
    return lines


if __name__ == "__main__":
    print("\n".join(run()))
