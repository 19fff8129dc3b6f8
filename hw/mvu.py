"""Matrix-vector unit: ``y = W @ x`` over a stream of vectors, FINN-style folded.

``W`` is ``[MH, MW]``. ``PE`` output channels are computed in parallel (each a processing
element) and ``SIMD`` input elements are multiplied per PE per cycle, so one vector takes
``NF = MH / PE`` neuron folds of ``SF = MW / SIMD`` synapse folds: ``NF * SF`` cycles.

With more than one neuron fold, the input beats are written to a buffer that the other
folds replay, and the first fold steps over each word as it arrives. The buffer holds one
vector, taken in the first fold only (so the stage before the unit waits during the
others), or, double-buffered, two (two banks of ``SF`` words; the buffer reads the word
written in the same cycle): the next vector streams into the other bank while this one is
computed, and the input waits only when both banks hold vectors not yet computed. A
continuous stream of vectors runs at exactly ``NF * SF`` cycles per vector.

A step's SIMD products are summed in a tree into a register, then accumulated. With
``pipelined``, every step also goes through registers for its operands, its products and
its adder tree every ``TREE_LEVELS_PER_STAGE`` levels, so no path crosses a memory read and a
multiplier, or a multiplier and more than two adders (:func:`mvu_latency`), for clocks of
150 MHz on ECP5.
Input ``ready`` comes from registers only (an output register whose spare slot is the
accumulators, :class:`~qfab.hw._skid.HeldResultOutput`, or the buffer's count of vectors),
so chained blocks do not form one long ``ready`` path.

A lane (a PE at SIMD 1) is a multiplier, a product register, an accumulator and an output
word, and little more: the accumulator restarts by its flip-flops' synchronous reset, and the
sum held for a full output register is the accumulator adding zero, which 7-series packs
into the carry chain's LUT (``bench/mac_lane.py`` sets it beside a bare ``acc += a * b``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from amaranth.hdl import Const, Module, Mux, ResetSignal, Shape, Signal, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from qfab.hw._checks import check_shape
from qfab.hw._mvu_input import input_side
from qfab.hw._skid import HeldResultOutput
from qfab.hw._weight_rom import read_weights
from qfab.hw.multipliers import IntDecoder, Multiplier, lut_product_bits, lut_product_terms

__all__ = ["MatrixVectorUnit", "mvu_model", "dot_product_bounds", "mvu_latency",
           "mvu_block_latency"]

# Adder levels between two registers of a PE's tree: two carry chains fit a 150 MHz cycle
# on ECP5 (speed grade 6) with the routing between them.
TREE_LEVELS_PER_STAGE = 2
# With products in LUTs, a register after every level: Yosys's alumacc merges the adders
# between two registers into one multi-operand sum, which maccmap builds as full adders in
# LUTs (three times the LUTs, and 100 MHz on ECP5 for the digits CNN's conv2 at two levels
# a stage), while one level a stage stays one carry chain.
LUT_TREE_LEVELS_PER_STAGE = 1


def mvu_latency(simd: int, pipelined: bool = False, lut_bits: int = 0) -> int:
    """Cycles from a step of the folding counters to its sum leaving, for the last step of a
    vector its output beat: the memories' read, the SIMD products' sum, the output register;
    ``pipelined``, the operand and product registers too and one every
    ``TREE_LEVELS_PER_STAGE`` levels of the adder tree (and after its last). With products
    in LUTs (``lut_bits`` partial products each, :func:`lut_product_terms`), the tree sums
    every partial product and there is no product register."""
    if not pipelined:
        return 3
    if lut_bits:
        levels = (simd * lut_bits - 1).bit_length()
        return 3 + -(-levels // LUT_TREE_LEVELS_PER_STAGE)
    levels = (simd - 1).bit_length()
    return 4 + -(-levels // TREE_LEVELS_PER_STAGE)


def mvu_block_latency(*, simd: int, pipelined: bool = False, lut_products: bool = False,
                      multiplier: Multiplier | None = None, in_shape: Any = None,
                      weight_shape: Any = None, **_: Any) -> int:
    """:func:`mvu_latency` of the unit a block's keyword arguments build (the cycle models
    read it)."""
    if multiplier is None and lut_products:
        multiplier = Multiplier(IntDecoder(in_shape), IntDecoder(weight_shape))
    bits = lut_product_bits(multiplier) if lut_products and pipelined else 0
    return mvu_latency(simd, pipelined, bits)


def _positive_int(name: str, value: Any) -> int:
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, not {value!r}")
    return int(value)


def _abs_max(a: np.ndarray) -> int:
    if a.dtype == object:
        return max((abs(int(v)) for v in a.flat), default=0)
    return int(np.abs(a).max(initial=0))


def mvu_model(weights: np.ndarray, vectors: np.ndarray,
              multiplier: Multiplier | None = None) -> np.ndarray:
    """What the unit computes: ``decode(vectors) @ decode(weights).T``.

    ``vectors`` is ``[..., MW]`` (codes of the streamed operand), ``weights`` ``[MH, MW]``
    (codes of the stored operand); the result ``[..., MH]`` counts units of
    ``2**multiplier.lsb_exponent``. Without a multiplier, codes are plain integers. The result
    is int64, or Python ints in an object array when sums may leave int64 (wide minifloats).
    """
    w = np.asarray(weights, dtype=np.int64)
    x = np.asarray(vectors, dtype=np.int64)
    if multiplier is not None:
        w = multiplier.b.model(w)
        x = multiplier.a.model(x)
    if _abs_max(w) * _abs_max(x) * max(w.shape[1], 1) >= 1 << 62:
        return np.asarray(x).astype(object) @ np.asarray(w).astype(object).T
    return x @ w.T


def dot_product_bounds(weights: np.ndarray, multiplier: Multiplier) -> tuple[int, int]:
    """Exact range of every row's dot product over all input codes (partial sums included).

    Each term's range contains 0 when the input range does, so partial sums stay inside the
    full sum's range; an accumulator sized for these bounds never overflows.
    """
    w = multiplier.b.model(np.asarray(weights, dtype=np.int64)).astype(object)
    a_lo, a_hi = multiplier.a.value_min, multiplier.a.value_max
    lo_terms = np.minimum(w * a_lo, w * a_hi)
    hi_terms = np.maximum(w * a_lo, w * a_hi)
    lo = min(0, min(int(v) for v in lo_terms.sum(axis=1)))
    hi = max(0, max(int(v) for v in hi_terms.sum(axis=1)))
    return lo, hi


class MatrixVectorUnit(wiring.Component):
    """Folded matrix-vector multiply of a vector stream by a constant matrix.

    Parameters
    ----------
    weights : ndarray of int, shape [MH, MW]
        Weight codes (plain integers unless ``multiplier`` says otherwise), zero points
        already subtracted.
    in_shape : ShapeLike
        Shape of one input element. May be omitted when ``multiplier`` is given.
    weight_shape : ShapeLike
        Shape of one stored weight. May be omitted when ``multiplier`` is given.
    acc_shape : ShapeLike
        Accumulator shape; must hold every dot product (the compiler's range analysis, or
        :func:`dot_product_bounds`). Arithmetic wraps modulo its width, so an accumulator
        that holds the final sums gives exact results.
    pe : int
        Output channels per cycle; divides MH.
    simd : int
        Input elements per cycle; divides MW.
    multiplier : Multiplier, optional
        Operand decoders (minifloat, fixed point, bipolar); default plain integers.
    pipelined : bool
        Register the operands, the products and the adder tree (:func:`mvu_latency`).
    double_buffered : bool
        Buffer two input vectors, so the next streams in while this one is computed;
        otherwise the input is taken in the first neuron fold only.
    lut_products : bool
        With ``pipelined`` and plain integer operands: no multiplier (a DSP), but each
        product's partial products (:func:`lut_product_terms`) summed by the adder tree in
        LUTs, registered as pipelined; ignored for other operands.
    weight_lanes : bool
        The weight memory as one memory a lane (a PE's SIMD element), each read from its
        own copy of the address register (:func:`~qfab.hw._weight_rom.read_weights`): for
        a memory built in logic, a short read; the same cycles.

    Members
    -------
    i_stream : In(stream.Signature(ArrayLayout(in_shape, simd)))
        MW / SIMD beats per vector, elements in order.
    o_stream : Out(stream.Signature(ArrayLayout(acc_shape, pe)))
        MH / PE beats per vector, channels in order.
    """

    def __init__(self, *, weights: np.ndarray, in_shape: Any = None, weight_shape: Any = None,
                 acc_shape: Any, pe: int, simd: int, multiplier: Multiplier | None = None,
                 pipelined: bool = False, double_buffered: bool = False,
                 lut_products: bool = False, weight_lanes: bool = False):
        w = np.asarray(weights)
        if w.ndim != 2 or w.size == 0:
            raise ValueError(f"weights must be a non-empty [MH, MW] matrix, not shape {w.shape}")
        mh, mw = w.shape
        self._pe = _positive_int("pe", pe)
        self._simd = _positive_int("simd", simd)
        if mh % self._pe:
            raise ValueError(f"pe {pe} does not divide MH {mh}")
        if mw % self._simd:
            raise ValueError(f"simd {simd} does not divide MW {mw}")
        if multiplier is None:
            if in_shape is None or weight_shape is None:
                raise ValueError("in_shape and weight_shape are required without a multiplier")
            multiplier = Multiplier(IntDecoder(check_shape("in_shape", in_shape)),
                                    IntDecoder(check_shape("weight_shape", weight_shape)))
        elif not isinstance(multiplier, Multiplier):
            raise ValueError(f"multiplier must be a Multiplier, not {multiplier!r}")
        for name, given, dec in (("in_shape", in_shape, multiplier.a),
                                 ("weight_shape", weight_shape, multiplier.b)):
            if given is not None and check_shape(name, given) != dec.code_shape:
                raise ValueError(f"{name} {given!r} is not the multiplier's code shape "
                                 f"{dec.code_shape!r}")
        self._multiplier = multiplier
        self._weights = multiplier.b.check_codes(w, "weight")
        self._weights.setflags(write=False)
        self._acc_shape = check_shape("acc_shape", acc_shape)
        self._mh, self._mw = mh, mw
        self._pipelined = bool(pipelined)
        self._double_buffered = bool(double_buffered)
        self._weight_lanes = bool(weight_lanes)
        self._lut_bits = lut_product_bits(multiplier) \
            if lut_products and self._pipelined else 0
        super().__init__({
            "i_stream": In(stream.Signature(data.ArrayLayout(self.in_shape, self._simd))),
            "o_stream": Out(stream.Signature(data.ArrayLayout(self._acc_shape, self._pe))),
        })

    @property
    def weights(self) -> np.ndarray:
        return self._weights

    @property
    def multiplier(self) -> Multiplier:
        return self._multiplier

    @property
    def in_shape(self) -> Shape:
        return self._multiplier.a.code_shape

    @property
    def weight_shape(self) -> Shape:
        return self._multiplier.b.code_shape

    @property
    def acc_shape(self) -> Shape:
        return self._acc_shape

    @property
    def mh(self) -> int:
        return self._mh

    @property
    def mw(self) -> int:
        return self._mw

    @property
    def pe(self) -> int:
        return self._pe

    @property
    def simd(self) -> int:
        return self._simd

    @property
    def neuron_folds(self) -> int:
        """NF = MH / PE: output beats per vector."""
        return self._mh // self._pe

    @property
    def synapse_folds(self) -> int:
        """SF = MW / SIMD: input beats per vector, and cycles per output beat."""
        return self._mw // self._simd

    @property
    def cycles_per_vector(self) -> int:
        """Initiation interval of a vector at steady state without back-pressure."""
        return self.neuron_folds * self.synapse_folds

    @property
    def initiation_interval(self) -> int:
        return self.cycles_per_vector

    @property
    def latency(self) -> int:
        """Cycles from the last input beat of a vector to its first output beat (no stalls)."""
        return mvu_latency(self._simd, self._pipelined, self._lut_bits)

    @property
    def lut_products(self) -> bool:
        """Whether the products are partial products summed in LUTs."""
        return bool(self._lut_bits)

    @property
    def pipelined(self) -> bool:
        return self._pipelined

    @property
    def double_buffered(self) -> bool:
        return self._double_buffered

    @property
    def weight_lanes(self) -> bool:
        return self._weight_lanes

    def cycles(self, vectors: int) -> int:
        """Cycles from the first input beat to the last output beat, both included, for a
        continuous run of ``vectors`` vectors without back-pressure."""
        return vectors * self.cycles_per_vector + self.latency

    @property
    def multiplier_count(self) -> int:
        """Products formed per cycle: PE x SIMD."""
        return self._pe * self._simd

    @property
    def weight_memory(self) -> tuple[int, int]:
        """(depth, width in bits) of the weight ROM: NF x SF words of PE x SIMD weights."""
        return self.cycles_per_vector, self._pe * self._simd * self.weight_shape.width

    @property
    def input_buffer(self) -> tuple[int, int]:
        """(depth, width in bits) of the input replay buffer (two vectors when double
        buffered); depth 0 when NF is 1."""
        banks = 2 if self._double_buffered else 1
        depth = banks * self.synapse_folds if self.neuron_folds > 1 else 0
        return depth, self._simd * self.in_shape.width

    def model(self, vectors: np.ndarray) -> np.ndarray:
        """Exact results for ``vectors`` ``[..., MW]``: ``[..., MH]`` int64."""
        return mvu_model(self._weights, vectors, self._multiplier)

    def _weight_words(self) -> np.ndarray:
        """The weight ROM's words [NF x SF, PE, SIMD], neuron fold major."""
        w = self._weights.reshape(self.neuron_folds, self._pe, self.synapse_folds, self._simd)
        return w.transpose(0, 2, 1, 3).reshape(-1, self._pe, self._simd)

    def _terms(self, m: Module, x: Any, w: Any) -> list:
        """One PE's SIMD terms of a synapse fold (products of inputs ``x`` and weights
        ``w``), which its adder tree sums."""
        if self._lut_bits:
            return [t for s in range(self._simd)
                    for t in lut_product_terms(x[s], w[s], self.in_shape, self.weight_shape)]
        return [self._multiplier.product(m, x[s], w[s]) for s in range(self._simd)]

    def _result(self, total: Any) -> Any:
        """The output of a PE from its sum over every synapse fold."""
        return total

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        nf_count, sf_count = self.neuron_folds, self.synapse_folds
        pe = self._pe
        o_layout = data.ArrayLayout(self._acc_shape, pe)
        out = HeldResultOutput(m, self.o_stream)
        advance = out.advance
        pipelined = self._pipelined

        def enable(name: str, p: int) -> Any:
            """``advance`` for PE ``p``'s registers of a stage: pipelined, from a copy of
            ``held`` of their own (a few hundred enables, not the unit's thousands)."""
            return ~out.held_copy(f"held_{name}_{p}") if pipelined else advance

        sf = Signal(range(sf_count))
        nf = Signal(range(nf_count))
        fire, x1 = input_side(m, self.i_stream, data.ArrayLayout(self.in_shape, self._simd),
                              advance, sf, nf, neuron_folds=nf_count, synapse_folds=sf_count,
                              pipelined=self._pipelined, double_buffered=self._double_buffered)
        w_data = read_weights(m, self._weight_words(), self.weight_shape,
                              enables=[enable("weights", p)
                                       for p in range(pe if self._weight_lanes else 1)],
                              step=fire, lanes=self._weight_lanes)
        with m.If(fire):
            m.d.sync += sf.eq(sf + 1)
            with m.If(sf == sf_count - 1):
                m.d.sync += sf.eq(0)
                m.d.sync += nf.eq(nf + 1)
                with m.If(nf == nf_count - 1):
                    m.d.sync += nf.eq(0)

        # Stage 1 is the memories' read registers. Every stage after it is a register
        # moving on ``advance``, carrying a step's valid and last-fold flags.
        # (``done``: valid and last, one flip-flop for the accumulators' restart)
        flags = [Signal(name="valid1"), Signal(name="done1")]
        with m.If(advance):
            m.d.sync += [flags[0].eq(fire), flags[1].eq(fire & (sf == sf_count - 1))]

        def register(values: list, name: str, kept: list[bool] | None = None) -> list:
            """A stage of registers taking ``values``, PE by PE (as many each); ``kept``:
            which are copies that synthesis must not merge."""
            nonlocal flags
            regs = [Signal(v.shape() if isinstance(v, data.View) else Value.cast(v).shape(),
                           name=f"{name}{k}", reset_less=pipelined,
                           attrs={"keep": 1} if kept and kept[k] else None)
                    for k, v in enumerate(values)]
            moved = [Signal(name=f"{f.name}_{name}") for f in flags]
            with m.If(advance):
                m.d.sync += [g.eq(f) for g, f in zip(moved, flags, strict=True)]
            n = len(values) // pe
            for p in range(pe):
                with m.If(enable(name, p)):
                    m.d.sync += [regs[k].eq(values[k]) for k in range(p * n, (p + 1) * n)]
            flags = moved
            return regs

        # pipelined: operands, then products, registered (off the memories' and the
        # multipliers' paths); else one register after the adder tree. Each PE registers
        # its own copy of the input word: one register would drive every PE's products
        # (with products in LUTs, each of its bits some ten LUTs a PE), and its routes
        # across the PEs set the clock. ``keep``: synthesis would merge the copies.
        if pipelined:
            operands = register([v for p in range(pe) for v in (w_data[p], x1)], "operand",
                                kept=[pe > 1 and k % 2 == 1 for k in range(2 * pe)])
            w2, xs = operands[0::2], operands[1::2]
        else:
            w2, xs = w_data, [x1] * pe
        # (the decoders add comb logic: built outside any m.If, so it is not gated)
        terms = [t for p in range(pe) for t in self._terms(m, xs[p], w2[p])]
        if pipelined and not self._lut_bits:
            terms = register(terms, "term")
        n = len(terms) // pe
        sums = self._trees([terms[p * n:(p + 1) * n] for p in range(pe)], register)

        # last stage: accumulate over synapse folds; the last one goes to the output register
        valid, done = flags
        # The accumulators restart from zero when their sum leaves for the output register:
        # the flip-flops' synchronous reset (the domain's reset folded in, as they have
        # one), not a multiplexer in front of every adder. A sum the full output register
        # cannot take stays in its accumulator, which adds zero to itself until it leaves.
        accs = [Signal(self._acc_shape, name=f"acc{p}", reset_less=True) for p in range(pe)]
        totals = [Signal(self._acc_shape, name=f"total{p}") for p in range(pe)]
        # the added term as wide as the accumulator, so that Yosys carries the accumulator
        # into the carry chain and the zeroing costs no LUT on 7-series
        adds = [Signal(self._acc_shape, name=f"add{p}") for p in range(pe)]
        helds = [out.held_copy(f"held_acc_{p}") if pipelined else out.held for p in range(pe)]
        m.d.comb += [adds[p].eq(Mux(helds[p], Const(0, self._acc_shape), sums[p]))
                     for p in range(pe)]
        m.d.comb += [totals[p].eq(accs[p] + adds[p]) for p in range(pe)]
        result = Signal(o_layout)
        m.d.comb += [result[p].eq(self._result(totals[p])) for p in range(pe)]
        taken = out.push(done, result)
        for p in range(pe):
            # the result leaves (the output register takes it, held or new): restart
            with m.If(ResetSignal() | (taken & (helds[p] | done))):
                m.d.sync += accs[p].eq(0)
            with m.Elif(~helds[p] & valid):
                m.d.sync += accs[p].eq(totals[p])
        return m

    def _trees(self, terms: list, register: Any) -> list:
        """Each PE's terms added pairwise, level by level, into a register (one sum a PE);
        pipelined, a register after every ``TREE_LEVELS_PER_STAGE`` levels too."""
        # Sums wrap modulo the accumulator width: exact whenever the true sum fits.
        width = self._acc_shape.width
        trees = [[t if len(t) <= width else t[:width] for t in ts] for ts in terms]
        level = 0
        per_stage = LUT_TREE_LEVELS_PER_STAGE if self._lut_bits else TREE_LEVELS_PER_STAGE
        while len(trees[0]) > 1:
            trees = [[_wrap(ts[i] + ts[i + 1], width) for i in range(0, len(ts) - 1, 2)]
                     + ([ts[-1]] if len(ts) % 2 else []) for ts in trees]
            level += 1
            if len(trees[0]) == 1 or (self._pipelined and level % per_stage == 0):
                flat = register([t for ts in trees for t in ts], "s")
                n = len(trees[0])
                trees = [flat[p * n:(p + 1) * n] for p in range(len(trees))]
        if level == 0 and not self._pipelined:  # one term: its register is the sum's
            return register([ts[0] for ts in trees], "s")
        return [ts[0] for ts in trees]


def _wrap(value: Any, width: int) -> Any:
    return value if len(value) <= width else value[:width]
