"""Models with several outputs: built together when each is the accelerator's output or the
control core's result from it (tests/corpus/test_ort_corpus.py co-simulates logits with
their sigmoid), else one at a time by ``--output-name``; an unknown name is a user error."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import qfab
from qfab.cli import main
from qfab.errors import QfabError

TESTS = Path(__file__).parents[1]
sys.path.insert(0, str(TESTS / "frontend"))
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


def test_outputs_on_two_branches_are_built_one_at_a_time():
    model = _two_heads()
    first, second = (o.name for o in model.graph.output)
    with pytest.raises(QfabError, match=f"graph output '{first}' .*--output-name"):
        qfab.compile(model, soc=False)
    for name, elems in ((first, 3), (second, 2)):
        design = qfab.compile(model, output=name, soc=False)
        assert design.graph.outputs == [name] and design.plan.out_elems * \
            design.plan.out_beats == elems


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
