"""How a sweep scales with Dask workers: the same digits sweep (8 points, nothing cached) on a
LocalCluster of 1, 2, ... N worker processes (N: the CPU count), one thread each, measured
side by side in one run; the speed-up is the one-worker time over the N-worker time. The rows
must be the same at every N. Usage: ``python -m bench sweep_scaling``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPACE = f"""\
model: {ROOT / "examples" / "digits" / "digits_float.onnx"}
calibration_images: 128
test_images: 200
formats:
  int: [3, 4, 5, 6, 8]
  fixed: [6]
  minifloat_weights: [E2M1, E4M3]
folding:
  - {{max_pe: 4, max_simd: 8}}
"""


def _sweep_seconds(workers: int, folder: Path) -> tuple[float, list]:
    import distributed

    from qfab.cli import main

    with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        # Workers import qfab once before the clock starts, as a long-lived cluster has.
        with distributed.Client(cluster) as client:
            client.run(lambda: __import__("qfab.cost_model.sweep"))
        address = cluster.scheduler_address.replace("tcp://", "dask://")
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):  # the sweep lists its output files
            status = main(["sweep", "--space", str(folder / "space.yaml"), "-o",
                           str(folder / f"out{workers}"), "--executor", address,
                           "--quiet"])
        seconds = time.perf_counter() - start
    if status != 0:
        raise RuntimeError(f"the sweep on {workers} workers exited {status}")
    rows = json.loads((folder / f"out{workers}" / "results.json").read_text())
    return seconds, [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def run() -> list[str]:
    counts = sorted({1, max(os.cpu_count() or 1, 1)})
    lines = ["| Dask workers | sweep (8 points) | speed-up over 1 worker |", "|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "space.yaml").write_text(SPACE)
        results = {n: _sweep_seconds(n, folder) for n in counts}
    one = results[1][0]
    for n, (seconds, rows) in results.items():
        if rows != results[1][1]:
            raise RuntimeError(f"{n} workers gave different rows from 1 worker")
        lines.append(f"| {n} | {seconds:.1f} s | {one / seconds:.2f}x |")
    return lines


def main(argv: list[str] | None = None) -> int:
    print("\n".join(run()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
