"""Read a 32-bit little-endian RISC-V ELF executable: loadable segments, entry and symbols.

Only what running a program needs: PT_LOAD segments (file bytes, zero-filled up to their
memory size, placed at their physical address) and the symbol table, for ``tohost`` and the
``begin_signature``/``end_signature`` pair of the RISC-V test suites.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

from qfab.errors import QfabError

EM_RISCV = 243
PT_LOAD = 1
SHT_SYMTAB = 2
EF_RISCV_RVC = 0x1


@dataclass(frozen=True)
class Segment:
    """Bytes to place at ``addr`` (file contents followed by zeros up to memory size)."""

    addr: int
    data: bytes


@dataclass(frozen=True)
class ElfImage:
    """A loaded ELF: entry point, loadable segments and symbol addresses."""

    path: Path
    entry: int
    segments: tuple[Segment, ...]
    symbols: dict[str, int] = field(default_factory=dict)

    def words(self) -> dict[int, int]:
        """Byte address -> 32-bit little-endian word, for every word the segments touch.

        Bytes of a partly covered word that no segment gives are zero.
        """
        out: dict[int, int] = {}
        for seg in self.segments:
            for i, byte in enumerate(seg.data):
                addr = seg.addr + i
                word_addr = addr & ~3
                out[word_addr] = out.get(word_addr, 0) | (byte << (8 * (addr & 3)))
        return out


def read_elf(path: str | Path) -> ElfImage:
    """Parse ``path``; raise QfabError naming the file when it is not an RV32 executable."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise QfabError(f"{path}: cannot read: {e.strerror}") from None
    try:
        return _parse(path, raw)
    except (struct.error, ValueError, IndexError):
        raise QfabError(f"{path}: truncated or corrupt ELF") from None


def _parse(path: Path, raw: bytes) -> ElfImage:
    if raw[:4] != b"\x7fELF":
        raise QfabError(f"{path}: not an ELF file")
    if raw[4] != 1:
        raise QfabError(f"{path}: not a 32-bit ELF (class {raw[4]}); run-elf needs RV32")
    if raw[5] != 1:
        raise QfabError(f"{path}: not a little-endian ELF")
    (e_type, e_machine, _ver, e_entry, e_phoff, e_shoff, e_flags, _ehsize, e_phentsize,
     e_phnum, e_shentsize, e_shnum, _shstrndx) = struct.unpack_from("<HHIIIIIHHHHHH", raw, 16)
    if e_machine != EM_RISCV:
        raise QfabError(f"{path}: ELF machine {e_machine} is not RISC-V ({EM_RISCV})")
    if e_type != 2:
        raise QfabError(f"{path}: ELF type {e_type} is not an executable (ET_EXEC)")
    if e_flags & EF_RISCV_RVC:
        raise QfabError(f"{path}: built with compressed instructions (RVC), which the core "
                        "lacks; compile with -mcpu=generic_rv32 (or -march=rv32i)")
    segments = []
    for i in range(e_phnum):
        (p_type, p_offset, _vaddr, p_paddr, p_filesz, p_memsz, _flags,
         _align) = struct.unpack_from("<IIIIIIII", raw, e_phoff + i * e_phentsize)
        if p_type != PT_LOAD or p_memsz == 0:
            continue
        if p_offset + p_filesz > len(raw) or p_filesz > p_memsz:
            raise QfabError(f"{path}: segment {i} lies outside the file")
        data = raw[p_offset:p_offset + p_filesz] + bytes(p_memsz - p_filesz)
        segments.append(Segment(p_paddr, data))
    if not segments:
        raise QfabError(f"{path}: no loadable segment")
    symbols = _symbols(raw, e_shoff, e_shnum, e_shentsize)
    return ElfImage(path, e_entry, tuple(segments), symbols)


def _symbols(raw: bytes, shoff: int, shnum: int, shentsize: int) -> dict[str, int]:
    sections = [struct.unpack_from("<IIIIIIIIII", raw, shoff + i * shentsize)
                for i in range(shnum)] if shoff else []
    symbols: dict[str, int] = {}
    for sh in sections:
        if sh[1] != SHT_SYMTAB:
            continue
        offset, size, link, entsize = sh[4], sh[5], sh[6], sh[9] or 16
        str_off = sections[link][4]
        for j in range(size // entsize):
            st_name, st_value = struct.unpack_from("<II", raw, offset + j * entsize)
            if st_name == 0:
                continue
            end = raw.index(b"\0", str_off + st_name)
            name = raw[str_off + st_name:end].decode("utf-8", "replace")
            symbols.setdefault(name, st_value)
    return symbols


def write_elf(path: str | Path, *, entry: int, segments: tuple[Segment, ...],
              symbols: dict[str, int] | None = None) -> None:
    """Write a minimal RV32 ET_EXEC file: one PT_LOAD per segment and an optional symtab.

    For programs generated in Python (tests, images built without a toolchain).
    """
    symbols = symbols or {}
    phoff = 52
    data_off = phoff + 32 * len(segments)
    blobs, headers = [], []
    offset = data_off
    for seg in segments:
        headers.append(struct.pack("<IIIIIIII", PT_LOAD, offset, seg.addr, seg.addr,
                                   len(seg.data), len(seg.data), 7, 4))
        blobs.append(seg.data)
        offset += len(seg.data)
    strtab = b"\0" + b"".join(n.encode() + b"\0" for n in symbols)
    symtab = bytearray(16)
    name_off = 1
    for name, value in symbols.items():
        symtab += struct.pack("<IIIBBH", name_off, value, 0, 0x10, 0, 0xFFF1)
        name_off += len(name) + 1
    shstrtab = b"\0.symtab\0.strtab\0.shstrtab\0"
    tables_off = offset
    symtab_off = tables_off
    strtab_off = symtab_off + len(symtab)
    shstr_off = strtab_off + len(strtab)
    shoff = (shstr_off + len(shstrtab) + 3) & ~3
    pad = bytes(shoff - shstr_off - len(shstrtab))
    sections = [bytes(40),
                struct.pack("<IIIIIIIIII", 1, SHT_SYMTAB, 0, 0, symtab_off, len(symtab), 2,
                            1, 4, 16),
                struct.pack("<IIIIIIIIII", 9, 3, 0, 0, strtab_off, len(strtab), 0, 0, 1, 0),
                struct.pack("<IIIIIIIIII", 17, 3, 0, 0, shstr_off, len(shstrtab), 0, 0, 1, 0)]
    header = (b"\x7fELF\x01\x01\x01" + bytes(9)
              + struct.pack("<HHIIIIIHHHHHH", 2, EM_RISCV, 1, entry, phoff, shoff, 0, 52, 32,
                            len(segments), 40, len(sections), 3))
    out = header + b"".join(headers) + b"".join(blobs) + bytes(symtab) + strtab + shstrtab \
        + pad + b"".join(sections)
    Path(path).write_bytes(out)
