"""Models with several outputs: built together in one accelerator (two heads on a shared
layer; tests/corpus/test_ort_branches.py has an output taken mid-chain), or the logits and
the control core's result from them (tests/corpus/test_ort_corpus.py); ``--output-name``
builds one or several; an unknown name is a user error.
A tensor with several consumers quantized once per consumer (onnxruntime's
DedicatedQDQPair) is the same design as quantized once."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

import qfab
from qfab.cli import main

TESTS = Path(__file__).parents[1]
sys.path.insert(0, str(TESTS / "frontend"))
from ort_quantizer import quantize, run_rows  # noqa: E402
from qonnx_graphs import DOMAIN, Builder  # noqa: E402


def _two_heads() -> onnx.ModelProto:
    """A shared hidden layer read by two Dense heads, each a graph output."""
    rng = np.random.default_rng(0)
    b = Builder()
    h = b.quant(b.node("Relu", [b.node("MatMul", [b.quant("x", 2**-4, 8),
                                                  b.quant(b.const(rng.normal(0, .5, (8, 6))),
                                                          2**-3, 4)])]), 2**-3, 4, signed=0)
    heads = [b.node("MatMul", [h, b.quant(b.const(rng.normal(0, .5, (6, n))), 2**-3, 4)])
             for n in (3, 2)]
    g = helper.make_graph(b.nodes, "two_heads",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
                          [helper.make_tensor_value_info(o, TensorProto.FLOAT, None)
                           for o in heads], b.inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13),
                                               helper.make_opsetid(DOMAIN, 1)])


def test_two_heads_are_one_accelerator_bit_exact():
    """The shared layer forks into both heads; the shorter head's stages read the fork and
    its output follows the other's on the one output stream."""
    from qfab.cost_model.timing import cosim_differences

    model = _two_heads()
    first, second = (o.name for o in model.graph.output)
    design = qfab.compile(model, soc=False)
    plan = design.plan
    assert len(plan.outputs) == 2 and plan.out_elems * plan.out_beats == 3 + 2
    assert [s.on_skip for s in plan.stages].count(True) >= 1 and plan.stages[-1].op == "output"
    x = np.random.default_rng(3).normal(0, 1, (3, 8)).astype(np.float32)
    res = qfab.simulate(design, {"x": x})
    assert res.bit_exact, res.first_mismatch
    ref = qfab.reference(model, x)
    assert all(np.array_equal(res.outputs[k], ref[k]) for k in (first, second))
    assert not cosim_differences(plan, res)


def test_output_name_picks_one_or_several():
    model = _two_heads()
    first, second = (o.name for o in model.graph.output)
    for name, elems in ((first, 3), (second, 2)):
        design = qfab.compile(model, output=name, soc=False)
        assert design.graph.outputs == [name] and design.plan.out_elems * \
            design.plan.out_beats == elems
    for names in (f"{second},{first}", [second, first]):
        design = qfab.compile(model, output=names, soc=False)
        assert design.graph.outputs == [first, second]  # the model's order


def test_logits_and_their_activation_are_one_design():
    model = onnx.load(TESTS / "corpus" / "onnxruntime" / "mlp_sigmoid_qdq.onnx")
    design = qfab.compile(model, soc=False)
    assert design.graph.outputs == ["logits", "y"]
    assert [n.op for n in design.plan.tail] == ["lookup"]
    assert design.plan.output == design.plan.tail[0].inputs[0]
    assert qfab.compile(model, output="logits", soc=False).plan.tail == []


def test_unknown_output_name_is_one_line(tmp_path, capsys):
    path = tmp_path / "two_heads.onnx"
    onnx.save(_two_heads(), path)
    assert main(["estimate", str(path), "--output-name", "nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "'nope' is not an output" in err


def _residual_block(tmp_path, dedicated: bool) -> Path:
    """Conv -> Relu -> Conv, added to the first Relu's output -> Relu, quantized by
    onnxruntime's quantize_static with or without a Q/DQ pair per consumer."""
    from onnx import numpy_helper

    rng = np.random.default_rng(0)
    weights = [numpy_helper.from_array(rng.normal(0, .3, (4, 4, 3, 3)).astype(np.float32), w)
               for w in ("W1", "W2")]
    nodes = [helper.make_node("Conv", ["x", "W1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "W2"], ["c2"], pads=[1, 1, 1, 1]),
             helper.make_node("Add", ["c2", "r1"], ["a"]), helper.make_node("Relu", ["a"], ["y"])]
    g = helper.make_graph(nodes, "residual", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [1, 4, 8, 8])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, None)], weights)
    return quantize(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]),
                    tmp_path / f"q{int(dedicated)}.onnx", rng.normal(0, 1, (16, 4, 8, 8)),
                    extra_options={"DedicatedQDQPair": dedicated})


def test_one_quantizer_per_consumer_is_merged(tmp_path):
    shared, dedicated = (_residual_block(tmp_path, d) for d in (False, True))
    quantizers = [n for n in onnx.load(dedicated).graph.node
                  if n.op_type == "QuantizeLinear" and n.input[0] == "r1"]
    assert len(quantizers) == 2  # the form this test is about
    designs = [qfab.compile(m, soc=False) for m in (shared, dedicated)]
    assert [len(d.graph.nodes) for d in designs] == [len(designs[0].graph.nodes)] * 2
    assert [s.op for s in designs[1].plan.stages] == [s.op for s in designs[0].plan.stages] \
        == ["conv", "requant", "conv", "requant", "add"]
    x = np.random.default_rng(1).normal(0, 1, (3, 4, 8, 8)).astype(np.float32)
    want = run_rows(dedicated, x)[0]
    assert np.array_equal(qfab.reference(dedicated, x, requant="onnx")["y"], want)
    assert np.array_equal(qfab.reference(dedicated, x)["y"], qfab.reference(shared, x)["y"])


def test_branches_that_do_not_nest_are_one_line(tmp_path, capsys):
    """A tensor read by two residual blocks whose sums are added: its branches end at
    different joins, which the walk does not nest; one line naming the tensor, exit 2."""
    rng = np.random.default_rng(4)
    inits, nodes = {}, []

    def conv(x: str, name: str) -> str:
        inits[name + "_w"] = rng.normal(0, .3, (4, 4, 1, 1)).astype(np.float32)
        nodes.append(helper.make_node("Conv", [x, name + "_w"], [name], name=name))
        return name

    def block(x: str, name: str) -> str:
        inner = conv(conv(x, name + "_a"), name + "_b")
        nodes.append(helper.make_node("Add", [inner, x], [name], name=name))
        return name

    stem = conv("x", "stem")
    nodes.append(helper.make_node("Add", [block(stem, "left"), block(stem, "right")], ["y"],
                                  name="join"))
    g = helper.make_graph(nodes, "forks", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [1, 4, 4, 4])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, None)],
        [onnx.numpy_helper.from_array(v, k) for k, v in inits.items()])
    path = quantize(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]),
                    tmp_path / "forks.onnx", rng.normal(0, 1, (8, 4, 4, 4)))
    assert main(["estimate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "branches end at different joins" in err and "stem" in err
