"""Number formats in hardware, bit-exact in Verilator through qfab.compile / qfab.simulate:
float8 E4M3 weights and activations (minifloat requantizers with a fused ReLU), 2-bit
integers, a strided padded int8 conv, the 4-bit digits CNN, and an MLP and a depthwise conv with
fixed-point (power-of-two scale) weights and activations built here as QONNX graphs.

Each model runs on the example input beside it plus a few seeded samples, so that negative,
zero and saturating values all pass through every requantizer. One Verilator build a model.
"""

from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from qfab.cost_model.timing import cosim_differences
from qfab.hw.multipliers import IntDecoder, MinifloatDecoder
from qfab.numerics import MinifloatFormat

import qfab

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "examples" / "tiny"
DIGITS = ROOT / "examples" / "digits"
QONNX = "qonnx.custom_op.general"


def _blocks(design, kind: str) -> list:
    return [b for s in design.plan.stages for b in s.blocks if b.kind == kind]


def _inputs(example: np.ndarray, extra: int, seed: int, scale: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    more = rng.normal(0.0, scale, (extra,) + example.shape[1:]).astype(np.float32)
    return np.concatenate([example.astype(np.float32), more])


def _simulate(model, x: np.ndarray):
    design = qfab.compile(model)
    result = qfab.simulate(design, x)
    assert result.bit_exact, result.first_mismatch
    assert result.hw_codes.shape[0] == x.shape[0]
    assert not cosim_differences(design.plan, result)  # the cycle model's figures, exactly
    return design, result


def test_mlp_fp8_minifloat_weights_activations_and_relu():
    x = _inputs(np.load(TINY / "mlp_fp8_input.npy"), 7, 1, 2.0)
    x = np.concatenate([x, x[-2:] * 1e4])  # past E4M3FN's range: saturate=1 gives +-448
    design, result = _simulate(TINY / "mlp_fp8.onnx", x)
    for mvu in _blocks(design, "mvu"):
        # weights stored as 8-bit E4M3 codes, not as their exact fixed-point integers
        assert isinstance(mvu.params["multiplier"].a, MinifloatDecoder)
        assert isinstance(mvu.params["multiplier"].b, MinifloatDecoder)
        assert mvu.params["weights"].max() < 256
    requants = _blocks(design, "minifloat_requant")
    assert len(requants) == 3
    assert [r.params["relu"] for r in requants] == [False, True, False]
    # QuantizeLinear's saturate=1: E4M3FN whose overflow is +-448, not NaN
    assert requants[1].params["in_fmt"] == replace(MinifloatFormat.E4M3FN, saturate=True)
    # the hidden layer had negative values for the ReLU to remove
    graph = design.graph
    relu_in = graph.tensors[next(n for n in graph.nodes if n.attrs.get("relu")).inputs[0]]
    env = qfab.sim.reference.Reference(graph).run({graph.inputs[0]: x}, keep=True)
    assert (relu_in.fmt.decode(env[relu_in.name]) < 0).any()
    assert (np.abs(relu_in.fmt.decode(env[relu_in.name])) == 448).any()  # some saturated
    assert len(np.unique(result.hw_codes)) > 8


def test_mlp_int2():
    x = _inputs(np.load(TINY / "mlp_int2_input.npy"), 7, 2, 1.5)
    design, result = _simulate(TINY / "mlp_int2.onnx", x)
    shapes = [b.params["multiplier"].b.code_shape.width for b in _blocks(design, "mvu")]
    assert shapes == [2, 2]
    assert set(np.unique(result.hw_codes)) <= {0, 1, 2, 3} and len(
        np.unique(result.hw_codes)) > 1


def test_conv_stride_two_with_padding_int8():
    x = _inputs(np.load(TINY / "conv_s2_int8_input.npy"), 3, 3, 1.0)
    design, result = _simulate(TINY / "conv_s2_int8.onnx", x)
    (window,) = _blocks(design, "window")
    assert window.params["stride"] == (2, 2) and window.params["padding"] == (1, 1, 1, 1)
    assert result.outputs["output"].shape == (4, 6, 5, 5)


def test_digits_int4():
    x = np.load(DIGITS / "sample_images.npy")[:4]
    design, result = _simulate(DIGITS / "digits_int4.onnx", x)
    ref = qfab.reference(DIGITS / "digits_int4.onnx", x)
    (name,) = ref
    assert np.array_equal(result.outputs[name], ref[name])
    assert max(b.params["multiplier"].b.code_shape.width for b in _blocks(design, "mvu")) <= 4


def _fixed_point_mlp(rng: np.random.Generator) -> onnx.ModelProto:
    """QONNX: x -> Quant(Q3.4) -> MatMul(Quant(W, Q0.5)) -> Quant(Q4.3) -> Relu ->
    Quant(unsigned Q4.4) -> MatMul(Quant(W2, Q1.6)) -> Quant(Q5.2). Every scale is a power of
    two, so every tensor is a fixed-point word and every requantization a plain shift."""
    nodes, inits = [], []

    def const(name: str, value) -> str:
        inits.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name

    def quant(x: str, name: str, frac_bits: int, bits: int, signed: int = 1) -> str:
        nodes.append(helper.make_node(
            "Quant", [x, const(f"{name}_s", 2.0 ** -frac_bits), const(f"{name}_z", 0.0),
                      const(f"{name}_b", bits)], [name], domain=QONNX, signed=signed,
            narrow=0, rounding_mode="ROUND"))
        return name

    w1 = quant(const("w1_f", rng.normal(0, 0.4, (12, 10))), "w1", 5, 6)
    w2 = quant(const("w2_f", rng.normal(0, 0.5, (10, 5))), "w2", 6, 8)
    h = quant("x", "xq", 4, 8)
    nodes.append(helper.make_node("MatMul", [h, w1], ["mm1"]))
    h = quant("mm1", "h1", 3, 8)
    nodes.append(helper.make_node("Relu", [h], ["relu"]))
    h = quant("relu", "h2", 4, 8, signed=0)
    nodes.append(helper.make_node("MatMul", [h, w2], ["mm2"]))
    quant("mm2", "out", 2, 8)
    graph = helper.make_graph(
        nodes, "fixed_mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 12])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 5])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13),
                                                   helper.make_opsetid(QONNX, 1)])


