"""A conv or dense layer run together with its requantizer, or a dense layer with its
thresholder (qfab.sim.reference_fused), gives the integers the op-by-op reference gives, for
every rounding, and steps aside where its float bounds do not hold."""

import copy
from pathlib import Path

import numpy as np
import pytest
from qfab.compiler.ir import Tensor
from qfab.numerics import IntFormat
from qfab.sim import reference_fused
from qfab.sim.reference import Reference, fixed

from qfab.api import _input_codes, lower_model

ROOT = Path(__file__).resolve().parents[2]
MODELS = [Path("/work/shared/models/qdq/ort_conv_qdq_s8s8.onnx"),
          ROOT / "examples" / "digits" / "digits_int8.onnx",
          ROOT / "examples" / "digits_resnet" / "digits_resnet_int8.onnx",
          Path("/work/shared/models/qonnx/TFC_2W2A.onnx")]


def _inputs(graph, batch=3):
    name = graph.inputs[0]
    shape = graph.tensors[name].shape[1:]
    x = np.random.default_rng(len(graph.nodes)).uniform(-3, 3, (batch, *shape))
    return {name: _input_codes(graph, name, x.astype(np.float32))}


def _both(graph, monkeypatch):
    """(fused outputs, op-by-op outputs, how many layers ran fused)."""
    ran = []

    def counted(name):
        real = getattr(reference_fused, name)

        def counting(*args):
            out = real(*args)
            ran.append(out is not None)
            return out

        monkeypatch.setattr(reference_fused, name, counting)

    counted("layer_requant")
    counted("layer_threshold")
    ref, feeds = Reference(graph), _inputs(graph)
    fused = ref.run(feeds)
    whole = ref.run(feeds, keep=True)  # keeps every tensor: no fusion
    return fused, {k: whole[k] for k in graph.outputs}, sum(ran)


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.stem)
def test_the_same_integers_as_op_by_op(path, monkeypatch):
    if not path.is_file():
        pytest.skip(f"{path} not here")
    graph = lower_model(path)
    fused, whole, ran = _both(graph, monkeypatch)
    assert ran >= 1
    for name in graph.outputs:
        assert np.array_equal(fused[name], whole[name]), name


@pytest.mark.parametrize("rounding", ["floor", "half_up"])
def test_every_rounding(rounding, monkeypatch):
    graph = copy.deepcopy(lower_model(MODELS[1]))
    for node in graph.nodes:
        if node.op == "requant":
            node.attrs["rounding"] = rounding
    fused, whole, ran = _both(graph, monkeypatch)
    assert ran >= 1
    assert all(np.array_equal(fused[k], whole[k]) for k in graph.outputs)


def test_past_the_float_bound_the_ops_run_one_by_one(monkeypatch):
    graph = copy.deepcopy(lower_model(MODELS[1]))
    for node in graph.nodes:
        if node.op == "requant":  # products past 2**53: not exact in float64
            node.attrs["mult"] = np.asarray(node.attrs["mult"], np.int64) * 2**40
            node.attrs["shift"] = np.asarray(node.attrs["shift"], np.int64) + 40
    fused, whole, ran = _both(graph, monkeypatch)
    assert ran == 0
    assert all(np.array_equal(fused[k], whole[k]) for k in graph.outputs)


@pytest.mark.parametrize("path", MODELS[:2], ids=lambda p: p.stem)
def test_a_batch_in_pieces_gives_the_same_integers(path, monkeypatch):
    if not path.is_file():
        pytest.skip(f"{path} not here")
    monkeypatch.setattr(reference_fused, "CHUNK_ELEMENTS", 1)  # one sample a piece
    graph = lower_model(path)
    fused, whole, ran = _both(graph, monkeypatch)
    assert ran >= 1
    assert all(np.array_equal(fused[k], whole[k]) for k in graph.outputs)


@pytest.mark.parametrize("widen", ["codes", "quotients"])
def test_codes_or_quotients_past_int32_clamp_in_float64(widen, monkeypatch):
    # Codes of int32 are clamped there; wider bounds, or quotients that may pass 2**31
    # before the clamp, keep to float64.
    graph = copy.deepcopy(lower_model(MODELS[1]))
    narrow = []
    real = reference_fused._finish
    monkeypatch.setattr(reference_fused, "_finish",
                        lambda u, out, p, fits: (narrow.append(fits), real(u, out, p, fits)))
    for node in graph.nodes:
        if node.op == "requant":
            if widen == "codes":
                node.attrs["lo"], node.attrs["hi"] = -(2**40), 2**40
            else:  # quotients 2**22 times larger (shifts of 1 and 2), clamped as before
                node.attrs["shift"] = np.asarray(node.attrs["shift"], np.int64) - 22
    fused, whole, ran = _both(graph, monkeypatch)
    assert ran >= 1 and narrow and not any(narrow)
    assert all(np.array_equal(fused[k], whole[k]) for k in graph.outputs)


def test_codes_of_int32_clamp_there(monkeypatch):
    narrow = []
    real = reference_fused._finish
    monkeypatch.setattr(reference_fused, "_finish",
                        lambda u, out, p, fits: (narrow.append(fits), real(u, out, p, fits)))
    graph = lower_model(MODELS[1])
    fused, whole, ran = _both(graph, monkeypatch)
    assert narrow and all(narrow)
    assert all(np.array_equal(fused[k], whole[k]) for k in graph.outputs)


