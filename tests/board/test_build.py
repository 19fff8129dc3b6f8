# amaranth: UnusedElaboratable=no
"""`qfab build` end to end on the smallest design that has an accelerator's ports: Yosys,
nextpnr-ice40 and icepack for the iCEBreaker (a few seconds), the cache, and bad input."""

import json

import pytest
from amaranth import Module, Signal
from amaranth.back import verilog
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from qfab.cost_model.pnr import critical_path, stage_of
from qfab.hw.board.top import verilog_ports

from qfab.cli import main

TAPS = 9     # one multiplier more than the iCE40UP5K has DSPs: the build must fall back


class _Accumulate(wiring.Component):
    """A running 24-bit sum of each byte times the nine before it: nine multipliers."""

    i_stream: In(stream.Signature(8))
    o_stream: Out(stream.Signature(24))

    def elaborate(self, platform):
        m = Module()
        total = Signal(24)
        taps = [Signal(8, name=f"tap{i}") for i in range(TAPS)]
        m.d.comb += [self.i_stream.ready.eq(~self.o_stream.valid | self.o_stream.ready),
                     self.o_stream.payload.eq(total)]
        with m.If(self.o_stream.ready):
            m.d.sync += self.o_stream.valid.eq(0)
        with m.If(self.i_stream.valid & self.i_stream.ready):
            x = self.i_stream.payload
            m.d.sync += [total.eq(total + sum(x * t for t in taps)), self.o_stream.valid.eq(1),
                         taps[0].eq(x), *(taps[i + 1].eq(taps[i]) for i in range(TAPS - 1))]
        return m


class _TinyAccelerator(wiring.Component):
    i_stream: In(stream.Signature(8))
    o_stream: Out(stream.Signature(24))
    o_stage_active: Out(1)

    def elaborate(self, platform):
        m = Module()
        m.submodules.s0_0_acc = stage = _Accumulate()
        wiring.connect(m, wiring.flipped(self.i_stream), stage.i_stream)
        wiring.connect(m, stage.o_stream, wiring.flipped(self.o_stream))
        m.d.comb += self.o_stage_active.eq(stage.o_stream.valid)
        return m


