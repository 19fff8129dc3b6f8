"""Average and global average pooling, depthwise convolution and residual adds in hardware:
small float models quantized by onnxruntime's quantize_static, compiled, and co-simulated
bit-exactly in Verilator with the cycle model exact; the pools' and the depthwise MAC's input
zero points (non-zero with int8 activations after a Relu) move into the next requantizer's
bias, and a residual add's skip path waits in a FIFO beside the layers it skips."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from qfab.cost_model.timing import cosim_differences

import qfab
from qfab.errors import QfabError

quantization = pytest.importorskip("onnxruntime.quantization")
IN_SHAPE = (2, 6, 6)


def _model(head: str) -> onnx.ModelProto:
    """Conv -> Relu -> ``head``: "avgpool" (2x2 stride 2) -> Conv, "avgpool_pads" (the same
    with pads 1 and count_include_pad=1) -> Conv, "gap" -> Flatten -> Gemm, "depthwise" (a
    3x3 depthwise Conv, stride 2, pads 1) -> Relu -> 1x1 Conv, as in MobileNet; "maxpool_end"
    (a 2x2 MaxPool as the model's last layer); "add" (1x1
    Conv -> Add of the Relu's output), "residual2" (two residual blocks in a row, the
    second's skip the first's sum), "projection" (a 1x1 Conv on each branch), "downsample"
    (ResNet's downsampling block: 3x3 stride 2 and 3x3 beside a 1x1 stride-2 shortcut); or,
    for what the hardware lacks, "grouped" (a Conv of two groups of two channels); "nested"
    is a residual block inside another, "input_skip" a Conv -> Add of the model's input."""
    rng = np.random.default_rng(5)
    if head == "input_skip":  # the model's input is the skip
        return _graph(head, [helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1",
                                              pads=[1, 1, 1, 1]),
                             helper.make_node("Add", ["c1", "x"], ["y"], name="add")],
                      {"w1": rng.normal(0, 0.5, (2, 2, 3, 3))})
    inits = {"w1": rng.normal(0, 0.5, (4, 2, 3, 3))}
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1")]
    if head == "gap":
        inits["w2"] = rng.normal(0, 0.5, (3, 4))
        nodes += [helper.make_node("GlobalAveragePool", ["r1"], ["p"], name="gap"),
                  helper.make_node("Flatten", ["p"], ["f"], name="flat"),
                  helper.make_node("Gemm", ["f", "w2"], ["y"], name="fc", transB=1)]
    elif head in ("depthwise", "grouped"):
        depthwise = head == "depthwise"
        inits["w2"] = rng.normal(0, 0.5, (4, 1 if depthwise else 2, 3, 3))
        inits["b2"] = rng.normal(0, 0.5, 4)
        inits["w3"] = rng.normal(0, 0.5, (3, 4, 1, 1))
        nodes += [helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="dw",
                                   group=4 if depthwise else 2, pads=[1, 1, 1, 1],
                                   strides=[2, 2] if depthwise else [1, 1]),
                  helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
                  helper.make_node("Conv", ["r2", "w3"], ["y"], name="pw")]
    elif head == "maxpool_end":  # the model's last layer is a pool, not a MAC's requantizer
        nodes.append(helper.make_node("MaxPool", ["r1"], ["y"], name="pool",
                                      kernel_shape=[2, 2], strides=[2, 2]))
    elif head == "add":
        inits["w2"] = rng.normal(0, 0.5, (4, 4, 1, 1))
        nodes += [helper.make_node("Conv", ["r1", "w2"], ["c2"], name="conv2"),
                  helper.make_node("Add", ["c2", "r1"], ["y"], name="add")]
    elif head == "residual2":
        inits["w2"] = rng.normal(0, 0.3, (4, 4, 3, 3))
        inits["w3"] = rng.normal(0, 0.5, (4, 4, 1, 1))
        nodes += [helper.make_node("Conv", ["r1", "w2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
                  helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
                  helper.make_node("Add", ["r1", "r2"], ["s1"], name="add1"),
                  helper.make_node("Conv", ["s1", "w3"], ["c3"], name="conv3"),
                  helper.make_node("Add", ["c3", "s1"], ["s2"], name="add2"),
                  helper.make_node("Relu", ["s2"], ["y"], name="relu3")]
    elif head == "projection":  # a layer on each branch
        inits["w2"] = rng.normal(0, 0.5, (4, 4, 1, 1))
        inits["w3"] = rng.normal(0, 0.5, (4, 4, 1, 1))
        nodes += [helper.make_node("Conv", ["r1", "w2"], ["c2"], name="conv2"),
                  helper.make_node("Conv", ["r1", "w3"], ["c3"], name="conv3"),
                  helper.make_node("Add", ["c2", "c3"], ["y"], name="add")]
    elif head == "downsample":  # ResNet's: two 3x3 Convs (the first stride 2) beside a 1x1
        inits["w2"] = rng.normal(0, 0.3, (8, 4, 3, 3))
        inits["w3"] = rng.normal(0, 0.2, (8, 8, 3, 3))
        inits["ws"] = rng.normal(0, 0.5, (8, 4, 1, 1))
        nodes += [helper.make_node("Conv", ["r1", "ws"], ["cs"], name="short", strides=[2, 2]),
                  helper.make_node("Conv", ["r1", "w2"], ["c2"], name="conv2", strides=[2, 2],
                                   pads=[1, 1, 1, 1]),
                  helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
                  helper.make_node("Conv", ["r2", "w3"], ["c3"], name="conv3", pads=[1, 1, 1, 1]),
                  helper.make_node("Add", ["c3", "cs"], ["s"], name="add"),
                  helper.make_node("Relu", ["s"], ["y"], name="relu3")]
    elif head == "nested":  # a residual block inside another's main branch
        inits["w2"] = rng.normal(0, 0.5, (4, 4, 1, 1))
        inits["w3"] = rng.normal(0, 0.5, (4, 4, 1, 1))
        nodes += [helper.make_node("Conv", ["r1", "w2"], ["c2"], name="conv2"),
                  helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
                  helper.make_node("Conv", ["r2", "w3"], ["c3"], name="conv3"),
                  helper.make_node("Add", ["c3", "r2"], ["inner"], name="inner"),
                  helper.make_node("Add", ["inner", "r1"], ["y"], name="outer")]
    else:
        inits["w2"] = rng.normal(0, 0.5, (3, 4, 3, 3))
        pads = [1, 1, 1, 1] if head == "avgpool_pads" else [0, 0, 0, 0]
        nodes += [helper.make_node("AveragePool", ["r1"], ["p"], name="pool",
                                   kernel_shape=[2, 2], strides=[2, 2], pads=pads,
                                   count_include_pad=1),
                  helper.make_node("Conv", ["p", "w2"], ["y"], name="conv2")]
    return _graph(head, nodes, inits)


def _graph(name: str, nodes: list, inits: dict) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *IN_SHAPE])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(w.astype(np.float32), n) for n, w in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


