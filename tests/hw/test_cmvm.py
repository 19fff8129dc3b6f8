# amaranth: UnusedElaboratable=no
"""Adder-graph constant matrix-vector unit against its NumPy model and plain matrix products."""

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import signed, unsigned
from qfab.hw.adder_graph import csd_digits, evaluate, solve_cmvm
from qfab.hw.cmvm import ConstantMatrixVectorUnit, cmvm_model, value_ranges
from qfab.hw.multipliers import shape_range
from streams import array_beats, beats_to_array, run_streams


def _trained_looking(rng, mh, mw, bits):
    half = 1 << (bits - 1)
    w = np.clip(np.round(rng.laplace(0, half / 4, size=(mh, mw))), -half, half - 1)
    w[rng.random(w.shape) < 0.25] = 0
    return w.astype(np.int64)


def test_csd_digits_are_canonical():
    for v in range(-300, 300):
        digits = csd_digits(v)
        assert sum(s << k for k, s in digits) == v
        shifts = [k for k, _ in digits]
        assert all(b - a >= 2 for a, b in zip(shifts, shifts[1:], strict=False))


@pytest.mark.parametrize("share", [True, False])
def test_adder_graph_is_the_matrix_product(share):
    rng = np.random.default_rng(3)
    for _ in range(30):
        mh, mw = (int(v) for v in rng.integers(1, 14, size=2))
        w = _trained_looking(rng, mh, mw, int(rng.integers(2, 9)))
        x = rng.integers(-(1 << 12), 1 << 12, size=(20, mw))
        assert (evaluate(solve_cmvm(w, share=share), x) == cmvm_model(w, x)).all()


def test_zero_weights_cost_nothing_and_sharing_saves_adders():
    rng = np.random.default_rng(4)
    w = _trained_looking(rng, 24, 16, 6)
    shared, plain = solve_cmvm(w), solve_cmvm(w, share=False)
    digits = sum(len(csd_digits(v)) for v in w.ravel())
    assert plain.adders <= digits - np.count_nonzero(w.any(axis=1))
    assert shared.adders < plain.adders
    padded = np.zeros((24, 48), np.int64)  # zero columns between, the order kept (the
    padded[:, 1::3] = w                     # greedy sharing breaks ties by input index)
    assert solve_cmvm(padded).adders == shared.adders
    assert solve_cmvm(np.zeros((3, 5), np.int64)).adders == 0


@pytest.mark.parametrize("per_stage,in_shape", [(1, signed(8)), (2, unsigned(6)),
                                                 (4, signed(16)), (64, unsigned(2))])
def test_unit_under_stalls(per_stage, in_shape):
    rng = np.random.default_rng(per_stage)
    w = _trained_looking(rng, 7, 9, 6)
    w[2] = 0  # an all-zero row
    lo, hi = shape_range(in_shape)
    x = rng.integers(lo, hi + 1, size=(12, 9))
    x[0] = lo
    x[1] = hi
    y = cmvm_model(w, x)
    acc = signed(int(max(abs(int(v)) for v in y.ravel())).bit_length() + 2)
    dut = ConstantMatrixVectorUnit(weights=w, in_shape=in_shape, acc_shape=acc,
                                   adders_per_stage=per_stage)
    logs = run_streams(dut, inputs={"i_stream": array_beats(x, 9)},
                       outputs={"o_stream": 12}, rng=rng, p_idle=0.3, p_stall=0.3,
                       tail=4, max_wait=2000)
    assert (beats_to_array(logs["o_stream"].beats, y.shape) == y).all()
    assert (dut.model(x) == y).all()


def test_latency_and_throughput_without_stalls():
    rng = np.random.default_rng(5)
    w = _trained_looking(rng, 16, 16, 6)
    dut = ConstantMatrixVectorUnit(weights=w, in_shape=signed(8), acc_shape=signed(20),
                                   adders_per_stage=2)
    assert dut.stages == (dut.graph.depth - 1) // 2  # the input read as it arrives
    x = rng.integers(-128, 128, size=(10, 16))
    logs = run_streams(dut, inputs={"i_stream": array_beats(x, 16)},
                       outputs={"o_stream": 10}, tail=4, max_wait=200)
    t_in, t_out = logs["i_stream"].cycles, logs["o_stream"].cycles
    assert [b - a for a, b in zip(t_in, t_out, strict=True)] == [dut.latency] * 10
    assert t_out[-1] - t_out[0] == 9
    assert (beats_to_array(logs["o_stream"].beats, (10, 16)) == cmvm_model(w, x)).all()


def test_bad_parameters():
    with pytest.raises(ValueError, match="matrix"):
        ConstantMatrixVectorUnit(weights=np.zeros(3, np.int64), in_shape=signed(4),
                                 acc_shape=signed(8))
    with pytest.raises(ValueError, match="adders_per_stage"):
        ConstantMatrixVectorUnit(weights=np.ones((2, 2), np.int64), in_shape=signed(4),
                                 acc_shape=signed(8), adders_per_stage=0)
    with pytest.raises(ValueError, match="integers"):
        ConstantMatrixVectorUnit(weights=np.ones((2, 2)) / 2, in_shape=signed(4),
                                 acc_shape=signed(8))


def test_converts_to_verilog_without_memories():
    w = _trained_looking(np.random.default_rng(6), 8, 8, 4)
    text = verilog.convert(ConstantMatrixVectorUnit(weights=w, in_shape=unsigned(4),
                                                    acc_shape=signed(12)), name="top")
    assert "module top" in text and "reg [" in text and "memory" not in text.lower()


def test_value_ranges_are_exact():
    # every node's range is the least that holds it: checked over every input vector
    rng = np.random.default_rng(11)
    w = _trained_looking(rng, 6, 4, 5)
    graph = solve_cmvm(w)
    xs = np.array(np.meshgrid(*[np.arange(-4, 4)] * 4)).reshape(4, -1).T
    values = [xs[:, i] for i in range(graph.inputs)]
    for n in graph.nodes:
        values.append((values[n.a] << n.shift_a) + n.sign_b * (values[n.b] << n.shift_b))
    assert value_ranges(graph, signed(3)) == [(int(v.min()), int(v.max())) for v in values]
