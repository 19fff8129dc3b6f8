# amaranth: UnusedElaboratable=no
"""The host-driven accelerator (`qfab compile --wrapper axilite`, qfab.hw.soc.axilite): its
AXI4-Lite port under cocotbext-axi (tests/board/axilite_tb.py), jobs of one and of several
inferences under random pauses on every channel and after a reset mid-job, every output word
equal to the integer reference's."""

import json
from pathlib import Path

import numpy as np
import pytest
from qfab.compiler.backend import firmware
from qfab.compiler.backend.axis import AXILITE_TOP, axilite_verilog
from qfab.hw.soc.memory_map import ACCEL_REGISTERS, region
from qfab.hw.soc.streamer import words_per_beat
from qfab.sim.run_soc import beats_to_words
from wrapper_cases import reference_env, run_cocotb

import qfab
from qfab.cli import main

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "examples" / "tiny" / "mlp_int2.onnx"


def _job(design, images: int, seed: int) -> dict:
    plan = design.plan
    env = reference_env(design, images, seed)
    inputs = beats_to_words(design.to_beats(env), plan.in_shape.width, plan.in_shape.signed)
    want = np.asarray(env[plan.output]).reshape(images, -1)[:, plan.out_order]
    expected = beats_to_words(want.reshape(-1, plan.out_elems), plan.out_shape.width,
                              plan.out_shape.signed)
    return {"images": images, "in_beats": images * plan.in_beats,
            "out_beats": images * plan.out_beats,
            "inputs": [int(w) for w in inputs], "expected": [int(w) for w in expected]}


def _case(design) -> dict:
    plan = design.plan
    accel = region("accel")
    layout = firmware.job_layout(plan, 4)
    win = words_per_beat(plan.in_shape.width * plan.in_elems)
    wout = words_per_beat(plan.out_shape.width * plan.out_elems)
    return {
        "seed": 3, "pauses": [0.0, 0.3, 0.6],
        "registers": {r.name: accel.base + r.offset for r in ACCEL_REGISTERS},
        "info": win | wout << 8 | len(plan.stages) << 16,
        "n_stages": len(plan.stages),
        "predicted_stage_cycles": [s.cycles for s in plan.stages],
        "in_addr": layout.in_addr, "out_addr": layout.out_addr,
        "unmapped": 0x2000_0000,
        "jobs": [_job(design, 1, 1), _job(design, 4, 2)],
    }


@pytest.fixture(scope="module")
def design():
    return qfab.compile(str(MODEL))


def test_axilite_host_jobs_bit_exact(design, tmp_path):
    case = _case(design)
    assert len({tuple(j["expected"]) for j in case["jobs"]}) > 1     # the jobs differ
    case_file = tmp_path / "case.json"
    case_file.write_text(json.dumps(case))
    run_cocotb(axilite_verilog(design), AXILITE_TOP, "axilite_tb",
               {"QFAB_AXILITE_CASE": str(case_file)}, tmp_path)

def test_compile_wrapper_axilite_writes_the_top(design, tmp_path, capsys):
    out = tmp_path / "design"
    assert main(["compile", str(MODEL), "-o", str(out), "--no-soc", "--wrapper", "axilite"]) == 0
    assert str(out / "axilite.v") in capsys.readouterr().out.splitlines()
    text = (out / "axilite.v").read_text()
    assert text == axilite_verilog(design)
    assert "input s_axil_awvalid;" in text and "output [31:0] s_axil_rdata;" in text
    core = (out / "qfab_accelerator.core").read_text()
    assert "toplevel: qfab_axilite" in core and "- axilite.v" in core