@pytest.fixture(scope="module")
def design(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny_design")
    (folder / "accelerator.v").write_text(
        verilog.convert(_TinyAccelerator(), name="qfab_accelerator", emit_src=False))
    (folder / "manifest.json").write_text(json.dumps(
        {"top": "qfab_accelerator", "board": {"name": "icebreaker", "family": "ice40"},
         "stages": [{"name": "acc"}], "ii_cycles": 1}))
    (folder / "report.md").write_text("# qfab design: tiny\n")
    return folder


def _build(capsys, *args):
    status = main(["build", *map(str, args), "--json"])
    out, err = capsys.readouterr()
    return status, (json.loads(out)["build"] if status == 0 else None), err


def test_build_icebreaker_bitstream_fmax_and_cache(design, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("QFAB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("QFAB_PROGRESS", "1")            # the suite silences them elsewhere
    status, first, err = _build(capsys, design)
    assert status == 0, err
    assert "qfab build: nextpnr-ice40" in err          # progress lines on stderr
    assert f"{TAPS} DSP cells for 8 on the part: multipliers in logic instead" in err
    assert first["board"] == "icebreaker" and first["top"] == "accel"
    assert not first["cached"]
    bitstream = (design / "build" / "icebreaker-accel" / "qfab_board.bin").read_bytes()
    assert first["bitstream"].endswith("qfab_board.bin")
    assert b"\x7e\xaa\x99\x7e" in bitstream[:64]      # the iCE40 configuration sync word
    (clock,) = first["fmax"]
    assert clock["constraint_mhz"] == 12.0 and clock["achieved_mhz"] > 12.0
    assert first["fmax_mhz"] == clock["achieved_mhz"]
    lc = first["utilization"]["ICESTORM_LC"]
    assert 24 < lc["used"] < lc["available"] == 5280
    assert first["throughput_fps"] == pytest.approx(first["fmax_mhz"] * 1e6, rel=1e-6)
    report = (design / "report.md").read_text()
    assert report.startswith("# qfab design: tiny\n")
    assert f"| icebreaker | accel | 12 | {first['fmax_mhz']:.1f} |" in report
    path = first["critical_path"]
    assert path["delay_ns"] == pytest.approx(path["logic_ns"] + path["routing_ns"], abs=0.01)
    assert 1000 / path["delay_ns"] == pytest.approx(clock["achieved_mhz"], rel=0.05)
    assert path["from_stage"] == stage_of(path["from"], ["acc"])
    # Asked again: the same figures from the cache, the bitstream put back.
    (design / "build" / "icebreaker-accel" / "qfab_board.bin").unlink()
    status, second, err = _build(capsys, design)
    assert status == 0 and second["cached"]
    assert {k: v for k, v in second.items() if k not in ("cached", "seconds")} == \
        {k: v for k, v in first.items() if k not in ("cached", "seconds")}
    assert (design / "build" / "icebreaker-accel" / "qfab_board.bin").read_bytes() == bitstream


def test_vivado_project_for_a_xilinx_board(design, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("QFAB_CACHE_DIR", str(tmp_path / "cache"))
    status, result, err = _build(capsys, design, "--board", "arty-a7-35t")
    assert status == 0, err
    out = design / "build" / "arty-a7-35t-accel"
    assert result["vivado_project"] == str(out / "build_qfab_board.sh")
    assert result["fmax"] == [] and result["bitstream"] == ""
    tcl = (out / "qfab_board.tcl").read_text()
    assert "-part xc7a35ticsg324-1L" in tcl and 'add_files "qfab_accelerator.v"' in tcl
    assert (out / "qfab_accelerator.v").read_text() == (design / "accelerator.v").read_text()
    xdc = (out / "qfab_board.xdc").read_text()
    assert "create_clock" in xdc and "uart_0__tx" in xdc
    assert result["utilization"]["LUT (Yosys)"]["used"] > 24
    assert result["utilization"]["LUT (Yosys)"]["available"] == 20800


def test_stage_of_maps_submodule_names():
    names = ["conv1", "conv1_out_QuantizeLinear"]
    assert stage_of("accel.s1_0_requant.out_reg", names) == "conv1_out_QuantizeLinear (requant)"
    assert stage_of("soc.accel.s0_1_mvu.sum2_SB_LUT4_O", names) == "conv1 (mvu)"
    assert stage_of("accel.s7_0_pool.x", names) == "stage 7 (pool)"
    assert stage_of("bridge.word_TRELLIS_FF_Q", names) == "bridge"
    assert stage_of("count_TRELLIS_FF_Q", names) == "top"


def test_critical_path_is_the_slowest_clocks_register_path():
    def path(src, dst, delay):
        return [{"type": "clk-to-q", "from": {"cell": src}, "to": {"cell": src}, "delay": 0.5},
                {"type": "routing", "from": {"cell": src}, "to": {"cell": dst},
                 "delay": delay - 0.5}]

    report = {"fmax": {"$glbnet$a": {"achieved": 200.0, "constraint": 25.0},
                       "$glbnet$b": {"achieved": 90.0, "constraint": 25.0}},
              "critical_paths": [
                  {"from": "<async>", "to": "posedge $glbnet$b", "path": path("pin", "x", 20)},
                  {"from": "posedge $glbnet$a", "to": "posedge $glbnet$a",
                   "path": path("accel.s0_0_mvu.a", "accel.s0_0_mvu.b", 5.0)},
                  {"from": "posedge $glbnet$b", "to": "posedge $glbnet$b",
                   "path": path("accel.s1_0_requant.a", "bridge.b", 11.1)}]}
    got = critical_path(report, ["conv", "conv_out"])
    assert got == {"from": "accel.s1_0_requant.a", "to": "bridge.b",
                   "from_stage": "conv_out (requant)", "to_stage": "bridge", "delay_ns": 11.1,
                   "logic_ns": 0.5, "routing_ns": 10.6}


def test_verilog_ports(design):
    ports = verilog_ports((design / "accelerator.v").read_text(), "qfab_accelerator")
    assert ports["i_stream__payload"] == ("input", 8)
    assert ports["o_stream__payload"] == ("output", 24)
    assert ports["o_stage_active"] == ("output", 1)
    assert ports["clk"] == ("input", 1)


@pytest.mark.parametrize(("args", "message"), [
    (["--board", "pynq-z2"], "cannot be placed and routed with open tools"),
    (["--top", "soc"], "soc.v: no such file"),
    (["--freq", "-5"], "--freq must be a positive clock"),
])
def test_bad_input_is_one_line_exit_2(design, capsys, args, message):
    status = main(["build", str(design), *args])
    err = capsys.readouterr().err
    assert status == 2
    assert message in err and len(err.strip().splitlines()) == 1


def test_folder_without_manifest(tmp_path, capsys):
    assert main(["build", str(tmp_path)]) == 2
    assert "manifest.json: no such file" in capsys.readouterr().err


def test_board_files_tie_the_soc_to_the_ulx3s_pins():
    from qfab.cost_model.pnr import board_files, drop_zero_memory_init
    from qfab.hw.soc.top import Soc, soc_verilog

    text = soc_verilog(Soc(), name="qfab_soc")
    files = board_files(text, "qfab_soc", "soc", "ulx3s-85f")
    assert files["qfab_soc.v"] == drop_zero_memory_init(text)
    # the RAM's zeros (a loop a memory in soc.v) are dropped, the ROM's words kept
    assert text.count("integer i;") >= 64 and "integer i;" not in files["qfab_soc.v"]
    lpf = files["qfab_board.lpf"]
    assert 'LOCATE COMP "uart_0__tx__io" SITE "L4";' in lpf       # the FTDI UART
    assert 'LOCATE COMP "clk25_0__io" SITE "G2";' in lpf
    assert "FREQUENCY" not in lpf                                # --freq sets the target
    il = files["qfab_board.il"]
    assert "cell \\qfab_soc \\soc" in il
    assert "attribute \\src" not in il and "top.py" not in il     # no checkout paths
    # The debug port is idle: every input the top does not drive is tied to zero.
    for port, value in (("dbg__valid", "1'0"), ("dbg__we", "1'0"), ("dbg__sel", "4'0000"),
                        ("run", "1'1")):
        assert f"connect \\{port} {value}\n" in il


def test_zero_memory_init_is_dropped_and_other_init_kept():
    from qfab.cost_model.pnr import drop_zero_memory_init

    verilog = ("module m;\n  reg [7:0] ram [1:0];\n  initial begin\n    ram[0] = 8'd0;\n"
               "    ram[1] = 8'd0;\n  end\n  reg [7:0] rom [1:0];\n  initial begin\n"
               "    rom[0] = 8'd0;\n    rom[1] = 8'd7;\n  end\n  reg r = 1'h0;\n"
               "  reg [0:0] big [3:0];\n  initial begin : big_zero\n    integer i;\n"
               "    for (i = 0; i < 4; i = i + 1)\n      big[i] = 1'h0;\n  end\nendmodule\n")
    got = drop_zero_memory_init(verilog)
    assert "ram[0]" not in got and "ram[1]" not in got and "big[i]" not in got
    assert "rom[0] = 8'd0;" in got and "rom[1] = 8'd7;" in got and "reg r = 1'h0;" in got
    assert got.count("initial begin") == 1
