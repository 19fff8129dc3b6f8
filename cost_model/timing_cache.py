"""The cycle model's figures kept on disk, so compiling, simulating and estimating the same
design again does not run the handshake model again (seconds for a large design).

An entry is keyed by everything :func:`qfab.cost_model.timing.plan_timing` reads: the plan's
stages (their blocks' kinds and parameters, weights included, beats, folding, cycles), its
beats, the batch, and the source of the cycle model itself, so a change to any of them is a
new key. The entry is the pickled ``Timing``. ``$QFAB_CACHE_DIR/cycles``, else
``~/.cache/qfab/cycles``; ``QFAB_CYCLE_CACHE=0`` turns it off.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

from qfab.compiler.backend.verilog_cache import feed, source_digest

from qfab.cache_paths import cache_root


def cache_dir() -> Path:
    return cache_root() / "cycles"


def key(plan: Any, batch: int) -> str:
    # the cycle model's source and the hw/ schedules it reads (a window's rows, a unit's
    # stages and latency): every file of both, so no edit there meets an old figure
    h = hashlib.sha256(source_digest(("cost_model", "hw")))
    feed(h, [plan.stages, plan.in_beats, plan.out_beats, plan.ii_cycles, batch])
    return h.hexdigest()[:32]


def load(plan: Any, batch: int) -> Any | None:
    if os.environ.get("QFAB_CYCLE_CACHE") == "0":
        return None
    path = cache_dir() / f"{key(plan, batch)}.pickle"
    try:
        return pickle.loads(path.read_bytes())
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
        return None


def save(plan: Any, batch: int, timing: Any) -> None:
    if os.environ.get("QFAB_CYCLE_CACHE") == "0":
        return
    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, suffix=".tmp", delete=False) as f:
            f.write(pickle.dumps(timing))
        os.replace(f.name, folder / f"{key(plan, batch)}.pickle")
    except OSError:  # a read-only or full disk: the figures are still right, only not kept
        pass
