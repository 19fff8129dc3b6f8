"""The fuzz suite's seeds: the shared real models, the examples, the FINN and Brevitas
corpus, and small built graphs that cover the QONNX and QOperator ops and the pools, each with
an input batch that fits it."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from shared_models import SHARED

ROOT = Path(__file__).resolve().parents[2]
QONNX = "qonnx.custom_op.general"
MS = "com.microsoft"


@dataclass(frozen=True)
class Seed:
    name: str
    model: bytes
    inputs: dict[str, np.ndarray]


def _inputs_for(model: onnx.ModelProto, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A batch of two for every graph input: floats in [0, 1), integer codes in range."""
    inits = {i.name for i in model.graph.initializer}
    feeds = {}
    for inp in model.graph.input:
        if inp.name in inits:
            continue
        tt = inp.type.tensor_type
        shape = [2] + [d.dim_value or 1 for d in tt.shape.dim[1:]]
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type)
        if np.dtype(dtype).kind == "f":
            feeds[inp.name] = rng.random(shape).astype(dtype)
        else:
            info = np.iinfo(dtype)
            feeds[inp.name] = rng.integers(info.min, int(info.max) + 1, shape).astype(dtype)
    return feeds


def _file_seed(path: Path, sample: Path | None, rng: np.random.Generator) -> Seed:
    model = onnx.load(str(path))
    inputs = _inputs_for(model, rng)
    if sample is not None and sample.is_file() and len(inputs) == 1:
        x = np.load(sample)
        inputs = {next(iter(inputs)): x[:2]}
    return Seed(path.stem, path.read_bytes(), inputs)


def _init(name: str, value) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value), name)


def _model(nodes, inits, x_shape, out: str, opsets) -> bytes:
    graph = helper.make_graph(nodes, "fuzz_seed",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)],
                              inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets])
    return model.SerializeToString()


def qonnx_seed() -> bytes:
    """Quant -> MatMul -> BatchNorm-free requant chain with Trunc, MultiThreshold,
    BipolarQuant and FloatQuant: every QONNX quantizer once."""
    rng = np.random.default_rng(1)
    f32 = np.float32
    inits = [_init("s_in", f32(1 / 16)), _init("zp0", f32(0)), _init("bw8", f32(8)),
             _init("w", rng.normal(0, 0.5, (8, 6)).astype(f32)), _init("s_w", f32(1 / 8)),
             _init("bw4", f32(4)), _init("s_mm", f32(1 / 32)), _init("bw6", f32(6)),
             _init("thr", np.sort(rng.normal(0, 1, (6, 3)), axis=1).astype(f32)),
             _init("w2", rng.normal(0, 0.5, (6, 4)).astype(f32)), _init("s_b", f32(0.5)),
             _init("s_f", f32(0.25)), _init("e4", f32(4)), _init("m3", f32(3)),
             _init("b7", f32(7)), _init("max448", f32(448))]
    nodes = [
        helper.make_node("Quant", ["x", "s_in", "zp0", "bw8"], ["xq"], name="quant_in",
                         domain=QONNX, signed=1, narrow=0, rounding_mode="ROUND"),
        helper.make_node("Quant", ["w", "s_w", "zp0", "bw4"], ["wq"], name="quant_w",
                         domain=QONNX, signed=1, narrow=1, rounding_mode="ROUND"),
        helper.make_node("MatMul", ["xq", "wq"], ["mm"], name="matmul"),
        helper.make_node("Quant", ["mm", "s_mm", "zp0", "bw8"], ["mq"], name="quant_mm",
                         domain=QONNX, signed=1, narrow=0, rounding_mode="ROUND"),
        helper.make_node("Trunc", ["mq", "s_mm", "zp0", "bw8", "bw6"], ["tr"], name="trunc",
                         domain=QONNX, rounding_mode="FLOOR"),
        helper.make_node("MultiThreshold", ["tr", "thr"], ["mt"], name="thresholds",
                         domain=QONNX, out_dtype="UINT2", out_scale=1.0, out_bias=0.0),
        helper.make_node("BipolarQuant", ["w2", "s_b"], ["w2q"], name="bipolar_w",
                         domain=QONNX),
        helper.make_node("MatMul", ["mt", "w2q"], ["mm2"], name="matmul2"),
        helper.make_node("FloatQuant", ["mm2", "s_f", "e4", "m3", "b7", "max448"], ["y"],
                         name="float_quant", domain=QONNX, has_subnormal=1, has_inf=0,
                         has_nan=1, saturation=1, rounding_mode="ROUND"),
    ]
    return _model(nodes, inits, [1, 8], "y", [("", 13), (QONNX, 1)])


