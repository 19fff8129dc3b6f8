"""Sweeps on the user's models and data: exporters' model forms the quantizer takes (unnamed
nodes, a fixed batch of one, initializers listed as inputs), --data in each form, and a
failed sweep leaving no output behind."""

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper
from qfab.cost_model.datasets import digits, load_data
from qfab.cost_model.quantize import QuantSpec, quantize_model

import qfab
from qfab.cli import main
from qfab.errors import QfabError

ROOT = Path(__file__).resolve().parents[2]
FLOAT_MODEL = ROOT / "examples" / "digits" / "digits_float.onnx"
PER_LAYER = ([QuantSpec("int", 8), QuantSpec("int", 4), QuantSpec("int", 6)],
             [QuantSpec("int", 8), QuantSpec("int", 5), QuantSpec("int", 4)])


def _unnamed(m: onnx.ModelProto) -> None:
    for n in m.graph.node:
        n.name = ""


def _batch_of_one(m: onnx.ModelProto) -> None:
    for v in list(m.graph.input) + list(m.graph.output):
        v.type.tensor_type.shape.dim[0].Clear()
        v.type.tensor_type.shape.dim[0].dim_value = 1


def _initializers_as_inputs(m: onnx.ModelProto) -> None:
    for t in m.graph.initializer:
        m.graph.input.append(helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))