class _Calibration(quantization.CalibrationDataReader):
    def __init__(self):
        rng = np.random.default_rng(0)
        self.batches = iter([{"x": rng.normal(0, 1, (1, *IN_SHAPE)).astype(np.float32)}
                             for _ in range(4)])

    def get_next(self):
        return next(self.batches, None)


def _quantized(tmp_path, head: str, activations: str, per_channel: bool = False,
               quant_format: str = "QDQ") -> onnx.ModelProto:
    src, dst = tmp_path / "float.onnx", tmp_path / "qdq.onnx"
    onnx.save(_model(head), src)
    quantization.quantize_static(str(src), str(dst), _Calibration(),
                                 quant_format=getattr(quantization.QuantFormat, quant_format),
                                 activation_type=getattr(quantization.QuantType, activations),
                                 weight_type=quantization.QuantType.QInt8,
                                 per_channel=per_channel)
    return onnx.load(dst)


def _cosimulate(design) -> None:
    """Three seeded inputs through Verilator: bit-exact, and the cycle model's figures and
    the estimate's latency exact."""
    x = np.random.default_rng(1).normal(0, 1, (3, *IN_SHAPE)).astype(np.float32)
    res = qfab.simulate(design, x)
    assert res.bit_exact, res.first_mismatch
    assert not cosim_differences(design.plan, res)
    est = qfab.estimate(design)
    assert est.lut > 0 and est.ff > 0
    assert est.latency_cycles == res.latency_cycles
    ends = res.cosim.completion_cycles
    assert est.ii_cycles == ends[-1] - ends[-2]


