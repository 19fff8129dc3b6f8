# amaranth: UnusedElaboratable=no
"""Per-block resource features, read from a plan's ``BlockSpec`` without building hardware.

Each hw/ block is described by what it is made of, in units Yosys maps one way or another:

- ``ff``: register bits (pipeline registers, counters, the read register of a memory kept in
  logic), counted from the block's structure;
- ``dsp``: hard multipliers, by the rule Yosys applies (:mod:`qfab.cost_model.dsp`);
- ``bram`` and memory LUTs, by the mapping rule of :mod:`qfab.cost_model.memory`;
- LUT features: bits of adders (``add``), of 2:1 multiplexers (``mux``; a wide one counts
  the LUTs it takes, :func:`mux_luts`), of comparators of two signals (``cmp``) and against
  a constant (``cmpk``), partial-product bits of multipliers left in logic (``mul``), bits
  of minifloat shifters (``shift``), columns of a weight ROM left in logic (``romw``: Yosys
  spends LUTs on them beyond the ROM's own where they meet the products, so calibration
  weighs them; a column deeper than one LUT's inputs counts once a LUT it takes: ABC merges
  the column's LUTs into the product logic, not the free wide-mux joins), distinct
  threshold-ROM columns feeding comparators (``romc``: a carry-chain comparator of two
  signals takes one operand inverted, a LUT4 a distinct column where no LUT6 absorbs it),
  control counters (``ctrl``) and per-block overhead (``block``).

The LUT total is a weighted sum of these features, with one weight per feature and family,
fitted against Yosys by :mod:`qfab.cost_model.calibrate` (``constants.py``).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from amaranth.hdl import Shape
from qfab.cost_model.dsp import multiplier_dsps, multiplier_split, operand_shape
from qfab.cost_model.memory import (
    LUT_INPUTS,
    READ_FIRST_EMULATED,
    MemoryCost,
    memory_cost,
    mux_luts,
    rom_columns,
)

LUT_FEATURES = ("add", "mux", "cmp", "cmpk", "mul", "shift", "romw", "romc", "ctrl",
                "block")


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
                   read_first: bool = False) -> MemoryCost:
        m = memory_cost(depth, width, family, rom=rom, columns=columns, read_first=read_first)
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


def _pipeline_bits(terms: int, width: int, cap: int, per_stage: int | None = None) -> int:
    """Register bits of one PE's products and adder tree (hw/mvu.py's pipeline): the terms,
    then the partial sums after every ``per_stage`` levels (``TREE_LEVELS_PER_STAGE``) and
    after the last."""
    from qfab.hw.mvu import TREE_LEVELS_PER_STAGE

    per_stage = per_stage or TREE_LEVELS_PER_STAGE
    bits, w, level = terms * width, width, 0
    while terms > 1:
        terms, w, level = terms - terms // 2, min(w + 1, cap), level + 1
        if level % per_stage == 0 or terms == 1:
            bits += terms * w
    return bits


# Families whose DSP blocks Yosys packs with the registers and adders around a multiply.
DSP_REGISTERS = ("xilinx7",)


def _param_columns(params: dict, fields: dict, folds: int) -> int:
    """:func:`rom_columns` of a per-channel parameter ROM: one word a channel fold."""
    return rom_columns(*((np.asarray(params[name]).reshape(folds, -1), shape.width)
                         for name, shape in fields.items()))


def _weight_bits(weights: np.ndarray, pe: int, simd: int, w_op: Shape, decoder) -> list[int]:
    """Bits of weight operand each of the ``pe x simd`` products sees: its width, or for
    integer weights the bits that tell apart the values it takes over the folds, when fewer
    (a product with two weight values is a function of one address bit, not of the code)."""
    mh, mw = weights.shape
    if hasattr(decoder, "fmt"):
        return [w_op.width] * (pe * simd)
    lanes = weights.reshape(mh // pe, pe, mw // simd, simd).transpose(1, 3, 0, 2)
    lanes = lanes.reshape(pe * simd, -1)
    return [min(w_op.width, max(1, math.ceil(math.log2(len(np.unique(v)))))) for v in lanes]


def _weight_rom(c: BlockCost, weights: np.ndarray, pe: int, simd: int, w_code: int,
                family: str) -> None:
    """An MVU's weight ROM, one word of ``pe x simd`` codes a fold, when there is more than
    one fold; its columns left in logic count as ``romw``."""
    mh, mw = weights.shape
    depth = (mh // pe) * (mw // simd)
    if depth > 1:
        words = weights.reshape(mh // pe, pe, mw // simd, simd).transpose(0, 2, 1, 3)
        cols = rom_columns((words.reshape(depth, -1), w_code))
        if c.add_memory(depth, pe * simd * w_code, family, rom=True,
                        columns=cols).style == "logic":
            c.features["romw"] += cols * math.ceil(depth / (1 << LUT_INPUTS[family]))


def _held_sum_zeroing(acc: int, family: str) -> int:
    """Multiplexer bits a PE of an MVU spends holding a sum for a full output register (its
    accumulator adds zero, hw/mvu.py): one a bit where the carry cell takes the LUT's
    inputs (iCE40, ECP5 as Yosys maps it); none on 7-series, whose carry chain's LUT has
    the inputs to spare."""
    return acc if LUT_INPUTS[family] == 4 else 0


def lut_products_of(p: dict, mult) -> int:
    """Partial products a product of an MVU in LUTs sums (hw/mvu.py), 0 for a multiplier."""
    from qfab.hw.mvu import lut_product_bits

    return lut_product_bits(mult) if p.get("lut_products") and p.get("pipelined") else 0


def mvu_cost(p: dict, family: str) -> BlockCost:
    weights = np.asarray(p["weights"])
    mh, mw = weights.shape
    pe, simd = int(p["pe"]), int(p["simd"])
    mult = p.get("multiplier")
    if mult is None:
        from qfab.hw.multipliers import IntDecoder, Multiplier

        mult = Multiplier(IntDecoder(p["in_shape"]), IntDecoder(p["weight_shape"]))
    from qfab.hw.xnor_mvu import is_xnor

    if is_xnor(mult):
        return xnor_mvu_cost(p, family)
    acc = _width(p["acc_shape"])
    nf, sf = mh // pe, mw // simd
    a_code, w_code = mult.a.code_shape.width, mult.b.code_shape.width
    a_op, w_op = operand_shape(mult.a), operand_shape(mult.b)
    c = BlockCost("mvu")
    products = pe * simd
    per_product = multiplier_dsps(a_op, w_op, family)
    prod_w = min(mult.a.value_shape.width + mult.b.value_shape.width, acc)
    minifloat = any(hasattr(dec, "fmt") for dec in (mult.a, mult.b))
    k = LUT_INPUTS[family]
    # A minifloat product (decode, multiply the significands, shift by the exponents) of
    # codes with at most k + 2 bits between them: ABC maps each product bit as one function
    # of the codes, 2**(bits - k) LUTs, in place of the multiplier and the shifter.
    table = not per_product and minifloat and a_code + w_code <= k + 2
    lut_bits = lut_products_of(p, mult)
    if lut_bits:
        # partial products summed in the tree (hw/mvu.py lut_product_terms): each the
        # other operand's bits, shifted; the tree below sums SIMD x lut_bits terms
        per_product, prod_w = 0, min(a_op.width + w_op.width - lut_bits + 1, acc)
    elif per_product:
        c.dsp += products * per_product
    elif table:
        c.table_lut += products * prod_w * (1 << max(a_code + w_code - k, 0))
    else:
        c.features["mul"] += a_op.width * sum(_weight_bits(weights, pe, simd, w_op, mult.b))
    c.features["add"] += pe * (_adder_tree_bits(simd * max(lut_bits, 1), prod_w, acc) + acc)
    c.features["mux"] += pe * _held_sum_zeroing(acc, family)
    for dec in (mult.a, mult.b):
        # a minifloat operand: every product is shifted by its exponent
        if hasattr(dec, "fmt") and not table:
            c.features["shift"] += products * prod_w * dec.fmt.exp_bits
    c.features["ctrl"] += _bits(sf) + _bits(nf) + _bits(nf * sf)
    c.features["block"] += 1
    _weight_rom(c, weights, pe, simd, w_code, family)
    replayed_in_ram = False
    if nf > 1:
        buffer = c.add_memory((2 if p.get("double_buffered") else 1) * sf, simd * a_code,
                              family, rom=False)
        replayed_in_ram = bool(p.get("double_buffered")) and buffer.style != "logic"
    if replayed_in_ram:
        # Both banks in one RAM read transparently (the first fold reads the word written
        # in the same cycle): Yosys emulates that with a bypass, a multiplexer a bit and a
        # compare of the addresses.
        c.features["mux"] += simd * a_code
        c.features["cmp"] += _bits(2 * sf)
        c.ff += _bits(2 * sf) + 1
    # pipelined: the input word and its copy, the weight word (a register unless constant),
    # product and adder tree registers; else the input word and the tree's sum; then the
    # accumulators and the output register (the accumulators are its spare)
    if lut_bits:  # no product register: the tree's from its terms, a register a level
        from qfab.hw.mvu import LUT_TREE_LEVELS_PER_STAGE

        terms = simd * lut_bits
        c.ff += (2 * simd * a_code + (pe * simd * w_code if nf * sf > 1 else 0)
                 + pe * (_pipeline_bits(terms, prod_w, acc, LUT_TREE_LEVELS_PER_STAGE)
                         - terms * prod_w) + 2 * pe * acc)
    elif p.get("pipelined"):
        c.ff += (2 * simd * a_code + (pe * simd * w_code if nf * sf > 1 else 0)
                 + pe * _pipeline_bits(simd, prod_w, acc) + 2 * pe * acc)
        if per_product and family in DSP_REGISTERS and not c.features["shift"]:
            # synth_xilinx takes the weight and product registers into each DSP48 (B, M)
            c.ff -= pe * simd * (prod_w + (w_code if nf * sf > 1 else 0))
    else:
        # the input word: the buffer's read register when both banks are in RAM
        c.ff += (0 if replayed_in_ram else simd * a_code) + 3 * pe * acc
    c.ff += 8 + _bits(sf) + _bits(nf) + _bits(nf * sf)
    if per_product and family in DSP_REGISTERS and simd <= 4 and not c.features["shift"]:
        c.ff -= pe * acc  # synth_xilinx chains up to four DSPs: the sum is their P register
    return c


def cmvm_cost(p: dict, family: str) -> BlockCost:
    """The adder-graph unit: its adders' result bits, its registers, no DSP and no memory."""
    from qfab.hw.adder_graph import solve_cmvm
    from qfab.hw.cmvm import (
        DEFAULT_ADDERS_PER_STAGE,
        cmvm_stages,
        delay_registers,
        value_ranges,
    )
    from qfab.hw.multipliers import shape_for_range

    weights = np.asarray(p["weights"], np.int64)
    mh, mw = weights.shape
    per_stage = p.get("adders_per_stage", DEFAULT_ADDERS_PER_STAGE)
    graph = solve_cmvm(weights, share=p.get("share", True))
    ranges = value_ranges(graph, p["in_shape"])
    widths = [shape_for_range(lo, hi).width for lo, hi in ranges]
    acc = _width(p["acc_shape"])
    c = BlockCost("cmvm")
    # A LUT a result bit above the higher operand's shift, but the top bit of a sum of two
    # values never negative: the carry chain's carry out.
    c.adder_lut += sum(max(widths[graph.inputs + k] - max(n.shift_a, n.shift_b)
                           - (n.sign_b > 0 and ranges[n.a][0] >= 0 and ranges[n.b][0] >= 0), 0)
                       for k, n in enumerate(graph.nodes))
    c.adder_lut += sum(acc for o in graph.outputs if o is not None and o[2] < 0)  # negations
    delays = delay_registers(graph, per_stage)
    stages = cmvm_stages(weights=weights, adders_per_stage=per_stage,
                         share=p.get("share", True))
    # The output register holds each output's own bits: Yosys merges the
    # copies of a sign bit and drops the constant zeros a shifted output has below it.
    out_bits = sum(widths[o[0]] if o[2] > 0 else shape_for_range(-ranges[o[0]][1],
                                                                 -ranges[o[0]][0]).width
                   for o in graph.outputs if o is not None)
    # delay registers, output register (no spare: OutputRegister), valid bits
    c.ff += sum(widths[v] for v, _ in delays) + out_bits + stages + 1
    c.features["block"] += 1
    return c


