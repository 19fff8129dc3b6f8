"""What a block is made of, in the units the cost model counts (:class:`BlockCost`).

Each hw/ block is described by what it is made of, in units Yosys maps one way or another:

- ``ff``: register bits (pipeline registers, counters, the read register of a memory kept in
  logic), counted from the block's structure;
- ``dsp``: hard multipliers, by the rule Yosys applies (:mod:`qfab.cost_model.dsp`);
- ``bram`` and memory LUTs, by the mapping rule of :mod:`qfab.cost_model.memory`;
- LUT features: bits of adders (``add``), of 2:1 multiplexers (``mux``; a wide one counts
  the LUTs it takes, :func:`mux_luts`), of comparators of two signals (``cmp``) and against
  a constant (``cmpk``), partial-product bits of multipliers left in logic (``mul``), full
  adder bits of a sum of products left in logic (``macc``: Yosys's alumacc makes one sum of
  a PE's products and adder tree, and maccmap lays it out as partial-product rows, each as
  wide as the sum where the operands are signed, added three rows into two), bits of
  minifloat shifters (``shift``), columns of a weight ROM left in logic (``romw``: Yosys
  spends LUTs on them beyond the ROM's own where they meet the products, so calibration
  weighs them; a column deeper than one LUT's inputs counts once a LUT it takes: ABC merges
  the column's LUTs into the product logic, not the free wide-mux joins; a column with a LUT
  input to spare feeding products in logic counts none: it takes an operand bit in), threshold-ROM
  columns too deep to take their comparator's bit into their LUT (``romc``), control
  counters (``ctrl``), per-block overhead (``block``) and per-stage overhead (``stage``:
  the accelerator's activity count of each stage).

The LUT total is a weighted sum of these features, with one weight per feature and family,
fitted against Yosys by :mod:`qfab.cost_model.calibrate` (``constants.py``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from amaranth.hdl import Shape
from qfab.cost_model.memory import MemoryCost, memory_cost

LUT_FEATURES = ("add", "mux", "cmp", "cmpk", "mul", "macc", "shift", "romw", "romc", "ctrl",
                "block", "stage")


@dataclass
class BlockCost:
    """Structure of one block: LUT features, and the counts that need no fitting.

    Members
    -------
    kind : str
    features : Counter
        LUT features (see the module docstring).
    ff : int
        Flip-flops.
    dsp : int
        Hard multipliers.
    bram : int
        Block RAMs in the family's unit.
    mem_lut : int
        LUTs of memories mapped to logic or LUT RAM (already in LUTs, not weighted).
    table_lut : int
        LUTs of products left in logic as tables of their operands' codes (not weighted).
    adder_lut : int
        LUTs of an adder graph: one a result bit that needs a carry (a LUT and its share
        of the carry chain on every family; bits below a shifted operand pass through).
    """

    kind: str
    features: Counter = field(default_factory=Counter)
    ff: int = 0
    dsp: int = 0
    bram: int = 0
    mem_lut: int = 0
    table_lut: int = 0
    adder_lut: int = 0

    def add_memory(self, depth: int, width: int, family: str, *, rom: bool,
                   registered_read: bool = True, columns: int | None = None,
                   read_first: bool = False, no_rw_check: bool = False) -> MemoryCost:
        m = memory_cost(depth, width, family, rom=rom, columns=columns, read_first=read_first,
                        no_rw_check=no_rw_check)
        self.bram += m.bram
        self.mem_lut += m.lut
        self.ff += m.ff if registered_read else 0
        return m


def _bits(n: int) -> int:
    """Width of a counter over ``range(n)``."""
    return max((n - 1).bit_length(), 0)


def _width(shape) -> int:
    return Shape.cast(shape).width


def _adder_tree_bits(terms: int, width: int, cap: int) -> int:
    bits, w = 0, width
    while terms > 1:
        w = min(w + 1, cap)
        bits += (terms // 2) * w
        terms = terms - terms // 2
    return bits


# Families whose DSP blocks Yosys packs with the registers and adders around a multiply.
DSP_REGISTERS = ("xilinx7",)


def _low_zeros(k: int) -> int:
    """Trailing zero bits of ``k`` (0 for 0)."""
    return (abs(k) & -abs(k)).bit_length() - 1 if k else 0
