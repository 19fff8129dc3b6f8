# amaranth: UnusedElaboratable=no
"""`qfab compile --wrapper axis`: the AXI4-Stream top under cocotbext-axi (tests/board/axis_tb.py),
random stalls on both sides, back-to-back inferences and a reset mid-stream, every output word
equal to the integer reference's."""

import json
from pathlib import Path

import numpy as np
import pytest
from qfab.compiler.backend.axis import AXIS_TOP, axis_verilog
from qfab.hw.axis import padded_bits
from qfab.sim.harness import pack_beats
from wrapper_cases import reference_env, run_cocotb

import qfab
from qfab.cli import main

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "examples" / "tiny" / "mlp_int2.onnx"


def _case(design, batch: int, seed: int) -> dict:
    """Input words and expected output words of ``batch`` random inferences."""
    plan = design.plan
    env = reference_env(design, batch, seed)
    in_words = pack_beats(design.to_beats(env[plan.input]), bits=plan.in_shape.width,
                          signed=plan.in_shape.signed)
    want = np.asarray(env[plan.output]).reshape(batch, -1)[:, plan.out_order]
    out_words = pack_beats(want.reshape(-1, plan.out_elems), bits=plan.out_shape.width,
                           signed=plan.out_shape.signed)
    n_in, n_out = plan.in_beats, plan.out_beats
    return {"seed": seed,
            "inputs": [in_words[i * n_in:(i + 1) * n_in] for i in range(batch)],
            "expected": [out_words[i * n_out:(i + 1) * n_out] for i in range(batch)],
            "pauses": [[0.0, 0.0], [0.5, 0.0], [0.0, 0.5], [0.4, 0.6], [0.7, 0.3]]}


@pytest.fixture(scope="module")
def design():
    return qfab.compile(str(MODEL))


def test_axis_top_bit_exact_under_stalls(design, tmp_path):
    case = _case(design, batch=8, seed=5)
    assert len({tuple(w) for w in case["expected"]}) > 1     # inferences differ
    case_file = tmp_path / "case.json"
    case_file.write_text(json.dumps(case))
    run_cocotb(axis_verilog(design), AXIS_TOP, "axis_tb", {"QFAB_AXIS_CASE": str(case_file)},
               tmp_path)

def test_compile_wrapper_axis_writes_the_top(design, tmp_path, capsys):
    out = tmp_path / "design"
    assert main(["compile", str(MODEL), "-o", str(out), "--no-soc", "--wrapper", "axis"]) == 0
    assert str(out / "axis.v") in capsys.readouterr().out.splitlines()
    text = (out / "axis.v").read_text()
    assert text == axis_verilog(design)
    in_bits = design.plan.in_shape.width * design.plan.in_elems
    assert f"input [{padded_bits(in_bits) - 1}:0] s_axis_tdata;" in text
    core = (out / "qfab_accelerator.core").read_text()
    assert "toplevel: qfab_axis" in core and "- axis.v" in core


@pytest.mark.parametrize("out_beats", [0, -1, 2.5])
def test_wrapper_rejects_bad_beats(design, out_beats):
    from qfab.hw.axis import AxisWrapper

    with pytest.raises(ValueError, match="out_beats"):
        AxisWrapper(design.accelerator(), out_beats=out_beats)
