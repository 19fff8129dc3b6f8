# amaranth: UnusedElaboratable=no
"""Per-block resource features, read from a plan's ``BlockSpec`` without building hardware:
:func:`block_cost` of a block's kind and keyword arguments. The features are
:mod:`qfab.cost_model.features`'; the matrix-vector units' structure is in
:mod:`qfab.cost_model.matrix_costs`, the requantizers' and thresholders' in
:mod:`qfab.cost_model.requant_costs`.

The LUT total is a weighted sum of the features, with one weight per feature and family,
fitted against Yosys by :mod:`qfab.cost_model.calibrate` (``constants.py``).
"""

from __future__ import annotations

import math

from amaranth.hdl import Shape
from qfab.cost_model.dsp import multiplier_dsps
from qfab.cost_model.features import (
    LUT_FEATURES,
    BlockCost,
    _bits,
    _low_zeros,
    _width,
)
from qfab.cost_model.matrix_costs import (
    cmvm_cost,
    depthwise_cost,
    mvu_cost,
    unrolled_cost,
)
from qfab.cost_model.memory import READ_FIRST_EMULATED, mux_luts
from qfab.cost_model.requant_costs import minifloat_requant_cost, requant_cost, threshold_cost

__all__ = ["LUT_FEATURES", "BlockCost", "block_cost", "COSTS"]


