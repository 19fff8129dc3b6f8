"""qfab's Verilog conversion gives Amaranth's own text, character for character, and still
finds combinational cycles with Amaranth's own error."""

from pathlib import Path

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import Module, Signal, signed
from amaranth.hdl._ir import Fragment, build_netlist
from amaranth.hdl._nir import CombinationalCycle
from amaranth.lib.memory import Memory
from qfab.compiler.backend.accelerator import Accelerator
from qfab.compiler.backend.plan import plan
from qfab.hw._verilog import cell_graph_is_acyclic, convert

from qfab.api import lower_model

ROOT = Path(__file__).resolve().parents[2]


def test_an_accelerator_converts_to_amaranths_text():
    # A folded MLP: weight and threshold ROMs, MVUs, requantizers.
    hw = plan(lower_model(ROOT / "examples" / "tiny" / "mlp_int2.onnx"), max_pe=2, max_simd=2)
    ours = convert(Accelerator(hw), name="top", emit_src=False)
    assert ours == verilog.convert(Accelerator(hw), name="top", emit_src=False)


def _memories() -> Module:
    m = Module()
    rng = np.random.default_rng(1)
    init = [int(v) for v in rng.integers(-(2**11), 2**11, 37)]
    m.submodules.rom = rom = Memory(shape=signed(12), depth=40, init=init)  # rows past the init: 0
    m.submodules.ram = Memory(shape=5, depth=8, init=[])
    addr, out = Signal(6), Signal(12)
    rd = rom.read_port(domain="comb")
    m.d.comb += [rd.addr.eq(addr), out.eq(rd.data)]
    return m


def test_memory_contents_are_amaranths_text():
    ours = convert(_memories(), name="top", ports=[])
    assert ours == verilog.convert(_memories(), name="top", ports=[])


def _bits_feeding_each_other() -> Module:
    # A signal's bit 1 is its bit 0, inverted: a loop between cells, none between bits.
    m = Module()
    a, b = Signal(2), Signal()
    m.d.comb += [a[0].eq(b), a[1].eq(~a[0])]
    return m


def test_a_cell_reading_its_own_other_bits_is_no_cycle():
    netlist = build_netlist(Fragment.get(_bits_feeding_each_other(), None), ports=[])
    assert not cell_graph_is_acyclic(netlist)  # so Amaranth's own check decides
    ours = convert(_bits_feeding_each_other(), name="top", ports=[])
    assert ours == verilog.convert(_bits_feeding_each_other(), name="top", ports=[])


def _looped() -> Module:
    m = Module()
    a, b = Signal(4), Signal(4)
    m.d.comb += [a.eq(b + 1), b.eq(a ^ 3)]
    return m


def test_a_combinational_cycle_is_amaranths_error():
    with pytest.raises(CombinationalCycle) as ours:
        convert(_looped(), name="top", ports=[])
    with pytest.raises(CombinationalCycle) as theirs:
        verilog.convert(_looped(), name="top", ports=[])
    assert str(ours.value) == str(theirs.value)


def test_amaranth_is_left_as_it_was():
    from qfab.hw._verilog import _SWAPS

    def attributes():
        return [(owner, name, owner.__dict__.get(name)) for owner, name, _ in _SWAPS]

    before = attributes()
    convert(_memories(), name="top", ports=[])
    with pytest.raises(CombinationalCycle):
        convert(_looped(), name="top", ports=[])
    assert attributes() == before


def test_a_cell_over_amaranths_width_limit_is_refused_as_amaranth_refuses_it():
    from amaranth.hdl import Module, Signal

    m = Module()
    wide = Signal(70_000)
    m.d.sync += wide.eq(~wide)
    with pytest.raises(AssertionError, match="1 << 16"):
        convert(m, name="top", ports=[wide])


def test_yosys_in_this_process_reports_its_errors_as_amaranths_does():
    from amaranth._toolchain.yosys import YosysError
    from qfab.hw import _yosys
    from qfab.hw._verilog import faster_conversion

    code, out, err = _yosys.run(["-q", "-"], "read_rtlil <<rtlil\nnot rtlil\nrtlil\n")
    assert (code, out) == (1, "") and "syntax error" in err
    with faster_conversion(), pytest.raises(YosysError, match="syntax error"):
        verilog._convert_rtlil_text("not rtlil")
