"""Write the tiny synthetic QDQ models that the compiler tests use, beside this file.

Run ``.venv/bin/python examples/tiny/make_models.py`` from the repository root (a second). No
training: weights are seeded random codes and activation ranges come from a seeded
calibration batch, so every run writes the same bytes. Each model ``<name>.onnx`` (input
``input``, output ``output``, batch 1) comes with ``<name>_input.npy``, one seeded float32
input of the graph input's shape.

- ``mlp_fp8.onnx``      :func:`mlp_fp8`: float8 E4M3FN weights and activations, opset 21.
- ``mlp_int2.onnx``     :func:`mlp_int2`: INT2 weights, INT2/UINT2 activations, opset 25.
- ``conv_s2_int8.onnx`` :func:`conv_s2_int8`: one Conv, stride 2, pad 1, int8, opset 21.

All three run in onnxruntime 1.32 (which has INT2 QuantizeLinear/DequantizeLinear at opset 25)
with graph optimizations off or basic (:func:`ort_session`). At ``ORT_ENABLE_EXTENDED`` and
above, onnxruntime 1.32 refuses ``mlp_int2`` (it fuses it into QGemm, which has no 2-bit
kernel) and gives wrong results for ``mlp_fp8``: it deletes the Relu between float8 Q/DQ pairs
as if it were redundant, which holds only for integer types whose zero point is the type's
minimum. ``conv_s2_int8`` gives the same output at every level.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import ml_dtypes
import numpy as np
import onnx
import onnxruntime as ort
from numpy.lib.stride_tricks import sliding_window_view
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).resolve().parent
SEED = 2026
CALIB_SAMPLES = 64
FP8 = TensorProto.FLOAT8E4M3FN
FP8_MAX = 448.0

Pair = tuple[list[onnx.NodeProto], list[onnx.TensorProto]]


def _scale(value: float) -> np.float32:
    """A scale rounded to float16 precision, stored as float32: arbitrary enough to need a real
    requantizer, and immune to last-bit differences in the float64 calibration arithmetic."""
    return np.float32(np.float16(value))


def _pow2_scale(amax: float, qmax: float) -> np.float32:
    """The smallest power of two that maps ``amax`` within ``qmax``."""
    return np.float32(2.0 ** np.ceil(np.log2(amax / qmax)))


def _qparams(rmin: float, rmax: float, qmin: int, qmax: int) -> tuple[np.float32, int]:
    """Asymmetric (scale, zero point) covering [min(rmin, 0), max(rmax, 0)], computed as
    onnxruntime's quantizer does."""
    rmin, rmax = min(rmin, 0.0), max(rmax, 0.0)
    scale = _scale((rmax - rmin) / (qmax - qmin))
    return scale, int(np.clip(np.round(qmin - rmin / float(scale)), qmin, qmax))


def _const(name: str, elem: int, values: np.ndarray) -> onnx.TensorProto:
    if elem == FP8:
        return numpy_helper.from_array(values.astype(ml_dtypes.float8_e4m3fn), name)
    return helper.make_tensor(name, elem, values.shape, values.ravel().tolist())


def _scale_zp(name: str, scale: np.float32, zero_point: float, elem: int) -> list:
    return [
        numpy_helper.from_array(np.array(scale, np.float32), f"{name}_scale"),
        _const(f"{name}_zero_point", elem, np.array(zero_point)),
    ]


def _qdq(name: str, scale: np.float32, zero_point: float, elem: int, out: str = "") -> Pair:
    """QuantizeLinear then DequantizeLinear of tensor ``name``, with their parameters; the
    dequantized tensor is ``out`` or ``name + "_dq"``."""
    params = [f"{name}_scale", f"{name}_zero_point"]
    nodes = [
        helper.make_node("QuantizeLinear", [name, *params], [f"{name}_q"], name=f"{name}_q"),
        helper.make_node(
            "DequantizeLinear", [f"{name}_q", *params], [out or f"{name}_dq"], name=f"{name}_dq"
        ),
    ]
    return nodes, _scale_zp(name, scale, zero_point, elem)


