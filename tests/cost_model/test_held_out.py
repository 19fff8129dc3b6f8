"""The cost model out of sample: whole designs held out of its fit (unrolled at II 1 and
folded at most 4 x 8 a layer), estimated now against the Yosys figures recorded in
cost_model/held_out.csv: LUTs within the median and worst bounds, DSPs and BRAMs exact; the
same models at the default, balanced folding: DSPs and BRAMs exact."""

import statistics

import pytest
from qfab.cost_model.held_out import BALANCED, BOUNDS, HELD_OUT, estimated, model_path, recorded
from shared_models import SHARED


def test_every_held_out_design_is_recorded():
    assert set(recorded()) == {name for name, _, _ in HELD_OUT + BALANCED}


def test_held_out_designs_within_the_bounds():
    if not all(model_path(m, SHARED).exists() for _, m, _ in HELD_OUT):
        pytest.skip("the held-out models are not here")
    yosys = recorded()
    errors, table = [], []
    for name, model, ii in HELD_OUT:
        est, got = estimated(model_path(model, SHARED), ii), yosys[name]
        table.append(f"{name}: estimate {est} yosys {got}")
        assert (est["dsp"], est["bram"]) == (got["dsp"], got["bram"]), table[-1]
        errors.append(abs(est["lut"] / got["lut"] - 1))
    text = "\n".join(table)
    assert statistics.median(errors) < BOUNDS["lut_median"], text
    assert max(errors) < BOUNDS["lut_worst"], text


def test_balanced_designs_dsp_and_bram_exact():
    if not all(model_path(m, SHARED).exists() for _, m, _ in BALANCED):
        pytest.skip("the held-out models are not here")
    yosys = recorded()
    for name, model, folding in BALANCED:
        est, got = estimated(model_path(model, SHARED), folding), yosys[name]
        assert (est["dsp"], est["bram"]) == (got["dsp"], got["bram"]), (name, est, got)
