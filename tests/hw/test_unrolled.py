# amaranth: UnusedElaboratable=no
"""Unrolled layers in one pipeline against the layers' own models (adder graph, requantizer,
thresholder), exactly, under stalls: every rounding the lanes take, zero points odd and even,
scales that are and are not powers of two, exact ties, bounds that are and are not bit
logic; and the registers placed by depth across layers."""

import numpy as np
import pytest
from amaranth.hdl import signed, unsigned
from qfab.hw.cmvm import cmvm_model
from qfab.hw.requant import requant_model
from qfab.hw.threshold import threshold_model
from qfab.hw.unrolled import UnrolledPipeline, fusable, unrolled_stages
from streams import array_beats, beats_to_array, run_streams


def _weights(rng, mh, mw, bits):
    half = 1 << (bits - 1)
    w = np.clip(np.round(rng.laplace(0, half / 3, size=(mh, mw))), -half, half - 1)
    w[rng.random(w.shape) < 0.25] = 0
    return w.astype(np.int64)


def _layers(rng, rounding, zero_point, mult):
    w1, w2, w3 = _weights(rng, 6, 5, 5), _weights(rng, 4, 6, 4), _weights(rng, 3, 4, 3)
    w1[2] = 0  # an all-zero row: its lane is a constant
    w2[1] = -np.abs(w2[1])  # a row of negative weights only: a negated sum
    return [
        ("cmvm", dict(weights=w1, in_shape=signed(6), acc_shape=signed(16))),
        ("requant", dict(acc_shape=signed(16), channels=6, pe=6,
                         bias=rng.integers(-40, 40, size=6), mult=mult,
                         shift=np.array([3, 4, 5, 2, 6, 3]), zero_point=zero_point,
                         lo=-5 + zero_point, hi=20 + zero_point, out_shape=signed(8),
                         rounding=rounding)),
        ("cmvm", dict(weights=w2, in_shape=signed(8), acc_shape=signed(16))),
        ("threshold", dict(acc_shape=signed(16), channels=4, pe=4,
                           thresholds=np.sort(rng.integers(-60, 60, size=(4, 3)), axis=1),
                           out_shape=signed(3), out_bias=-2, out_scale=1)),
        ("cmvm", dict(weights=w3, in_shape=signed(3), acc_shape=signed(10))),
        ("requant", dict(acc_shape=signed(10), channels=3, pe=3, bias=np.array([0, 3, -1]),
                         mult=1, shift=0, out_shape=signed(10))),
    ]


def _reference(layers, x):
    for kind, p in layers:
        if kind == "cmvm":
            x = cmvm_model(p["weights"], x).astype(np.int64)
        elif kind == "requant":
            q = {k: p[k] for k in ("bias", "mult", "shift", "zero_point", "rounding") if k in p}
            lo, hi = p.get("lo", -(1 << 9)), p.get("hi", (1 << 9) - 1)
            x = requant_model(x, lo=lo, hi=hi, **q)
        else:
            x = threshold_model(x, p["thresholds"], p["out_bias"], p["out_scale"])
    return x


@pytest.mark.parametrize("rounding, zero_point, mult, per_stage", [
    ("half_even", 0, 1 << 10, 2), ("half_even", 3, 1 << 10, 5), ("half_up", -2, 5, 3),
    ("floor", 4, np.array([3, 1, 7, 2, 11, 4]), 1), ("half_even", 1, 13, 4)])
def test_pipeline_matches_the_layers_models_under_stalls(rounding, zero_point, mult,
                                                         per_stage):
    rng = np.random.default_rng(per_stage)
    layers = _layers(rng, rounding, zero_point, mult)
    assert all(fusable(k, p) for k, p in layers)
    x = rng.integers(-32, 32, size=(40, 5))
    x[:8] = rng.integers(-4, 4, size=(8, 5)) * 8  # small multiples of 8: ties
    want = _reference(layers, x)
    dut = UnrolledPipeline(layers=layers, levels_per_stage=per_stage)
    assert (dut.model(x) == want).all()
    logs = run_streams(dut, inputs={"i_stream": array_beats(x, 5)},
                       outputs={"o_stream": len(x)}, rng=rng, p_idle=0.3, p_stall=0.3,
                       tail=4, max_wait=4000)
    assert (beats_to_array(logs["o_stream"].beats, want.shape) == want).all()


def test_registers_by_depth_across_layers():
    rng = np.random.default_rng(9)
    layers = _layers(rng, "half_even", 0, 1 << 10)
    deep = UnrolledPipeline(layers=layers, levels_per_stage=1)
    shallow = UnrolledPipeline(layers=layers, levels_per_stage=64)
    assert shallow.stages == 0 and deep.stages > 4  # more stages than layers, or none
    assert unrolled_stages(layers=layers, levels_per_stage=1) == deep.stages
    x = rng.integers(-32, 32, size=(8, 5))
    logs = run_streams(deep, inputs={"i_stream": array_beats(x, 5)},
                       outputs={"o_stream": 8}, tail=4, max_wait=400)
    t_in, t_out = logs["i_stream"].cycles, logs["o_stream"].cycles
    assert [b - a for a, b in zip(t_in, t_out, strict=True)] == [deep.latency] * 8
    assert t_out[-1] - t_out[0] == 7  # one vector a cycle


def test_what_is_not_a_layer():
    assert not fusable("requant", dict(channels=8, pe=4))
    assert not fusable("requant", dict(channels=4, pe=4, rounding="half_away"))
    assert not fusable("threshold", dict(channels=4, pe=4, thresholds=np.zeros((4, 16))))
    with pytest.raises(ValueError, match="first layer"):
        UnrolledPipeline(layers=[("requant", dict(acc_shape=signed(8), channels=2, pe=2,
                                                  out_shape=unsigned(4)))])
