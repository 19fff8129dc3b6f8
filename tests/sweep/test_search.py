"""`qfab search`: the integer program against brute force, a search on the digits CNN
verified by the cost model and re-scored from the model it writes, and its errors."""

import itertools
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from qfab.cost_model.boards import load_board
from qfab.cost_model.datasets import load_data, score
from qfab.cost_model.milp import GROUP_SIDES, choose, options
from qfab.cost_model.quantize import QuantSpec
from qfab.cost_model.search import verilog
from qfab.cost_model.sensitivity import SIDES, Design, Sensitivities, planned

import qfab
from qfab.cli import main
from qfab.commands.search import parse_formats
from qfab.errors import QfabError

ROOT = Path(__file__).resolve().parents[2]
FLOAT_MODEL = ROOT / "examples" / "digits" / "digits_float.onnx"


def _random_sensitivities(seed: int) -> Sensitivities:
    """Three layers, three formats a side besides the baseline (one of them fixed point)
    and two foldings a layer besides the default, and two joint changes (a layer's weights
    and input and the next layer's input in fixed point), made-up figures."""
    rng = np.random.default_rng(seed)
    base = {"lut": 1000, "dsp": 20, "bram": 2, "ii_cycles": 100}
    s = Sensitivities(["a", "b", "c"], 0.0, base, {0: 90, 1: 90, 2: 60})
    for layer, side, k in itertools.product(range(3), SIDES, range(3)):
        cost = {"lut": 1000 + int(rng.integers(-300, 100)),
                "dsp": 20 + int(rng.integers(-5, 3)), "bram": 2, "ii_cycles": None}
        # A third of the changes measure no noise above the baseline's (ties).
        spec = QuantSpec("fixed", 8) if k == 0 else QuantSpec("int", 3 + k)
        s.changes.append({"layer": layer, "side": side, "spec": spec,
                          "sensitivity": float(rng.random()) if rng.random() > 0.33 else 0.0,
                          "cost": cost})
    for layer, k in itertools.product(range(3), range(2)):
        cost = {"lut": 1000 + int(rng.integers(-200, 50)),
                "dsp": 20 + int(rng.integers(-6, 6)), "bram": 2, "ii_cycles": 100}
        s.changes.append({"layer": layer, "side": "folding", "spec": (1, 1 + k),
                          "sensitivity": 0.0, "cost": cost,
                          "cycles": int(rng.integers(50, 200))})
    for layer in range(2):
        cost = {"lut": 1000 + int(rng.integers(-400, 200)),
                "dsp": 20 + int(rng.integers(-8, 3)), "bram": 2, "ii_cycles": None}
        s.joints.append({"groups": [(layer, "weights"), (layer, "activations"),
                                    (layer + 1, "activations")],
                         "kind": "fixed", "spec": QuantSpec("fixed", 8), "cost": cost})
    return s


def _joint_deltas(s: Sensitivities) -> list[tuple[list, dict]]:
    """Each joint change's groups and its cost less its single changes'."""
    base = s.baseline_cost
    out = []
    for j in s.joints:
        singles = [c for c in s.changes if (c["layer"], c["side"]) in j["groups"]
                   and c["spec"] == j["spec"]]
        out.append((j["groups"], {r: j["cost"][r] - base[r] - sum(c["cost"][r] - base[r]
                                                                  for c in singles)
                                  for r in ("lut", "dsp", "bram")}))
    return out