def _pool_zero_point(design, op: str) -> int:
    return next(n for n in design.graph.nodes if n.op == op).attrs["x_zero_point"]


@pytest.mark.parametrize("head, activations, op, kind, zero_point, folding", [
    ("avgpool", "QUInt8", "sumpool", "avgpool", 0, {}),
    ("avgpool_pads", "QInt8", "sumpool", "avgpool", -128, {}),
    ("gap", "QInt8", "globalsum", "globalavgpool", -128, dict(max_pe=2)),
])
def test_pool_cosimulation(tmp_path, head, activations, op, kind, zero_point, folding):
    pytest.importorskip("cocotb")
    design = qfab.compile(_quantized(tmp_path, head, activations), **folding)
    assert _pool_zero_point(design, op) == zero_point
    pool = next(s for s in design.plan.stages if s.op == op)
    assert pool.blocks[-1].kind == kind
    _cosimulate(design)


def test_model_ending_in_maxpool(tmp_path):
    """The accelerator's output is the pool's: codes of the requantizer's shape."""
    pytest.importorskip("cocotb")
    design = qfab.compile(_quantized(tmp_path, "maxpool_end", "QInt8"))
    assert design.plan.stages[-1].op == "maxpool"
    assert design.plan.out_shape == design.plan.stages[-2].blocks[-1].params["out_shape"]
    _cosimulate(design)


def test_pool_sums_bias_the_next_requantizer(tmp_path):
    """kh*kw*zp (avgpool) and H*W*zp (global) leave each raw sum in the requantizer's bias."""
    for head, op, taps in (("avgpool_pads", "sumpool", 4), ("gap", "globalsum", 36)):
        design = qfab.compile(_quantized(tmp_path, head, "QInt8"))
        stages = design.plan.stages
        k = next(i for i, s in enumerate(stages) if s.op == op)
        requant = next(n for n in design.graph.nodes if n.name == stages[k + 1].name)
        bias = stages[k + 1].blocks[0].params["bias"]
        expected = np.asarray(requant.attrs["bias_int"]) - requant.attrs["in_zero_point"] \
            + taps * 128
        assert np.array_equal(bias, np.broadcast_to(expected, bias.shape))


@pytest.mark.parametrize("head, says", [("grouped", "group 2")])
def test_ops_without_hardware_fail_in_one_line(tmp_path, head, says):
    with pytest.raises(QfabError) as e:
        qfab.compile(_quantized(tmp_path, head, "QUInt8"))
    assert "\n" not in str(e.value) and says in str(e.value)


@pytest.mark.parametrize("activations, per_channel, folding, simd, columns", [
    ("QUInt8", False, dict(max_pe=4), 4, 1),  # at most 4 x 8: all four channels a beat
    ("QInt8", True, dict(max_simd=2), 2, 1),   # zero point -128 padded; two channel groups
    ("QInt8", False, dict(target_fps=3e5), 1, 1),  # 333 cycles: one lane meets them
    # 54 cycles: two channels by a kernel row (three columns, the window's read ports) a beat
    ("QInt8", False, dict(target_fps=1.85e6), 2, 3),
])
def test_depthwise_cosimulation(tmp_path, activations, per_channel, folding, simd, columns):
    pytest.importorskip("cocotb")
    design = qfab.compile(_quantized(tmp_path, "depthwise", activations, per_channel),
                          **folding)
    dw = next(s for s in design.plan.stages if s.name == "dw")
    assert [b.kind for b in dw.blocks][-2:] == ["window", "depthwise"]
    assert dw.folding == dict(simd=simd, **({"columns": columns} if columns > 1 else {}))
    steps = 3 * 3 * 9 * 4 // (simd * columns)  # 3x3 outputs, 9 taps, 4 channels
    # the window's pace: each output row waits for its input rows (72 at three columns)
    assert dw.cycles == steps if columns == 1 else dw.cycles >= steps
    _cosimulate(design)


