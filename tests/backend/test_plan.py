"""The plan and the files `qfab compile` writes, without running a simulator."""

import json
from pathlib import Path

import numpy as np
from qfab.compiler.backend.plan import choose_folding, stream_order
from shared_models import SHARED

import qfab
from qfab.cli import main

ROOT = Path(__file__).resolve().parents[2]
TFC = SHARED / "qonnx" / "TFC_2W2A.onnx"
DIGITS = ROOT / "examples" / "digits" / "digits_int8.onnx"


def test_tfc_stages_and_cycles():
    design = qfab.compile(TFC)
    ops = [s.op for s in design.plan.stages]
    assert ops == ["dense", "threshold"] * 3 + ["dense", "bias"]
    for s in design.plan.stages:
        if s.op == "dense":
            f = s.folding
            assert f["mh"] % f["pe"] == 0 and f["mw"] % f["simd"] == 0
            assert s.cycles == max(f["mh"] // f["pe"] * f["mw"] // f["simd"], s.in_beats)
    assert design.plan.ii_cycles == max(s.cycles for s in design.plan.stages)


def test_target_fps_picks_fewest_multipliers_meeting_budget():
    pe, simd = choose_folding(64, 784, 1, budget=1000)
    assert 64 // pe * 784 // simd <= 1000
    # no cheaper folding meets the budget
    for p in range(1, 65):
        for s in range(1, 785):
            if 64 % p == 0 and 784 % s == 0 and p * s < pe * simd:
                assert 64 // p * 784 // s > 1000
    fast = qfab.compile(TFC, target_fps=1e6)  # 100 cycles at 100 MHz
    slow = qfab.compile(TFC, target_fps=1e3)
    assert fast.plan.ii_cycles <= 100 < slow.plan.ii_cycles <= 100_000


def test_stream_order_is_channels_last():
    order = stream_order((1, 2, 2, 3))  # C=2, H=2, W=3
    x = np.arange(12).reshape(2, 2, 3)
    assert (x.ravel()[order] == x.transpose(1, 2, 0).ravel()).all()


def test_compile_writes_deterministic_files(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["compile", str(DIGITS), "-o", str(a)]) == 0
    assert main(["compile", str(DIGITS), "-o", str(b)]) == 0
    assert (a / "accelerator.v").read_bytes() == (b / "accelerator.v").read_bytes()
    manifest = json.loads((a / "manifest.json").read_text())
    assert [s["op"] for s in manifest["stages"]][:2] == ["conv", "requant"]
    assert "module qfab_accelerator" in (a / "accelerator.v").read_text()
    # The SoC: firmware and soc.v are reproducible too, and the ROM holds the firmware.
    for name in ("soc.v", "firmware.hex", "qfab_model.h"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert (a / "firmware.elf").read_bytes()[:4] == b"\x7fELF"
    soc = (a / "soc.v").read_text()
    assert "module qfab_soc" in soc and "module qfab_accelerator" not in soc
    # The accelerator inside is accelerator.v's, its modules renamed (converted once).
    accelerator = (a / "accelerator.v").read_text()
    body = accelerator[accelerator.index("module qfab_accelerator("):]
    assert soc.endswith(body.replace("qfab_accelerator", "qfab_soc_accelerator"))
    # The ROM is four byte-lane memories in banks (block RAM on ECP5), its first word in bank 0.
    first_word = int((a / "firmware.hex").read_text().split()[0], 16)
    for lane in range(4):
        assert f"lane{lane}_bank0[0] = 8'h{first_word >> 8 * lane & 0xFF:02x};" in soc, lane
    assert manifest["soc"]["max_images"] > 8 and manifest["soc"]["in_words_per_beat"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]  # no temporaries left


def test_unsupported_model_leaves_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    assert main(["compile", str(bad), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.onnx" in err[0]
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["bad.onnx"]


def test_independent_outputs_are_one_design_or_picked_by_name():
    model = SHARED / "qdq" / "ort_qdq_convs.onnx"
    stages = qfab.compile(model, soc=False).plan.stages
    assert [s.op for s in stages] == ["input", "conv", "requant"] * 3 + ["output"] * 2
    assert [s.source for s in stages if s.op == "input"] == [None, -1, -1]
    design = qfab.compile(model, output="Y_1", soc=False)
    assert design.graph.inputs == ["X_1"] and design.graph.outputs == ["Y_1"]
    assert [s.op for s in design.plan.stages] == ["conv", "requant"]
    design = qfab.compile(model, output="Y_2,Y_0", soc=False)
    assert design.graph.inputs == ["X_0", "X_2"] and design.graph.outputs == ["Y_0", "Y_2"]


def test_compile_keeps_a_folder_that_is_not_a_design(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    assert main(["compile", str(DIGITS), "--no-soc", "-o", str(out)]) == 2
    assert "is not a qfab design folder" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]
    # an earlier design's folder is replaced
    assert main(["compile", str(DIGITS), "--no-soc", "-o", str(tmp_path / "d")]) == 0
    assert main(["compile", str(DIGITS), "--no-soc", "-o", str(tmp_path / "d")]) == 0
