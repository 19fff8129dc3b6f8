# amaranth: UnusedElaboratable=no
"""Per-block resource features, read from a plan's ``BlockSpec`` without building hardware.

Each hw/ block is described by what it is made of, in units Yosys maps one way or another:

- ``ff``: register bits (pipeline registers, counters, the read register of a memory kept in
  logic), counted from the block's structure;
- ``dsp``: hard multipliers, by the rule Yosys applies (:mod:`qfab.cost_model.dsp`);
- ``bram`` and memory LUTs, by the mapping rule of :mod:`qfab.cost_model.memory`;
- LUT features: bits of adders (``add``), of 2:1 multiplexers (``mux``), of comparators
  (``cmp``), partial-product bits of multipliers left in logic (``mul``), bits of minifloat
  shifters (``shift``), control counters (``ctrl``) and per-block overhead (``block``).

The LUT total is a weighted sum of these features, with one weight per feature and family,
fitted against Yosys by :mod:`qfab.cost_model.calibrate` (``constants.py``).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from amaranth.hdl import Shape
from qfab.cost_model.dsp import multiplier_dsps
from qfab.cost_model.memory import memory_cost

LUT_FEATURES = ("add", "mux", "cmp", "mul", "shift", "ctrl", "block")


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
    """

    kind: str
    features: Counter = field(default_factory=Counter)
    ff: int = 0
    dsp: int = 0
    bram: int = 0
    mem_lut: int = 0

    def add_memory(self, depth: int, width: int, family: str, *, rom: bool,
                   registered_read: bool = True) -> None:
        m = memory_cost(depth, width, family, rom=rom)
        self.bram += m.bram
        self.mem_lut += m.lut
        self.ff += m.ff if registered_read else 0


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


def mvu_cost(p: dict, family: str) -> BlockCost:
    weights = np.asarray(p["weights"])
    mh, mw = weights.shape
    pe, simd = int(p["pe"]), int(p["simd"])
    mult = p.get("multiplier")
    if mult is None:
        from qfab.hw.multipliers import IntDecoder, Multiplier

        mult = Multiplier(IntDecoder(p["in_shape"]), IntDecoder(p["weight_shape"]))
    acc = _width(p["acc_shape"])
    nf, sf = mh // pe, mw // simd
    a_code, w_code = mult.a.code_shape.width, mult.b.code_shape.width
    a_val, w_val = mult.a.value_shape, mult.b.value_shape
    c = BlockCost("mvu")
    products = pe * simd
    per_product = multiplier_dsps(a_val, w_val, family)
    if per_product:
        c.dsp += products * per_product
    else:
        c.features["mul"] += products * a_val.width * w_val.width
    prod_w = min(a_val.width + w_val.width, acc)
    c.features["add"] += pe * (_adder_tree_bits(simd, prod_w, acc) + acc)
    c.features["mux"] += pe * acc
    if hasattr(mult.a, "fmt"):  # a minifloat decoder: one shifter a lane, shared by the PEs
        c.features["shift"] += simd * a_val.width * mult.a.fmt.exp_bits
    c.features["ctrl"] += _bits(sf) + _bits(nf) + _bits(nf * sf)
    c.features["block"] += 1
    if nf * sf > 1:
        c.add_memory(nf * sf, products * w_code, family, rom=True)
    if nf > 1:
        c.add_memory(sf, simd * a_code, family, rom=False)
    # input word, adder-tree sums, accumulators, output register and its spare (OutputSkid)
    c.ff += simd * a_code + 4 * pe * acc + 8 + _bits(sf) + _bits(nf) + _bits(nf * sf)
    return c


