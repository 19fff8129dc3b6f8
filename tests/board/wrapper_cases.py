"""What the wrapper tests (test_axis.py, test_axilite.py) share: random inferences of a
compiled design run through the integer reference, and the Verilator build and cocotb run of
a wrapper top."""

import os
import sys
from pathlib import Path

import numpy as np
from cocotb_tools.runner import get_results, get_runner
from qfab.sim.reference import Reference

from qfab.api import _input_codes

HERE = Path(__file__).parent


def reference_env(design, batch: int, seed: int) -> dict:
    """The reference's tensors (by name) on ``batch`` random inputs drawn from ``seed``."""
    graph = design.graph
    rng = np.random.default_rng(seed)
    name = graph.inputs[0]
    shape = (batch,) + tuple(graph.tensors[name].shape[1:])
    feeds = {name: _input_codes(graph, name, rng.normal(0, 1.5, size=shape).astype(np.float32))}
    return Reference(graph, "dyadic").run(feeds, keep=True)


def run_cocotb(verilog: str, top: str, bench: str, case_env: dict, tmp_path: Path) -> None:
    """Build ``verilog`` (module ``top``) with Verilator and run the cocotb module ``bench``
    (beside this file) with ``case_env`` in its environment; every test in it must pass."""
    source = tmp_path / f"{top}.v"
    source.write_text(verilog)
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    runner = get_runner("verilator")
    runner.build(sources=[source], hdl_toplevel=top, build_dir=tmp_path / "build",
                 build_args=["-Wno-fatal"])
    results = runner.test(test_module=bench, hdl_toplevel=top, build_dir=tmp_path / "build",
                          test_dir=HERE, extra_env=case_env,
                          results_xml=str(tmp_path / "results.xml"))
    tests, failed = get_results(results)
    assert tests == 1 and failed == 0
