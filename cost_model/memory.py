"""Where Yosys puts a memory (logic, LUT RAM or block RAM), and what that costs.

Yosys's ``memory_libmap`` gives every way of building a memory a cost and takes the
cheapest: soft logic costs ``1/16`` a bit for a ROM and ``1`` a bit for a RAM, and each
library cell has its own cost (RAMB18 129, DP16KD 128, SB_RAM40_4K 64, a LUT RAM 4 to 8).
We repeat that choice with the cells each family's library offers. Two findings from
synthesis (cost_model/calibration.md) are built in: synth_xilinx does not map these
read-enabled ROMs to block RAM, and iCE40 has no LUT RAM.

The memories here have one synchronous read port (and for a RAM one write port).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

ROM_BIT_COST = 1 / 16
RAM_BIT_COST = 1.0

# (depth, width) shapes of one block RAM in simple dual-port use, and its cost.
BRAM_SHAPES = {
    "xilinx7": ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36)),
    "ecp5": ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36)),
    "ice40": ((2048, 2), (1024, 4), (512, 8), (256, 16)),
}
BRAM_COST = {"xilinx7": 129, "ecp5": 128, "ice40": 64}
ROM_IN_BRAM = {"xilinx7": False, "ecp5": True, "ice40": True}

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

def memory_cost(depth: int, width: int, family: str, *, rom: bool) -> MemoryCost:
    """Cost of a ``depth`` x ``width`` memory with a registered read, as Yosys maps it."""
    if depth <= 1 or width == 0:
        return MemoryCost("logic", 0, width if not rom else 0, 0)
    bits = depth * width
    options = []
    if rom:
        options.append((bits * ROM_BIT_COST,
                        MemoryCost("logic", logic_rom_luts(depth, width, family), width, 0)))
    else:
        # Each word in flip-flops, a write decoder, and a read multiplexer tree. On a tie
        # memory_libmap prefers logic to block RAM (iCE40 4x32) and block RAM to LUT RAM
        # (ECP5 64x32): the order of the options below.
        mux = width * (depth - 1) if family == "ice40" else logic_rom_luts(depth, width, family)
        options.append((bits * RAM_BIT_COST, MemoryCost("logic", mux + depth, bits + width, 0)))
        n = bram_blocks(depth, width, family)
        options.append((n * BRAM_COST[family], MemoryCost("bram", 0, 0, n)))
        cells = LUTRAM[family]
        if cells:
            fit = [c for c in cells if depth <= c[0]]
            cell_depth, cell_bits, cell_luts, cell_cost = fit[0] if fit else cells[-1]
            banks = math.ceil(depth / cell_depth)
            n = banks * math.ceil(width / cell_bits)
            mux = width * (banks - 1)
            options.append((n * cell_cost, MemoryCost("lutram", n * cell_luts + mux, width, 0)))
        return min(options, key=lambda o: o[0])[1]
    if ROM_IN_BRAM[family]:
        n = bram_blocks(depth, width, family)
        options.append((n * BRAM_COST[family], MemoryCost("bram", 0, 0, n)))
    return min(options, key=lambda o: o[0])[1]
