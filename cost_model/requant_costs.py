# amaranth: UnusedElaboratable=no
"""Per-block resource features of the blocks that turn a MAC stage's accumulators into codes:
requantizers (to integers, in constants, ROMs or shifts and adds; to minifloats) and
thresholders. Collected with the other blocks' in :data:`qfab.cost_model.blocks.COSTS`.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Shape
from qfab.cost_model.dsp import multiplier_dsps, multiplier_split
from qfab.cost_model.features import (
    DSP_REGISTERS,
    BlockCost,
    _adder_tree_bits,
    _bits,
    _low_zeros,
)
from qfab.cost_model.memory import LUT_INPUTS, rom_columns


def _param_columns(params: dict, fields: dict, folds: int) -> int:
    """:func:`rom_columns` of a per-channel parameter ROM: one word a channel fold."""
    return rom_columns(*((np.asarray(params[name]).reshape(folds, -1), shape.width)
                         for name, shape in fields.items()))


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


def _param_rom(c: BlockCost, block, params: dict, rom_fields, folds: int, family: str) -> None:
    """A requantizer's parameter ROM (one word a fold) and its fold counter, when it has one."""
    depth, width = block.param_memory
    if depth:
        c.add_memory(depth, width, family, rom=True,
                     columns=_param_columns(params, rom_fields, folds))
        c.features["ctrl"] += _bits(folds)
        c.ff += _bits(folds)


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
    _param_rom(c, block, params, rom_fields, folds, family)
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
        logic = c.add_memory(depth, width, family, rom=True, columns=cols).style == "logic"
        if logic and depth > 1 << (LUT_INPUTS[family] - 1):
            # a column with a LUT input to spare takes its comparator's bit in; a deeper
            # one is a LUT of its own before the comparator's
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
    _param_rom(c, block, params, rom_fields, folds, family)
    c.ff += pe * (acc + prod_w + prod_w + 2 * out) + 5  # three stages, output and spare
    return c
