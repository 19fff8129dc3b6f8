"""Co-simulation engine: a two-stage accelerator run in Verilator against its NumPy model.

The accelerator is built here from plain Amaranth so that the engine is tested on its own:
stage ``mac`` takes a vector of 8 int8 codes as two beats of 4 and multiplies one element a
cycle (so it stalls its input), stage ``pair`` turns two dot products into one output beat of
two requantized uint8 codes (a different output rate). One Verilator build serves every
test (tracing is compiled into every model and switched on per run).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from qfab.sim import cosim
from qfab.sim.harness import HarnessInfo

from qfab.errors import QfabError

N_IN = 4  # elements per input beat
BEATS = 2  # input beats per vector
SHIFT = 6  # requantization: clip(acc >> SHIFT, 0, 255)
WEIGHTS = [3, -7, 12, 0, -128, 127, 5, -1]


class MacPair(wiring.Component):
    """``mac``: dot product of an 8-code vector, one multiply a cycle; ``pair``: two results
    per output beat, each ``clip(acc >> SHIFT, 0, 255)``."""

    stage_names = ("mac", "pair")

    def __init__(self, weights: list[int]) -> None:
        self._weights = list(weights)
        super().__init__({
            "i_stream": In(stream.Signature(data.ArrayLayout(signed(8), N_IN))),
            "o_stream": Out(stream.Signature(data.ArrayLayout(unsigned(8), 2))),
            "o_stage_active": Out(2),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        busy, idx, beat = Signal(), Signal(range(N_IN)), Signal(range(BEATS))
        buf = Signal(data.ArrayLayout(signed(8), N_IN))
        acc, a_acc, a_valid = Signal(signed(20)), Signal(signed(20)), Signal()
        weight = Array(Const(w, signed(8)) for w in self._weights)[beat * N_IN + idx]
        total = acc + buf[idx] * weight

        m.d.comb += self.i_stream.ready.eq(~busy & ~a_valid)
        with m.If(self.i_stream.valid & self.i_stream.ready):
            m.d.sync += [buf.eq(self.i_stream.payload), busy.eq(1), idx.eq(0)]
        with m.If(busy):
            m.d.sync += [idx.eq(idx + 1), acc.eq(total)]
            with m.If(idx == N_IN - 1):
                m.d.sync += [busy.eq(0), beat.eq(beat + 1)]
                with m.If(beat == BEATS - 1):
                    m.d.sync += [beat.eq(0), acc.eq(0), a_acc.eq(total), a_valid.eq(1)]

        o = self.o_stream
        have, first = Signal(), Signal(signed(20))
        with m.If(o.valid & o.ready):
            m.d.sync += o.valid.eq(0)
        with m.If(a_valid & (~o.valid | o.ready)):
            m.d.sync += a_valid.eq(0)
            with m.If(~have):
                m.d.sync += [first.eq(a_acc), have.eq(1)]
            with m.Else():
                m.d.sync += [o.payload[0].eq(_requant(first)), o.payload[1].eq(_requant(a_acc)),
                             o.valid.eq(1), have.eq(0)]
        m.d.comb += self.o_stage_active.eq(Cat(busy | a_valid | (beat != 0), have | o.valid))
        return m


def _requant(acc):
    shifted = acc >> SHIFT
    return Mux(shifted < 0, 0, Mux(shifted > 255, 255, shifted))


def mac_pair_model(beats: np.ndarray, weights: list[int]) -> np.ndarray:
    """NumPy model of MacPair: output beats ``[n_vectors // 2, 2]``."""
    vectors = beats.reshape(-1, N_IN * BEATS).astype(np.int64)
    codes = np.clip((vectors @ np.asarray(weights, dtype=np.int64)) >> SHIFT, 0, 255)
    return codes.reshape(-1, 2)


def mac_pair_timing(n_vectors: int) -> dict[str, object]:
    """Cycle counts MacPair must show, derived from its description.

    ``mac`` accepts a beat, multiplies for N_IN cycles, accepts the next beat in the cycle
    after; after a vector's last beat its result waits one cycle in ``a_valid`` (input
    blocked): a vector takes BEATS * (N_IN + 1) + 1 = 11 cycles and its result is offered in
    its 11th. ``pair`` takes it that cycle; after every second result its output register
    is offered one cycle later.
    """
    per_vector = BEATS * (N_IN + 1) + 1
    stamps = [2 * per_vector * p + 2 * per_vector for p in range(n_vectors // 2)]
    return {
        "stamps": stamps,
        "cycles": stamps[-1] + 1,
        # mac: busy for N_IN cycles a beat, holds a partial vector between beats, then
        # a_valid for one cycle; pair: holds a first result until the second arrives
        # (per_vector cycles) then offers its output for one cycle.
        "stage_cycles": [n_vectors * (per_vector - 1), (n_vectors // 2) * (per_vector + 1)],
    }


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("verilator-cache")


@pytest.fixture(scope="module")
def beats() -> np.ndarray:
    return np.random.default_rng(7).integers(-128, 128, size=(24, N_IN))


@pytest.fixture(scope="module")
def first_run(cache_dir, beats) -> cosim.CosimResult:
    return cosim.run(MacPair(WEIGHTS), beats, n_out_beats=6, beats_per_inference=2,
                     cache_dir=cache_dir)


def test_outputs_equal_model_and_cycles_match_design(first_run, beats):
    np.testing.assert_array_equal(first_run.outputs, mac_pair_model(beats, WEIGHTS))
    assert first_run.outputs.shape == (6, 2)
    timing = mac_pair_timing(12)
    assert first_run.output_stamps.tolist() == timing["stamps"]
    assert first_run.cycles == timing["cycles"]
    assert first_run.latency_cycles == timing["stamps"][0]
    assert first_run.completion_cycles == [s + 1 for s in timing["stamps"][1::2]]
    assert first_run.ii_cycles == timing["stamps"][3] - timing["stamps"][1]
    assert first_run.stage_names == ["mac", "pair"]
    assert first_run.stage_cycles == timing["stage_cycles"]
    assert first_run.stages[1] == {"name": "pair", "cycles": timing["stage_cycles"][1]}
    assert first_run.cycles_per_second > 0


def test_model_is_not_trivial(beats):
    codes = mac_pair_model(beats, WEIGHTS)
    assert len(np.unique(codes)) > 3  # the comparison above would catch a wrong shift or sign


def test_second_run_hits_the_cache(first_run, cache_dir):
    assert not first_run.cached and first_run.build_seconds > 0
    other = np.random.default_rng(8).integers(-128, 128, size=(8, N_IN))
    again = cosim.run(MacPair(WEIGHTS), other, n_out_beats=2, cache_dir=cache_dir)
    assert again.cached and again.build_seconds == 0.0
    np.testing.assert_array_equal(again.outputs, mac_pair_model(other, WEIGHTS))
    assert again.ii_cycles is None  # one inference


def test_one_build_runs_more_beats_than_its_rings(first_run, cache_dir):
    """Input and output beats beyond the rings' depth go round them, with every output and
    stamp as the design gives them: the build does not depend on the batch size."""
    n_vectors = 2 * (cosim.RING_DEPTH + 50)  # more output beats than the output ring holds
    many = np.random.default_rng(9).integers(-128, 128, size=(n_vectors * BEATS, N_IN))
    res = cosim.run(MacPair(WEIGHTS), many, n_out_beats=n_vectors // 2, cache_dir=cache_dir)
    assert res.cached
    np.testing.assert_array_equal(res.outputs, mac_pair_model(many, WEIGHTS))
    timing = mac_pair_timing(n_vectors)
    assert res.output_stamps.tolist() == timing["stamps"]
    assert res.stage_cycles == timing["stage_cycles"]


def test_verilog_file_runs_and_keeps_its_files(first_run, cache_dir, beats, tmp_path):
    path = tmp_path / "accel.v"
    path.write_text(cosim.cosim_verilog(MacPair(WEIGHTS)))
    res = cosim.run(path, beats[:4], n_out_beats=1, cache_dir=cache_dir,
                    work_dir=tmp_path / "run")
    assert res.cached  # same Verilog as the component runs above
    np.testing.assert_array_equal(res.outputs, mac_pair_model(beats[:4], WEIGHTS))
    assert res.run_dir == tmp_path / "run" and (res.run_dir / "result.json").is_file()


def test_missing_output_times_out_with_partial_outputs(cache_dir, beats):
    with pytest.raises(cosim.CosimTimeout, match=r"6 of 7 output beats.*24 of 24 input") as e:
        cosim.run(MacPair(WEIGHTS), beats, n_out_beats=7, timeout_cycles=5000,
                  cache_dir=cache_dir)
    np.testing.assert_array_equal(e.value.outputs, mac_pair_model(beats, WEIGHTS))


def test_design_that_never_outputs_times_out(cache_dir, beats):
    # Half a vector: the mac stage waits for a second beat that never comes.
    with pytest.raises(cosim.CosimTimeout, match=r"after 2000 cycles with 0 of 1 output"):
        cosim.run(MacPair(WEIGHTS), beats[:1], n_out_beats=1, timeout_cycles=2000,
                  cache_dir=cache_dir)


def test_waves_give_a_trace_from_the_same_build(first_run, cache_dir, beats, tmp_path):
    res = cosim.run(MacPair(WEIGHTS), beats[:4], n_out_beats=1, waves=True,
                    cache_dir=cache_dir, work_dir=tmp_path / "run")
    assert res.cached
    np.testing.assert_array_equal(res.outputs, mac_pair_model(beats[:4], WEIGHTS))
    assert res.wave_path is not None and res.wave_path.is_file()
    trace = res.wave_path.read_bytes()
    assert b"o_stage_active" in trace
    # Every half period has its step in the trace, the free-running ones too.
    times = [int(line[1:]) for line in trace.splitlines() if line.startswith(b"#")]
    assert times == list(range(0, times[-1] + 1, times[1])) and len(times) > 2 * res.cycles
    assert first_run.wave_path is None


def test_verilog_is_deterministic_across_processes(tmp_path):
    text = cosim.cosim_verilog(MacPair(WEIGHTS))
    assert text == cosim.cosim_verilog(MacPair(WEIGHTS))
    script = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('t', {str(Path(__file__))!r})\n"
        "t = importlib.util.module_from_spec(spec); spec.loader.exec_module(t)\n"
        "sys.stdout.write(t.cosim.cosim_verilog(t.MacPair(t.WEIGHTS)))\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env={**os.environ, "PYTHONHASHSEED": "12345"})
    assert out.returncode == 0, f"exit {out.returncode}: {out.stderr[-2000:]}"
    assert out.stdout == text
    info = HarnessInfo.from_verilog(text)
    assert (info.n_in, info.in_bits, info.in_signed) == (N_IN, 8, True)
    assert (info.n_out, info.out_bits, info.out_signed) == (2, 8, False)
    assert info.stage_names == ["mac", "pair"]
    # The Verilog depends on the accelerator: other weights, other text (and cache key).
    assert cosim.cosim_verilog(MacPair([1] * 8)) != text


@pytest.mark.parametrize("bad, message", [
    (np.zeros((4, N_IN + 1), dtype=int), r"shape \(4, 5\)"),
    (np.full((4, N_IN), 128), r"code 128 at beat 0, element 0 does not fit signed\(8\)"),
    (np.zeros((4, N_IN)), r"dtype float64"),
])
def test_bad_inputs_are_user_errors(bad, message, tmp_path):
    verilog = cosim.cosim_verilog(MacPair(WEIGHTS))
    with pytest.raises(QfabError, match=message):
        cosim.run(verilog, bad, n_out_beats=1, cache_dir=tmp_path)
    assert not any(tmp_path.iterdir())  # refused before any build


def test_verilog_without_header_is_a_user_error(tmp_path):
    path = tmp_path / "plain.v"
    path.write_text("module m;\nendmodule\n")
    with pytest.raises(QfabError, match="not a qfab co-simulation Verilog"):
        cosim.run(path, np.zeros((1, N_IN), dtype=int), n_out_beats=1)


def test_bad_arguments_quote_the_value():
    with pytest.raises(ValueError, match="beats_per_inference must divide n_out_beats=6, not 4"):
        cosim.run("accel.v", np.zeros((24, N_IN), dtype=int), n_out_beats=6,
                  beats_per_inference=4)