def _dq_const(name: str, codes: np.ndarray, scale: np.float32, elem: int) -> Pair:
    """A constant stored as ``elem`` codes (zero point 0) behind a DequantizeLinear whose output
    is ``name``."""
    params = [f"{name}_scale", f"{name}_zero_point"]
    node = helper.make_node("DequantizeLinear", [f"{name}_quantized", *params], [name], name=name)
    return [node], [_const(f"{name}_quantized", elem, codes), *_scale_zp(name, scale, 0, elem)]


def _model(name: str, doc: str, pairs: list[Pair], shapes: tuple, opset: int) -> onnx.ModelProto:
    nodes = [n for pair in pairs for n in pair[0]]
    inits = [t for pair in pairs for t in pair[1]]
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, shapes[0])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, shapes[1])],
        inits,
    )
    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="qfab-examples")
    # Pinned to the minimum, so that a newer onnx does not change the bytes.
    model.ir_version = helper.find_min_ir_version_for(opsets)
    model.doc_string = " ".join(doc.split())
    onnx.checker.check_model(model, full_check=True)
    return model


def _mlp(name: str, doc: str, opset: int, layers: list[dict], acts: dict) -> onnx.ModelProto:
    """``input -> Q/DQ -> Gemm -> Q/DQ -> Relu -> Q/DQ -> Gemm -> Q/DQ -> output``: the layout
    onnxruntime's quantizer gives Gemm-Relu-Gemm with the Relu kept (the Gemm before a Relu
    shares the Relu's quantizer parameters).

    ``layers``: per Gemm, ``codes`` [out, in], ``scale``, ``elem`` and optional int32 ``bias``
    codes (scale: input scale times weight scale). ``acts``: ``input``, ``relu``, ``output``
    -> (scale, zero point, element type).
    """
    pairs = [_qdq("input", *acts["input"])]
    prev, prev_scale = "input_dq", acts["input"][0]
    for i, layer in enumerate(layers, start=1):
        pairs.append(_dq_const(f"fc{i}_w", layer["codes"], layer["scale"], layer["elem"]))
        gemm_in = [prev, f"fc{i}_w"]
        if "bias" in layer:
            bias_scale = np.float32(prev_scale * layer["scale"])
            pairs.append(_dq_const(f"fc{i}_b", layer["bias"], bias_scale, TensorProto.INT32))
            gemm_in.append(f"fc{i}_b")
        gemm = helper.make_node("Gemm", gemm_in, [f"fc{i}_out"], name=f"fc{i}", transB=1)
        pairs.append(([gemm], []))
        if i < len(layers):
            relu = helper.make_node("Relu", [f"fc{i}_out_dq"], ["relu"], name="relu")
            pairs += [_qdq(f"fc{i}_out", *acts["relu"]), ([relu], []), _qdq("relu", *acts["relu"])]
            prev, prev_scale = "relu_dq", acts["relu"][0]
        else:
            pairs.append(_qdq(f"fc{i}_out", *acts["output"], out="output"))
    shapes = ([1, layers[0]["codes"].shape[1]], [1, layers[-1]["codes"].shape[0]])
    return _model(name, doc, pairs, shapes, opset)


def _dense(x: np.ndarray, layer: dict, in_scale: np.float32) -> np.ndarray:
    """Float output of one Gemm layer with dequantized weights and bias, for choosing ranges."""
    out = x @ (layer["codes"].astype(np.float64) * float(layer["scale"])).T
    if "bias" in layer:
        out += layer["bias"] * float(np.float32(in_scale * layer["scale"]))
    return out