def unrolled_cost(p: dict, family: str) -> BlockCost:
    """Unrolled layers in one pipeline (hw/unrolled.py): the features each value's logic
    counts (adder result bits, compared bits, multiplexer bits), the registers its schedule
    places, the output register and the valid bits."""
    from qfab.hw.unrolled import DEFAULT_LEVELS_PER_STAGE, unrolled_levels

    g = unrolled_levels(p["layers"], p.get("levels_per_stage", DEFAULT_LEVELS_PER_STAGE))
    c = BlockCost("unrolled")
    features = g.cost()
    c.adder_lut += features.pop("adder", 0)
    c.features.update(features)
    c.features["block"] += 1
    out_bits = sum(g.values[o].shape.width for o in g.outputs)
    c.ff += g.register_bits() + out_bits + g.stages + 1
    return c


def xnor_mvu_cost(p: dict, family: str) -> BlockCost:
    """The XNOR-popcount unit (hw/xnor_mvu.py): a popcount tree from 1-bit terms, the
    count accumulated, and ``2 * count - MW`` once at the output (``add``); no DSP. An
    XNOR costs a 1-bit product (``mul``) on 6-input LUTs; a 4-input LUT adding two terms
    has the inputs to take their XNORs too (calibration). Only the activation code's sign
    bit is read, and the output's low bit is constant (``MW``'s parity): Yosys keeps
    neither in a register or memory. Out of sample (calibration.md's xnor rows) within the
    targets; a small unit is overestimated on ECP5 (16x32 at PE 2, SIMD 4: 175 LUTs
    against Yosys's 132), and a wide one on xilinx7 (binary TFC's 64x784 layer at SIMD 112:
    the XNOR's ``mul`` weight, fitted on multipliers, is too high where Yosys packs XNORs
    into the popcount's first LUTs)."""
    weights = np.asarray(p["weights"])
    mh, mw = weights.shape
    pe, simd = int(p["pe"]), int(p["simd"])
    acc = _width(p["acc_shape"])
    nf, sf = mh // pe, mw // simd
    c = BlockCost("mvu")
    if LUT_INPUTS[family] > 4:
        c.features["mul"] += pe * simd
    c.features["add"] += pe * (_adder_tree_bits(simd, 1, acc) + 2 * acc)
    c.features["mux"] += pe * _held_sum_zeroing(acc, family)
    c.features["ctrl"] += _bits(sf) + _bits(nf) + _bits(nf * sf)
    c.features["block"] += 1
    _weight_rom(c, weights, pe, simd, 1, family)
    if nf > 1:
        # the unused code bits of a memory in logic are dropped; a block RAM keeps the word
        width = simd * p["multiplier"].a.code_shape.width
        if memory_cost(sf, width, family, rom=False).style != "bram":
            width = simd
        c.add_memory((2 if p.get("double_buffered") else 1) * sf, width, family, rom=False)
    # sign bits in (pipelined: their copy, the weight bits, per PE the agreement bits and
    # the tree's registered counts), per PE the fold's count, the accumulator and the
    # output register
    if p.get("pipelined"):
        c.ff += (2 * simd + (pe * simd if nf * sf > 1 else 0)
                 + pe * (_pipeline_bits(simd, 1, acc) + acc + (acc - 1)))
    else:
        c.ff += simd + pe * (simd.bit_length() + acc + (acc - 1))
    c.ff += 8 + _bits(sf) + _bits(nf) + _bits(nf * sf)
    return c


