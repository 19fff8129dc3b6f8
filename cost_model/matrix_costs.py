# amaranth: UnusedElaboratable=no
"""The matrix-vector units' structure (:class:`~qfab.cost_model.features.BlockCost`): the
folded MVU, the XNOR-popcount unit, the depthwise MAC, the adder-graph unit and unrolled
layers in one pipeline."""

from __future__ import annotations

import math

import numpy as np
from amaranth.hdl import Shape
from qfab.cost_model.dsp import multiplier_dsps, operand_shape
from qfab.cost_model.features import (
    DSP_REGISTERS,
    BlockCost,
    _adder_tree_bits,
    _bits,
    _width,
)
from qfab.cost_model.memory import LUT_INPUTS, memory_cost, rom_columns


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
                family: str, logic_products: bool = True, lanes: bool = False) -> None:
    """An MVU's weight ROM, one word of ``pe x simd`` codes a fold, when there is more than
    one fold (``lanes``: one ROM a PE, each with its copy of the address); its columns left
    in logic count as ``romw``."""
    mh, mw = weights.shape
    depth = (mh // pe) * (mw // simd)
    if depth > 1:
        words = weights.reshape(mh // pe, pe, mw // simd, simd).transpose(0, 2, 1, 3)
        words = words.reshape(depth, pe * simd)
        parts = np.split(words, pe, axis=1) if lanes else [words]
        c.ff += 1 + (pe * _bits(depth) if lanes else 0)  # "at the last word", the copies
        k = LUT_INPUTS[family]
        for part in parts:
            cols = rom_columns((part, w_code))
            logic = c.add_memory(depth, part.shape[1] * w_code, family, rom=True,
                                 columns=cols).style == "logic"
            # a column with a LUT input to spare takes a partial product's operand bit in
            if logic and (depth > 1 << (k - 1) or not logic_products):
                c.features["romw"] += cols * math.ceil(depth / (1 << k))


def _pipelined_copies(c: BlockCost, p: dict, pe: int, simd: int, a_code: int, nf: int,
                      sf: int, lut_bits: int) -> None:
    """A pipelined MVU's flip-flops that copy others (hw/mvu.py): the input word a PE past
    the first, a copy of ``held`` for each PE's registers of a stage, its accumulator and
    (one ROM a PE) its weights; with one input buffer, the first-fold flag and the write
    taken a cycle late."""
    from qfab.hw.mvu import mvu_latency

    stages = mvu_latency(simd, True, lut_bits) - 2
    c.ff += ((pe - 1) * simd * a_code + pe * (stages + 1)
             + (pe if p.get("weight_lanes") else 1))
    if nf > 1 and sf > 1 and not p.get("double_buffered"):
        c.ff += 2 + _bits(sf)


def _product_width(a: Shape, b: Shape) -> int:
    """Width of Amaranth's ``a * b``: an unsigned operand beside a signed one gains a bit."""
    mixed = a.signed != b.signed
    return a.width + b.width + (mixed and not a.signed) + (mixed and not b.signed)


def _partial_product_bits(a: Shape, b: Shape, width: int, rows: int) -> int:
    """Bits Yosys's maccmap lays out for one ``a * b`` in a sum ``width`` bits wide, with
    ``rows`` rows (the narrower operand's bits, fewer where a weight takes few values):
    signed, each row runs to the top of the sum (its sign extended), less its shift, and
    the last row takes one more bit; unsigned, a row is the wider operand's bits."""
    mixed = a.signed != b.signed
    wa, wb = a.width + (mixed and not a.signed), b.width + (mixed and not b.signed)
    rows = min(rows, wa, wb)
    if a.signed or b.signed:
        return sum(max(width - i, 0) for i in range(rows)) + 1
    return sum(min(max(wa, wb), width - i) for i in range(rows))


def _held_sum_zeroing(acc: int, family: str) -> int:
    """Multiplexer bits a PE of an MVU spends holding a sum for a full output register (its
    accumulator adds zero, hw/mvu.py): one a bit where the carry cell takes the LUT's
    inputs (iCE40, ECP5 as Yosys maps it); none on 7-series, whose carry chain's LUT has
    the inputs to spare."""
    return acc if LUT_INPUTS[family] == 4 else 0


def lut_products_of(p: dict, mult) -> int:
    """Partial products a product of an MVU in LUTs sums (hw/mvu.py), 0 for a multiplier."""
    from qfab.hw.multipliers import lut_product_bits

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
        # partial products summed in the tree (hw/multipliers.py lut_product_terms): each the
        # other operand's bits, shifted; the tree below sums SIMD x lut_bits terms
        per_product, prod_w = 0, min(a_op.width + w_op.width - lut_bits + 1, acc)
    elif per_product:
        c.dsp += products * per_product
    elif table:
        c.table_lut += products * prod_w * (1 << max(a_code + w_code - k, 0))
    elif not minifloat and not p.get("pipelined"):
        # one PE's products and adder tree are one sum of products to Yosys (alumacc), laid
        # out as partial-product rows and added in full adders (maccmap), then one adder
        width = min(_product_width(a_op, w_op) + (simd - 1).bit_length(), acc)
        rows = _weight_bits(weights, pe, simd, w_op, mult.b)
        bits = sum(_partial_product_bits(a_op, w_op, width, r) for r in rows)
        c.features["macc"] += max(bits - 2 * pe * width, 0)
        c.adder_lut += pe * (width + acc)  # a LUT a bit with its carry chain
    else:
        c.features["mul"] += a_op.width * sum(_weight_bits(weights, pe, simd, w_op, mult.b))
    if not c.features["macc"]:
        c.features["add"] += pe * (_adder_tree_bits(simd * max(lut_bits, 1), prod_w, acc)
                                   + acc)
    c.features["mux"] += pe * _held_sum_zeroing(acc, family)
    for dec in (mult.a, mult.b):
        # a minifloat operand: every product is shifted by its exponent
        if hasattr(dec, "fmt") and not table:
            c.features["shift"] += products * prod_w * dec.fmt.exp_bits
    c.features["ctrl"] += _bits(sf) + _bits(nf) + _bits(nf * sf)
    c.features["block"] += 1
    _weight_rom(c, weights, pe, simd, w_code, family, not per_product,
                lanes=bool(p.get("weight_lanes")))
    if p.get("pipelined"):
        _pipelined_copies(c, p, pe, simd, a_code, nf, sf, lut_bits)
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
    # the popcount tree is one sum to Yosys (alumacc) of 2-bit terms (-1 or +1), each
    # extended to the sum's width in maccmap's rows
    width = min(2 + (simd - 1).bit_length(), acc)
    c.features["macc"] += pe * max(simd * width - 2 * width, 0)
    c.features["add"] += pe * (width + 2 * acc)
    c.features["mux"] += pe * _held_sum_zeroing(acc, family)
    c.features["ctrl"] += _bits(sf) + _bits(nf) + _bits(nf * sf)
    c.features["block"] += 1
    _weight_rom(c, weights, pe, simd, 1, family, lanes=bool(p.get("weight_lanes")))
    if p.get("pipelined"):  # (of an input code, only its sign bit is kept)
        _pipelined_copies(c, p, pe, simd, 1, nf, sf, 0)
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
    a, w = Shape.cast(p["in_shape"]), Shape.cast(p["weight_shape"])
    acc = depthwise_acc_shape(weights, a).width
    words = channels // simd * taps
    c = BlockCost("depthwise")
    per_product = multiplier_dsps(a, w, family)
    k = LUT_INPUTS[family]
    if per_product:
        c.dsp += simd * per_product
    elif a.width + w.width <= k + 2:
        # few enough operand bits that ABC maps each product bit as one function of them
        c.table_lut += simd * (a.width + w.width) * (1 << max(a.width + w.width - k, 0))
    else:
        # acc + product is one sum of products to Yosys (alumacc, maccmap: see mvu_cost)
        bits = _partial_product_bits(a, w, acc, w.width) + acc
        c.features["macc"] += simd * max(bits - 2 * acc, 0)
    # Mux(first, 0, acc) + product: the zeroing is one more input of each adder bit's LUT
    c.features["add"] += simd * acc
    c.features["ctrl"] += _bits(words) + _bits(taps)
    c.features["block"] += 1
    if words > 1:
        rows = weights.reshape(channels // simd, simd, taps).transpose(0, 2, 1)
        cols = rom_columns((rows.reshape(words, simd), w.width))
        if c.add_memory(words, simd * w.width, family, rom=True,
                        columns=cols).style == "logic":
            c.features["romw"] += cols * math.ceil(words / (1 << k))
    # accumulators, output register and valid, word and tap counters, the ROM's primed bit
    c.ff += 2 * simd * acc + 2 + _bits(words) + _bits(taps)
    return c
