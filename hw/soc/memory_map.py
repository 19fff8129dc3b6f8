"""The SoC memory map as data, and everything generated from it.

One table, :data:`MEMORY_MAP`, says where each device sits. The bus decoder in
:mod:`qfab.hw.soc.top`, the instruction-set simulator, the firmware linker script
(``firmware/link.ld``), the firmware C header (``firmware/include/qfab_soc.h``) and the
documentation table are all produced from it, so a device added here appears everywhere at
once. ``python -m qfab.hw.soc.memory_map`` rewrites the firmware files; with
``--markdown`` it prints the table for the docs instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Register:
    """One 32-bit register of a peripheral.

    Parameters
    ----------
    name : str
        C-friendly name, unique within its region.
    offset : int
        Byte offset from the region base; a multiple of 4.
    access : str
        ``"r"``, ``"w"`` or ``"rw"`` as seen by the core.
    doc : str
        One line for the header and the docs.
    count : int
        More than 1 for an array of registers at consecutive words.
    """

    name: str
    offset: int
    access: str
    doc: str
    count: int = 1


@dataclass(frozen=True)
class Region:
    """One address range of the map.

    Parameters
    ----------
    name : str
        Name used for the bus port, the linker-script memory and the C macros.
    base : int
        First byte address; a multiple of ``size``.
    size : int
        Length in bytes; a power of two.
    kind : str
        ``"rom"`` (read-only to the core, written by the loader), ``"ram"`` or ``"io"``.
    doc : str
        One line for the docs.
    registers : tuple of Register
        The registers of an ``"io"`` region.
    """

    name: str
    base: int
    size: int
    kind: str
    doc: str
    registers: tuple[Register, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.size <= 0 or self.size & (self.size - 1):
            raise ValueError(f"region {self.name!r}: size {self.size:#x} is not a power of two")
        if self.base % self.size:
            raise ValueError(f"region {self.name!r}: base {self.base:#x} is not size-aligned")
        if self.kind not in ("rom", "ram", "io"):
            raise ValueError(f"region {self.name!r}: kind {self.kind!r} is not rom, ram or io")

    @property
    def end(self) -> int:
        """One past the last byte."""
        return self.base + self.size

    def contains(self, addr: int) -> bool:
        """Whether byte address ``addr`` falls in this region."""
        return self.base <= addr < self.end

    def register(self, name: str) -> Register:
        """The register called ``name``."""
        for reg in self.registers:
            if reg.name == name:
                return reg
        raise KeyError(f"region {self.name!r} has no register {name!r}")


SYSCTL_REGISTERS = (
    Register("CONSOLE", 0x00, "w", "store: print the low byte on the simulation console"),
    Register("EXIT", 0x04, "w", "store: end the simulation with this status (0 = success)"),
    Register("CYCLE_LO", 0x08, "r", "cycles since reset, low word"),
    Register("CYCLE_HI", 0x0C, "r", "cycles since reset, high word"),
)

ACCEL_MAX_STAGES = 48

# The accelerator's streamer: a job moves IN_BEATS stream beats from RAM into the accelerator
# and OUT_BEATS result beats back, each beat in whole 32-bit words (element 0 in the low bits
# of its first word).
ACCEL_REGISTERS = (
    Register("CTRL", 0x00, "w", "store 1: start a job (ignored while busy)"),
    Register("STATUS", 0x04, "r", "bit 0 busy, bit 1 done, bit 2 error"),
    Register("ERROR", 0x08, "r", "bit 0 input range, bit 1 output range outside RAM or "
             "unaligned"),
    Register("IN_ADDR", 0x0C, "rw", "RAM byte address of the first input beat"),
    Register("IN_BEATS", 0x10, "rw", "input beats in the job"),
    Register("OUT_ADDR", 0x14, "rw", "RAM byte address for the first output beat"),
    Register("OUT_BEATS", 0x18, "rw", "output beats in the job"),
    Register("CYCLES", 0x1C, "r", "cycles of the last job, start to done"),
    Register("LATENCY", 0x20, "r", "cycles from the last start to its first output beat"),
    Register("INFO", 0x24, "r", "words per input beat (bits 0-7), per output beat (8-15), "
             "stages (16-23)"),
    Register("STAGE_CYCLES", 0x40, "r", "cycles stage i was active in the last job",
             ACCEL_MAX_STAGES),
)

# Code that boots from ROM keeps its data in RAM; programs for `qfab run-elf` may also sit
# entirely in RAM, which starts where the RISC-V test suites link by default.
MEMORY_MAP: tuple[Region, ...] = (
    Region("rom", 0x0000_0000, 0x0000_8000, "rom", "boot ROM: firmware code and constants"),
    Region("sysctl", 0x4000_0000, 0x0000_1000, "io",
           "console, simulation exit and cycle counter", SYSCTL_REGISTERS),
    Region("accel", 0x4000_1000, 0x0000_1000, "io",
           "accelerator streamer: DMA jobs between RAM and the accelerator, cycle counters "
           "(absent from a SoC without an accelerator: accesses fault)", ACCEL_REGISTERS),
    Region("ram", 0x8000_0000, 0x0002_0000, "ram", "RAM: data, stack, or a whole program"),
)


def region(name: str, memory_map: tuple[Region, ...] = MEMORY_MAP) -> Region:
    """The region called ``name``."""
    for r in memory_map:
        if r.name == name:
            return r
    raise KeyError(f"memory map has no region {name!r}")


def find_region(addr: int, memory_map: tuple[Region, ...] = MEMORY_MAP) -> Region | None:
    """The region holding byte address ``addr``, or None when it is unmapped."""
    for r in memory_map:
        if r.contains(addr):
            return r
    return None


def check_map(memory_map: tuple[Region, ...]) -> None:
    """Raise ValueError when two regions overlap or a name repeats."""
    names = [r.name for r in memory_map]
    if len(set(names)) != len(names):
        raise ValueError(f"memory map repeats a region name: {names}")
    ordered = sorted(memory_map, key=lambda r: r.base)
    for a, b in zip(ordered, ordered[1:], strict=False):
        if a.end > b.base:
            raise ValueError(f"regions {a.name!r} and {b.name!r} overlap")


check_map(MEMORY_MAP)

_HEADER_NOTE = "Generated from hw/soc/memory_map.py (qfab.hw.soc.memory_map); do not edit."


def linker_script(memory_map: tuple[Region, ...] = MEMORY_MAP) -> str:
    """GNU ld / LLD script: code and constants in ROM, data, bss and stack in RAM.

    ``.data`` is loaded into ROM and copied to RAM by ``crt0.S``. The stack grows down from
    the top of RAM.
    """
    rom, ram = region("rom", memory_map), region("ram", memory_map)
    return f"""/* {_HEADER_NOTE} */
