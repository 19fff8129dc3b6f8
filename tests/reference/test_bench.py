"""The reference benchmark runs and reports both executors side by side."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("qonnx")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench import reference_speed  # noqa: E402
from bench.__main__ import modules  # noqa: E402


def test_bench_modules_are_discovered():
    assert "reference_speed" in modules()


def test_reference_speed_reports_each_model_and_batch():
    lines = reference_speed.run(seconds=0.03)
    rows = [line.split() for line in lines[1:]]
    assert [(r[0], int(r[1])) for r in rows] == [
        (m, b) for m in ("TFC_2W2A", "ort_conv_qdq_s8s8") for b in reference_speed.BATCHES]
    for r in rows:
        ours, theirs, ratio = float(r[2]), float(r[3]), float(r[4])
        assert ours > 0 and theirs > 0
        assert ratio == pytest.approx(ours / theirs, rel=0.01, abs=0.001)
        assert r[-1] == "LSB" and float(r[-2]) <= 1  # the executors agree within one code
