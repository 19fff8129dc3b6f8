"""`qfab search`: the integer program against brute force, a search on the digits CNN
verified by the cost model and re-scored from the model it writes, and its errors."""

import itertools
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from qfab.cost_model.datasets import load_data, score
from qfab.cost_model.milp import _options, choose
from qfab.cost_model.quantize import QuantSpec
from qfab.cost_model.sensitivity import SIDES, Sensitivities

import qfab
from qfab.cli import main

ROOT = Path(__file__).resolve().parents[2]
FLOAT_MODEL = ROOT / "examples" / "digits" / "digits_float.onnx"


def _random_sensitivities(seed: int) -> Sensitivities:
    """Three layers, three formats a side besides the baseline, two foldings, made-up
    figures."""
    rng = np.random.default_rng(seed)
    base = [{"lut": 1000, "dsp": 20, "bram": 2, "ii_cycles": 100},
            {"lut": 800, "dsp": 10, "bram": 2, "ii_cycles": 300}]
    s = Sensitivities(["a", "b", "c"], [{}, {}], 0.0, base)
    for layer, side, k in itertools.product(range(3), SIDES, range(3)):
        cost = [{"lut": b["lut"] + int(rng.integers(-300, 100)),
                 "dsp": b["dsp"] + int(rng.integers(-5, 3)), "bram": b["bram"],
                 "ii_cycles": b["ii_cycles"] + int(rng.integers(0, 2)) * 50} for b in base]
        s.changes.append({"layer": layer, "side": side, "spec": QuantSpec("int", 3 + k),
                          "sensitivity": float(rng.random()), "cost": cost})
    return s


@pytest.mark.parametrize("seed", range(4))
def test_program_matches_brute_force(seed):
    """HiGHS's optimum equals the best of every assignment, with the same linear costs."""
    s = _random_sensitivities(seed)
    budget, max_ii = {"lut": 500 + 60 * seed, "dsp": 8}, 330
    opts = _options(s)
    groups = [[o for o in opts if (o["layer"], o["side"]) == g]
              for g in itertools.product(range(3), SIDES)]
    best = None
    for f in range(2):
        b = s.baseline_cost[f]
        if b["ii_cycles"] > max_ii:
            continue
        for pick in itertools.product(*groups):
            if any(o["cost"][f]["ii_cycles"] > max_ii for o in pick):
                continue
            if all(b[r] + sum(o["cost"][f][r] - b[r] for o in pick) <= budget[r]
                   for r in budget):
                total = sum(o["sensitivity"] for o in pick)
                best = total if best is None else min(best, total)
    got = choose(s, budget, max_ii)
    if best is None:
        assert got is None
    else:
        assert got.predicted_sensitivity == pytest.approx(best, abs=1e-9)
        assert all(got.predicted[r] <= budget[r] for r in budget)


def test_readme_search_within_budget_and_rescored(tmp_path: Path):
    """The README's command (its plot is docs/digits_search_pareto.png): the pick fits the
    budget by the cost model itself, the model it writes scores what search.json says under
    the integer reference, and the searched front is compared with the uniform designs."""
    out = tmp_path / "out"
    assert main(["search", str(FLOAT_MODEL), "--data", "digits", "--budget", "lut=2600",
                 "-o", str(out)]) == 0
    result = json.loads((out / "search.json").read_text())
    chosen = result["chosen"]
    assert chosen["lut"] <= 2600 < result["baseline_int8"]["lut"]
    est = json.loads((out / "estimate.json").read_text())
    assert (est["lut"], est["dsp"], est["bram"]) == (chosen["lut"], chosen["dsp"],
                                                     chosen["bram"])
    data = load_data("digits")
    model = onnx.load(out / "model.onnx")
    assert score(data, next(iter(qfab.reference(model, data.x_test).values())),
                 None) == chosen["score"]
    widths = [onnx.numpy_helper.to_array(t).item() for t in model.graph.initializer
              if t.name.endswith("_w_bits")]
    assert len(widths) == len(result["layers"]) == 3
    uniform = {u["label"].split("_")[0]: u for u in result["uniform"]}
    assert {"wint6-int6-int6", "wfixed6-fixed6-fixed6", "wE2M1-E2M1-E2M1"} <= set(uniform)
    for s in result["searched"]:  # every searched point is within its own LUT budget
        assert s["lut"] <= s["lut_budget"]
    assert result["seconds"]["total"] < 120
    assert (out / "pareto.png").stat().st_size > 0
    rows = (out / "sensitivity.csv").read_text().splitlines()
    assert len(rows) == 1 + 3 * 2 * 13 - len(result["unavailable"])


@pytest.mark.parametrize("args, message", [
    (["--budget", "lut=10"], "no design fits the budget lut=10"),
    (["--budget", "luts=10"], "expected lut=N,dsp=N,bram=N"),
    (["--budget", "lut=-1"], "lut must be a non-negative number"),
    (["--budget", "lut=9", "--formats", "int1"], "'int1': bits must be 2..16"),
])
def test_search_errors_leave_no_output(tmp_path: Path, capsys, args, message):
    out = tmp_path / "out"
    assert main(["search", str(FLOAT_MODEL), "--data", "digits", "--calibration-images", "32",
                 "--test-images", "20", "--formats", "int4", "-o", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not out.exists()