def mlp_fp8(rng: np.random.Generator) -> tuple[onnx.ModelProto, np.ndarray]:
    """Two-layer MLP 16 -> 12 -> Relu -> 4, everything in float8 E4M3FN (OCP FP8, no inf, NaN
    only at S.1111.111, max 448) in QDQ form at opset 21: QuantizeLinear to FLOAT8E4M3FN
    (saturating) and DequantizeLinear back, zero points float8 +0. Weights are random normal
    values rounded to E4M3FN. No biases: a float8 QDQ graph has no standard bias form
    (onnxruntime's own float8 quantizer leaves the bias in float32 behind a Cast). Every scale
    is a power of two, so onnxruntime's float32 Gemm over products of float8 values is exact
    wherever the sums fit float32's 24-bit significand, as they do for this data."""
    layers = [
        {"codes": _fp8(rng.normal(0.0, 4.0, (12, 16))), "scale": np.float32(2**-5), "elem": FP8},
        {"codes": _fp8(rng.normal(0.0, 4.0, (4, 12))), "scale": np.float32(2**-4), "elem": FP8},
    ]
    calib = rng.normal(0.0, 1.0, (CALIB_SAMPLES, 16))
    acts = {"input": (_pow2_scale(np.abs(calib).max(), FP8_MAX), 0.0, FP8)}
    hidden = np.maximum(_dense(calib, layers[0], acts["input"][0]), 0.0)
    acts["relu"] = (_pow2_scale(hidden.max(), FP8_MAX), 0.0, FP8)
    out = _dense(hidden, layers[1], acts["relu"][0])
    acts["output"] = (_pow2_scale(np.abs(out).max(), FP8_MAX), 0.0, FP8)
    model = _mlp("mlp_fp8", mlp_fp8.__doc__, 21, layers, acts)
    return model, rng.normal(0.0, 1.0, (1, 16)).astype(np.float32)


def _fp8(values: np.ndarray) -> np.ndarray:
    """``values`` rounded to E4M3FN (nearest even), returned as float64."""
    return np.clip(values, -FP8_MAX, FP8_MAX).astype(ml_dtypes.float8_e4m3fn).astype(np.float64)


def mlp_int2(rng: np.random.Generator) -> tuple[onnx.ModelProto, np.ndarray]:
    """Two-layer MLP 16 -> 12 -> Relu -> 4 with 2-bit weights and activations in QDQ form at
    opset 25, the first opset whose QuantizeLinear/DequantizeLinear take INT2 and UINT2. Weights:
    INT2 codes -2..1, per-tensor scale, zero point 0; biases int32 in units of input scale times
    weight scale. Activations: the input INT2, asymmetric; the hidden layer UINT2 from 0; the
    output UINT2, asymmetric, so its zero point is not 0. Scales are arbitrary (float16-precise)
    reals from a calibration batch."""
    layers = [
        {
            "codes": rng.integers(-2, 2, (12, 16)),
            "scale": _scale(rng.uniform(0.2, 0.5)),
            "elem": TensorProto.INT2,
            "bias": rng.integers(-3, 4, 12),
        },
        {
            "codes": rng.integers(-2, 2, (4, 12)),
            "scale": _scale(rng.uniform(0.2, 0.5)),
            "elem": TensorProto.INT2,
            "bias": rng.integers(-3, 4, 4),
        },
    ]
    calib = rng.uniform(-1.0, 1.0, (CALIB_SAMPLES, 16))
    acts = {"input": (*_qparams(calib.min(), calib.max(), -2, 1), TensorProto.INT2)}
    hidden = np.maximum(_dense(calib, layers[0], acts["input"][0]), 0.0)
    acts["relu"] = (*_qparams(0.0, hidden.max(), 0, 3), TensorProto.UINT2)
    out = _dense(hidden, layers[1], acts["relu"][0])
    acts["output"] = (*_qparams(out.min(), out.max(), 0, 3), TensorProto.UINT2)
    model = _mlp("mlp_int2", mlp_int2.__doc__, 25, layers, acts)
    return model, rng.uniform(-1.0, 1.0, (1, 16)).astype(np.float32)


