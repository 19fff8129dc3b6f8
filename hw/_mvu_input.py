"""A matrix-vector unit's input side: the input stream into the word each step of its
folding counters multiplies, straight through with one neuron fold, else through a buffer
that the neuron folds replay (:class:`~qfab.hw.mvu.MatrixVectorUnit` describes the two
buffers)."""

from __future__ import annotations

from typing import Any

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data
from amaranth.lib.memory import Memory

__all__ = ["input_side"]


def input_side(m: Module, i_s: Any, in_layout: data.ArrayLayout, advance: Any, sf: Any,
               nf: Any, *, neuron_folds: int, synapse_folds: int, pipelined: bool,
               double_buffered: bool) -> tuple:
    """The input stream into the stage-1 word of each step: ``(fire, x1)``, ``fire``
    the step of the folding counters. With one neuron fold the word goes straight
    through; with more, it is written to a buffer that the folds replay: of one vector,
    taken in the first fold, or double-buffered, of two vectors (two banks), so the next
    vector streams in while this one is computed."""
    nf_count, sf_count = neuron_folds, synapse_folds
    fire = Signal()
    x1 = Signal(in_layout)
    if nf_count == 1:
        m.d.comb += [i_s.ready.eq(advance), fire.eq(advance & i_s.valid)]
        with m.If(advance):
            m.d.sync += x1.eq(i_s.payload)
        return fire, x1
    if not double_buffered:
        # one vector: taken in the first fold only, replayed in the others
        m.submodules.input_buffer = x_mem = Memory(shape=in_layout, depth=sf_count,
                                                   init=[])
        x_wr = x_mem.write_port()
        x_rd = x_mem.read_port(domain="sync")
        delayed = pipelined and sf_count > 1
        first_fold = Signal(init=delayed)
        replay, x_direct = Signal(), Signal(in_layout)
        m.d.comb += [
            i_s.ready.eq(advance & first_fold),
            fire.eq(advance & (~first_fold | i_s.valid)),
            x_rd.addr.eq(sf), x_rd.en.eq(advance),
            x1.eq(Mux(replay, x_rd.data, x_direct)),
        ]
        with m.If(advance):
            m.d.sync += [replay.eq(~first_fold), x_direct.eq(i_s.payload)]
        if delayed:
            # A flip-flop says "first fold", and a word is written the cycle after it is
            # taken (from ``x_direct``, which holds it): no path from the handshake
            # into the buffer's write enable, which every word of it takes. The other
            # folds read a word a cycle after the first fold's last at the earliest.
            with m.If(fire & (sf == sf_count - 1)):
                m.d.sync += first_fold.eq(nf == nf_count - 1)
            taken, taken_at = Signal(), Signal.like(sf)
            m.d.sync += [taken.eq(i_s.valid & i_s.ready), taken_at.eq(sf)]
            m.d.comb += [x_wr.addr.eq(taken_at), x_wr.data.eq(x_direct),
                         x_wr.en.eq(taken)]
        else:
            m.d.comb += [first_fold.eq(nf == 0), x_wr.addr.eq(sf),
                         x_wr.data.eq(i_s.payload), x_wr.en.eq(i_s.valid & i_s.ready)]
        return fire, x1
    m.submodules.input_buffer = x_mem = Memory(shape=in_layout, depth=2 * sf_count,
                                               init=[])
    x_wr = x_mem.write_port()
    # transparent: the first fold reads the word written in the same cycle
    x_rd = x_mem.read_port(domain="sync", transparent_for=(x_wr,))
    w_addr = Signal(range(sf_count))
    w_bank, r_bank = Signal(), Signal()
    # vectors written minus vectors computed: 2 is both banks full
    lag = Signal(range(3))
    taken, written, computed = Signal(), Signal(), Signal()
    m.d.comb += [
        i_s.ready.eq(lag != 2),
        taken.eq(i_s.valid & i_s.ready),
        written.eq(taken & (w_addr == sf_count - 1)),
        # with lag 0 the vector is being written: step over words already written or
        # the one arriving now
        fire.eq(advance & ((lag != 0) | i_s.valid | (sf != w_addr))),
        computed.eq(fire & (sf == sf_count - 1) & (nf == nf_count - 1)),
        x_wr.addr.eq(Mux(w_bank, w_addr + sf_count, w_addr)),
        x_wr.data.eq(i_s.payload), x_wr.en.eq(taken),
        x_rd.addr.eq(Mux(r_bank, sf + sf_count, sf)), x_rd.en.eq(advance),
        x1.eq(x_rd.data),
    ]
    with m.If(taken):
        m.d.sync += w_addr.eq(Mux(w_addr == sf_count - 1, 0, w_addr + 1))
    with m.If(written):
        m.d.sync += w_bank.eq(~w_bank)
    with m.If(computed):
        m.d.sync += r_bank.eq(~r_bank)
    m.d.sync += lag.eq(lag + written - computed)
    return fire, x1
