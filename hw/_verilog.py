"""Amaranth's Verilog conversion with two of its steps done faster, to the same result.

Profiled on the large designs (a ResNet-8-sized model, the jet tagger fully unrolled), two
steps of ``amaranth.back.verilog.convert`` cost a third to a half of the time, both bit by bit:

- the combinational-cycle check walks every net, and each output bit of an adder or a
  multiplier again through all of its input bits (millions of edges for 4,000 adders);
- a memory's initial contents are written one ``Net`` object a bit (a million for ResNet-8's
  weights).

Here the cycle check first looks at cells instead of bits: every bit edge maps to an edge
between the cells driving its ends, so a design whose cell graph has no cycle has no bit cycle
either. Only when the cell graph has one (or a cell reads its own output) does Amaranth's own
check run, and it decides and words the error. The memory contents are written as one binary
constant, the text Amaranth's ``sigspec`` gives for an all-constant value. Both are swapped in
only for the conversion (Amaranth 0.5, as pyproject pins) and tests compare the output with
Amaranth's own, character for character. Amaranth's built-in Yosys, which writes the Verilog,
runs in this process (:mod:`qfab.hw._yosys`: a fifth of a small design's conversion was
starting it).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from amaranth._toolchain.yosys import _BuiltinYosys
from amaranth.back import rtlil
from amaranth.back import verilog as amaranth_verilog
from amaranth.hdl import _ast, _nir
from qfab.hw import _yosys

_ORIGINAL_CHECK = _nir.Netlist.check_comb_cycles
_ORIGINAL_EMIT_MEMORY = rtlil.ModuleEmitter.emit_memory


class _AliasLoop(Exception):
    """Signals assigned to one another in a ring: a cycle with no cell on it."""


def _cell_sources(netlist: _nir.Netlist, index: int, cell: Any) -> set[int]:
    """The cells whose outputs ``cell``'s outputs depend on combinationally (a superset)."""
    connections = netlist.connections

    def resolve(net: int) -> int:
        for _ in range(len(connections) + 1):
            if net >= 0:
                return net
            net = connections[net]
        raise _AliasLoop

    if isinstance(cell, _nir.Operator):
        nets = [n for value in cell.inputs for n in value]
    elif isinstance(cell, _nir.Part):
        nets = [*cell.value, *cell.offset]
    else:
        nets = [src for out in cell.output_nets(index)
                for src, _ in cell.comb_edges_to(out & 0xFFFF)]
    # A net is an int: 0 and 1 the constants, negative a late net (a signal, resolved to its
    # driver), else its cell's index in the bits above 16.
    return {(resolve(n) if n < 0 else n) >> 16 for n in nets if n > 1 or n < 0}


def cell_graph_is_acyclic(netlist: _nir.Netlist) -> bool:
    """Whether the graph of cells (an edge from each cell to the cells reading it
    combinationally) has no cycle and no cell reads its own output."""
    n = len(netlist.cells)
    readers: list[list[int]] = [[] for _ in range(n)]
    pending = [0] * n
    for index, cell in enumerate(netlist.cells):
        try:
            sources = _cell_sources(netlist, index, cell)
        except _AliasLoop:
            return False
        sources.discard(0)  # the top's inputs depend on nothing (its outputs are late nets)
        if index in sources:
            return False
        pending[index] = len(sources)
        for s in sources:
            readers[s].append(index)
    ready = [i for i in range(n) if not pending[i]]
    done = 0
    while ready:
        i = ready.pop()
        done += 1
        for r in readers[i]:
            pending[r] -= 1
            if not pending[r]:
                ready.append(r)
    return done == n


def _check_comb_cycles(self: _nir.Netlist) -> None:
    if not cell_graph_is_acyclic(self):
        _ORIGINAL_CHECK(self)


def _emit_memory(self: rtlil.ModuleEmitter, cell_idx: int, cell: Any) -> None:
    width, rows = cell.width, list(cell.init)
    if not width or not rows:
        return _ORIGINAL_EMIT_MEMORY(self, cell_idx, cell)
    mask = (1 << width) - 1
    bits = "".join(format(row & mask, f"0{width}b") for row in reversed(rows)) \
        if any(rows) else "0" * (width * len(rows))
    self.builder.cell("$meminit_v2", ports={
        "ADDR": self.sigspec(),
        "DATA": f"{len(bits)}'{bits}",
        "EN": self.sigspec(_nir.Value.ones(width)),
    }, parameters={
        "MEMID": self.memories[cell_idx].memid,
        "ABITS": 0,
        "WIDTH": width,
        "WORDS": cell.depth,
        "PRIORITY": 0,
    }, src_loc=cell.src_loc)


