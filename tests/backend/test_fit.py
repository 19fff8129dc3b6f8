"""Folding to a board: with --board and no rate or caps, the fastest design the cost model
says fits; bad folding parameters are one-line errors."""

from pathlib import Path

import pytest
from qfab.compiler.backend import plan as planning
from qfab.cost_model.boards import load_board
from qfab.cost_model.estimate import estimate
from shared_models import SHARED

import qfab
from qfab.cli import main
from qfab.errors import QfabError

ROOT = Path(__file__).resolve().parents[2]
TFC = SHARED / "qonnx" / "TFC_2W2A.onnx"
DIGITS = ROOT / "examples" / "digits" / "digits_int8.onnx"
JET = ROOT / "bench" / "models" / "jet_tagger_standin.onnx"


def _within(est, share: float = 0.8) -> bool:
    return all(u <= share for u in est.utilization.values())


@pytest.mark.parametrize(("model", "board"), [(DIGITS, "arty-a7-35t"), (TFC, "ulx3s-85f"),
                                              (TFC, "pynq-z2")])
def test_fastest_design_that_fits(model, board):
    design = qfab.compile(model, board=board)
    b = load_board(board)
    assert _within(estimate(design, b))
    ii = design.plan.ii_cycles
    fastest = planning.plan(design.graph, clock_hz=b.clock_hz, budget_cycles=1).ii_cycles
    # Nothing faster fits: one cycle less of budget either is unreachable or overflows.
    if ii > fastest:
        quicker = planning.plan(design.graph, clock_hz=b.clock_hz, budget_cycles=ii - 1)
        assert quicker.ii_cycles < ii and not _within(estimate(quicker, b))
    # and it is faster than the default 4 x 8 folding
    assert ii <= qfab.compile(model).plan.ii_cycles


def test_dsp_budget_and_headroom():
    # The jet tagger unrolled is adder graphs: no DSP, and within 80% of a Zynq-7020.
    design = qfab.compile(JET, board="pynq-z2", dsp_budget=0)
    est = estimate(design, design.board)
    assert design.ii_cycles == 1 and est.dsp == 0 and _within(est)
    # Less headroom than the unrolled design needs: a folded one, within the share asked.
    tight = qfab.compile(JET, board="pynq-z2", max_utilization=0.3)
    assert tight.ii_cycles > 1 and _within(estimate(tight, tight.board), 0.3)


@pytest.mark.parametrize(("flags", "message"), [
    (["--board", "pynq-z2", "--max-utilization", "1.5"], "--max-utilization must be in"),
    (["--board", "pynq-z2", "--dsp-budget", "-1"], "--dsp-budget must be at least 0"),
    (["--dsp-budget", "0", "--target-ii", "4"], "choose the design for a --board"),
])
def test_bad_fitting_flags_are_one_line_errors(capsys, flags, message):
    assert main(["estimate", str(JET), *flags]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and message in err[0]


def test_nothing_fits_gives_the_smallest_design_and_a_warning(tmp_path, capsys):
    # TFC_2W2A's 2-bit weights need more block RAM than an iCE40UP5K has.
    design = qfab.compile(TFC, board="icebreaker")
    assert not estimate(design, design.board).fits
    assert all(s.folding.get("pe", 1) == 1 and s.folding.get("simd", 1) == 1
               for s in design.plan.stages)
    assert main(["compile", str(TFC), "--board", "icebreaker", "--no-soc",
                 "-o", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert "warning: the design does not fit icebreaker" in err


@pytest.mark.parametrize(("flags", "message"), [
    (["--target-fps", "0"], "--target-fps must be a positive number, not 0.0"),
    (["--target-fps", "-5"], "--target-fps must be a positive number, not -5.0"),
    (["--max-pe", "0"], "--max-pe must be at least 1, not 0"),
    (["--max-simd", "-2"], "--max-simd must be at least 1, not -2"),
])
def test_bad_folding_is_a_one_line_error(tmp_path, capsys, flags, message):
    assert main(["compile", str(DIGITS), *flags, "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err == f"qfab compile: error: {message}\n"
    assert not (tmp_path / "out").exists()


def test_usage_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as e:
        main(["compile", str(DIGITS), "--max-pe", "two", "-o", "x"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "invalid int value: 'two'" in err and "--help" in err


def test_sim_input_of_the_wrong_shape_is_a_user_error(tmp_path, capsys):
    import numpy as np

    x = tmp_path / "x.npy"
    np.save(x, np.zeros((2, 1, 8, 8), np.float32))
    assert main(["sim", str(TFC), "--input", str(x)]) == 2
    assert "shape (2, 1, 8, 8) does not fit" in capsys.readouterr().err
    with pytest.raises(QfabError, match="does not fit"):
        qfab.simulate(qfab.compile(TFC), np.zeros((1, 5), np.float32))


def test_compile_records_the_board_and_reports_the_estimate(tmp_path):
    import json

    from qfab.commands.synth import _family

    out = tmp_path / "out"
    assert main(["compile", str(DIGITS), "--board", "ulx3s-85f", "--no-soc", "-o", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["board"] == {"name": "ulx3s-85f", "family": "ecp5", "part": "LFE5U-85F-6BG381C"}
    assert _family(out) == "ecp5"  # what qfab synth uses without --family
    report = (out / "report.md").read_text()
    est = estimate(qfab.compile(DIGITS, board="ulx3s-85f"), load_board("ulx3s-85f"))
    assert "## Estimate on ulx3s-85f (ecp5)" in report
    assert f"| LUT | {est.lut} |" in report and f"| DSP | {est.dsp} |" in report