def test_mlp_fixed_point_weights_and_activations():
    model = _fixed_point_mlp(np.random.default_rng(5))
    x = np.random.default_rng(6).normal(0, 2.0, (8, 12)).astype(np.float32)
    design, result = _simulate(model, x)
    mvus = _blocks(design, "mvu")
    assert [type(b.params["multiplier"].b) for b in mvus] == [IntDecoder, IntDecoder]
    # power-of-two scales: every requantizer multiplies by a power of two
    for r in _blocks(design, "requant") + _blocks(design, "threshold"):
        for m in np.atleast_1d(r.params.get("mult", 1)):
            assert int(m) & (int(m) - 1) == 0
    codes = result.hw_codes
    assert codes.min() < 0 < codes.max()  # signed Q5.2 outputs of both signs


def _fixed_point_depthwise(rng: np.random.Generator) -> onnx.ModelProto:
    """QONNX: x [N, 4, 5, 5] -> Quant(Q3.4) -> depthwise 3x3 Conv (pads 1) of Quant(W, Q0.5)
    -> Quant(Q4.3): fixed-point codes padded with zeros, summed a channel at a time."""
    inits = [numpy_helper.from_array(np.asarray(v, np.float32), n) for n, v in (
        ("w_f", rng.normal(0, 0.4, (4, 1, 3, 3))), ("x_s", 2.0 ** -4), ("w_s", 2.0 ** -5),
        ("o_s", 2.0 ** -3), ("z", 0.0), ("b8", 8), ("b6", 6))]
    q = dict(domain=QONNX, signed=1, narrow=0, rounding_mode="ROUND")
    nodes = [helper.make_node("Quant", ["x", "x_s", "z", "b8"], ["xq"], **q),
             helper.make_node("Quant", ["w_f", "w_s", "z", "b6"], ["w"], **q),
             helper.make_node("Conv", ["xq", "w"], ["c"], name="dw", group=4,
                              kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Quant", ["c", "o_s", "z", "b8"], ["out"], **q)]
    graph = helper.make_graph(
        nodes, "fixed_dw", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 5, 5])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 4, 5, 5])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13),
                                                   helper.make_opsetid(QONNX, 1)])


def test_depthwise_fixed_point():
    model = _fixed_point_depthwise(np.random.default_rng(7))
    x = np.random.default_rng(8).normal(0, 2.0, (4, 4, 5, 5)).astype(np.float32)
    design, result = _simulate(model, x)
    (dw,) = _blocks(design, "depthwise")
    assert dw.params["in_shape"].width == 8 and dw.params["weight_shape"].width <= 6
    codes = result.hw_codes
    assert codes.min() < 0 < codes.max()


@pytest.mark.parametrize("fmt", ["E4M3FN"])
def test_minifloat_requant_spec_is_what_the_block_takes(fmt):
    """No Verilator: the plan's spec builds the block, whose model is the reference op."""
    from qfab.compiler.backend.accelerator import make_block

    design = qfab.compile(TINY / "mlp_fp8.onnx")
    for spec in _blocks(design, "minifloat_requant"):
        block = make_block(spec)
        block._MustUse__silence = True  # asked for its parameters, never elaborated
        assert block.fmt == replace(getattr(MinifloatFormat, fmt), saturate=True)  # saturate=1
        assert block.out_shape.width == 8