def _value_new(cls, nets=()):
    # Amaranth's asserts that each item is a Net, one generator step a bit.
    if type(nets) is cls:
        return nets  # a Value is an immutable tuple: itself, as tuple(t) gives t
    if isinstance(nets, _nir.Net):
        return tuple.__new__(cls, (nets,))
    return tuple.__new__(cls, nets)


def _net_from_cell(cls, cell: int, bit: int):
    if bit >> 16:  # Amaranth's limit: 65,536 bits a cell (nets of two cells would alias)
        raise AssertionError(f"bit {bit} out of range(1 << 16)")
    return cls((cell << 16) | bit)  # without the asserts that each argument is an int


_CONSTANT_NETS = (_nir.Net(0), _nir.Net(1))


def _value_from_const(cls, value: int, width: int):
    return tuple.__new__(cls, [_CONSTANT_NETS[(value >> bit) & 1] for bit in range(width)])


def _cell_nets(index: int, width: int) -> map:
    if width > 1 << 16:  # checked once a cell, not once a bit
        raise AssertionError(f"cell of {width} bits: Amaranth's limit is 1 << 16")
    return map(_nir.Net, range(index << 16, (index << 16) + width))


def _add_value_cell(self: _nir.Netlist, width: int, cell: Any):
    return tuple.__new__(_nir.Value, _cell_nets(self.add_cell(cell), width))


def _operator_output_nets(self: _nir.Operator, self_idx: int) -> set:
    return set(_cell_nets(self_idx, self.width))


def _mapped_contains(self, key) -> bool:
    # Mapping's own goes through __getitem__ and a caught KeyError (naming a design's
    # signals asks it for every signal of every submodule).
    return (None if key is None else self._map_key(key)) in self._storage


_ORIGINAL_OPERATOR_SHAPE = _ast.Operator.shape


def _operator_shape(self: _ast.Operator):
    # Worked out once: Amaranth works an operator's shape out again through all of its
    # operands whenever asked, and the netlist builder asks at every node (quadratic in the
    # depth of an adder chain). An operator and its operands never change.
    try:
        return self.__dict__["_qfab_shape"]
    except KeyError:
        shape = self.__dict__["_qfab_shape"] = _ORIGINAL_OPERATOR_SHAPE(self)
        return shape


# (owner, attribute, faster equivalent)
_SWAPS = [(_nir.Netlist, "check_comb_cycles", _check_comb_cycles),
          (rtlil.ModuleEmitter, "emit_memory", _emit_memory),
          (_nir.Value, "__new__", _value_new),
          (_nir.Net, "from_cell", classmethod(_net_from_cell)),
          (_nir.Value, "from_const", classmethod(_value_from_const)),
          (_nir.Netlist, "add_value_cell", _add_value_cell),
          (_nir.Operator, "output_nets", _operator_output_nets),
          (_ast.Operator, "shape", _operator_shape),
          (_ast._MappedKeyDict, "__contains__", _mapped_contains),
          (_BuiltinYosys, "run", classmethod(_yosys.run_builtin))]


_INHERITED = object()  # a swapped method the class inherits: deleted again afterwards

# One conversion at a time swaps and restores (a thread's conversion waits for another's).
_SWAPPING = threading.RLock()


@contextlib.contextmanager
def faster_conversion() -> Iterator[None]:
    """Amaranth's conversion with the faster steps swapped in, inside."""
    with _SWAPPING:
        saved = [(owner, name, owner.__dict__.get(name, _INHERITED)) for owner, name, _ in _SWAPS]
        for owner, name, fast in _SWAPS:
            setattr(owner, name, fast)
        try:
            yield
        finally:
            for owner, name, original in saved:
                if original is _INHERITED:
                    delattr(owner, name)
                else:
                    setattr(owner, name, original)


def convert(elaboratable: Any, **kwargs: Any) -> str:
    """``amaranth.back.verilog.convert(elaboratable, **kwargs)``, faster on large designs."""
    with faster_conversion():
        return amaranth_verilog.convert(elaboratable, **kwargs)
