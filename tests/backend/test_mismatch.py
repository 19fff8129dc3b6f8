"""A design that differs from the reference is caught: bit_exact is False, the first
differing element is named, and `qfab sim` says so and exits 1."""

from pathlib import Path

import numpy as np

import qfab
from qfab.cli import main

TINY = Path(__file__).resolve().parents[2] / "examples" / "tiny"


def test_a_wrong_design_is_caught_with_its_first_mismatch(tmp_path, monkeypatch, capsys):
    model = TINY / "mlp_int2.onnx"
    rng = np.random.default_rng(2)
    x = np.concatenate([np.load(TINY / "mlp_int2_input.npy"),
                        rng.normal(0, 1.5, (7, 16))]).astype(np.float32)
    design = qfab.compile(model)
    # After planning, change one weight row of fc2: the hardware no longer is the model.
    (mvu,) = [b for s in design.plan.stages if s.name == "fc2" for b in s.blocks
              if b.kind == "mvu"]
    w = mvu.params["weights"]
    w[2] = np.where(w[2] > 0, -2, 1)
    result = qfab.simulate(design, x)
    assert not result.bit_exact and result.mismatches > 0
    diff = np.argwhere(result.hw_codes != result.ref_codes)
    assert {int(i) for i in diff[:, 1]} == {2}  # only output channel 2 changed
    first = result.first_mismatch
    assert first.index == tuple(int(i) for i in diff[0])
    assert (first.expected, first.got) == (result.ref_codes[first.index],
                                           result.hw_codes[first.index])

    monkeypatch.setattr("qfab.flow.compile", lambda *args, **kwargs: design)
    np.save(tmp_path / "x.npy", x)
    assert main(["sim", str(model), "--input", str(tmp_path / "x.npy")]) == 1
    out = capsys.readouterr().out
    assert f"verdict: MISMATCH in {result.mismatches} of {result.ref_codes.size} " in out
    assert f"first mismatch in {first.tensor} at index {list(first.index)}: " \
           f"expected {first.expected}, got {first.got}" in out
