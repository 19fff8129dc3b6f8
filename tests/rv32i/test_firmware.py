"""Firmware: generated files match the memory map; a C program built with ziglang (console
output, a multiply through compiler_rt) runs on the core through `qfab run-elf`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from qfab.hw.soc.memory_map import (
    MEMORY_MAP,
    Region,
    check_map,
    find_region,
    generated_files,
    linker_script_ram,
    markdown,
)

FIRMWARE = Path(__file__).parents[2] / "firmware"


def test_generated_firmware_files_are_up_to_date():
    for path, text in generated_files(FIRMWARE).items():
        assert path.read_text() == text, f"run python -m qfab.hw.soc.memory_map ({path.name})"


def test_readme_memory_map_and_linker_script_are_generated_ones():
    readme = (FIRMWARE.parent / "README.md").read_text()
    assert f"<!-- memory map: generated -->\n{markdown()}<!-- end of memory map -->" in readme
    assert (f"<!-- linker script: generated -->\n```\n{linker_script_ram()}```\n"
            "<!-- end of linker script -->") in readme


def test_memory_map_lookup_and_checks():
    assert find_region(0x8000_0010).name == "ram"
    assert find_region(0x4000_0004).name == "sysctl"
    assert find_region(0x2000_0000) is None
    assert "| sysctl.EXIT | `0x40000004` |" in markdown()
    with pytest.raises(ValueError, match="overlap"):
        check_map((*MEMORY_MAP, Region("extra", 0x8000_1000, 0x1000, "ram", "")))
    with pytest.raises(ValueError, match="0x3000"):
        Region("odd", 0, 0x3000, "ram", "")


@pytest.mark.parametrize(("ram", "isa"), [(False, "rv32i"), (True, "rv32i"), (False, "rv32im")],
                         ids=["rom+ram", "ram-only", "rv32im"])
def test_c_program_runs_through_run_elf(tmp_path, soc_model, ram, isa):
    elf = tmp_path / "hello.elf"
    cmd = [sys.executable, str(FIRMWARE / "build.py"), str(FIRMWARE / "examples" / "hello.c"),
           "-o", str(elf), "--isa", isa] + (["--ram"] if ram else [])
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    hex_words = (tmp_path / "hello.hex").read_text().split()
    assert len(hex_words) * 4 >= (tmp_path / "hello.bin").stat().st_size > 0
    code = (tmp_path / "hello.bin").read_bytes()
    words = [int.from_bytes(code[i:i + 4], "little") for i in range(0, len(code) - 3, 4)]
    uses_m = any(w & 0xFE00_007F == 0x0200_0033 for w in words)
    assert uses_m == (isa == "rv32im")  # else the multiply comes from compiler_rt
    proc = subprocess.run([sys.executable, "-m", "qfab.cli", "run-elf", str(elf), "--isa", isa],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[:4] == ["hello from rv32i", "12345 * -678 = -8369910",
                         "46341^2 = 0x80001219", "product / 7 = -1195701"]
    assert lines[4].startswith("cycles: ") and int(lines[4].split()[1]) > 1000
