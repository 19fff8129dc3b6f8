"""The whole SoC in Verilator: the firmware on the RV32I core streams a batch from RAM
through the accelerator, computes each image's argmax in software and reports cycles; the
outputs are bit-exact against the reference, and the firmware's argmax is the model's."""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from qfab.compiler.backend import firmware
from qfab.sim.run_elf import build_soc_model, run_harness
from shared_models import SHARED

import qfab
from qfab.errors import QfabError

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "examples" / "digits"


def _check(design, res, batch: int):
    assert res.bit_exact, res.first_mismatch
    assert res.argmax_matches, (res.argmax, res.ref_argmax)
    # The streamer keeps up with the accelerator: the job takes no longer than the bare
    # accelerator's budget (tests/backend/test_cosim_models.py).
    assert 0 < res.accel_cycles <= batch * design.plan.ii_cycles * 1.25 + 2000
    assert res.cycles == res.accel_cycles + res.control_cycles
    assert 0 < res.argmax_cycles < res.control_cycles
    assert 0 < res.latency_cycles < res.accel_cycles
    assert [s["name"] for s in res.stages] == [s.name for s in design.plan.stages]
    # Every stage worked on every inference, and no stage outlasted the job.
    for s in res.stages:
        assert batch * s["predicted_cycles"] <= s["cycles"] <= res.accel_cycles
    assert f"inferences: {batch}" in res.console


def test_digits_int8_on_the_soc():
    x = np.load(DIGITS / "sample_images.npy")
    design = qfab.compile(DIGITS / "digits_int8.onnx")
    res = qfab.simulate(design, x, soc=True)
    _check(design, res, len(x))
    assert res.argmax.tolist() == [2, 3, 4, 5, 6, 7, 8, 9]
    ref = qfab.reference(DIGITS / "digits_int8.onnx", x)["logits"]
    assert np.array_equal(res.outputs["logits"], ref)


def test_tfc_2w2a_on_the_soc():
    x = (np.load(SHARED / "mnist4" / "digits.npy") / 255).astype(np.float32)
    design = qfab.compile(SHARED / "qonnx" / "TFC_2W2A.onnx")
    res = qfab.simulate(design, x, soc=True)
    _check(design, res, len(x))
    assert res.argmax.tolist() == [7, 2, 1, 0]
    assert res.outputs["90"].argmax(1).tolist() == [7, 2, 1, 0]


def test_conv_feature_map_argmax_through_the_stream_order():
    """A conv output leaves channels last; the firmware maps stream positions back to the
    model's NCHW indices (qfab_model.h) before taking the argmax."""
    model = ROOT / "examples" / "tiny" / "conv_s2_int8.onnx"
    x0 = np.load(ROOT / "examples" / "tiny" / "conv_s2_int8_input.npy")
    x = np.concatenate([x0, np.random.default_rng(4).normal(0, 1, (3,) + x0.shape[1:])])
    design = qfab.compile(model)
    assert not np.array_equal(design.plan.out_order, np.arange(design.plan.out_order.size))
    res = qfab.simulate(design, x.astype(np.float32), soc=True)
    _check(design, res, len(x))
    assert design.plan.out_shape.signed and len(set(res.argmax.tolist())) > 1


def test_sim_soc_command_json(tmp_path):
    images = tmp_path / "x.npy"
    np.save(images, np.load(DIGITS / "sample_images.npy")[:3])
    proc = subprocess.run([sys.executable, "-m", "qfab.cli", "sim", "--soc", "--json",
                           str(DIGITS / "digits_int8.onnx"), "--input", str(images)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)["sim"]
    assert out["bit_exact"] and out["soc"] and out["argmax_matches"]
    # The streamer feeds the accelerator as the co-simulation harness does: every stage is
    # active for the cycles the cycle model gives the batch.
    assert [s["cycles"] for s in out["stages"]] == [s["model_cycles"] for s in out["stages"]]
    assert out["argmax"] == [2, 3, 4]
    assert out["cycles"] == out["accel_cycles"] + out["control_cycles"]
    assert len(out["stages"]) == 7 and out["throughput_fps"] > 0


def test_firmware_without_a_job_says_so(tmp_path):
    """The SoC started with nothing in RAM: the firmware finds no job and exits 2."""
    design = qfab.compile(DIGITS / "digits_int8.onnx")
    _, verilog = firmware.build_soc(design, tmp_path)
    with tempfile.TemporaryFile(mode="w+") as console:
        run = run_harness(build_soc_model(verilog), {}, entry=firmware.ROM.base,
                          max_cycles=100_000, stdout=console)
        console.seek(0)
        assert console.read() == "no job in RAM\n"
    assert (run.reason, run.code) == ("exit", 2)


def test_batch_larger_than_ram_is_a_clear_error():
    design = qfab.compile(DIGITS / "digits_int8.onnx")
    most = firmware.max_images(design.plan)
    assert firmware.job_layout(design.plan, most).end <= firmware.RAM.end - firmware.STACK_BYTES
    x = np.zeros((most + 1, 1, 8, 8), np.float32)
    message = f"a batch of {most + 1} does not fit .*at most {most} images"
    with pytest.raises(QfabError, match=message):
        qfab.simulate(design, x, soc=True)
