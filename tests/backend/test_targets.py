"""--target-ii and --target-fps: the fewest multipliers meeting a target, and a target no
folding meets reported (a stderr line, the manifest's and the report's fields)."""

from pathlib import Path

import pytest

import qfab
from qfab.cli import main

TINY = Path(__file__).resolve().parents[2] / "examples" / "tiny"
CONV = str(TINY / "conv_s2_int8.onnx")  # a window stage takes a cycle a pixel at best
MLP = str(TINY / "mlp_int2.onnx")


def test_a_target_met_is_not_reported():
    design = qfab.compile(MLP, target_ii=64)
    assert design.ii_cycles <= 64 and design.missed_target() is None
    assert design.manifest()["target_met"] is True
    assert qfab.compile(MLP).manifest()["target_met"] is None


def test_a_target_missed_is_reported(capsys):
    design = qfab.compile(CONV, target_ii=2)
    assert design.ii_cycles > 2
    line = design.missed_target()
    assert line is not None and f"initiation interval {design.ii_cycles} cycles" in line
    m = design.manifest()
    assert m["target_ii_cycles"] == 2 and m["target_met"] is False
    assert line in design.report()
    assert main(["estimate", CONV, "--target-fps", "5e7"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert sum(e.startswith("warning: target not met") for e in err) == 1


@pytest.mark.parametrize("flags", [["--target-ii", "0"],
                                   ["--target-ii", "4", "--target-fps", "1e6"]])
def test_bad_targets_are_one_line_errors(capsys, flags):
    assert main(["estimate", MLP, *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--target-" in err[0]
