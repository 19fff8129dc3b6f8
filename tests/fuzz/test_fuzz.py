"""Bad models and inputs are one-line user errors (exit 2), never a traceback and never a
silent exit 0: one regression test for each class the mutation fuzzer found, the seeds
accepted as they are, and a short fixed-seed fuzz run (`make fuzz` runs the long one)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

sys.path.insert(0, str(Path(__file__).parent))

from fuzz_corpus import seeds  # noqa: E402
from fuzz_mutate import Mutant, npz_bytes  # noqa: E402
from fuzz_run import FAILURES, Runner, classify, fuzz, run_command  # noqa: E402
from qfab.compiler.frontend.channels_last import channels_first  # noqa: E402
from qfab.compiler.frontend.validate import validate_model  # noqa: E402

SEEDS = {s.name: s for s in seeds()}


def _node(model: onnx.ModelProto, name: str) -> onnx.NodeProto:
    return next(n for n in model.graph.node if n.name == name)


def _init(model: onnx.ModelProto, name: str, value) -> None:
    init = next(t for t in model.graph.initializer if t.name == name)
    init.CopyFrom(numpy_helper.from_array(np.asarray(value, dtype=_dtype(init)), name))


def _dtype(init: onnx.TensorProto):
    return helper.tensor_dtype_to_np_dtype(init.data_type)


def _attr(node_name: str, name: str, value) -> Callable[[onnx.ModelProto], None]:
    def edit(model: onnx.ModelProto) -> None:
        node = _node(model, node_name)
        for a in [a for a in node.attribute if a.name == name]:
            node.attribute.remove(a)
        node.attribute.append(helper.make_attribute(name, value))
    return edit


def _const(name: str, value, dtype=None) -> Callable[[onnx.ModelProto], None]:
    def edit(model: onnx.ModelProto) -> None:
        if dtype is None:
            _init(model, name, value)
            return
        init = next(t for t in model.graph.initializer if t.name == name)
        init.CopyFrom(numpy_helper.from_array(np.asarray(value, dtype), name))
    return edit


def _input_dim(axis: int, value: int | None) -> Callable[[onnx.ModelProto], None]:
    def edit(model: onnx.ModelProto) -> None:
        dims = model.graph.input[0].type.tensor_type.shape.dim
        if value is None:
            del dims[:]
        else:
            dims[axis].dim_value = value
    return edit


def _opset(version: int | None) -> Callable[[onnx.ModelProto], None]:
    def edit(model: onnx.ModelProto) -> None:
        if version is None:
            del model.opset_import[:]
        else:
            next(o for o in model.opset_import if o.domain in ("", "ai.onnx")).version = version
    return edit


def _ir_version(model: onnx.ModelProto) -> None:
    model.ir_version = 99


def _domain(model: onnx.ModelProto) -> None:
    _node(model, "conv1").domain = "com.example"
    model.opset_import.append(helper.make_opsetid("com.example", 1))


def _no_outputs(model: onnx.ModelProto) -> None:
    del model.graph.output[:]


def _softmax_opset(model: onnx.ModelProto) -> None:
    node = next(n for n in model.graph.node if n.op_type == "QLinearSoftmax")
    node.attribute[0].CopyFrom(helper.make_attribute("opset", 0.5))


def _per_axis_scale(model: onnx.ModelProto) -> None:
    _init(model, "conv1_w_scale", np.full(5, 0.01))
    _attr("conv1_w_DequantizeLinear", "axis", 0)(model)


def _channels_last_batch_norm(model: onnx.ModelProto) -> None:
    """A 2-D BatchNormalization put in qonnx's channels-last domain: the rewrite to
    channels-first transposes an NHWC tensor that is not there."""
    node = next(n for n in model.graph.node if n.op_type == "BatchNormalization")
    node.domain = "qonnx.custom_op.channels_last"
    model.opset_import.append(helper.make_opsetid(node.domain, 1))


def _swap_resize_and_transpose(model: onnx.ModelProto) -> None:
    """Two nodes out of topological order in a channels-last model, whose rewrite to
    channels-first used to put them back in order (and the model was taken)."""
    nodes = model.graph.node
    i = next(k for k, n in enumerate(nodes) if n.op_type == "Resize")
    a, b = onnx.NodeProto(), onnx.NodeProto()
    a.CopyFrom(nodes[i])
    b.CopyFrom(nodes[i + 1])
    nodes[i].CopyFrom(b)
    nodes[i + 1].CopyFrom(a)


# (seed, what the mutation is, the edit, words the error line must hold)
MODEL_CASES = [
    ("qonnx_ops", "Quant scale 0", _const("s_in", 0.0), "scales must be finite, positive"),
    ("qonnx_ops", "Quant scale NaN", _const("s_in", np.nan), "not finite"),
    ("digits_int8", "QDQ scale inf", _const("conv1_out_scale", np.inf), "not finite"),
    ("digits_int8", "QDQ scale subnormal", _const("input_scale", 1e-40), "subnormal"),
    ("digits_int8", "QDQ scale negative", _const("conv1_w_scale", -0.01), "not positive"),
    ("qdq_pools", "Conv stride 0", _attr("conv", "strides", [0, 1]), "strides"),
    ("qdq_pools", "Conv negative pad", _attr("conv", "pads", [-1, 0, 0, 0]), "pads"),
    ("qdq_pools", "Conv dilation 0", _attr("conv", "dilations", [0, 1]), "dilations"),
    ("qdq_pools", "Conv zero-size kernel", _attr("conv", "kernel_shape", [0, 0]),
     "kernel_shape"),
    ("digits_int8", "Conv pads 100", _attr("conv1", "pads", [100] * 4), "whole outputs"),
    ("digits_int8", "kernel_shape against the weights", _attr("conv1", "kernel_shape", [5, 7]),
     "contradicts the weight"),
    ("qdq_pools", "MaxPool ceil_mode 2", _attr("maxpool", "ceil_mode", 2), "ceil_mode"),
    ("digits_int8", "Gemm transB 5", _attr("fc", "transB", 5), "transB"),
    ("digits_int8", "zero point float32", _const("conv1_out_zero_point", 3.0, np.float32),
     "zero point"),
    ("digits_int8", "per-axis scale of the wrong length", _per_axis_scale, "5 values"),
    ("qoperator_ops", "QLinear zero point of the wrong type", _const("zx", 1, np.int32),
     "zero point"),
    ("qonnx_ops", "Quant bit width 2.5", _const("bw4", 2.5), "bit width"),
    ("qonnx_ops", "Quant bit width NaN", _const("bw8", np.nan), "bit width"),
    ("qonnx_ops", "Quant signed 7", _attr("quant_in", "signed", 7), "signed"),
    ("qonnx_ops", "Quant signed 0.5", _attr("quant_w", "signed", 0.5), "signed"),
    ("qonnx_ops", "Quant zero point 1e6", _const("zp0", 1e6), "zero point"),
    ("qonnx_ops", "Quant rounding mode", _attr("quant_in", "rounding_mode", "BOGUS"),
     "rounding_mode"),
    ("qonnx_ops", "FloatQuant 0 exponent bits", _const("e4", 0.0), "exponent bit width"),
    ("qonnx_ops", "FloatQuant NaN scale", _const("s_f", np.nan), "not finite"),
    ("qonnx_ops", "BipolarQuant scale 1e-40", _const("s_b", 1e-40), "subnormal"),
    ("qonnx_ops", "MultiThreshold out_scale 0", _attr("thresholds", "out_scale", 0.0),
     "out_scale"),
    ("qonnx_ops", "requant multiplier 1e30", _const("s_mm", 1e30), "2^-48..2^24"),
    ("qdq_pools", "input dimension 0", _input_dim(2, 0), "dimension 2 is 0"),
    ("qdq_pools", "input dimension -3", _input_dim(1, -3), "dimension 1"),
    ("qdq_pools", "input dimension 10^9", _input_dim(3, 10**9), "dimension 3"),
    ("qdq_pools", "rank-0 input", _input_dim(0, None), "rank 0"),
    ("qdq_pools", "Conv window larger than the input", _input_dim(2, 2), "conv'"),
    ("qdq_pools", "pool window larger than its input", _input_dim(2, 3), "maxpool'"),
    ("mlp_softmax_qop", "QLinearSoftmax opset 0.5", _softmax_opset, "opset"),
    ("digits_int8", "unknown domain", _domain, "domain 'com.example'"),
    ("digits_int8", "opset 1", _opset(1), "opset 1"),
    ("digits_int8", "opset 999", _opset(999), "opset 999"),
    ("digits_int8", "no opset_import", _opset(None), "opset_import"),
    ("digits_int8", "ir_version 99", _ir_version, "ir_version 99"),
    ("digits_int8", "no outputs", _no_outputs, "no outputs"),
    ("upsample_nhwc_qonnx", "channels-last nodes out of order", _swap_resize_and_transpose,
     "topologically sorted, however input"),
    ("tfc_w1a1_qonnx", "channels-last BatchNormalization of 2-D data",
     _channels_last_batch_norm, "is not a permutation of the axes"),
    # onnx's strict type and shape inference: an int4 weight before opset 21 (where ONNX has
    # int4), and a stride that contradicts the declared output shape.
    ("digits_int4", "int4 at opset 19", _opset(19), "tensor(int4)"),
    ("conv_s2_int8", "output shape contradicted", _attr("conv", "strides", [3, 5]),
     "Inferred shape and existing shape differ"),
]


def _one_line_error(command: str, argv: list[str]) -> str:
    code, stderr, crash = run_command(argv, timeout=120)
    assert crash is None, crash[1]
    lines = stderr.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith(f"qfab {command}: error: "), \
        stderr
    return lines[0]


@pytest.mark.parametrize("seed,what,edit,words", MODEL_CASES,
                         ids=[c[1].replace(" ", "_") for c in MODEL_CASES])
def test_invalid_model_is_one_line_error(seed, what, edit, words, tmp_path):
    model = onnx.load_from_string(SEEDS[seed].model)
    edit(model)
    path = tmp_path / "model.onnx"
    path.write_bytes(model.SerializeToString())
    assert words in _one_line_error("inspect", ["inspect", str(path)])


def test_invalid_utf8_node_name(tmp_path):
    data = SEEDS["digits_int8"].model.replace(b"conv1_relu", b"\xff\xfenv1_relu")
    path = tmp_path / "model.onnx"
    path.write_bytes(data)
    assert "UTF-8" in _one_line_error("inspect", ["inspect", str(path)])


@pytest.mark.parametrize("data", [b"", b"\x08\x07\x12"], ids=["empty", "truncated"])
def test_empty_or_truncated_file(data, tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(data)
    _one_line_error("inspect", ["inspect", str(path)])


def _with(x: np.ndarray, kind: str) -> np.ndarray:
    y = x.astype(np.float32)
    if kind == "empty batch":
        return x[:0]
    if kind in ("NaN", "inf"):
        y.reshape(-1)[3] = np.nan if kind == "NaN" else np.inf
        return y
    return {"strings": np.full(x.shape, "pixel"), "complex": x.astype(np.complex64),
            "bool": x > 0}[kind]


INPUT_CASES = [("digits_int8", "empty batch", "no sample"), ("digits_int8", "NaN", "NaN"),
               ("qdq_pools", "inf", "infinite"), ("digits_int8", "strings", "dtype"),
               ("digits_int8", "complex", "complex64"), ("qonnx_ops", "bool", "bool")]


@pytest.mark.parametrize("seed,kind,words", INPUT_CASES, ids=[c[1] for c in INPUT_CASES])
def test_invalid_input_array_is_one_line_error(seed, kind, words, tmp_path):
    s = SEEDS[seed]
    (tmp_path / "model.onnx").write_bytes(s.model)
    name, x = next(iter(s.inputs.items()))
    (tmp_path / "in.npz").write_bytes(npz_bytes({name: _with(x, kind)}))
    line = _one_line_error("reference", ["reference", str(tmp_path / "model.onnx"), "--input",
                                         str(tmp_path / "in.npz"), "--output",
                                         str(tmp_path / "out.npz")])
    assert words in line
    assert not (tmp_path / "out.npz").exists()


def test_integer_codes_out_of_range(tmp_path):
    """A uint8 model input given codes past 255 (as int64) is refused, not wrapped."""
    s = SEEDS["qoperator_ops"]
    model = onnx.load_from_string(s.model)
    # The graph input becomes the quantized codes themselves.
    model.graph.input[0].type.tensor_type.elem_type = onnx.TensorProto.UINT8
    q = _node(model, "q_in")
    model.graph.node.remove(q)
    for n in model.graph.node:
        n.input[:] = ["x" if i == "xq" else i for i in n.input]
    (tmp_path / "model.onnx").write_bytes(model.SerializeToString())
    x = np.full((2, 2, 6, 6), 300, np.int64)
    (tmp_path / "in.npz").write_bytes(npz_bytes({"x": x}))
    line = _one_line_error("reference", ["reference", str(tmp_path / "model.onnx"), "--input",
                                         str(tmp_path / "in.npz"), "--output",
                                         str(tmp_path / "out.npz")])
    assert "300..300" in line


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_seed_models_pass_validation(name):
    """The validation layer refuses none of the real models (shared models, examples, the
    FINN, Brevitas and Keras corpus) nor the built seeds, as the importer hands them to it
    (qonnx's channels-last ops rewritten to channels-first)."""
    validate_model(channels_first(onnx.load_from_string(SEEDS[name].model)))


@pytest.mark.parametrize("name", ["digits_int8", "qonnx_ops"])
def test_seed_runs_through_every_command(name):
    """A valid seed is accepted by all four commands (exit 0), as the fuzzer assumes. (The
    QONNX seed's compile elaborates a threshold stage whose output tensor is wider than its
    levels: once a ConnectionError.)"""
    runner = Runner()
    try:
        s = SEEDS[name]
        outcomes = runner.run(Mutant(s.name, "seed", s.model, npz_bytes(s.inputs), False))
    finally:
        runner.close()
    assert [(o.command, o.status) for o in outcomes] == [
        (c, "ok") for c in ("inspect", "reference", "estimate", "compile")]


def test_classify():
    assert classify("inspect", 0, "", None, invalid=True).status == "silent_accept"
    assert classify("inspect", 2, "qfab inspect: error: bad\n", None, True).status == \
        "user_error"
    assert classify("inspect", 2, "qfab inspect: error: a\nb\n", None, True).status == "crash"
    assert classify("inspect", 3, "qfab inspect: internal error: KeyError", None,
                    False).status == "crash"


def test_short_fuzz_run():
    """A fixed-seed sample of every mutation: no crash and no silent accept."""
    report = fuzz(60, seed=7)
    assert report.mutants == 60
    failures = {s: report.total(s) for s in FAILURES}
    assert failures == {"crash": 0, "silent_accept": 0}, "\n".join(report.lines())


def test_float8_overflow_without_saturation_is_one_line_error(tmp_path):
    """Inputs so large that an E4M3FN quantizer with saturate=0 gives NaN (as ONNX defines
    it; with saturate=1 it clamps): NaN cannot enter an integer layer, so `reference`
    refuses in one line rather than crashing."""
    if "mlp_fp8" not in SEEDS:
        pytest.skip("the examples are not in this checkout")
    s = SEEDS["mlp_fp8"]
    model = onnx.load_from_string(s.model)
    _attr("fc1_out_q", "saturate", 0)(model)
    (tmp_path / "model.onnx").write_bytes(model.SerializeToString())
    name, x = next(iter(s.inputs.items()))
    (tmp_path / "in.npz").write_bytes(npz_bytes({name: (x * 1e6).astype(np.float32)}))
    line = _one_line_error("reference", ["reference", str(tmp_path / "model.onnx"), "--input",
                                         str(tmp_path / "in.npz"), "--output",
                                         str(tmp_path / "out.npz")])
    assert "saturate=0" in line


def test_softmax_of_tiny_output_scale_is_one_line_error(tmp_path):
    """A QLinearSoftmax whose output scale is 1e-30: 1/scale does not fit the integer
    softmax (was an OverflowError in the reference), and requantizing its 2**-15 codes needs
    a multiplier past 2^24: one line naming the node."""
    s = SEEDS["mlp_softmax_qop"]
    model = onnx.load_from_string(s.model)
    _const("y_scale", 1e-30)(model)
    (tmp_path / "model.onnx").write_bytes(model.SerializeToString())
    (tmp_path / "in.npz").write_bytes(npz_bytes(s.inputs))
    line = _one_line_error("reference", ["reference", str(tmp_path / "model.onnx"), "--input",
                                         str(tmp_path / "in.npz"), "--output",
                                         str(tmp_path / "out.npz")])
    assert "y_quantized" in line and "multiplier" in line


@pytest.mark.parametrize("command", ["estimate", "compile"])
def test_add_of_a_tensor_to_itself_is_one_line_error(command, tmp_path):
    """QLinearAdd(c, c): no fork in the stream for the planner to join (was an
    AttributeError in the backend's residual-add mapping)."""
    (tmp_path / "model.onnx").write_bytes(SEEDS["qoperator_ops"].model)
    argv = [command, str(tmp_path / "model.onnx")]
    if command == "compile":
        argv += ["--no-soc", "-o", str(tmp_path / "out")]
    assert "'qadd'" in _one_line_error(command, argv)


def test_clip_apart_from_relu_range_is_a_constant():
    """A QCDQ activation whose zero point (the ReLU's floor) lies above its Clip's top: every
    code is the Clip's top, as onnxruntime computes (was an empty-range AssertionError)."""
    import onnxruntime as ort

    from qfab.api import reference

    model = onnx.load_from_string(SEEDS["cnn_w4a4_int32bias_qcdq"].model)
    _const("/2/act_quant/export_handler/Constant_1_output_0", 60)(model)
    inp = model.graph.input[0]
    shape = [2] + [d.dim_value for d in inp.type.tensor_type.shape.dim[1:]]
    x = np.random.default_rng(0).random(shape).astype(np.float32)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    expected = np.concatenate([session.run(None, {inp.name: x[i:i + 1]})[0] for i in range(2)])
    (got,) = reference(model, x).values()
    # float32 outputs of a dequantize: equal to rounding of the last float operation
    assert np.all(np.abs(got - expected) <= 1e-6 * np.abs(expected).max())
    assert len(np.unique(expected, axis=0)) == 1  # the constant activation: one output