def qoperator_seed() -> bytes:
    """QLinearConv, QLinearAdd, QLinearGlobalAveragePool and QGemm on uint8 codes."""
    rng = np.random.default_rng(2)
    u8, i8, f32 = np.uint8, np.int8, np.float32
    inits = [_init("sx", f32(0.02)), _init("zx", u8(128)),
             _init("w", rng.integers(-60, 60, (4, 2, 3, 3)).astype(i8)), _init("sw", f32(0.01)),
             _init("zw", i8(0)), _init("sy", f32(0.05)), _init("zy", u8(100)),
             _init("bias", rng.integers(-200, 200, 4).astype(np.int32)),
             _init("sa", f32(0.07)), _init("za", u8(90)),
             _init("sg", f32(0.04)), _init("zg", u8(110)),
             _init("wg", rng.integers(-60, 60, (3, 4)).astype(i8)), _init("so", f32(0.1)),
             _init("zo", u8(128))]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "sx", "zx"], ["xq"], name="q_in"),
        helper.make_node("QLinearConv", ["xq", "sx", "zx", "w", "sw", "zw", "sy", "zy", "bias"],
                         ["c"], name="qconv", pads=[1, 1, 1, 1], strides=[1, 1]),
        helper.make_node("QLinearAdd", ["c", "sy", "zy", "c", "sy", "zy", "sa", "za"], ["a"],
                         name="qadd", domain=MS),
        helper.make_node("QLinearGlobalAveragePool", ["a", "sa", "za", "sg", "zg"], ["g"],
                         name="qgap", domain=MS, channels_last=0),
        helper.make_node("Flatten", ["g"], ["gf"], name="flatten"),
        helper.make_node("QGemm", ["gf", "sg", "zg", "wg", "sw", "zw", "", "so", "zo"], ["o"],
                         name="qgemm", domain=MS, transB=1),
        helper.make_node("DequantizeLinear", ["o", "so", "zo"], ["y"], name="dq_out"),
    ]
    return _model(nodes, inits, [1, 2, 6, 6], "y", [("", 13), (MS, 1)])


def pools_seed() -> bytes:
    """QDQ Conv, MaxPool and AveragePool with strides, pads and dilations."""
    rng = np.random.default_rng(3)
    f32, i8 = np.float32, np.int8
    inits = [_init("s", f32(0.05)), _init("z", i8(0)),
             _init("w", rng.integers(-50, 50, (3, 2, 3, 3)).astype(i8)), _init("sw", f32(0.01)),
             _init("sc", f32(0.1)), _init("sp", f32(0.2))]
    q = [("x", "s", "xq", "xd"), ("c", "sc", "cq", "cd"), ("m", "sc", "mq", "md"),
         ("p", "sp", "pq", "y")]
    nodes = []
    for src, scale, codes, real in q:
        nodes += [helper.make_node("QuantizeLinear", [src, scale, "z"], [codes], name=f"q_{src}"),
                  helper.make_node("DequantizeLinear", [codes, scale, "z"], [real],
                                   name=f"dq_{src}")]
    nodes.insert(2, helper.make_node("DequantizeLinear", ["w", "sw", "z"], ["wd"], name="dq_w"))
    nodes.insert(3, helper.make_node("Conv", ["xd", "wd"], ["c"], name="conv", pads=[1, 1, 1, 1],
                                     strides=[1, 1], dilations=[2, 2], kernel_shape=[3, 3]))
    nodes.insert(6, helper.make_node("MaxPool", ["cd"], ["m"], name="maxpool",
                                     kernel_shape=[2, 2], strides=[2, 2]))
    nodes.insert(9, helper.make_node("AveragePool", ["md"], ["p"], name="avgpool",
                                     kernel_shape=[2, 2], strides=[1, 1], pads=[1, 1, 0, 0],
                                     count_include_pad=1))
    return _model(nodes, inits, [1, 2, 10, 10], "y", [("", 13)])


BUILT = {"qonnx_ops": qonnx_seed, "qoperator_ops": qoperator_seed, "qdq_pools": pools_seed}


@cache
def seeds() -> tuple[Seed, ...]:
    """Every seed, in a fixed order (the fuzz seed picks among them)."""
    rng = np.random.default_rng(0)
    found = []
    for path in sorted(SHARED.glob("*/*.onnx")):
        found.append(_file_seed(path, None, rng))
    if (SHARED / "mnist4" / "digits.npy").is_file():
        tfc = [s for s in found if s.name == "TFC_2W2A"]
        if tfc:
            x = np.load(SHARED / "mnist4" / "digits.npy")[:2] / np.float32(255)
            found[found.index(tfc[0])] = Seed("TFC_2W2A", tfc[0].model,
                                              {next(iter(tfc[0].inputs)): x.astype(np.float32)})
    for path in sorted((ROOT / "examples").glob("*/*.onnx")):
        if "float" in path.stem:
            continue  # the float originals are not quantized models
        samples = [path.with_name(path.stem + "_input.npy"), path.with_name("sample_images.npy")]
        found.append(_file_seed(path, next((s for s in samples if s.is_file()), None), rng))
    for path in sorted((ROOT / "tests" / "corpus").glob("*/*.onnx")):
        found.append(_file_seed(path, None, rng))
    for name, build in BUILT.items():
        model = build()
        found.append(Seed(name, model, _inputs_for(onnx.load_from_string(model), rng)))
    return tuple(found)