def window_cost(p: dict, family: str) -> BlockCost:
    from qfab.hw.window import SlidingWindow

    w = SlidingWindow(**p)
    g = w.geometry
    ew = _width(w.elem_shape)
    c = BlockCost("window")
    depth, width = w.line_buffer
    for port in range(w.taps):  # a copy a read port (Yosys's mapping of extra read ports;
        # a copy's read register adds no FFs in Yosys: 3 ports +2 FFs on xilinx7, +4 on ice40)
        c.add_memory(depth, width, family, rom=False, registered_read=port == 0,
                     no_rw_check=w.registered_read)
    counters = (_bits(g.out_height) + _bits(g.out_width) + _bits(g.kernel[0])
                + _bits(g.kernel[1]) + _bits(g.beats_per_pixel))
    rows = (g.height + g.pad_top + g.pad_bottom + g.row_slots + 1).bit_length() + 2
    ix_w = (g.width + g.pad_left + g.pad_right).bit_length() + 1
    need = g.height.bit_length()
    # the reader's row and column origins, the rows its output row needs and the rows
    # written ahead: registers following the counters (each an adder, the rows needed two
    # compares with constants and a choice of three)
    origins = 2 * rows + ix_w + need
    c.features["ctrl"] += (counters + 3 * rows + 2 * _bits(depth)
                           + _bits(g.width * g.beats_per_pixel) + 2 * rows + ix_w)
    c.features["mux"] += w.simd * w.taps * ew + 2 * need
    c.features["cmp"] += 4 * rows + 2 * (w.taps - 1) * ix_w  # further ports' column checks
    c.features["cmpk"] += 2 * rows
    c.features["block"] += 1
    c.ff += (counters + 3 * rows + _bits(depth) + _bits(g.width * g.beats_per_pixel) + 1
             + w.taps + origins)
    if w.registered_ready:
        # two flags (hw/_window_flags.py) instead of the written and released counters and
        # the rows needed; their eight tables indexed by the output row and the compares
        # with them come to some 10 LUTs a bit of that row, less the logic they replace
        # (synth_ecp5 on windows 8 to 128 rows high: within 15 LUTs)
        c.ff += 2 - 2 * rows - need
        # and the reader's counters' carries (a flag a counter whose carry is not always
        # set: hw/_window_flags.py StepFlags) and "the step ends the image"
        kh, kw = g.kernel
        counts = [g.beats_per_pixel, kw // g.taps, kh]
        if w.depthwise:
            counts = counts[1:] + counts[:1]
        c.ff += sum(math.prod([*counts, g.out_width][:k + 1]) > 1 for k in range(4)) + 1
        c.table_lut += max(0, 10 * _bits(g.out_height) - 20)
    if w.registered_read:  # the words read, their pad flags and valid bit, a register more
        c.ff += w.taps * width + w.taps + 1
    # Read address: slot * row_beats + ix * beats_per_pixel (+ the channel fold); Yosys maps
    # a multiply by a constant that is no power of two like any other (a DSP on ECP5).
    row_beats = g.width * g.beats_per_pixel
    for var, k in ((Shape(_bits(g.row_slots), False), row_beats),
                   (Shape(ix_w, True), g.beats_per_pixel)):
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


def pool_cost(p: dict, family: str, kind: str, acc_width: int, reduce: str,
              select_width: int) -> BlockCost:
    """A pool (``kind``): its sliding window in depthwise order, then a lane a channel that
    folds the taps into an ``acc_width``-bit register by ``reduce`` (the feature of its
    comparator or adder) and a ``select_width``-bit multiplexer (restarting at a window's
    first tap), and the tap counter; with ``registered_taps``, a register (and a spare)
    between the window and the lanes."""
    ew, simd = _width(p["elem_shape"]), int(p["simd"])
    taps = p["kernel"][0] * p["kernel"][1]
    c = window_cost({k: v for k, v in p.items() if k != "registered_taps"} | {"depthwise": True},
                    family)
    c.kind = kind
    c.features[reduce] += simd * acc_width
    if select_width:
        c.features["mux"] += simd * select_width
    c.features["ctrl"] += _bits(taps)
    c.ff += 2 * simd * acc_width + _bits(taps) + 1  # running values and the output register
    c.ff += 2 * (simd * ew + 1) if p.get("registered_taps") else 0
    return c


def maxpool_cost(p: dict, family: str) -> BlockCost:
    """A running maximum a lane: Mux(first | (x > acc), x, acc), padded with the lowest code
    unless ``pad_value`` says otherwise."""
    shape = Shape.cast(p["elem_shape"])
    ew = _width(shape)
    # On 7-series, with x = Mux(pad, pad_value, data): five inputs a bit, one LUT6 for both
    # multiplexers (the window's pad select is counted already).
    return pool_cost({"pad_value": -(1 << (ew - 1)) if shape.signed else 0} | p, family,
                     "maxpool", ew, "cmp", 0 if family == "xilinx7" else ew)


def avgpool_cost(p: dict, family: str) -> BlockCost:
    """A running sum a lane, as wide as a window's sum: Mux(first, 0, acc) + x."""
    from qfab.hw.pool import sum_shape

    taps = p["kernel"][0] * p["kernel"][1]
    sw = sum_shape(Shape.cast(p["elem_shape"]), taps).width
    return pool_cost(p, family, "avgpool", sw, "add", sw)


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


def slice_cost(p: dict, family: str) -> BlockCost:
    """A register slice (hw/slice.py): the output register and its spare, a multiplexer a
    bit choosing between the spare and the input, two valid bits."""
    width = Shape.cast(p["elem_shape"]).width * int(p["n"])
    c = BlockCost("slice")
    c.features["mux"] += width
    c.features["block"] += 1
    c.ff += 2 * width + 2
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


def activity_cost(p: dict, family: str) -> BlockCost:
    """A stage's activity counters (the accelerator's, compiler/backend/accelerator.py): the
    positions of its input and output beats (none for one beat) and an 8-bit count of
    inferences started and not finished (``stage``: it adds one and subtracts one)."""
    counters = sum(_bits(int(p[k])) for k in ("in_beats", "out_beats"))
    c = BlockCost("activity")
    c.features["ctrl"] += counters
    c.features["stage"] += 1
    c.ff += counters + 8
    return c


COSTS = {"mvu": mvu_cost, "activity": activity_cost, "cmvm": cmvm_cost, "unrolled": unrolled_cost,
         "depthwise": depthwise_cost, "requant": requant_cost,
         "threshold": threshold_cost, "minifloat_requant": minifloat_requant_cost,
         "window": window_cost, "widthconv": widthconv_cost, "maxpool": maxpool_cost,
         "avgpool": avgpool_cost, "globalavgpool": globalavgpool_cost, "add": add_cost,
         "fifo": fifo_cost, "slice": slice_cost, "concat": concat_cost,
         "select": select_cost, "upsample": upsample_cost}


def block_cost(kind: str, params: dict, family: str) -> BlockCost:
    """The structure of one block of ``kind`` with hw/ keyword arguments ``params``."""
    if kind not in COSTS:
        raise ValueError(f"no cost model for block kind {kind!r}")
    return COSTS[kind](params, family)