def _reference(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    return next(iter(qfab.reference(model, x).values()))


@pytest.mark.parametrize("edit", [_unnamed, _batch_of_one, _initializers_as_inputs])
def test_exporter_forms_quantize_as_the_plain_model(edit):
    """Each form gives the plain model's integers exactly, with per-layer widths landing on
    their own layers (unnamed nodes used to share the first layer's)."""
    d = load_data("digits", 64, 40)
    plain = onnx.load(FLOAT_MODEL)
    changed = onnx.load(FLOAT_MODEL)
    edit(changed)
    want = quantize_model(plain, *PER_LAYER, d.x_calibration)
    got = quantize_model(changed, *PER_LAYER, d.x_calibration)
    bits = [int(onnx.numpy_helper.to_array(t)) for t in got.graph.initializer
            if t.name.endswith("_w_bits")]
    assert bits == [8, 4, 6]
    names = [t.name for t in got.graph.initializer]
    assert len(names) == len(set(names))
    assert [v.name for v in got.graph.input] == ["input"]
    np.testing.assert_array_equal(_reference(got, d.x_test), _reference(want, d.x_test))


def _space(tmp_path: Path, model: Path = FLOAT_MODEL, extra: str = "") -> Path:
    path = tmp_path / "space.yaml"
    path.write_text(f"model: {model}\ncalibration_images: 64\ntest_images: 40\n{extra}"
                    "formats:\n  int: [3, 8]\nfolding:\n  - {max_pe: 2, max_simd: 4}\n")
    return path


def _sweep(tmp_path: Path, name: str, *args: str) -> list[dict]:
    out = tmp_path / name
    assert main(["sweep", "--space", str(_space(tmp_path)), "-o", str(out), "--workers", "1",
                 "--quiet", *args]) == 0
    return json.loads((out / "results.json").read_text())


def test_data_forms_score_as_the_builtin_digits(tmp_path: Path):
    """The digits as an .npz and as a folder of .npy score exactly as the built-in set;
    inputs alone give an SNR against the float model that grows with the width."""
    d = digits()
    arrays = {"x": d.x_test, "y": d.y_test, "x_calibration": d.x_calibration}
    np.savez(tmp_path / "digits.npz", **arrays)
    folder = tmp_path / "digits_npy"
    folder.mkdir()
    for k, v in arrays.items():
        np.save(folder / f"{k}.npy", v)
    builtin = _sweep(tmp_path, "builtin")
    for data in (tmp_path / "digits.npz", folder):
        rows = _sweep(tmp_path, data.stem, "--data", str(data))
        assert [(r["metric"], r["score"], r["lut"]) for r in rows] == \
            [(r["metric"], r["score"], r["lut"]) for r in builtin]
    assert builtin[1]["metric"] == "top1" and builtin[1]["score"] > 0.9

    np.savez(tmp_path / "inputs.npz", x=d.x_test[:200])
    snr = _sweep(tmp_path, "snr", "--data", str(tmp_path / "inputs.npz"))
    assert [r["metric"] for r in snr] == ["snr_db", "snr_db"]
    assert snr[1]["score"] > snr[0]["score"] + 10 and snr[1]["accuracy"] == ""
    np.save(tmp_path / "inputs.npy", d.x_test[:200])
    from_npy = load_data(str(tmp_path / "inputs.npy"), 64, 40)
    from_npz = load_data(str(tmp_path / "inputs.npz"), 64, 40)
    np.testing.assert_array_equal(from_npy.x_calibration, from_npz.x_calibration)
    np.testing.assert_array_equal(from_npy.x_test, from_npz.x_test)
    assert from_npy.metric == "snr_db" and len(from_npy.x_test) == 40


def test_digits_shifted_moves_each_test_image_by_one_pixel():
    """digits-shifted: the 360 test images unmoved first, then at each of the eight one-pixel
    moves, zero-filled, labels repeated; calibration as digits."""
    d, moved = load_data("digits"), load_data("digits-shifted")
    n = len(d.x_test)
    assert moved.x_test.shape == (9 * n, *d.x_test.shape[1:]) and len(moved.y_test) == 9 * n
    np.testing.assert_array_equal(moved.x_calibration, d.x_calibration)
    np.testing.assert_array_equal(moved.x_test[:n], d.x_test)
    for k in range(9):
        np.testing.assert_array_equal(moved.y_test[k * n:(k + 1) * n], d.y_test)
    up_left = moved.x_test[n:2 * n]  # the first move: one pixel up and one left
    np.testing.assert_array_equal(up_left[..., :-1, :-1], d.x_test[..., 1:, 1:])
    assert not up_left[..., -1, :].any() and not up_left[..., :, -1].any()
    sums = moved.x_test.reshape(9, n, -1).sum(-1)
    assert len({tuple(np.round(row, 3)) for row in sums}) == 9  # nine different moves


def test_image_folder_interleaves_classes(tmp_path: Path):
    from PIL import Image

    for c, value in (("a", 0), ("b", 255)):
        (tmp_path / c).mkdir()
        for i in range(3):
            Image.fromarray(np.full((4, 5), value, np.uint8)).save(tmp_path / c / f"{i}.png")
    d = load_data(str(tmp_path), calibration=2)
    assert d.x_calibration.shape == (2, 1, 4, 5)
    assert list(d.y_test) == [0, 1, 0, 1] and d.metric == "top1"
    assert d.x_test[1].max() == 1.0 and d.x_test[0].max() == 0.0


@pytest.mark.parametrize("arrays, message", [
    ({"y": np.zeros(3)}, "no key 'x'"),
    ({"x": np.zeros((4, 2)), "y": np.zeros(3, np.int64)}, "y has 3 samples"),
    ({"x": np.zeros((4, 2)), "labels": np.zeros(4)}, "unknown key 'labels'"),
])
def test_bad_data_is_one_line(tmp_path: Path, arrays, message):
    path = tmp_path / f"bad_{len(arrays)}_{sorted(arrays)[-1]}.npz"
    np.savez(path, **arrays)
    with pytest.raises(QfabError, match=message):
        load_data(str(path))


def test_failed_sweep_leaves_no_output(tmp_path: Path, capsys):
    """A model the quantizer refuses, data that does not read and data of the wrong shape
    stop the sweep before anything is written; the output folder is not created."""
    two_inputs = onnx.load(FLOAT_MODEL)
    two_inputs.graph.input.append(helper.make_tensor_value_info("extra", 1, [1]))
    bad_model = tmp_path / "two_inputs.onnx"
    onnx.save(two_inputs, bad_model)
    out = tmp_path / "out"
    assert main(["sweep", "--space", str(_space(tmp_path, bad_model)), "-o", str(out)]) == 2
    assert "one-input models (this one has 2: input, extra)" in capsys.readouterr().err
    (tmp_path / "text.npz").write_text("not numpy")
    assert main(["sweep", "--space", str(_space(tmp_path)), "-o", str(out), "--data",
                 str(tmp_path / "text.npz")]) == 2
    assert "text.npz" in capsys.readouterr().err
    np.savez(tmp_path / "wrong_shape.npz", x=np.zeros((8, 3, 10, 10), np.float32))
    assert main(["sweep", "--space", str(_space(tmp_path)), "-o", str(out), "--data",
                 str(tmp_path / "wrong_shape.npz")]) == 2
    assert "samples are 3x10x10, the model's input 'input' takes N x 1x8x8" in \
        capsys.readouterr().err
    assert not out.exists()


def test_space_dataset_is_relative_to_the_space_file(tmp_path: Path):
    from qfab.cost_model.space import load_space

    np.savez(tmp_path / "mine.npz", x=np.zeros((4, 1, 8, 8), np.float32))
    space = load_space(_space(tmp_path, extra="dataset: mine.npz\n"))
    assert space.data == str(tmp_path / "mine.npz")
    with pytest.raises(QfabError, match="key 'dataset'.*missing.npz: no such file"):
        load_space(_space(tmp_path, extra="dataset: missing.npz\n"))
