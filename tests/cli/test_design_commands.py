"""What `qfab compile` and `qfab estimate` say about the design they plan: a board it does
not fit on stderr, and the board its estimate is on in report.md and manifest.json."""

import json
from pathlib import Path

from shared_models import SHARED

import qfab
from qfab.cli import main

ROOT = Path(__file__).resolve().parents[2]
TFC = SHARED / "qonnx" / "TFC_2W2A.onnx"
DIGITS = ROOT / "examples" / "digits" / "digits_int8.onnx"


def test_estimate_warns_of_a_design_too_big_for_its_board(capsys):
    # TFC_2W2A unrolled (at icebreaker's 12 MHz, 1e9 inferences/s asks for one cycle an
    # inference, which it meets) has far more LUTs than an iCE40UP5K.
    assert main(["estimate", str(TFC), "--board", "icebreaker", "--target-fps", "1e9"]) == 0
    out, err = capsys.readouterr()
    (fit,) = err.splitlines()
    assert fit.startswith("warning: the design does not fit icebreaker by the cost model: LUT ")
    assert fit.endswith(" of the board") and "Fits: NO" in out
    # The default board is named as such; a design that fits gets no warning.
    assert main(["estimate", str(DIGITS), "--target-fps", "1000"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and "## Estimate on pynq-z2" in out and "Fits: yes" in out


def test_compile_without_a_board_says_where_its_estimate_is(tmp_path, capsys):
    out = tmp_path / "design"
    assert main(["compile", str(DIGITS), "--no-soc", "-o", str(out)]) == 0
    assert "warning" not in capsys.readouterr().err
    manifest = json.loads((out / "manifest.json").read_text())
    est = qfab.estimate(qfab.compile(DIGITS))
    assert manifest["board"] is None
    assert manifest["estimate"] == {"board": "pynq-z2", "family": "xilinx7", "lut": est.lut,
                                    "ff": est.ff, "dsp": est.dsp, "bram": est.bram,
                                    "bram_unit": est.bram_unit, "fits": True}
    report = (out / "report.md").read_text()
    assert "No board given (--board); the estimate below is on pynq-z2, the default board." \
        in report
    assert f"| LUT | {est.lut} |" in report
