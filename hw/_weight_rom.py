"""A matrix-vector unit's weight memory and its address counter.

The weights of one fold step (``pe x simd`` codes) are one word, read in the cycle the
folding counters step. As one memory, every weight bit is a function of the one address
register: where Yosys builds the memory in logic (a few dozen words), each address bit then
reaches a LUT or more for every weight bit (a thousand and more for the digits CNN's conv2),
and the address's own increment (a carry chain) is shared into that logic, so the read
routes far. With ``lanes`` each lane (a PE's SIMD element) has its own memory and its own
copy of the address register, which synthesis must keep apart (``keep``): a copy drives
its lane's few LUTs, and the counter's arithmetic ends at the copies' inputs. The words,
the read's cycle and the memory's contents are the same either way.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data
from amaranth.lib.memory import Memory
from qfab.hw._rom import rom_words

__all__ = ["read_weights"]


def read_weights(m: Module, words: np.ndarray, elem_shape: Any, *, enables: list, step: Any,
                 lanes: bool = False) -> data.View:
    """The weight word read at address ``addr``, registered when ``enables[p]`` for PE
    ``p``'s weights (a synchronous read; as one memory, when ``enables[0]``): ``addr`` steps
    by one when ``step``, from the last word back to 0 (a flip-flop says it is there, so
    no compare lies on the way to the address).

    ``words`` is [depth, pe, simd] codes of ``elem_shape``; the result is a view of
    ``ArrayLayout(ArrayLayout(elem_shape, simd), pe)``.
    """
    depth, pe, simd = words.shape
    layout = data.ArrayLayout(data.ArrayLayout(elem_shape, simd), pe)
    # (kept too: else synthesis merges it into a copy, whose memory then gets its increment)
    addr = Signal(range(depth), name="addr", attrs={"keep": 1} if lanes else None)
    following = Signal(range(depth), name="addr_next")
    at_end = Signal(init=depth == 1, name="addr_at_end")
    m.d.comb += following.eq(Mux(step, Mux(at_end, 0, addr + 1), addr))
    m.d.sync += [addr.eq(following), at_end.eq(following == depth - 1)]
    if not lanes:
        m.submodules.weight_mem = mem = Memory(shape=layout.size, depth=depth,
                                               init=rom_words(layout, words))
        rd = mem.read_port(domain="sync")
        m.d.comb += [rd.addr.eq(addr), rd.en.eq(enables[0])]
        return layout(rd.data)
    pe_layout = data.ArrayLayout(elem_shape, simd)
    word = Signal(layout)
    for p in range(pe):
        pe_addr = Signal(range(depth), name=f"addr_{p}", attrs={"keep": 1})
        m.d.sync += pe_addr.eq(following)
        mem = Memory(shape=pe_layout.size, depth=depth, init=rom_words(pe_layout, words[:, p]))
        m.submodules[f"weight_mem_{p}"] = mem
        rd = mem.read_port(domain="sync")
        m.d.comb += [rd.addr.eq(pe_addr), rd.en.eq(enables[p]), word[p].eq(rd.data)]
    return word