def _conv_s2_float(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """3x3 convolution, stride 2, zero padding 1, NCHW, no bias (for ranges only)."""
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    win = sliding_window_view(xp, (3, 3), axis=(2, 3))[:, :, ::2, ::2]
    return np.einsum("nchwij,ocij->nohw", win, w)


def conv_s2_int8(rng: np.random.Generator) -> tuple[onnx.ModelProto, np.ndarray]:
    """One Conv 4 -> 6 channels, 3x3, stride 2, padding 1, on a 9x9 input (odd, so the last
    window overhangs the bottom and right edges into the padding), giving [1,6,5,5]. int8 QDQ
    at opset 21: input and output INT8 asymmetric (non-zero zero points, so padding pads the
    input's zero point, not code 0), weights INT8 symmetric per-tensor, bias int32."""
    codes = rng.integers(-127, 128, (6, 4, 3, 3))
    w_scale = _scale(rng.uniform(0.002, 0.006))
    bias = rng.integers(-2000, 2000, 6)
    calib = rng.uniform(-1.0, 2.0, (CALIB_SAMPLES, 4, 9, 9))
    in_scale, in_zp = _qparams(calib.min(), calib.max(), -128, 127)
    b_scale = np.float32(in_scale * w_scale)
    out = _conv_s2_float(calib, codes * float(w_scale)) + (bias * float(b_scale))[:, None, None]
    out_scale, out_zp = _qparams(out.min(), out.max(), -128, 127)
    conv = helper.make_node(
        "Conv",
        ["input_dq", "conv_w", "conv_b"],
        ["conv_out"],
        name="conv",
        kernel_shape=[3, 3],
        pads=[1, 1, 1, 1],
        strides=[2, 2],
    )
    pairs = [
        _qdq("input", in_scale, in_zp, TensorProto.INT8),
        _dq_const("conv_w", codes, w_scale, TensorProto.INT8),
        _dq_const("conv_b", bias, b_scale, TensorProto.INT32),
        ([conv], []),
        _qdq("conv_out", out_scale, out_zp, TensorProto.INT8, out="output"),
    ]
    doc = conv_s2_int8.__doc__
    model = _model("conv_s2_int8", doc, pairs, ([1, 4, 9, 9], [1, 6, 5, 5]), 21)
    return model, rng.uniform(-1.0, 2.0, (1, 4, 9, 9)).astype(np.float32)


MODELS: dict[str, Callable[[np.random.Generator], tuple[onnx.ModelProto, np.ndarray]]] = {
    "mlp_fp8": mlp_fp8,
    "mlp_int2": mlp_int2,
    "conv_s2_int8": conv_s2_int8,
}


def _replace(write: Callable[[Path], None], final: Path) -> None:
    """Call ``write(tmp_path)`` on a temporary file in ``final``'s folder, then rename it."""
    fd, tmp = tempfile.mkstemp(prefix=f".{final.stem}-", suffix=final.suffix, dir=final.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; these are ordinary repository files
        os.replace(tmp, final)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def ort_session(path: Path) -> ort.InferenceSession:
    """onnxruntime with graph optimizations off, one thread: the QDQ graph runs as written
    (see the module docstring for what the optimizer does to these models)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def build() -> dict[str, tuple[onnx.ModelProto, np.ndarray]]:
    """Every model with its sample input; each from its own seeded generator, so adding a model
    does not change the others."""
    return {
        name: make(np.random.default_rng([SEED, i]))
        for i, (name, make) in enumerate(MODELS.items())
    }


def main(out_dir: Path = HERE) -> None:
    for name, (model, sample) in build().items():
        _replace(lambda p, m=model: onnx.save(m, str(p)), out_dir / f"{name}.onnx")
        _replace(lambda p, s=sample: np.save(p, s), out_dir / f"{name}_input.npy")
        session = ort_session(out_dir / f"{name}.onnx")
        (result,) = session.run(None, {"input": sample})
        print(f"{name}: onnxruntime runs it, output {list(result.shape)} {result.ravel()[:4]}")


if __name__ == "__main__":
    main()
