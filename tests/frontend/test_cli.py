"""`qfab inspect` and `qfab reference` through qfab.cli.main."""

from __future__ import annotations

import argparse
import json
import tempfile

import ml_dtypes
import numpy as np
import onnx
import pytest
from frontend_harness import node_case_model, node_cases
from onnx import TensorProto, helper, numpy_helper
from qonnx_graphs import Builder

from qfab.api import reference
from qfab.cli import main

TFC = "/work/shared/models/qonnx/TFC_2W2A.onnx"
DIGITS = "/work/shared/models/mnist4/digits.npy"
CONVS = "/work/shared/models/qdq/ort_qdq_convs.onnx"
PERCHANNEL = "/work/shared/models/qdq/ort_conv_qdq_s8s8_perchannel.onnx"


# TFC_2W2A is an MLP 784-64-64-64-10 (shared/models/MANIFEST.md).
TFC_LAYERS = [(784, 64), (64, 64), (64, 64), (64, 10)]


def test_inspect_json_tfc(capsys):
    assert main(["inspect", TFC, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    dense = [layer for layer in summary["layers"] if layer["op"] == "dense"]
    shapes = TFC_LAYERS
    assert len(dense) == len(shapes) == 4
    for layer, (k, n) in zip(dense, shapes, strict=True):
        assert layer["macs"] == k * n
        assert layer["inputs"][0]["shape"] == [1, k] and layer["outputs"][0]["shape"] == [1, n]
        assert layer["inputs"][0]["format"] == "int2"
        assert 2 <= layer["acc_bits"] <= 32
        assert layer["outputs"][0]["format"] == f"acc{layer['acc_bits']}"
    assert summary["total_macs"] == sum(k * n for k, n in shapes)
    assert summary["inputs"][0]["format"] == "float32"


def test_inspect_json_requant_multipliers(capsys):
    assert main(["inspect", PERCHANNEL, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    (rq,) = [layer for layer in summary["layers"] if layer["op"] == "requant"]
    (conv,) = [layer for layer in summary["layers"] if layer["op"] == "conv"]
    mult, shift = np.array(rq["requant"]["mult"]), np.array(rq["requant"]["shift"])
    assert mult.shape == shift.shape == (32,)  # per-channel weight scales
    assert np.all((mult >= 2**15) & (mult < 2**16))  # 16-bit multipliers, normalized
    assert conv["macs"] == 32 * 26 * 26 * 3 * 3 * 3
    assert rq["inputs"][0]["format"] == conv["outputs"][0]["format"]
    (q,) = [layer for layer in summary["layers"] if layer["op"] == "quantize"]
    model = onnx.load(PERCHANNEL)
    node = next(n for n in model.graph.node if n.op_type == "QuantizeLinear")
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    assert q["scale"] == float(inits[node.input[1]]) and q["zero_point"] == int(
        inits[node.input[2]])


def test_inspect_table(capsys):
    assert main(["inspect", PERCHANNEL]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].split()[:4] == ["layer", "op", "input", "output"]
    rows = {line.split()[1]: line for line in out[2:-1]}
    assert set(rows) == {"quantize", "conv", "requant", "dequantize"}
    assert "584064" in rows["conv"] and ">>" in rows["requant"]
    assert out[-1] == "total MACs per inference: 584064"


def test_reference_npy(tmp_path, capsys):
    x = np.load(DIGITS) / np.float32(255)
    np.save(tmp_path / "in.npy", x)
    out = tmp_path / "sub" / "out.npz"
    assert main(["reference", TFC, "--input", str(tmp_path / "in.npy"),
                 "--output", str(out)]) == 0
    with np.load(out) as saved:
        (name,) = saved.files
        y = saved[name]
    said = capsys.readouterr()
    assert said.out == f"{out}\n"
    assert said.err == f"outputs (dyadic requantization): {name} float32[4, 10]\n"
    assert y.dtype == np.float32 and y.shape == (4, 10)
    assert list(y.argmax(axis=1)) == [7, 2, 1, 0]
    assert np.array_equal(y, reference(TFC, x)[name])
    assert [p.name for p in out.parent.iterdir()] == ["out.npz"]  # no temporary left


def test_reference_npz_by_name_and_modes(tmp_path):
    rng = np.random.default_rng(3)
    xs = {f"X_{i}": rng.integers(0, 256, (2, 1, 5, 5)).astype(np.uint8) for i in range(3)}
    np.savez(tmp_path / "in.npz", **xs)
    for mode in ("dyadic", "onnx"):
        out = tmp_path / f"{mode}.npz"
        assert main(["reference", CONVS, "--input", str(tmp_path / "in.npz"),
                     "--output", str(out), "--requant", mode]) == 0
        expected = reference(CONVS, xs, requant=mode)
        with np.load(out) as saved:
            assert sorted(saved.files) == ["Y_0", "Y_1", "Y_2"]
            for k in saved.files:
                assert saved[k].dtype == np.uint8
                assert np.array_equal(saved[k], expected[k])


def _low_precision_model() -> onnx.ModelProto:
    """float8 E4M3FN codes in -> dequantized float, and int4 codes out."""
    inits = [numpy_helper.from_array(np.float32(0.5), "s"),
             numpy_helper.from_array(np.float32(0.25), "s4"),
             helper.make_tensor("z4", TensorProto.INT4, [], [0])]
    nodes = [helper.make_node("DequantizeLinear", ["x8", "s"], ["y"]),
             helper.make_node("DequantizeLinear", ["x4", "s4", "z4"], ["x4d"]),
             helper.make_node("QuantizeLinear", ["x4d", "s4", "z4"], ["y4"])]
    graph = helper.make_graph(
        nodes, "lowp",
        [helper.make_tensor_value_info("x8", TensorProto.FLOAT8E4M3FN, ["N", 6]),
         helper.make_tensor_value_info("x4", TensorProto.INT4, ["N", 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 6]),
         helper.make_tensor_value_info("y4", TensorProto.INT4, ["N", 5])],
        initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])


def test_reference_tensorproto_folder_float8_int4(tmp_path):
    model_path = tmp_path / "lowp.onnx"
    onnx.save(_low_precision_model(), model_path)
    x8 = np.array([[0.0, -1.5, 448.0, 0.015625, -0.0, 3.25]], ml_dtypes.float8_e4m3fn)
    x4 = np.array([[-8, -1, 0, 3, 7]], ml_dtypes.int4)
    folder = tmp_path / "data"
    folder.mkdir()
    for i, arr in enumerate((x8, x4)):
        onnx.save_tensor(numpy_helper.from_array(arr), folder / f"input_{i}.pb")
    out = tmp_path / "out.npz"
    assert main(["reference", str(model_path), "--input", str(folder),
                 "--output", str(out)]) == 0
    with np.load(out) as saved:
        y, y4 = saved["y"], saved["y4"]
    assert np.array_equal(y, x8.astype(np.float32) * np.float32(0.5))
    assert y4.dtype == np.int8 and np.array_equal(y4, x4.astype(np.int8))


@pytest.mark.parametrize("problem", ["missing", "bad-key", "count", "suffix", "shape"])
def test_reference_input_errors(problem, tmp_path, capsys):
    inp = tmp_path / "in.npz"
    out = tmp_path / "out.npz"
    xs = {f"X_{i}": np.zeros((1, 1, 5, 5), np.uint8) for i in range(3)}
    model = CONVS
    if problem == "bad-key":
        xs["X_9"] = xs.pop("X_2")
    if problem == "shape":
        xs["X_0"] = np.zeros((1, 1, 4, 4), np.uint8)
    if problem == "count":
        inp = tmp_path / "in.npy"
        np.save(inp, xs["X_0"])
    elif problem != "missing":
        np.savez(inp, **xs)
    if problem == "suffix":
        out = tmp_path / "out.txt"
    assert main(["reference", model, "--input", str(inp), "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("failure", [ZeroDivisionError("division by zero"), SystemExit(1),
                                     AssertionError()])
def test_unexpected_exception_is_exit_3_with_traceback_file(failure, tmp_path, monkeypatch,
                                                             capsys):
    """A bug in a command: one line on stderr naming the file its traceback went to, and
    exit 3, never 1 (the hardware disagrees)."""
    import qfab.commands.inspect

    def crash(args):
        raise failure

    monkeypatch.setenv("QFAB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(qfab.commands.inspect, "run", crash)
    assert main(["inspect", TFC]) == 3
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("qfab inspect: internal error") and type(failure).__name__ in line
    (report,) = (tmp_path / "cache").glob("crash-*.txt")
    assert line.endswith(f"traceback in {report}")
    text = report.read_text()
    assert f"command: qfab inspect {TFC}" in text
    assert "Traceback (most recent call last)" in text and "in crash" in text


def test_crash_report_falls_back_to_the_temp_folder(tmp_path, monkeypatch, capsys):
    import qfab.commands.inspect

    def crash(args):
        raise RuntimeError("boom")

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("QFAB_CACHE_DIR", str(blocker))
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    monkeypatch.setattr(qfab.commands.inspect, "run", crash)
    assert main(["inspect", TFC]) == 3
    (report,) = (tmp_path / "tmp").glob("crash-*.txt")
    assert capsys.readouterr().err.strip().endswith(str(report))


@pytest.mark.parametrize("argv, status", [([], 2), (["--help"], 0), (["inspect", "--help"], 0),
                                          (["no-such-command"], 2), (["inspect"], 2)])
def test_argument_errors_exit_2_and_help_0(argv, status, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == status
    if status == 2:
        assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_every_flag_is_documented_and_help_gives_version_and_exit_statuses(capsys):
    from qfab import __version__
    from qfab.cli import build_parser

    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for name, sub in commands.choices.items():
        assert sub.description, name
        for action in sub._actions:
            assert action.help and action.help.strip(), (name, action.dest)
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out == f"qfab {__version__}\n"
    text = parser.format_help()
    for status in range(4):
        assert f"{status} " in text.split("Exit status:")[1]


QUANTIZE_TO_CODES = [(op, c) for op, c in node_cases(("QuantizeLinear",))
                     if node_case_model(c)[2][0].dtype.isbuiltin != 1]


@pytest.mark.parametrize("op,case", QUANTIZE_TO_CODES, ids=[c.name for _, c in QUANTIZE_TO_CODES])
def test_reference_writes_types_numpy_lacks_as_codes(op, case, tmp_path, capsys):
    """ONNX's own QuantizeLinear cases with float8, float4, int4 and int2 outputs: OUT.npz
    reads back without ml_dtypes, float8/float4 as uint8 bit patterns, int4/int2 as int8
    values, uint4/uint2 as uint8 (once, E5M2 was written as a dtype '<f1' NumPy cannot read)."""
    model, feeds, (expected,) = node_case_model(case)
    onnx.save(model, tmp_path / "model.onnx")
    (tmp_path / "in").mkdir()
    (x,) = feeds.values()
    onnx.save_tensor(numpy_helper.from_array(x), tmp_path / "in" / "input_0.pb")
    out = tmp_path / "out.npz"
    assert main(["reference", str(tmp_path / "model.onnx"), "--input", str(tmp_path / "in"),
                 "--output", str(out)]) == 0
    with np.load(out, allow_pickle=False) as saved:
        (got,) = saved.values()
    if expected.dtype.name.startswith("float"):
        want = expected.view(np.uint8)
    else:
        want = expected.astype(np.int8 if ml_dtypes.iinfo(expected.dtype).min < 0 else np.uint8)
    assert got.dtype == want.dtype and np.array_equal(got, want)


def test_inspect_a_dense_layer_of_one_output(tmp_path, capsys):
    """A QONNX MLP of one output (1-bit unsigned input codes, a Mul after the MatMul): the
    dequantizer's per-channel scale has one element, once a TypeError in inspect."""
    rng = np.random.default_rng(0)
    b = Builder()
    x = b.quant("x", 1.0, 1, signed=0)
    w = b.quant(b.weight(rng.normal(0, 0.5, (16, 1))), 0.5, 4, narrow=1)
    y = b.node("Mul", [b.node("MatMul", [x, w]), b.const(np.full((1,), 0.25))])
    path = tmp_path / "one_output.onnx"
    onnx.save(b.model((1, 16), y), path)
    assert main(["inspect", str(path), "--json"]) == 0
    layers = json.loads(capsys.readouterr().out)["layers"]
    assert [layer["op"] for layer in layers] == ["quantize", "dense", "dequantize"]
    assert layers[0]["inputs"][0]["format"] == "float32"
    assert layers[0]["outputs"][0]["format"] == "uint1"
    assert layers[2]["scale"] == 1.0 * 0.5 * 0.25
    assert main(["inspect", str(path)]) == 0
    assert "scale 0.125 zp 0" in capsys.readouterr().out
