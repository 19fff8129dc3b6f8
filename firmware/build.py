"""Build firmware for the qfab SoC with the ziglang wheel's clang (no system toolchain).

    python firmware/build.py main.c [more.c ...] -o prog.elf [--ram] [--isa rv32im] [-O -Os]

writes prog.elf, prog.bin (``objcopy -O binary``) and prog.hex (one 32-bit little-endian
word a line, for a ROM image). The C runtime (``crt0.S``, ``runtime.c``) and the headers in
``include/`` are added; ``--ram`` links everything into RAM with ``link_ram.ld`` instead of
code in ROM and data in RAM with ``link.ld``. The multiply and divide helpers RV32I needs
come from zig's compiler_rt, which is why ``-nostdlib`` is not passed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGET = ["-target", "riscv32-freestanding-none"]
MCPU = {"rv32i": "-mcpu=generic_rv32", "rv32im": "-mcpu=generic_rv32+m"}
RUNTIME = [HERE / "crt0.S", HERE / "runtime.c"]


def zig(*args: str | os.PathLike) -> list[str]:
    return [sys.executable, "-m", "ziglang", *map(str, args)]


def build(sources: list[Path], out_elf: Path, *, ram: bool = False, opt: str = "-Os",
          isa: str = "rv32i", extra: tuple[str, ...] = ()) -> Path:
    """Compile and link ``sources`` with the runtime for ``isa`` (rv32i or rv32im); returns
    the ELF path.

    Raises ``subprocess.CalledProcessError`` (with the compiler's output) on failure.
    """
    out_elf = Path(out_elf)
    script = HERE / ("link_ram.ld" if ram else "link.ld")
    if isa not in MCPU:
        raise ValueError(f"isa must be one of {sorted(MCPU)}, got {isa!r}")
    cmd = zig("cc", *TARGET, MCPU[isa], opt, "-ffreestanding", "-fno-builtin", "-Wall",
              "-T", script, "-I", HERE / "include", *extra, *RUNTIME, *sources, "-o", out_elf)
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    binary = out_elf.with_suffix(".bin")
    subprocess.run(zig("objcopy", "-O", "binary", out_elf, binary), check=True,
                   capture_output=True, text=True)
    data = binary.read_bytes()
    data += bytes(-len(data) % 4)
    words = (int.from_bytes(data[i:i + 4], "little") for i in range(0, len(data), 4))
    out_elf.with_suffix(".hex").write_text("".join(f"{w:08x}\n" for w in words))
    return out_elf


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sources", nargs="+", type=Path)
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--ram", action="store_true", help="link everything into RAM")
    parser.add_argument("-O", dest="opt", default="-Os", help="optimisation flag")
    parser.add_argument("--isa", choices=sorted(MCPU), default="rv32i",
                        help="rv32im lets the compiler use mul/div instructions")
    args = parser.parse_args(argv)
    try:
        build(args.sources, args.output, ram=args.ram, opt=args.opt, isa=args.isa)
    except subprocess.CalledProcessError as e:
        print(e.stdout + e.stderr, file=sys.stderr, end="")
        return 1
    print(args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
