"""DepthToSpace after a conv (a super-resolution network's end), quantized by onnxruntime:
qfab's reference equals onnxruntime in both modes, and the shuffle costs no hardware stage."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from ort_quantizer import quantize, run_rows

import qfab
from qfab.errors import QfabError

SHAPE = [1, 2, 5, 6]


def shuffle_model(mode: str) -> onnx.ModelProto:
    rng = np.random.default_rng(3)
    w = numpy_helper.from_array(rng.normal(0, 0.3, (8, 2, 3, 3)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.normal(0, 0.1, 8).astype(np.float32), "b")
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("DepthToSpace", ["r"], ["y"], blocksize=2, mode=mode)]
    graph = helper.make_graph(
        nodes, "shuffle", [helper.make_tensor_value_info("x", TensorProto.FLOAT, SHAPE)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 10, 12])], [w, b])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


@pytest.mark.parametrize("mode", ["DCR", "CRD"])
def test_reference_equals_onnxruntime_and_cosim_is_bit_exact(tmp_path, mode):
    from qfab.cost_model.timing import cosim_differences

    x = np.random.default_rng(0).uniform(-1, 1, [16] + SHAPE[1:]).astype(np.float32)
    path = quantize(shuffle_model(mode), tmp_path / "q.onnx", x)
    assert "DepthToSpace" in {n.op_type for n in onnx.load(path).graph.node}
    (want,) = run_rows(path, x)
    (got,) = qfab.reference(path, x, requant="onnx").values()
    assert np.array_equal(got, want)
    assert len(np.unique(want)) > 10
    design = qfab.compile(path)
    assert [s.op for s in design.plan.stages if s.op in ("reshape", "transpose")] == []
    res = qfab.simulate(design, x[:2])
    assert res.bit_exact, res.first_mismatch
    assert not cosim_differences(design.plan, res)


def test_bad_blocksize_is_one_line():
    model = shuffle_model("DCR")
    model.graph.node[2].attribute[0].i = 3  # 9 does not divide 8 channels
    x = np.random.default_rng(0).uniform(-1, 1, [4] + SHAPE[1:]).astype(np.float32)
    bad = _qdq_by_hand(model)
    # With the output's shape declared, onnx's shape inference (in the validator) finds it.
    with pytest.raises(QfabError, match="DepthToSpace") as err:
        qfab.reference(bad, x)
    assert "\n" not in str(err.value)
    bad.graph.output[0].type.tensor_type.ClearField("shape")
    with pytest.raises(QfabError, match="DepthToSpace node .*blocksize 3"):
        qfab.reference(bad, x)


def _qdq_by_hand(model: onnx.ModelProto) -> onnx.ModelProto:
    """The float model with QuantizeLinear/DequantizeLinear pairs written directly (onnxruntime
    refuses to quantize a model whose shapes do not infer)."""
    g = model.graph
    s = numpy_helper.from_array(np.float32(0.02), "s")
    z = numpy_helper.from_array(np.int8(0), "z")
    ws = numpy_helper.from_array(np.float32(0.01), "ws")
    wq = numpy_helper.from_array(np.clip(np.round(numpy_helper.to_array(g.initializer[0]) / 0.01),
                                         -127, 127).astype(np.int8), "wq")
    bq = numpy_helper.from_array(np.zeros(8, np.int32), "bq")
    bs = numpy_helper.from_array(np.float32(0.0002), "bs")
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"]),
             helper.make_node("DequantizeLinear", ["wq", "ws"], ["wd"]),
             helper.make_node("DequantizeLinear", ["bq", "bs"], ["bd"]),
             helper.make_node("Conv", ["xd", "wd", "bd"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("QuantizeLinear", ["c", "s", "z"], ["cq"]),
             helper.make_node("DequantizeLinear", ["cq", "s", "z"], ["cd"]),
             g.node[2]]
    g.node[2].input[0] = "cd"
    graph = helper.make_graph(nodes, "bad", list(g.input), list(g.output), [s, z, ws, wq, bq, bs])
    out = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    out.ir_version = 8
    return out
