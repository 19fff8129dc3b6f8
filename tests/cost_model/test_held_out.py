"""The cost model out of sample: whole designs held out of its fit (unrolled at II 1, folded
at most 4 x 8 a layer, and at the default, balanced folding), estimated now against the
Yosys figures recorded in cost_model/held_out.csv: LUTs within the median and worst bounds
over them all, DSPs and BRAMs exact."""

import statistics

import pytest
from qfab.cost_model.held_out import BALANCED, BOUNDS, HELD_OUT, estimated, model_path, recorded
from shared_models import SHARED


def test_every_held_out_design_is_recorded():
    assert set(recorded()) == {name for name, _, _ in HELD_OUT + BALANCED}


def test_held_out_designs_within_the_bounds():
    designs = HELD_OUT + BALANCED
    if not all(model_path(m, SHARED).exists() for _, m, _ in designs):
        pytest.skip("the held-out models are not here")
    yosys = recorded()
    errors, table = [], []
    for name, model, folding in designs:
        est, got = estimated(model_path(model, SHARED), folding), yosys[name]
        table.append(f"{name}: estimate {est} yosys {got}")
        assert (est["dsp"], est["bram"]) == (got["dsp"], got["bram"]), table[-1]
        errors.append(abs(est["lut"] / got["lut"] - 1))
    text = "\n".join(table)
    assert statistics.median(errors) < BOUNDS["lut_median"], text
    assert max(errors) < BOUNDS["lut_worst"], text