def _same_floats(a, b) -> bool:
    """Equal values and equal signs of zero (a float output is compared bit for bit)."""
    return a.dtype == b.dtype and np.array_equal(a, b) and np.array_equal(np.signbit(a),
                                                                          np.signbit(b))


@pytest.mark.parametrize("rounding", ["half_even", "floor", "half_up"])
@pytest.mark.parametrize("fold_taps", [0, 64], ids=["float32 product", "folded factor"])
def test_the_dequantizer_runs_with_the_conv(rounding, fold_taps, monkeypatch):
    """ort_conv_qdq_s8s8's conv, requantizer and dequantizer run as one, with the factor in
    float64 weights or after a float32 product: the same floats, -0.0 nowhere it is not."""
    from qfab.sim import reference_fused_conv

    if not MODELS[0].is_file():
        pytest.skip(f"{MODELS[0]} not here")
    monkeypatch.setattr(reference_fused_conv, "FOLD_TAPS", fold_taps)
    graph = copy.deepcopy(lower_model(MODELS[0]))
    for node in graph.nodes:
        if node.op == "requant":  # codes about zero (-128, its own, clamps them all to +0.0)
            node.attrs["rounding"], node.attrs["zero_point"] = rounding, 0
            graph.tensors[node.outputs[0]].zero_point = np.zeros((), np.int64)
    ref = Reference(graph)
    feeds = _inputs(graph, batch=5)
    fused = ref.run(feeds)
    whole = ref.run(feeds, keep=True)
    (layer,) = [p for p in ref.fused_prepared.values() if p is not None]
    assert layer.deq is not None and layer.fold == (fold_taps > 0)
    (name,) = graph.outputs
    assert _same_floats(fused[name], whole[name])
    assert (whole[name] == 0).any()


@pytest.mark.parametrize("past_the_bound", [False, True])
def test_codes_only_fused_layers_read_stay_float32(past_the_bound):
    """The digits CNN's quantizer leaves float32 codes for its fused conv; where the conv
    cannot run fused (products past 2**53), they go to the integer ops as int64."""
    graph = copy.deepcopy(lower_model(MODELS[1]))
    if past_the_bound:
        for node in graph.nodes:
            if node.op == "requant":
                node.attrs["mult"] = np.asarray(node.attrs["mult"], np.int64) * 2**40
                node.attrs["shift"] = np.asarray(node.attrs["shift"], np.int64) + 40
    ref, feeds = Reference(graph), _inputs(graph)
    (quantized,) = [n.outputs[0] for n in graph.nodes if n.op == "quantize"]
    assert ref._float_codes == {quantized}
    x = next(iter(feeds.values())).astype(np.float32)
    (node,) = [n for n in graph.nodes if n.op == "quantize"]
    assert ref._quantize_float(node, x).dtype == np.float32
    fused, whole = ref.run(feeds), ref.run(feeds, keep=True)
    assert whole[quantized].dtype == np.int64
    assert all(np.array_equal(fused[k], whole[k]) for k in graph.outputs)


def test_float32_codes_are_taken_only_where_said():
    """fixed() takes a float32 array as codes only when its caller says they are a fused
    layer's quantizer's; a float array anywhere else is an error naming the tensor (here, the
    quantizer's float32 codes handed to the conv's op-by-op path, which wants integers)."""
    t = Tensor("x", (1, 4), IntFormat(bits=8, signed=True))
    codes = np.array([[-3, 0, 5, 127]])
    assert fixed(t, codes.astype(np.float32), float_codes=True).dtype == np.float32
    assert np.array_equal(fixed(t, codes.astype(np.int8)), codes)
    for dtype in (np.float32, np.float64):
        with pytest.raises(ValueError, match="tensor 'x'.*must be integers"):
            fixed(t, codes.astype(dtype))
    graph = lower_model(MODELS[1])
    ref, feeds = Reference(graph), _inputs(graph)
    (quantizer,) = [n for n in graph.nodes if n.op == "quantize"]
    layer = next(n for n in graph.nodes if n.inputs == quantizer.outputs)
    x = ref._quantize_float(quantizer, next(iter(feeds.values())).astype(np.float32))
    with pytest.raises(ValueError, match=f"tensor {quantizer.outputs[0]!r}"):
        ref._conv(layer, x)


def test_kept_working_arrays_give_the_same_outputs_call_after_call():
    """A conv's working arrays, kept by the thread from call to call (the padding's zeros and
    the row of ones written once), give the op-by-op outputs again after other convs, other
    batch sizes and the keep_everything path have run."""
    runs = []
    for path in MODELS[:3] * 2:
        if not path.is_file():
            continue
        graph = lower_model(path)
        ref = Reference(graph)
        for batch in (1, 2):
            feeds = _inputs(graph, batch)
            fused, whole = ref.run(feeds), ref.run(feeds, keep=True)
            runs.append(all(_same_floats(fused[k], whole[k]) for k in graph.outputs))
    assert len(runs) >= 8 and all(runs)
