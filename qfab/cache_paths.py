"""Where qfab keeps what it caches: one root, a folder a kind of entry."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """``$QFAB_CACHE_DIR``, else ``$XDG_CACHE_HOME/qfab`` or ``~/.cache/qfab``."""
    if os.environ.get("QFAB_CACHE_DIR"):
        return Path(os.environ["QFAB_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "qfab"