def _brute_force(s: Sensitivities, budget: dict, max_cycles: int,
                 exclude: list[frozenset[int]],
                 max_sensitivity: float | None = None) -> tuple[float, int] | None:
    """The least (summed sensitivity, LUTs) of every assignment, with the same linear costs;
    with ``max_sensitivity``, the least (LUTs, summed sensitivity) of those within it."""
    opts = options(s)
    groups = [[i for i, o in enumerate(opts) if (o["layer"], o["side"]) == g]
              for g in itertools.product(range(3), GROUP_SIDES)]
    base = s.baseline_cost
    joints = _joint_deltas(s)
    best = None
    for pick in itertools.product(*groups):
        if frozenset(pick) in exclude or any(
                opts[i]["side"] == "folding" and opts[i]["cycles"] > max_cycles for i in pick):
            continue
        fixed = {(opts[i]["layer"], opts[i]["side"]) for i in pick
                 if getattr(opts[i]["spec"], "kind", "") == "fixed"}
        extra = [d for groups, d in joints if set(groups) <= fixed]
        cost = {r: base[r] + sum(opts[i]["cost"][r] - base[r] for i in pick)
                + sum(d[r] for d in extra) for r in ("lut", "dsp", "bram")}
        if all(cost[r] <= budget[r] for r in budget):
            total = sum(opts[i]["sensitivity"] for i in pick)
            lut = cost["lut"]
            if max_sensitivity is None:
                key = (total, lut)
            elif total <= max_sensitivity:
                key = (lut, total)
            else:
                continue
            best = key if best is None or key < best else best
    return best


@pytest.mark.parametrize("seed", range(4))
def test_program_matches_brute_force(seed):
    """HiGHS's optimum equals the best of every assignment, with the same linear costs (the
    fewest LUTs among the least sensitive), and so does its second answer once the first is
    excluded; so does the fewest LUTs under a bound on the summed sensitivity."""
    s = _random_sensitivities(seed)
    budget, max_cycles = {"lut": 300 + 60 * seed, "dsp": 8}, 150
    for bound in (None, 0.0, 0.5 + 0.3 * seed):
        exclude: list[frozenset[int]] = []
        for _ in range(2):
            best = _brute_force(s, budget, max_cycles, exclude, bound)
            got = choose(s, budget, max_cycles, exclude,
                         minimise="sensitivity" if bound is None else "lut",
                         max_sensitivity=bound)
            if best is None:
                assert got is None
                break
            if bound is None:
                assert got.predicted_sensitivity == pytest.approx(best[0], abs=1e-9)
                assert got.predicted["lut"] == best[1]
            else:  # LUTs tied need not tie on sensitivity
                assert got.predicted["lut"] == best[0]
                assert got.predicted_sensitivity <= bound + 1e-9
            assert all(got.predicted[r] <= budget[r] for r in budget)
            exclude.append(got.options)


def test_joint_term_taken_only_when_all_its_groups_are_fixed_point():
    """A requantizer that is a shift only when three groups are fixed point: the program
    counts its saving when all three take fixed point and never otherwise."""
    s = Sensitivities(["a", "b"], 0.0, {"lut": 1000, "dsp": 20, "bram": 0, "ii_cycles": 100})
    for layer, side in itertools.product(range(2), SIDES):
        s.changes.append({"layer": layer, "side": side, "spec": QuantSpec("fixed", 8),
                          "sensitivity": 0.1, "cost": {"lut": 1000, "dsp": 20, "bram": 0}})
        s.changes.append({"layer": layer, "side": side, "spec": QuantSpec("int", 4),
                          "sensitivity": 0.5, "cost": {"lut": 900, "dsp": 20, "bram": 0}})
    groups = [(0, "weights"), (0, "activations"), (1, "activations")]
    s.joints.append({"groups": groups, "kind": "fixed", "spec": QuantSpec("fixed", 8),
                     "cost": {"lut": 700, "dsp": 12, "bram": 0}})
    got = choose(s, {"lut": 750})
    assert (got.weights[0], got.activations[0], got.activations[1]) == (
        QuantSpec("fixed", 8),) * 3
    assert got.predicted == {"lut": 700, "dsp": 12, "bram": 0}
    assert got.predicted_sensitivity == pytest.approx(0.3)
    # two of the three in fixed point save nothing: with the third ruled out, 800 LUTs
    # takes int4 in two groups
    def allowed(o):
        return not ((o["layer"], o["side"]) == (1, "activations") and o["spec"].kind == "fixed")

    got = choose(s, {"lut": 800}, allowed=allowed)
    assert got.predicted["lut"] == 800 and got.predicted_sensitivity == pytest.approx(1.0)