def test_depthwise_zero_point_biases_the_next_requantizer(tmp_path):
    """The window pads with the zero point and the MAC sums raw codes; -zp * sum(w) per
    channel moves into the requantizer's bias, beside the Conv's own bias."""
    design = qfab.compile(_quantized(tmp_path, "depthwise", "QInt8"))
    node = next(n for n in design.graph.nodes if n.name == "dw")
    stages = design.plan.stages
    k = next(i for i, s in enumerate(stages) if s.name == "dw")
    requant = next(n for n in design.graph.nodes if n.name == stages[k + 1].name)
    zp = node.attrs["x_zero_point"]
    assert zp == -128 and stages[k].blocks[-2].params["pad_value"] == zp
    w = node.attrs["weight"].reshape(4, 9).sum(axis=1)
    expected = node.attrs["bias"] - zp * w + np.asarray(requant.attrs["bias_int"]) \
        - requant.attrs["in_zero_point"]
    assert np.array_equal(stages[k + 1].blocks[0].params["bias"], expected)


@pytest.mark.parametrize("head, activations, folding", [
    ("add", "QUInt8", {}),
    ("residual2", "QInt8", dict(max_pe=2)),
    ("residual2", "QInt8", dict(target_fps=3e5)),  # the second skip streams 4 wide, its add 1
    ("nested", "QUInt8", {}),  # a residual block inside another's main branch
    ("input_skip", "QUInt8", {}),  # the model's input is the skip
])
def test_residual_cosimulation(tmp_path, head, activations, folding):
    pytest.importorskip("cocotb")
    design = qfab.compile(_quantized(tmp_path, head, activations), **folding)
    adds = [s for s in design.plan.stages if s.op == "add"]
    assert len(adds) == (1 if head in ("add", "input_skip") else 2)
    for s in adds:
        fifo = s.skip[0]
        elements = int(np.prod(design.graph.tensors[s.input].shape[1:]))  # 6 * 6 * channels
        assert fifo.kind == "fifo" and fifo.params["depth"] == elements // fifo.in_elems + 2
        if s.skip_from >= 0:  # else the model's input
            assert design.plan.stages[s.skip_from].output != s.input  # it skips a layer
    if "target_fps" in folding:
        assert [b.kind for b in adds[1].skip] == ["fifo", "widthconv"]
        assert adds[1].blocks[-1].params["n"] == 1
    _cosimulate(design)


@pytest.mark.parametrize("head, skip_ops", [
    ("projection", ["conv", "requant"]),
    ("downsample", ["conv", "requant"]),
])
def test_projection_shortcut_cosimulation(tmp_path, head, skip_ops):
    """A layer on the skip path: its stages read the forked stream and feed the add's FIFO;
    the main path's stages come first."""
    pytest.importorskip("cocotb")
    design = qfab.compile(_quantized(tmp_path, head, "QInt8"))
    stages = design.plan.stages
    (k,) = [i for i, s in enumerate(stages) if s.op == "add"]
    skip = [s for s in stages if s.on_skip]
    assert [s.op for s in skip] == skip_ops
    first = stages.index(skip[0])
    assert stages[stages[first].source].name == "r1_QuantizeLinear"  # the fork
    assert all(s.source is None for s in skip[1:])
    assert stages[k].skip_from == k - 1 and stages[k].source == first - 1
    assert not any(s.on_skip for s in stages[:first])
    _cosimulate(design)


def test_qlinear_add(tmp_path):
    """The QOperator form: QLinearConv layers and a QLinearAdd."""
    pytest.importorskip("cocotb")
    model = _quantized(tmp_path, "residual2", "QUInt8", quant_format="QOperator")
    ops = {n.op_type for n in model.graph.node}
    assert {"QLinearConv", "QLinearAdd"} <= ops
    design = qfab.compile(model)
    assert sum(s.op == "add" for s in design.plan.stages) == 2
    _cosimulate(design)


def test_residual_on_the_soc(tmp_path):
    """The SoC's DMA feeds the input slower than one beat a cycle; the fork, the skip path's
    layer and the FIFO still give the reference's codes."""
    pytest.importorskip("cocotb")
    design = qfab.compile(_quantized(tmp_path, "downsample", "QInt8"))
    x = np.random.default_rng(2).normal(0, 1, (2, *IN_SHAPE)).astype(np.float32)
    res = qfab.simulate(design, x, soc=True)
    assert res.bit_exact
