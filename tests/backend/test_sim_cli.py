"""`qfab sim` through the command line: the JSON keys scripts rely on, and a wave trace."""

import json
from pathlib import Path

import numpy as np

from qfab.cli import main

TINY = Path(__file__).resolve().parents[2] / "examples" / "tiny"
KEYS = {"bit_exact", "cycles", "latency_cycles", "ii_cycles", "stages", "mismatches",
        "first_mismatch", "clock_hz", "throughput_fps", "waves"}


def test_sim_json_with_waves(tmp_path, capsys):
    x = np.load(TINY / "mlp_int2_input.npy")
    np.save(tmp_path / "x.npy", np.concatenate([x, x, x]))
    assert main(["sim", str(TINY / "mlp_int2.onnx"), "--input", str(tmp_path / "x.npy"),
                 "--json", "--waves"]) == 0
    out = json.loads(capsys.readouterr().out)["sim"]
    assert KEYS <= set(out)
    assert out["bit_exact"] is True and out["mismatches"] == 0 and out["first_mismatch"] is None
    assert [s["name"] for s in out["stages"]] == ["fc1", "fc1_out_q", "fc2", "fc2_out_q"]
    # measured = the cycle model's batch x steady + fill, stage by stage
    for s in out["stages"]:
        assert s["cycles"] == s["model_cycles"] == 3 * s["steady_cycles"] + s["fill_cycles"]
    assert (out["cycles"], out["latency_cycles"]) == (out["model_cycles"],
                                                      out["model_latency_cycles"])
    assert out["ii_cycles"] > 0 and out["throughput_fps"] == out["clock_hz"] / out["ii_cycles"]
    trace = Path(out["waves"])
    assert trace.stat().st_size > 1000
    head = trace.read_bytes()[:4096]
    assert b"$timescale" in head or trace.suffix == ".fst"