def test_layer_folding_overrides_the_planner():
    """A MAC layer's (pe, simd) from the search reaches the plan; one that does not divide
    the layer's matrix is a one-line error naming the node."""
    from qfab.compiler.backend.plan import plan

    graph = qfab.lower_model(onnx.load(ROOT / "examples" / "digits" / "digits_int8.onnx"))
    default = {s.name: s.folding for s in plan(graph).stages if s.folding}
    fc = next(n for n, f in default.items() if f["mh"] == 10)
    folded = {s.name: s.folding for s in plan(graph, layer_folding={fc: (1, 2)}).stages
              if s.folding}
    assert (folded[fc]["pe"], folded[fc]["simd"]) == (1, 2)
    assert all(folded[n] == f for n, f in default.items() if n != fc)
    with pytest.raises(QfabError, match=f"node '{fc}': folding pe=3, simd=2 does not divide"):
        plan(graph, layer_folding={fc: (3, 2)})


@pytest.mark.parametrize("board", ["pynq-z2", "ulx3s-85f"])
def test_search_and_sweep_price_designs_as_compiled_for_the_board(board):
    """The search plans a design as `qfab compile --board B --max-pe 4 --max-simd 8` does,
    the board family's pipelining included (on ECP5 the products of bytes in LUTs: no
    DSPs), so it prices and synthesizes that Verilog; a sweep point estimates as the
    compiled design does."""
    from qfab.cost_model.space import Point
    from qfab.cost_model.sweep import _hardware

    compiled = qfab.compile(ROOT / "examples" / "digits" / "digits_int8.onnx", board=board,
                            max_pe=4, max_simd=8)
    plan, cost = planned(compiled.graph, Design((), (), ()), load_board(board), [], False)
    assert verilog(plan) == compiled.verilog()
    est = qfab.estimate(compiled)
    assert (cost["lut"], cost["dsp"]) == (est.lut, est.dsp)
    assert (est.dsp == 0) == (board == "ulx3s-85f")
    point = Point("int8", "int", 8, (), (), {"max_pe": 4, "max_simd": 8})
    row = _hardware(compiled.graph, point, load_board(board), False, "digits")
    assert (row["lut"], row["dsp"], row["ii_cycles"]) == (est.lut, est.dsp, est.ii_cycles)


