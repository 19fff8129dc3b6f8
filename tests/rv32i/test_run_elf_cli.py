"""`qfab run-elf`: exit statuses, console, signature, and one-line errors for bad input."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import pytest
import rv32_asm as A
from qfab.hw.soc.memory_map import region
from qfab.sim.elf import Segment, write_elf

PROGRAMS = Path(__file__).parent / "programs"
RAM = region("ram").base
EXIT = region("sysctl").base + region("sysctl").register("EXIT").offset
CONSOLE = region("sysctl").base + region("sysctl").register("CONSOLE").offset


def qfab(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "qfab.cli", "run-elf", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def _elf(tmp_path: Path, code: list[int], symbols=None, name="prog.elf") -> Path:
    path = tmp_path / name
    data = b"".join(w.to_bytes(4, "little") for w in code)
    write_elf(path, entry=RAM, segments=(Segment(RAM, data),), symbols=symbols)
    return path


def _print_and_exit(text: str, status: int) -> list[int]:
    code = A.li(5, CONSOLE)
    for ch in text:
        code += [A.i_type("addi", 6, 0, ord(ch)), A.store("sb", 6, 5, 0)]
    return code + A.li(6, status) + A.li(5, EXIT) + [A.store("sw", 6, 5, 0), A.jal(0, 0)]


@pytest.mark.parametrize("engine", [[], ["--iss"]], ids=["verilator", "iss"])
@pytest.mark.parametrize(("status", "expected"), [(0, 0), (5, 5), (256, 1), (-1, 1)])
def test_exit_status_and_console(tmp_path, soc_model, status, expected, engine):
    proc = qfab(_elf(tmp_path, _print_and_exit("ok\n", status)), *engine)
    assert (proc.returncode, proc.stdout, proc.stderr) == (expected, "ok\n", "")


@pytest.mark.parametrize("engine", [[], ["--iss"]], ids=["verilator", "iss"])
def test_tohost_pass_fail_and_signature(tmp_path, assemble, soc_model, engine):
    sig = tmp_path / "sig.txt"
    proc = qfab(assemble(PROGRAMS / "fail.S"), *engine)
    assert proc.returncode == 1 and "test 7 failed" in proc.stderr
    # begin/end_signature around three words the program writes, tohost after them.
    tohost = RAM + 0x100
    code = A.li(5, RAM + 0x80) + A.li(6, 0xDEADBEEF) + [A.store("sw", 6, 5, 0)]
    code += [A.store("sw", 5, 5, 8)] + A.li(5, tohost) + [A.i_type("addi", 6, 0, 1),
                                                         A.store("sw", 6, 5, 0), A.jal(0, 0)]
    symbols = {"begin_signature": RAM + 0x80, "end_signature": RAM + 0x8C, "tohost": tohost}
    proc = qfab(_elf(tmp_path, code, symbols), "--signature", sig, *engine)
    assert proc.returncode == 0, proc.stderr
    assert sig.read_text() == f"deadbeef\n00000000\n{RAM + 0x80:08x}\n"


@pytest.mark.parametrize("engine", [[], ["--iss"]], ids=["verilator", "iss"])
def test_max_cycles_is_a_one_line_error(tmp_path, soc_model, engine):
    proc = qfab(_elf(tmp_path, [A.jal(0, 0)]), "--max-cycles", 1000, *engine)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "--max-cycles 1000" in proc.stderr


def _corrupt(tmp_path: Path, good: Path, kind: str) -> Path:
    raw = bytearray(good.read_bytes())
    if kind == "not-elf":
        raw[:4] = b"MZ\0\0"
    elif kind == "64-bit":
        raw[4] = 2
    elif kind == "machine":
        raw[18:20] = struct.pack("<H", 62)  # x86-64
    elif kind == "compressed":
        raw[36:40] = struct.pack("<I", 1)  # EF_RISCV_RVC
    elif kind == "truncated":
        raw = raw[:40]
    elif kind == "outside-memory":
        raw[24:28] = struct.pack("<I", RAM)
        phoff = struct.unpack_from("<I", raw, 28)[0]
        raw[phoff + 12:phoff + 16] = struct.pack("<I", 0x2000_0000)  # p_paddr
    path = tmp_path / f"{kind}.elf"
    path.write_bytes(bytes(raw))
    return path


@pytest.mark.parametrize("kind", ["not-elf", "64-bit", "machine", "compressed", "truncated",
                                  "outside-memory"])
def test_bad_elf_is_a_one_line_error(tmp_path, kind):
    good = _elf(tmp_path, _print_and_exit("", 0))
    proc = qfab(_corrupt(tmp_path, good, kind))
    assert proc.returncode == 2
    assert proc.stderr.startswith("qfab run-elf: error: ") and proc.stderr.count("\n") == 1
    assert "Traceback" not in proc.stderr


def test_missing_file_and_missing_signature_symbols(tmp_path, soc_model):
    proc = qfab(tmp_path / "nope.elf")
    assert proc.returncode == 2 and "nope.elf" in proc.stderr
    proc = qfab(_elf(tmp_path, _print_and_exit("", 0)), "--signature", tmp_path / "s")
    assert proc.returncode == 2 and "begin_signature" in proc.stderr
