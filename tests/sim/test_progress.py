"""Progress lines: long steps say what runs every few seconds, quick ones say nothing; the CLI
prints them on stderr unless --quiet, and qfab.simulate hands them to a callback."""

import time
from pathlib import Path

import numpy as np
import pytest

import qfab
from qfab import progress
from qfab.cli import main

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "examples" / "digits" / "digits_int8.onnx"


@pytest.fixture(autouse=True)
def heard(monkeypatch):
    monkeypatch.delenv("QFAB_PROGRESS", raising=False)
    monkeypatch.setenv("QFAB_CYCLE_CACHE", "0")  # the cycle model runs (and says so) each time


@pytest.fixture
def at_once(monkeypatch):
    """Every step counts as long: its first line comes at once."""
    monkeypatch.setattr(progress, "FIRST", 0.0)
    monkeypatch.setattr(progress, "EVERY", 0.05)


def test_a_long_step_says_so_and_how_long_it_took(monkeypatch):
    monkeypatch.setattr(progress, "FIRST", 0.05)
    monkeypatch.setattr(progress, "EVERY", 0.05)
    lines = []
    with progress.progress_to(lines.append):
        with progress.ticking("counting sheep"):
            deadline = time.monotonic() + 10
            while len(lines) < 2 and time.monotonic() < deadline:  # two lines, however loaded
                time.sleep(0.01)
        with progress.ticking("blinking"):
            pass
    assert len(lines) >= 3 and all(line.startswith("counting sheep: ") for line in lines)
    assert lines[0].endswith(" s") and lines[-1].startswith("counting sheep: done in ")


def test_false_is_silent(at_once, capsys):
    with progress.progress_to(False), progress.ticking("working"):
        time.sleep(0.1)
    assert capsys.readouterr().err == ""


def test_cli_prints_progress_unless_quiet(at_once, tmp_path, capsys, monkeypatch):
    model = str(ROOT / "examples" / "tiny" / "mlp_int2.onnx")
    assert main(["compile", model, "-o", str(tmp_path / "a"), "--no-soc"]) == 0
    err = capsys.readouterr().err
    assert "qfab compile: elaborating the accelerator and writing its Verilog" in err
    assert "qfab compile: running the cycle model on 2 inferences" in err
    assert main(["compile", model, "-o", str(tmp_path / "b"), "--no-soc", "--quiet"]) == 0
    assert "qfab compile:" not in capsys.readouterr().err
    monkeypatch.setenv("QFAB_PROGRESS", "0")
    assert main(["compile", model, "-o", str(tmp_path / "c"), "--no-soc"]) == 0
    assert "qfab compile:" not in capsys.readouterr().err


def test_simulate_hands_lines_to_a_callback(at_once):
    pytest.importorskip("cocotb")
    x = np.load(ROOT / "examples" / "digits" / "sample_images.npy")[:2]
    lines = []
    design = qfab.compile(DIGITS)
    res = qfab.simulate(design, x, progress=lines.append)
    assert res.bit_exact
    said = "\n".join(lines)
    for step in ("running the integer reference on 2 inferences",
                 f"simulating {2 * design.plan.in_beats} input beats of accel in Verilator"):
        assert step in said
    assert any(line.endswith(" s") and "done in" in line for line in lines)


def test_compile_hands_lines_to_a_callback(at_once, tmp_path, capsys):
    model = ROOT / "examples" / "tiny" / "mlp_int2.onnx"
    lines = []
    qfab.compile(model, out_dir=tmp_path / "out", soc=False, progress=lines.append)
    said = "\n".join(lines)
    assert "running the cycle model on 2 inferences" in said
    assert "elaborating the accelerator and writing its Verilog" in said
    qfab.compile(model, out_dir=tmp_path / "quiet", soc=False, progress=False)
    assert capsys.readouterr().err == ""


def test_reference_and_estimate_hand_lines_to_a_callback(at_once):
    from qfab.compiler.backend.plan import plan

    from qfab.api import lower_model

    x = np.load(ROOT / "examples" / "digits" / "sample_images.npy")
    batch = np.concatenate([x] * (qfab.api.TICKING_BATCH // len(x) + 1))
    lines = []
    qfab.reference(DIGITS, batch, progress=lines.append)
    assert f"running the integer reference on {len(batch)} inferences: 0 s" in lines
    lines.clear()
    qfab.estimate(plan(lower_model(DIGITS)), progress=lines.append)
    assert "running the cycle model on 2 inferences: 0 s" in lines