def test_readme_search_within_budget_and_rescored(tmp_path: Path, capsys):
    """The README's command (its plot is docs/digits_search_pareto.png): the pick fits the
    budget and the default design's II by the cost model itself, under the per-layer folding
    it reports, as `qfab estimate` of the command it gives to build it says; the model it
    writes scores what search.json says under the integer reference; the comparison takes
    the best uniform design and the searched ones within its LUTs, DSPs and II."""
    out = tmp_path / "out"
    assert main(["search", str(FLOAT_MODEL), "--data", "digits-shifted", "--budget",
                 "lut=2600", "-o", str(out)]) == 0
    result = json.loads((out / "search.json").read_text())
    chosen = result["chosen"]
    assert result["test_samples"] == 3240
    assert chosen["lut"] <= 2600 < result["baseline_int8"]["lut"]
    assert chosen["ii_cycles"] <= result["max_ii_cycles"] == result["baseline_int8"]["ii_cycles"]
    est = json.loads((out / "estimate.json").read_text())
    assert (est["lut"], est["dsp"], est["bram"]) == (chosen["lut"], chosen["dsp"],
                                                     chosen["bram"])
    data = load_data("digits-shifted")
    model = onnx.load(out / "model.onnx")
    assert score(data, next(iter(qfab.reference(model, data.x_test).values())),
                 None) == chosen["score"]
    assert any(f != "default" for f in chosen["folding"].values())
    command = chosen["compile"].split()  # qfab compile MODEL --board B --max-pe 4 ... -o DIR
    assert command[:2] == ["qfab", "compile"] and command[-2:] == ["-o", "DIR"]
    capsys.readouterr()
    assert main(["estimate", *command[2:-2], "--json"]) == 0
    again = json.loads(capsys.readouterr().out)["estimate"]
    assert (again["lut"], again["ii_cycles"]) == (chosen["lut"], chosen["ii_cycles"])
    # --synth synthesizes the Verilog that this compile command writes (so its figures
    # are `qfab synth`'s of that folder).
    folding = {name: tuple(int(v) for v in f.split("x"))
               for name, f in chosen["folding"].items() if f != "default"}
    compiled = qfab.compile(model, board="pynq-z2", layer_folding=folding)
    design = Design(*(tuple(parse_formats(",".join(chosen[k])))
                      for k in ("weights", "activations")),
                    tuple(folding.get(name) for name in result["layers"]))
    plan, _ = planned(compiled.graph, design, load_board("pynq-z2"), result["layers"], False)
    assert verilog(plan) == compiled.verilog()
    widths = [onnx.numpy_helper.to_array(t).item() for t in model.graph.initializer
              if t.name.endswith("_w_bits")]
    assert len(widths) == len(result["layers"]) == 3
    uniform = {u["label"].split("_")[0]: u for u in result["uniform"]}
    assert {"wint6-int6-int6", "wfixed6-fixed6-fixed6", "wE2M1-E2M1-E2M1"} <= set(uniform)
    best = result["comparison"]["best_uniform"]
    assert best["score"] == max(u["score"] for u in result["uniform"])
    folded = result["comparison"]["best_uniform_folded"]
    assert (folded["weights"], folded["score"]) == (best["weights"], best["score"])
    assert folded["lut"] <= best["lut"] and folded["ii_cycles"] <= best["ii_cycles"]
    for s in result["searched"]:  # every searched point is within its own budgets
        assert (s["lut"] <= s["lut_budget"] and s["dsp"] <= s["dsp_budget"]
                and s["ii_cycles"] <= s["ii_budget"])
        # its score against the best uniform design's is the images only one gets right
        gained, lost = s["versus_best"]
        assert s["score"] - best["score"] == pytest.approx((gained - lost) / 3240, abs=1e-12)
    # the fewest LUTs at the best uniform design's noise on the calibration images, measured
    at_noise = result["comparison"]["searched_at_its_noise"]
    assert at_noise["noise"] <= at_noise["noise_budget"] == best["noise"]
    assert at_noise["lut"] <= min(s["lut"] for s in result["searched"]
                                  if s["noise"] <= best["noise"])
    assert result["seconds"]["total"] < 120
    assert (out / "pareto.png").stat().st_size > 0
    rows = (out / "sensitivity.csv").read_text().splitlines()
    foldings = sum(1 for r in rows if ",folding," in r)
    assert foldings >= 3  # each layer offers a folding besides the default
    assert len(rows) == 1 + 3 * 2 * 13 - len(result["unavailable"]) + foldings


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


@pytest.mark.parametrize("folding, message", [
    ("fc=3x2", "node 'fc': folding pe=3, simd=2 does not divide its 10 x 64 matrix"),
    ("fc", "--folding 'fc': expected LAYER=PExSIMD, not 'fc'"),
])
def test_bad_folding_is_one_line(capsys, folding, message):
    model = ROOT / "examples" / "digits" / "digits_int8.onnx"
    assert main(["estimate", str(model), "--folding", folding]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_pick_within_a_budget_in_yosys_luts(monkeypatch):
    """With ``yosys``, a pick's LUT budget is in Yosys's LUTs: a stand-in that puts every
    design 30% above the cost model makes the program ask for less until its answer fits
    by the stand-in (the cost model alone would take the first answer)."""
    from qfab.cost_model.boards import load_board
    from qfab.cost_model.search import Search

    data = load_data("digits", 64, 40)
    search = Search(onnx.load(FLOAT_MODEL), data, load_board("pynq-z2"))
    sens = search.sensitivities([QuantSpec("int", 4), QuantSpec("int", 6)])
    synthesized = []

    def stand_in(got):
        synthesized.append(got.design)
        return {"lut": int(got.cost["lut"] * 1.3), "dsp": got.cost["dsp"], "bram": 0}

    monkeypatch.setattr(Search, "yosys", lambda self, got: stand_in(got))
    budget = {"lut": 3000, "dsp": 68, "bram": 0}
    plain = search.pick(sens, budget, search.max_ii)[1]
    assert plain.cost["lut"] <= 3000 < plain.cost["lut"] * 1.3
    got = search.pick(sens, budget, search.max_ii, yosys=True)[1]
    assert got.cost["lut"] * 1.3 <= 3000
    assert got.design in synthesized and got.score is not None