def depthwise_cost(p: dict, family: str) -> BlockCost:
    from qfab.hw.depthwise import depthwise_acc_shape

    weights = np.asarray(p["weights"])
    channels, taps, simd = int(p["channels"]), int(p["taps"]), int(p["simd"])
    lanes = simd * int(p.get("columns", 1))  # products a cycle
    a, w = Shape.cast(p["in_shape"]), Shape.cast(p["weight_shape"])
    acc = depthwise_acc_shape(weights, a).width
    words = channels // simd * taps * simd // lanes
    c = BlockCost("depthwise")
    per_product = multiplier_dsps(a, w, family)
    k = LUT_INPUTS[family]
    if per_product:
        c.dsp += lanes * per_product
    elif a.width + w.width <= k + 2:
        # few enough operand bits that ABC maps each product bit as one function of them
        c.table_lut += lanes * (a.width + w.width) * (1 << max(a.width + w.width - k, 0))
    else:
        c.features["mul"] += lanes * a.width * w.width
    # Mux(first, 0, acc) + product (a product more, an adder more): the zeroing is one more
    # input of each adder bit's LUT
    c.features["add"] += lanes * acc
    c.features["ctrl"] += _bits(words) + _bits(taps)
    c.features["block"] += 1
    if words > 1:
        rows = weights.reshape(channels // simd, simd, taps).transpose(0, 2, 1)
        cols = rom_columns((rows.reshape(words, lanes), w.width))
        if c.add_memory(words, lanes * w.width, family, rom=True,
                        columns=cols).style == "logic":
            c.features["romw"] += cols * math.ceil(words / (1 << k))
    # accumulators, output register and valid, word and tap counters, the ROM's primed bit
    c.ff += 2 * simd * acc + 2 + _bits(words) + _bits(taps)
    return c


def _shift_add_lut(k: int, width: int) -> int:
    """Result bits with a carry in ``x * k`` as ``shift_add_product`` builds it (a balanced
    tree of shifted copies of a ``width``-bit ``x``): bits below an adder's higher operand
    shift pass through."""
    from qfab.hw.adder_graph import csd_digits
    from qfab.hw.requant import balanced_sum

    luts = 0

    def add(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
        """Two (lowest, top) bit spans summed: LUTs for the bits above the higher lowest."""
        nonlocal luts
        luts += max(a[1], b[1]) + 1 - max(a[0], b[0])
        return min(a[0], b[0]), max(a[1], b[1]) + 1

    terms = [(s, s + width) for s, _ in csd_digits(k)]
    if terms:
        balanced_sum(terms, add)
    return luts


def _register_free_requant_cost(block) -> BlockCost:
    """A requantizer whose lanes scale by constant powers of two (no registers before the
    output's): a LUT a result bit of the bias add above the bias's trailing zero bits and of
    the rounding and zero point increment (as wide as the output), and the clamp's
    multiplexer where the rounded value's range passes a bound (the compares with constant
    bounds fold into it)."""
    acc, out = block.acc_shape.width, block.out_shape.width
    s_max = int(np.max(block._hw_shift))
    q_lo, q_hi = block._rounded_range()
    q_width = max(abs(q_lo), abs(q_hi)).bit_length() + 1
    rounds = s_max > 0 and block.rounding != "floor"
    clamps = q_lo < block.lo - block.zero_point or q_hi + 1 > block.hi - block.zero_point
    c = BlockCost("requant")
    for b in block.bias.tolist():
        c.adder_lut += (acc + 1 - _low_zeros(b)) if b else 0
        c.adder_lut += min(out, q_width) if rounds or block.zero_point else 0
        c.features["mux"] += out if clamps else 0
    c.features["block"] += 1
    c.ff += block.pe * out + 1  # the output register (no spare: OutputRegister)
    return c


def requant_cost(p: dict, family: str) -> BlockCost:
    from qfab.hw.adder_graph import csd_digits
    from qfab.hw.requant import Requantizer

    block = Requantizer(**p)
    if not block.stages:
        return _register_free_requant_cost(block)
    pe, folds = block.pe, block.channels // block.pe
    acc, out = block.acc_shape.width, block.out_shape.width
    lo, hi = block._product_range()
    prod_w = max(abs(lo), abs(hi)).bit_length() + 1
    params, rom_fields = block._params()
    s_max = int(np.max(params["lshift"])) if np.size(params["lshift"]) else 0
    c = BlockCost("requant")
    mults = [int(v) for v in params["mult"].tolist()]
    if "mult" in rom_fields:
        per, rest = multiplier_split(Shape(acc + 1, True), rom_fields["mult"], family)
        c.dsp += pe * per
        c.features["mul"] += pe * rest
    else:
        # A constant multiplier per lane: Yosys still maps a wide one to a DSP; a power of
        # two is a shift.
        lane_mults = mults[:pe] if folds == 1 else [mults[0]] * pe
        for k in lane_mults:
            if k & (k - 1) == 0:
                continue
            if block.shift_add:
                # shifted copies summed: each adder a LUT a result bit above the lower
                # operand's shift, as in the adder-graph unit (the fitted "add" weight is
                # for accumulators, which xilinx7 folds into its carry chains)
                c.adder_lut += _shift_add_lut(k, acc + 1)
                continue
            per = multiplier_dsps(Shape(acc + 1, True), Shape(k.bit_length(), False), family)
            if per:
                c.dsp += per
            else:
                c.features["add"] += (acc + k.bit_length()) * (len(csd_digits(k)) - 1)
    tail = max(prod_w - s_max, out)
    if c.dsp and family in DSP_REGISTERS:
        # Found in synth_xilinx netlists: DSP48E1 takes the bias in its pre-adder, the
        # accumulator register as its A register when the multiplier comes from the ROM, and
        # the product register as its P register unless a variable shift follows.
        c.ff -= pe * (acc if "mult" in rom_fields else 0)
        c.ff -= pe * (prod_w if "lshift" not in rom_fields else 0)
    else:
        c.features["add"] += pe * (acc + 1)     # + bias
    c.features["add"] += pe * tail          # + rounding + zero point
    c.features["cmpk"] += 2 * pe * tail     # clamp
    c.features["mux"] += 2 * pe * out
    if "lshift" in rom_fields:
        c.features["mux"] += pe * prod_w * _bits(int(np.max(params["lshift"])) + 1)
    c.features["block"] += 1
    depth, width = block.param_memory
    if depth:
        c.add_memory(depth, width, family, rom=True,
                     columns=_param_columns(params, rom_fields, folds))
        c.features["ctrl"] += _bits(folds)
        c.ff += _bits(folds)
    c.ff += pe * (acc + prod_w + 2 * out) + 4  # the output and its spare (OutputSkid)
    c.ff += block.pipeline_bits + (block.stages - 2)  # pipelined: more registers, valid bits
    return c


def threshold_cost(p: dict, family: str) -> BlockCost:
    from qfab.hw.threshold import Thresholder

    block = Thresholder(**p)
    pe, folds, n_thr = block.pe, block.channels // block.pe, block.num_thresholds
    acc, out = block.acc_shape.width, block.out_shape.width
    c = BlockCost("threshold")
    c.features["cmp" if block.threshold_memory[0] else "cmpk"] += block.comparators * acc
    c.features["add"] += pe * _adder_tree_bits(n_thr, 1, out)
    c.features["block"] += 1
    depth, width = block.threshold_memory
    if depth:
        cols = rom_columns((block.thresholds.reshape(folds, -1), block._threshold_shape.width))
        if c.add_memory(depth, width, family, rom=True, columns=cols).style == "logic":
            c.features["romc"] += cols
        c.features["ctrl"] += _bits(folds)
        c.ff += _bits(folds)
    # the accumulator register and the output's spare (OutputSkid), or neither
    # (OutputRegister), and the output register
    c.ff += (pe * (acc + out) + 2) * block.stages + pe * out + 1
    return c


def minifloat_requant_cost(p: dict, family: str) -> BlockCost:
    from qfab.hw.minifloat_requant import MinifloatRequantizer

    block = MinifloatRequantizer(**p)
    pe, folds = block.pe, block.channels // block.pe
    acc, out = block.acc_shape.width, block.out_shape.width
    lo, hi = block._product_range()
    prod_w = max(abs(lo), abs(hi)).bit_length() + 1
    params, rom_fields = block._params()
    mults = [int(v) for v in params["mult"].tolist()]
    m_w = max(max(mults).bit_length(), 1) + 1
    c = BlockCost("minifloat_requant")
    per = multiplier_dsps(Shape(acc + 1, True), Shape(m_w, True), family)
    lanes = pe if ("mult" in rom_fields or folds == 1) else 1
    if per and not all(k & (k - 1) == 0 for k in mults):
        c.dsp += lanes * per
    else:
        c.features["mul"] += lanes * (acc + 1) * m_w if per == 0 else 0
    if block.in_fmt is not None:  # minifloat codes in: one decoder a lane
        c.features["shift"] += pe * acc * block.in_fmt.exp_bits
    levels = max(prod_w - 1, 1).bit_length()
    c.features["add"] += pe * (acc + 1 + out)        # + bias, rounding
    c.features["cmp"] += pe * prod_w                 # leading-one search
    c.features["shift"] += pe * prod_w * levels      # normalizing shifter
    c.features["mux"] += pe * 2 * out
    c.features["block"] += 1
    depth, width = block.param_memory
    if depth:
        c.add_memory(depth, width, family, rom=True,
                     columns=_param_columns(params, rom_fields, folds))
        c.features["ctrl"] += _bits(folds)
        c.ff += _bits(folds)
    c.ff += pe * (acc + prod_w + prod_w + 2 * out) + 5  # three stages, output and spare
    return c


def window_cost(p: dict, family: str) -> BlockCost:
    from qfab.hw.window import SlidingWindow

    w = SlidingWindow(**p)
    g = w.geometry
    ew = _width(w.elem_shape)
    c = BlockCost("window")
    depth, width = w.line_buffer
    for port in range(w.taps):  # a copy a read port (Yosys's mapping of extra read ports;
        # a copy's read register adds no FFs in Yosys: 3 ports +2 FFs on xilinx7, +4 on ice40)
        c.add_memory(depth, width, family, rom=False, registered_read=port == 0)
    counters = (_bits(g.out_height) + _bits(g.out_width) + _bits(g.kernel[0])
                + _bits(g.kernel[1]) + _bits(g.beats_per_pixel))
    rows = (g.height + g.pad_top + g.pad_bottom + g.row_slots + 1).bit_length() + 2
    c.features["ctrl"] += (counters + 3 * rows + 2 * _bits(depth)
                           + _bits(g.width * g.beats_per_pixel))
    c.features["mux"] += w.simd * w.taps * ew
    ix_w = (g.width + g.pad_left + g.pad_right).bit_length() + 1
    c.features["cmp"] += 4 * rows + 2 * (w.taps - 1) * ix_w  # further ports' column checks
    c.features["block"] += 1
    c.ff += counters + 3 * rows + _bits(depth) + _bits(g.width * g.beats_per_pixel) + 1 + w.taps
    # Read address: slot * row_beats + ix * beats_per_pixel (+ the channel fold); Yosys maps
    # a multiply by a constant that is no power of two like any other (a DSP on ECP5).
    row_beats = g.width * g.beats_per_pixel
    for var, k in ((Shape(_bits(g.row_slots), False), row_beats),
                   (Shape(ix_w, True), g.beats_per_pixel),
                   (Shape(_bits(g.out_height), False), g.stride[0])):
        if var.width and k & (k - 1):
            c.dsp += multiplier_dsps(var, Shape(k.bit_length(), False), family)
    return c


def widthconv_cost(p: dict, family: str) -> BlockCost:
    ew = _width(p["elem_shape"])
    n_in, n_out = int(p["n_in"]), int(p["n_out"])
    word = math.lcm(n_in, n_out)
    c = BlockCost("widthconv")
    c.features["block"] += 1
    if word != n_out:  # a split stage: word register, part counter, output multiplexer
        k = word // n_out
        c.ff += word * ew + _bits(k) + 1
        c.features["mux"] += n_out * ew * mux_luts(k, family)
        c.features["ctrl"] += _bits(k)
    if word != n_in:  # a gather stage: the output register filled slot by slot (enables)
        k = word // n_in
        c.ff += word * ew + _bits(k) + 1
        c.features["ctrl"] += _bits(k) + k
    return c


def maxpool_cost(p: dict, family: str) -> BlockCost:
    window = {k: v for k, v in p.items() if k != "registered_taps"}
    window.setdefault("pad_value", -(1 << (_width(p["elem_shape"]) - 1))
                      if Shape.cast(p["elem_shape"]).signed else 0)
    window["depthwise"] = True
    c = window_cost(window, family)
    c.kind = "maxpool"
    ew, simd = _width(p["elem_shape"]), int(p["simd"])
    taps = p["kernel"][0] * p["kernel"][1]
    c.features["cmp"] += simd * ew
    if family == "xilinx7":
        # Mux(first | (x > acc), x, acc) with x = Mux(pad, pad_value, data): five inputs a
        # bit, one LUT6 for both multiplexers (the window's pad select is counted already).
        pass
    else:
        c.features["mux"] += simd * ew      # Mux(first | (x > acc), x, acc)
    c.features["ctrl"] += _bits(taps)
    c.ff += 2 * simd * ew + _bits(taps) + 1
    c.ff += 2 * (simd * ew + 1) if p.get("registered_taps") else 0  # a register, a spare
    return c


def avgpool_cost(p: dict, family: str) -> BlockCost:
    from qfab.hw.pool import sum_shape

    c = window_cost({k: v for k, v in p.items() if k != "registered_taps"} | {"depthwise": True},
                    family)
    c.kind = "avgpool"
    taps = p["kernel"][0] * p["kernel"][1]
    sw, simd = sum_shape(Shape.cast(p["elem_shape"]), taps).width, int(p["simd"])
    c.features["add"] += simd * sw
    c.features["mux"] += simd * sw          # Mux(first, 0, acc)
    c.features["ctrl"] += _bits(taps)
    c.ff += 2 * simd * sw + _bits(taps) + 1  # running sums and the output register
    c.ff += 2 * (simd * _width(p["elem_shape"]) + 1) if p.get("registered_taps") else 0
    return c


def globalavgpool_cost(p: dict, family: str) -> BlockCost:
    from qfab.hw.pool import GlobalAvgPool

    block = GlobalAvgPool(**p)
    acc, simd = block.acc_shape.width, block.simd
    counters = _bits(block.channels // simd) + _bits(block.height * block.width)
    c = BlockCost("globalavgpool")
    # Yosys absorbs the sum memory's read register (FF then within 2 of its count).
    c.add_memory(*block.sum_memory, family, rom=False, registered_read=False)
    c.features["add"] += simd * acc
    c.features["mux"] += simd * acc         # Mux(first, 0, running sum)
    c.features["ctrl"] += counters
    c.features["cmpk"] += counters
    c.features["block"] += 1
    c.ff += simd * acc + counters + 1       # the output register, counters, valid
    return c


def add_cost(p: dict, family: str) -> BlockCost:
    from qfab.hw.eltwise import ResidualAdd

    block = ResidualAdd(**p)
    block._MustUse__silence = True  # read for its sizes, never elaborated
    n, out = block.n, block.out_shape.width
    lo, hi = block._sum_range()
    sum_w = max(lo.bit_length(), hi.bit_length()) + 1
    c = BlockCost("add")
    in_dsp = 0  # products a lane puts in DSP blocks
    for shape, k in ((block.a_shape, block.mult_a), (block.b_shape, block.mult_b)):
        k = abs(k) >> _low_zeros(k)  # Yosys shifts out a constant's low zero bits
        if k & (k - 1) == 0:
            continue  # a power of two is a shift
        per = multiplier_dsps(shape, Shape(k.bit_length(), False), family)
        if per:
            c.dsp += n * per
            in_dsp += 1
        else:
            c.features["add"] += n * (shape.width + k.bit_length()) * (bin(k).count("1") - 1)
    tail = max(sum_w - block.shift, out)
    # a * ka + b * kb + offset, then + zero point after the shift; Yosys packs one adder
    # after a multiply into the DSP block on 7-series (DSP48E1) and iCE40 (SB_MAC16), while
    # ECP5 (MULT18X18D) leaves the sum of two products in logic beside the offset's
    sums = 2 if family == "ecp5" and in_dsp == 2 else 1
    c.features["add"] += n * (sums * sum_w + tail)
    c.features["cmpk"] += 2 * n * (tail + block.shift)  # clamp; rounding: rem > or == half
    c.features["mux"] += 2 * n * out
    c.features["block"] += 1
    c.ff += n * (sum_w + out) + 2                   # sums, output, and their valid bits
    if not c.dsp:  # the sums' low bits below both multipliers' are constant: no flip-flops
        c.ff -= n * min(_low_zeros(k) if k else sum_w for k in (block.mult_a, block.mult_b))
    return c


def concat_cost(p: dict, family: str) -> BlockCost:
    ow, n = _width(p["out_shape"]), int(p["n"])
    count = _bits(max(int(p["a_beats"]), int(p["b_beats"]), 2))
    c = BlockCost("concat")
    # the output register takes one input or the other; a run counter and whose turn it is
    c.features["mux"] += n * ow * mux_luts(2, family)
    c.features["ctrl"] += count + 1
    c.features["cmpk"] += 2 * count
    c.features["block"] += 1
    c.ff += n * ow + count + 2
    return c


def select_cost(p: dict, family: str) -> BlockCost:
    ow, n = _width(p["out_shape"]), int(p["n"])
    count = _bits(max(int(p["period"]), 2))
    c = BlockCost("select")
    c.features["ctrl"] += count  # the position in the period
    c.features["cmpk"] += 2 * count  # within the window, and the period's end
    c.features["block"] += 1
    c.ff += n * ow + count + 1  # the output register, the position, valid
    return c


def _low_zeros(k: int) -> int:
    """Trailing zero bits of ``k`` (0 for 0)."""
    return (abs(k) & -abs(k)).bit_length() - 1 if k else 0


def fifo_cost(p: dict, family: str) -> BlockCost:
    width = Shape.cast(p["elem_shape"]).width * int(p["n"])
    depth = int(p["depth"])
    c = BlockCost("fifo")
    # SyncFIFOBuffered: a RAM of depth - 1 words behind the output register, two pointers
    # and a level counter. It may read the word being written: a Lattice block RAM
    # emulates the read-first result in logic (a data multiplexer, an address compare).
    m = c.add_memory(depth - 1, width, family, rom=False, read_first=True)
    if m.style == "bram" and family in READ_FIRST_EMULATED:
        c.features["mux"] += width
        c.features["cmp"] += 2 * _bits(depth - 1)
        c.ff += 2
    pointers = 2 * _bits(depth - 1) + (depth - 1).bit_length()
    c.features["ctrl"] += pointers
    c.features["cmpk"] += 2 * (depth - 1).bit_length()  # full and empty
    c.features["block"] += 1
    c.ff += pointers + 1
    return c


def upsample_cost(p: dict, family: str) -> BlockCost:
    from qfab.hw.upsample import NearestUpsample

    block = NearestUpsample(**p)
    block._MustUse__silence = True  # read for its sizes, never elaborated
    depth, width = block.row_memory
    sh, sw = block.scale
    counters = sum(_bits(k) for k in (depth, block.channels // block.n, sw, block.width, sh))
    c = BlockCost("upsample")
    c.add_memory(depth, width, family, rom=False, registered_read=False)
    c.features["add"] += _bits(depth)      # the read address: the pixel's base + its beat
    c.features["ctrl"] += counters
    c.features["cmpk"] += counters
    c.features["block"] += 1
    c.ff += width + counters + _bits(depth) + 2  # output register, counters, base, flags
    return c


COSTS = {"mvu": mvu_cost, "cmvm": cmvm_cost, "unrolled": unrolled_cost,
         "depthwise": depthwise_cost, "requant": requant_cost,
         "threshold": threshold_cost, "minifloat_requant": minifloat_requant_cost,
         "window": window_cost, "widthconv": widthconv_cost, "maxpool": maxpool_cost,
         "avgpool": avgpool_cost, "globalavgpool": globalavgpool_cost, "add": add_cost,
         "fifo": fifo_cost, "concat": concat_cost,
         "select": select_cost, "upsample": upsample_cost}


def block_cost(kind: str, params: dict, family: str) -> BlockCost:
    """The structure of one block of ``kind`` with hw/ keyword arguments ``params``."""
    if kind not in COSTS:
        raise ValueError(f"no cost model for block kind {kind!r}")
    return COSTS[kind](params, family)
