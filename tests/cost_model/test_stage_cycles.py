"""Per-stage cycles of a co-simulated batch equal the cycle model's, exactly: each stage's
active cycles, and for an MVU stage their two terms, batch x MH/PE x MW/SIMD x pixels steps
and the fill the model counts (cycles the stage holds an inference without stepping)."""

from pathlib import Path

import numpy as np
import pytest
from qfab.cost_model.quantize import QuantSpec, quantize_model
from qfab.cost_model.timing import cosim_differences, plan_timing
from shared_models import SHARED
from test_estimate import DIGITS, TFC, _tiny_cnn, _tiny_mlp

import qfab

pytest.importorskip("cocotb")
ROOT = Path(__file__).resolve().parents[2]


def _tiny(make, shape):
    def build(batch):
        x = np.random.default_rng(2).uniform(0, 1, (batch,) + shape).astype(np.float32)
        model = quantize_model(make(), QuantSpec("int", 4), QuantSpec("int", 4), x)
        return qfab.compile(model, max_pe=2, max_simd=4), x
    return build


def _tfc(batch):
    x = np.load(SHARED / "mnist4" / "digits.npy") / 255
    return qfab.compile(TFC), np.resize(x, (batch,) + x.shape[1:]).astype(np.float32)


def _digits(batch):
    return qfab.compile(DIGITS), np.load(ROOT / "examples" / "digits" / "sample_images.npy")[:batch]


MODELS = {"tiny_mlp": _tiny(_tiny_mlp, (16,)), "tiny_cnn": _tiny(_tiny_cnn, (1, 8, 8)),
          "tfc_2w2a": _tfc, "digits_int8": _digits}


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("name", list(MODELS))
def test_stage_cycles_equal_the_model(name, batch):
    design, x = MODELS[name](batch)
    res = qfab.simulate(design, x)
    assert res.bit_exact, res.first_mismatch
    timing = plan_timing(design.plan, batch)
    assert not cosim_differences(design.plan, res)
    mvus = 0
    for stage, measured, model in zip(design.plan.stages, res.stages, timing.stages,
                                      strict=True):
        active = measured["cycles"]
        assert active == model.active_cycles, (stage.name, active, model)
        if not any(b.kind == "mvu" for b in stage.blocks):
            continue
        mvus += 1
        f = stage.folding
        pixels = stage.macs // (f["mh"] * f["mw"])
        steady = f["mh"] // f["pe"] * (f["mw"] // f["simd"]) * pixels
        assert model.steady_cycles == steady
        assert active == batch * steady + model.fill_cycles, (
            f"{stage.name}: measured {active} != {batch} x ({f['mh']}/{f['pe']} x "
            f"{f['mw']}/{f['simd']} x {pixels} = {steady}) + fill {model.fill_cycles}")
        print(f"{name} batch {batch} {stage.name}: measured {active} = {batch} x {steady} "
              f"+ fill {model.fill_cycles}")
    assert mvus >= 2
