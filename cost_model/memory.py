"""Where Yosys puts a memory (logic, LUT RAM or block RAM), and what that costs.

Yosys's ``memory_libmap`` gives every way of building a memory a cost and takes the
cheapest: soft logic costs a bit of ROM what a LUT's share of it is (``1/64`` with LUT6,
``1/16`` with LUT4) and ``1`` a bit of RAM, and each library cell has its own cost (RAMB18
129, DP16KD 128, SB_RAM40_4K 64, a LUT RAM 4 to 8). We repeat that choice with the cells each
family's library offers (iCE40 has no LUT RAM); probes of single ROMs on Yosys 0.70 agree
(xilinx7: 256x32 in LUTs, 512x64 in two RAMB18).

The memories here have one synchronous read port (and for a RAM one write port).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

ROM_BIT_COST = {"xilinx7": 1 / 64, "ecp5": 1 / 16, "ice40": 1 / 16}
RAM_BIT_COST = 1.0

# (depth, width) shapes of one block RAM in simple dual-port use, and its cost.
BRAM_SHAPES = {
    "xilinx7": ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36)),
    "ecp5": ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36)),
    "ice40": ((2048, 2), (1024, 4), (512, 8), (256, 16)),
}
BRAM_COST = {"xilinx7": 129, "ecp5": 128, "ice40": 64}

# Dual-port LUT RAM cells: (depth, bits a cell, LUTs a cell, cost a cell). Deeper memories
# take banks of the deepest cell and a read multiplexer.
LUTRAM = {
    "xilinx7": ((32, 6, 4, 8), (64, 3, 4, 8)),
    "ecp5": ((16, 4, 4, 4),),
    "ice40": (),
}
LUT_INPUTS = {"xilinx7": 6, "ecp5": 4, "ice40": 4}
FREE_JOIN = {"xilinx7": 4, "ecp5": 8, "ice40": 1}


@dataclass(frozen=True)
class MemoryCost:
    """What one memory costs once mapped: ``style`` is "logic", "lutram" or "bram"."""

    style: str
    lut: int
    ff: int
    bram: int


def bram_blocks(depth: int, width: int, family: str) -> int:
    """Block RAMs for a ``depth`` x ``width`` memory: the best single shape, tiled."""
    return min(math.ceil(depth / d) * math.ceil(width / w) for d, w in BRAM_SHAPES[family])


def _tiling_cost(depth: int, width: int, cell_depth: int, *, rom: bool) -> float:
    """memory_libmap's extra cost for cells stacked ``banks`` deep: a read multiplexer
    (half a unit a bit and bank) and, for a RAM, a write-enable decoder."""
    banks = math.ceil(depth / cell_depth)
    if banks == 1:
        return 0.0
    return 0.5 * (banks - 1) * width + (0 if rom else 0.5 * banks)


def mux_luts(k: int, family: str) -> int:
    """LUTs of one bit of a ``k``:1 multiplexer: a LUT6 selects among four inputs (MUXF7 and
    MUXF8 join up to four LUT6 for free); a LUT4 among two."""
    if k <= 1:
        return 0
    return math.ceil(k / 4) if family == "xilinx7" else k - 1


def _bram_option(depth: int, width: int, family: str, *,
                 rom: bool) -> tuple[float, MemoryCost]:
    """(cost, mapping) of the cheapest block RAM tiling. Blocks stacked deep share a read
    multiplexer in logic: a ``banks``:1 multiplexer a bit of the word (no flip-flops; the
    bank select is the registered address's top bits)."""
    options = []
    for d, w in BRAM_SHAPES[family]:
        banks = math.ceil(depth / d)
        n = banks * math.ceil(width / w)
        cost = n * BRAM_COST[family] + _tiling_cost(depth, width, d, rom=rom)
        options.append((cost, MemoryCost("bram", width * mux_luts(banks, family), 0, n)))
    return min(options, key=lambda o: o[0])


def logic_rom_luts(depth: int, width: int, family: str) -> int:
    """LUTs of a ROM in soft logic: one LUT per ``2**k`` words a bit; wide-mux primitives
    join a group of LUTs for free (MUXF7/F8: 4 LUT6; PFUMX/L6MUX21: 8 LUT4; none on iCE40),
    and each further level of choice between groups costs a LUT a group."""
    luts = math.ceil(depth / (1 << LUT_INPUTS[family]))
    if FREE_JOIN[family] == 1:
        # No wide-mux cells (iCE40): ABC spends about 1.5 LUT4 per 2:1 join (calibration).
        return width * luts + round(1.5 * (luts - 1) * width)
    groups = math.ceil(luts / FREE_JOIN[family])
    extra = 0
    while groups > 1:
        extra += groups
        groups = math.ceil(groups / 4)
    return width * (luts + extra)

def rom_columns(*fields: tuple[np.ndarray, int]) -> int:
    """Distinct non-constant bit columns of a ROM whose words are ``fields``: each a
    ``[depth, n]`` array of integer codes, ``width`` bits each (two's complement).

    A ROM left in logic is one boolean function of the address a column: Yosys drops the
    constant ones and merges equal ones (and their read registers), so these are what cost
    LUTs and flip-flops."""
    cols = []
    for codes, width in fields:
        codes = np.asarray(codes, dtype=np.int64).reshape(len(codes), -1)
        bits = (codes[:, :, None] >> np.arange(width)) & 1
        cols.append(bits.reshape(len(codes), -1))
    columns = np.unique(np.concatenate(cols, axis=1).astype(np.uint8).T, axis=0)
    return int(sum(0 < c.sum() < len(c) for c in columns))


# memory_libmap's cost of emulating read-first behaviour: 3 points a write port, 2 a point;
# block RAMs whose separate read and write ports need it (7-series ones read first natively).
READ_FIRST_COST = 6.0
READ_FIRST_EMULATED = ("ecp5", "ice40")


def memory_cost(depth: int, width: int, family: str, *, rom: bool,
                columns: int | None = None, read_first: bool = False,
                no_rw_check: bool = False) -> MemoryCost:
    """Cost of a ``depth`` x ``width`` memory with a registered read, as Yosys maps it;
    ``columns`` is :func:`rom_columns` of a ROM's contents, when known. ``read_first``: a
    RAM whose read may hit the word written in the same cycle (a FIFO), which a Lattice
    block RAM's separate ports cannot give without emulation (7-series ones can).
    ``no_rw_check``: Yosys is told no read needs the word written in the same cycle."""
    if depth <= 1 or width == 0:
        return MemoryCost("logic", 0, width if not rom else 0, 0)
    bits = depth * width
    options = []
    if rom:
        used = width if columns is None else columns
        options.append((bits * ROM_BIT_COST[family],
                        MemoryCost("logic", logic_rom_luts(depth, used, family), used, 0)))
    else:
        # Each word in flip-flops, a write decoder, and a read multiplexer tree. On a tie
        # memory_libmap prefers logic to block RAM (iCE40 4x32) and block RAM to LUT RAM
        # (ECP5 64x32): the order of the options below.
        mux = width * (depth - 1) if family == "ice40" else logic_rom_luts(depth, width, family)
        options.append((bits * RAM_BIT_COST, MemoryCost("logic", mux + depth, bits + width, 0)))
        cost, bram = _bram_option(depth, width, family, rom=False)
        if read_first and family in READ_FIRST_EMULATED:
            cost += READ_FIRST_COST
        # On ECP5 and iCE40 Yosys keeps the write data and address a cycle in flip-flops and
        # the read data in a holding register (the read enable): found in their netlists.
        # (Told that no read needs it, ``no_rw_check``, it keeps none of them.)
        held = 0 if family == "xilinx7" or no_rw_check else (
            2 * width + math.ceil(math.log2(depth)))
        options.append((cost, MemoryCost("bram", bram.lut, held, bram.bram)))
        cells = LUTRAM[family]
        if cells:
            fit = [c for c in cells if depth <= c[0]]
            cell_depth, cell_bits, cell_luts, cell_cost = fit[0] if fit else cells[-1]
            banks = math.ceil(depth / cell_depth)
            n = banks * math.ceil(width / cell_bits)
            mux = width * (banks - 1)
            cost = n * cell_cost + _tiling_cost(depth, width, cell_depth, rom=False)
            options.append((cost, MemoryCost("lutram", n * cell_luts + mux, width, 0)))
        return min(options, key=lambda o: o[0])[1]
    options.append(_bram_option(depth, width, family, rom=True))
    return min(options, key=lambda o: o[0])[1]