def requant_cost(p: dict, family: str) -> BlockCost:
    from qfab.hw.requant import Requantizer

    block = Requantizer(**p)
    pe, folds = block.pe, block.channels // block.pe
    acc, out = block.acc_shape.width, block.out_shape.width
    lo, hi = block._product_range()
    prod_w = max(abs(lo), abs(hi)).bit_length() + 1
    params, rom_fields = block._params()
    s_max = int(np.max(params["lshift"])) if np.size(params["lshift"]) else 0
    c = BlockCost("requant")
    mults = [int(v) for v in params["mult"].tolist()]
    m_w = max(max(mults).bit_length(), 1) + 1
    if "mult" in rom_fields:
        per = multiplier_dsps(Shape(acc + 1, True), Shape(m_w, True), family)
        if per:
            c.dsp += pe * per
        else:
            c.features["mul"] += pe * (acc + 1) * m_w
    else:
        # A constant multiplier per lane: Yosys still maps a wide one to a DSP; a power of
        # two is a shift.
        lane_mults = mults[:pe] if folds == 1 else [mults[0]] * pe
        for k in lane_mults:
            if k & (k - 1) == 0:
                continue
            per = multiplier_dsps(Shape(acc + 1, True), Shape(k.bit_length(), False), family)
            if per:
                c.dsp += per
            else:
                c.features["add"] += (acc + k.bit_length()) * (bin(k).count("1") - 1)
    tail = max(prod_w - s_max, out)
    c.features["add"] += pe * (acc + 1)     # + bias
    c.features["add"] += pe * tail          # + rounding + zero point
    c.features["cmp"] += 2 * pe * tail      # clamp
    c.features["mux"] += 2 * pe * out
    if "lshift" in rom_fields:
        c.features["mux"] += pe * prod_w * _bits(int(np.max(params["lshift"])) + 1)
    c.features["block"] += 1
    depth, width = block.param_memory
    if depth:
        c.add_memory(depth, width, family, rom=True)
        c.features["ctrl"] += _bits(folds)
        c.ff += _bits(folds)
    c.ff += pe * (acc + prod_w + 2 * out) + 4  # the output and its spare (OutputSkid)
    return c


def threshold_cost(p: dict, family: str) -> BlockCost:
    from qfab.hw.threshold import Thresholder

    block = Thresholder(**p)
    pe, folds, n_thr = block.pe, block.channels // block.pe, block.num_thresholds
    acc, out = block.acc_shape.width, block.out_shape.width
    c = BlockCost("threshold")
    c.features["cmp"] += block.comparators * acc
    c.features["add"] += pe * _adder_tree_bits(n_thr, 1, out)
    c.features["block"] += 1
    depth, width = block.threshold_memory
    if depth:
        c.add_memory(depth, width, family, rom=True)
        c.features["ctrl"] += _bits(folds)
        c.ff += _bits(folds)
    c.ff += pe * (acc + 2 * out) + 3  # the output and its spare (OutputSkid)
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
        c.add_memory(depth, width, family, rom=True)
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
    c.add_memory(depth, width, family, rom=False)
    counters = (_bits(g.out_height) + _bits(g.out_width) + _bits(g.kernel[0])
                + _bits(g.kernel[1]) + _bits(g.beats_per_pixel))
    rows = (g.height + g.pad_top + g.pad_bottom + g.row_slots + 1).bit_length() + 2
    c.features["ctrl"] += (counters + 3 * rows + 2 * _bits(depth)
                           + _bits(g.width * g.beats_per_pixel))
    c.features["mux"] += w.simd * ew
    c.features["cmp"] += 4 * rows
    c.features["block"] += 1
    c.ff += counters + 3 * rows + _bits(depth) + _bits(g.width * g.beats_per_pixel) + 2
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
        c.features["mux"] += n_out * ew * (k - 1)
        c.features["ctrl"] += _bits(k)
    if word != n_in:  # a gather stage: the output register filled slot by slot
        k = word // n_in
        c.ff += word * ew + _bits(k) + 1
        c.features["mux"] += word * ew
        c.features["ctrl"] += _bits(k)
    return c


def maxpool_cost(p: dict, family: str) -> BlockCost:
    window = dict(p)
    window.setdefault("pad_value", -(1 << (_width(p["elem_shape"]) - 1))
                      if Shape.cast(p["elem_shape"]).signed else 0)
    window["depthwise"] = True
    c = window_cost(window, family)
    c.kind = "maxpool"
    ew, simd = _width(p["elem_shape"]), int(p["simd"])
    taps = p["kernel"][0] * p["kernel"][1]
    c.features["cmp"] += simd * ew
    c.features["mux"] += 2 * simd * ew
    c.features["ctrl"] += _bits(taps)
    c.ff += 2 * simd * ew + _bits(taps) + 1
    return c


COSTS = {"mvu": mvu_cost, "requant": requant_cost, "threshold": threshold_cost,
         "minifloat_requant": minifloat_requant_cost,
         "window": window_cost, "widthconv": widthconv_cost, "maxpool": maxpool_cost}


def block_cost(kind: str, params: dict, family: str) -> BlockCost:
    """The structure of one block of ``kind`` with hw/ keyword arguments ``params``."""
    if kind not in COSTS:
        raise ValueError(f"no cost model for block kind {kind!r}")
    return COSTS[kind](params, family)