OUTPUT_ARCH("riscv")
ENTRY(_start)

MEMORY
{{
  ROM (rx)  : ORIGIN = {rom.base:#010x}, LENGTH = {rom.size:#x}
  RAM (rwx) : ORIGIN = {ram.base:#010x}, LENGTH = {ram.size:#x}
}}

SECTIONS
{{
  .text : {{
    KEEP(*(.text.init))
    *(.text .text.*)
  }} > ROM
  .rodata : {{
    *(.rodata .rodata.* .srodata .srodata.*)
  }} > ROM
  .data : ALIGN(4) {{
    __data_start = .;
    *(.data .data.*)
    __global_pointer$ = . + 0x800;
    *(.sdata .sdata.*)
    . = ALIGN(4);
    __data_end = .;
  }} > RAM AT > ROM
  __data_load = LOADADDR(.data);
  .bss (NOLOAD) : ALIGN(4) {{
    __bss_start = .;
    *(.sbss .sbss.* .bss .bss.* COMMON)
    . = ALIGN(4);
    __bss_end = .;
  }} > RAM
  __stack_top = ORIGIN(RAM) + LENGTH(RAM);
  /DISCARD/ : {{ *(.comment) *(.riscv.attributes) *(.note .note.*) }}
}}
"""


def linker_script_ram(memory_map: tuple[Region, ...] = MEMORY_MAP) -> str:
    """Script that puts a whole program (code, data, ``tohost``, stack) in RAM.

    For test suites and users' programs run by ``qfab run-elf``; ``crt0.S`` works with it
    too (its ``.data`` copy is then empty).
    """
    ram = region("ram", memory_map)
    return f"""/* {_HEADER_NOTE} */
OUTPUT_ARCH("riscv")
ENTRY(_start)

MEMORY
{{
  RAM (rwx) : ORIGIN = {ram.base:#010x}, LENGTH = {ram.size:#x}
}}

SECTIONS
{{
  .text : {{
    KEEP(*(.text.init))
    *(.text .text.*)
  }} > RAM
  .tohost : ALIGN(64) {{ *(.tohost) }} > RAM
  .rodata : {{ *(.rodata .rodata.* .srodata .srodata.*) }} > RAM
  .data : ALIGN(4) {{
    __data_start = .;
    *(.data .data.*)
    __global_pointer$ = . + 0x800;
    *(.sdata .sdata.*)
    . = ALIGN(4);
    __data_end = .;
  }} > RAM
  __data_load = __data_start;
  .bss : ALIGN(4) {{
    __bss_start = .;
    *(.sbss .sbss.* .bss .bss.* COMMON)
    . = ALIGN(4);
    __bss_end = .;
  }} > RAM
  __stack_top = ORIGIN(RAM) + LENGTH(RAM);
  /DISCARD/ : {{ *(.comment) *(.riscv.attributes) *(.note .note.*) }}
}}
"""


def c_header(memory_map: tuple[Region, ...] = MEMORY_MAP) -> str:
    """C macros for every region's base and size and every register's address.

    ``QFAB_<REGION>_<REG>_ADDR`` is a plain number (usable from assembly); in C,
    ``QFAB_<REGION>_<REG>`` is the register itself as a volatile lvalue.
    """
    lines = [f"/* {_HEADER_NOTE} */", "#ifndef QFAB_SOC_H", "#define QFAB_SOC_H", ""]
    regs = []
    for r in memory_map:
        up = r.name.upper()
        lines.append(f"/* {r.doc} */")
        lines.append(f"#define QFAB_{up}_BASE 0x{r.base:08x}")
        lines.append(f"#define QFAB_{up}_SIZE 0x{r.size:08x}")
        for reg in r.registers:
            lines.append(f"/* {reg.doc} ({reg.access}) */")
            lines.append(f"#define QFAB_{up}_{reg.name}_ADDR 0x{r.base + reg.offset:08x}")
            if reg.count > 1:
                lines.append(f"#define QFAB_{up}_{reg.name}_COUNT {reg.count}")
                regs.append(f"#define QFAB_{up}_{reg.name}(i) "
                            f"(((volatile uint32_t *)QFAB_{up}_{reg.name}_ADDR)[i])")
            else:
                regs.append(f"#define QFAB_{up}_{reg.name} "
                            f"(*(volatile uint32_t *)QFAB_{up}_{reg.name}_ADDR)")
        lines.append("")
    lines += ["#ifndef __ASSEMBLER__", "#include <stdint.h>", *regs, "#endif", "",
              "#endif /* QFAB_SOC_H */"]
    return "\n".join(lines) + "\n"


def markdown(memory_map: tuple[Region, ...] = MEMORY_MAP) -> str:
    """The memory map as a Markdown table for the README."""
    rows = ["| region | base | size | kind | contents |", "| --- | --- | --- | --- | --- |"]
    for r in memory_map:
        rows.append(f"| {r.name} | `0x{r.base:08x}` | {r.size // 1024} KiB | {r.kind} | {r.doc} |")
        for reg in r.registers:
            size = f"4 B x {reg.count}" if reg.count > 1 else "4 B"
            rows.append(f"| {r.name}.{reg.name} | `0x{r.base + reg.offset:08x}` | {size} | "
                        f"{reg.access} | {reg.doc} |")
    return "\n".join(rows) + "\n"


FIRMWARE_DIR = Path(__file__).resolve().parents[2] / "firmware"


def generated_files(firmware_dir: Path = FIRMWARE_DIR) -> dict[Path, str]:
    """Each generated firmware file and the text it must hold."""
    return {firmware_dir / "link.ld": linker_script(),
            firmware_dir / "link_ram.ld": linker_script_ram(),
            firmware_dir / "memory_map.md": f"<!-- {_HEADER_NOTE} -->\n# SoC memory map\n\n"
                                             + markdown(),
            firmware_dir / "include" / "qfab_soc.h": c_header()}


def write_generated(firmware_dir: Path = FIRMWARE_DIR) -> list[Path]:
    """Rewrite the generated firmware files; returns their paths."""
    out = []
    for path, text in generated_files(firmware_dir).items():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text)
        tmp.replace(path)
        out.append(path)
    return out


if __name__ == "__main__":
    import sys

    if sys.argv[1:] == ["--markdown"]:
        print(markdown(), end="")
    else:
        for p in write_generated():
            print(p)
