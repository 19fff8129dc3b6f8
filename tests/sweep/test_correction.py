"""The search's per-stage correction from Yosys: the accelerator's modules are found in the
stages they belong to, and a learned design is priced as Yosys measured it."""

import re
from pathlib import Path

import onnx
import pytest
from qfab.cost_model import correction
from qfab.cost_model.boards import load_board
from qfab.cost_model.datasets import load_data
from qfab.cost_model.quantize import QuantSpec
from qfab.cost_model.search import verilog
from qfab.cost_model.sensitivity import Design, build, mac_layers, planned
from qfab.cost_model.yosys import SynthResult

ROOT = Path(__file__).resolve().parents[2]
FLOAT_MODEL = ROOT / "examples" / "digits" / "digits_float.onnx"
GLUE = 100


def _stand_in(text: str, family: str, *, top: str) -> dict[str, SynthResult]:
    """Every module the Verilog declares: the top ``GLUE`` LUTs, a module of stage i
    (``top.s<i>_...``) 10 * (i + 1) + its name's length, so the stages' sums are known."""
    names = re.findall(r"^module \\?(\S+?)\s*\(", text, re.M)
    assert top in names
    return {n: SynthResult(family, GLUE if n == top else _luts(n), 0, 0, 0) for n in names}


def _luts(name: str) -> int:
    stage = int(re.match(r"qfab_accelerator\.s(\d+)_", name).group(1))
    return 10 * (stage + 1) + len(name)


@pytest.fixture(scope="module")
def digits():
    model = onnx.load(FLOAT_MODEL)
    layers = mac_layers(model)
    n = len(layers)
    int8 = (QuantSpec("int", 8),) * n
    board = load_board("pynq-z2")
    built = build(model, Design(int8, int8, (None,) * n), load_data("digits", 32, 8).x_calibration,
                  board, layers, timing=False)
    return built, layers, board


def test_learned_designs_priced_as_measured(digits, monkeypatch):
    built, layers, board = digits
    monkeypatch.setattr("qfab.cost_model.yosys.synthesize_modules", _stand_in)
    text = verilog(built.plan)
    per_stage, glue = correction.yosys_stages(built.plan, text, "xilinx7")
    modules = re.findall(r"^module \\?(\S+?)\s*\(", text, re.M)
    assert glue == GLUE and sum(per_stage) == sum(_luts(m) for m in modules
                                                 if m != "qfab_accelerator")
    assert all(per_stage)  # every stage has modules of its own
    # fc folded otherwise: a second design, a structure of its own for fc's stages only
    fc = layers.index("fc")
    folding = tuple((1, 1) if i == fc else None for i in range(len(layers)))
    int8 = (QuantSpec("int", 8),) * len(layers)
    other, _ = planned(built.graph, Design(int8, int8, folding), board, layers, timing=False)
    fit = correction.learn([(built.plan, text), (other, verilog(other))], "xilinx7")
    for plan in (built.plan, other):
        measured, top = correction.yosys_stages(plan, verilog(plan), "xilinx7")
        assert fit.lut(correction.model_stages(plan, "xilinx7")) == pytest.approx(
            sum(measured) + top, abs=1)
    # a structure never synthesized takes its stage's ratio at the default folding, unless
    # its products moved between DSPs and LUTs: then the model's own figure
    keys = correction.model_stages(built.plan, "xilinx7")
    unseen = [((name, (("mvu", (("pe", 99),)),), dsp), lut) for (name, _, dsp), lut in keys]
    assert fit.lut(unseen) == fit.lut(keys)
    moved = [((name, s, dsp + 1), lut) for (name, s, dsp), lut in keys]
    assert fit.lut(moved) == round(fit.glue + sum(lut for _, lut in keys)) != fit.lut(keys)


def test_search_prices_by_the_correction(monkeypatch):
    """After ``Search.learn`` every change and design is priced by the corrected figure,
    the cost model's kept as ``lut_model``, and the int8 design comes out as Yosys's flat
    synthesis (a stand-in here) measured it."""
    from qfab.cost_model.search import LEARN_FOLDINGS, Search

    monkeypatch.setattr("qfab.cost_model.yosys.synthesize_modules", _stand_in)
    monkeypatch.setattr(Search, "yosys", lambda self, got: {"lut": 2000, "dsp": 0, "bram": 0})
    search = Search(onnx.load(FLOAT_MODEL), load_data("digits", 64, 40), load_board("pynq-z2"))
    sens = search.sensitivities([QuantSpec("int", 6)])
    model = {id(c): c["cost"]["lut"] for c in sens.changes}
    search.learn(sens)
    assert sens.baseline_cost["lut"] == 2000
    within = [c for c in sens.changes
              if c["side"] == "folding" and c["cost"]["ii_cycles"] <= search.max_ii]
    most = max(sum(c["layer"] == i for c in within) for i in range(3))
    assert search.correction.designs == 1 + min(most, LEARN_FOLDINGS)
    for c in sens.changes:
        assert c["cost"]["lut_model"] == model[id(c)]
        assert c["cost"]["lut"] == search.correction.lut(c["cost"]["stages"])
    assert len({c["cost"]["lut"] - c["cost"]["lut_model"] for c in sens.changes}) > 1


def test_fixed_point_design_learned_from(monkeypatch):
    """With fixed8 among the candidates, the fixed8 design is synthesized too: its
    requantizers (shifts, no DSP) get ratios of their own."""
    from qfab.cost_model.search import LEARN_FOLDINGS, Search

    monkeypatch.setattr("qfab.cost_model.yosys.synthesize_modules", _stand_in)
    monkeypatch.setattr(Search, "yosys", lambda self, got: {"lut": 2000, "dsp": 0, "bram": 0})
    search = Search(onnx.load(FLOAT_MODEL), load_data("digits", 64, 40), load_board("pynq-z2"))
    sens = search.sensitivities([QuantSpec("fixed", 8)])
    search.learn(sens)
    within = [c for c in sens.changes
              if c["side"] == "folding" and c["cost"]["ii_cycles"] <= search.max_ii]
    most = max(sum(c["layer"] == i for c in within) for i in range(3))
    assert search.correction.designs == 2 + min(most, LEARN_FOLDINGS)
    requant = {(k[0], k[2] > 0) for k in search.correction.ratios if k[1][0][0] == "requant"}
    # a requantizer measured with its DSPs (int8) and without them (fixed8)
    assert any((name, not dsp) in requant for name, dsp in requant)


def test_every_familys_script_can_keep_its_hierarchy():
    from qfab.cost_model.yosys import HIERARCHY, SCRIPTS

    for family, (flat, kept) in HIERARCHY.items():
        assert flat in SCRIPTS[family] and flat != kept, family
