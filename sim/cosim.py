"""Co-simulate a streaming accelerator in Verilator through cocotb, at free-running speed.

The accelerator is wrapped in :class:`~qfab.sim.harness.CosimHarness`, written to Verilog with
a self-describing header (:func:`cosim_verilog`), built once per distinct Verilog
(:mod:`qfab.sim.verilator_build`) and run by :mod:`qfab.sim.cocotb_top`: inputs go into the
harness's input ring through VPI, a C++ clock runs the model until the harness raises
``done``, and the outputs and their cycle stamps come back through files in the run directory.
The rings' depths are fixed, so one build runs any number of beats.

Timing figures follow the harness convention: cycle 0 is the first cycle in which an input
beat is offered, and an output beat accepted in cycle ``t`` completes at ``t + 1``.
"""

from __future__ import annotations

import json
import numbers
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from amaranth.lib import wiring
from cocotb_tools.runner import get_results
from qfab.hw._verilog import convert
from qfab.sim.cocotb_top import INPUT_FILE, JOB_FILE, OUTPUT_FILE, RESULT_FILE, STAMP_FILE
from qfab.sim.harness import (
    COUNTER_BITS,
    CosimHarness,
    HarnessInfo,
    ascending_rings,
    describe,
    pack_bytes,
    unpack_bytes,
    unpack_words,
)
from qfab.sim.verilator_build import (
    TOP,
    BuildError,
    QfabVerilator,
    build_model,
    model_binary_dir,
)

from qfab.errors import QfabError
from qfab.progress import ticking

__all__ = ["CosimResult", "CosimError", "CosimTimeout", "cosim_verilog", "run",
           "DEFAULT_TIMEOUT_CYCLES", "RING_DEPTH"]

#: Cycles after which a run that has not collected all its output beats stops.
DEFAULT_TIMEOUT_CYCLES = 10_000_000
#: Beats the harness's input and output rings hold: any batch runs through them, so the
#: Verilog (and the Verilator build) does not depend on it.
RING_DEPTH = 1024


class CosimError(Exception):
    """The co-simulation failed: the model did not build, the simulator crashed or wrote no
    result. Not a user error: the message says what happened and where the log is."""


class CosimTimeout(CosimError):
    """The accelerator did not emit all the expected output beats within the cycle limit.

    Members
    -------
    outputs : np.ndarray
        The output beats collected before the limit, ``[out_count, n_out]``.
    in_count : int
        Input beats the accelerator had accepted.
    """

    def __init__(self, message: str, *, outputs: np.ndarray, in_count: int) -> None:
        super().__init__(message)
        self.outputs = outputs
        self.in_count = in_count


@dataclass(frozen=True)
class CosimResult:
    """Outputs and cycle counts of one co-simulation run.

    Members
    -------
    outputs : np.ndarray
        Output beats ``[n_out_beats, n_out]`` of element codes (int64).
    cycles : int
        Cycles from start to the last output beat, inclusive.
    latency_cycles : int
        Cycles from start to the first output beat (its stamp).
    ii_cycles : float or None
        Mean spacing of the completion cycles of consecutive inferences; ``None`` for one.
    completion_cycles : list of int
        For each inference, the cycle count at which its last output beat was accepted.
    output_stamps : np.ndarray
        The cycle in which each output beat was accepted.
    stage_names, stage_cycles : list
        Per-stage active cycles, if the accelerator has ``o_stage_active``.
    cycles_per_second : float
        Simulated cycles per wall-clock second while the model ran freely.
    sim_seconds, sim_cpu_seconds : float
        Wall-clock and CPU time of the free run (from ``start`` to ``done``).
    wave_path : Path or None
        The trace file, when run with ``waves=True``.
    build_seconds : float
        Time spent building the model in this call (0.0 when cached).
    cached : bool
        Whether the Verilator model came from the cache.
    run_dir : Path or None
        Where the job, result and logs were kept (``None`` if cleaned up).
    """

    outputs: np.ndarray
    cycles: int
    latency_cycles: int
    ii_cycles: float | None
    completion_cycles: list[int]
    output_stamps: np.ndarray
    stage_names: list[str] = field(default_factory=list)
    stage_cycles: list[int] = field(default_factory=list)
    cycles_per_second: float = 0.0
    sim_seconds: float = 0.0
    sim_cpu_seconds: float = 0.0
    wave_path: Path | None = None
    build_seconds: float = 0.0
    cached: bool = False
    run_dir: Path | None = None

    @property
    def stages(self) -> list[dict[str, object]]:
        """Per-stage figures as the CLI's JSON lists them: ``name`` and ``cycles``."""
        return [{"name": n, "cycles": c} for n, c in zip(self.stage_names, self.stage_cycles,
                                                          strict=True)]

    def summary(self) -> dict[str, object]:
        """The timing keys of ``qfab sim --json`` (``bit_exact`` is the caller's to add)."""
        return {"cycles": self.cycles, "latency_cycles": self.latency_cycles,
                "ii_cycles": self.ii_cycles, "stages": self.stages,
                "cycles_per_second": round(self.cycles_per_second),
                "build_seconds": round(self.build_seconds, 3), "cached": self.cached}


def cosim_verilog(accel: wiring.Component, *, name: str = "accel", in_depth: int = RING_DEPTH,
                  out_depth: int = RING_DEPTH) -> str:
    """Verilog of the harness around ``accel``, top module ``cosim_top``, deterministically.

    The first line is a comment carrying the :class:`HarnessInfo` that :func:`run` needs, so
    the text can be saved and co-simulated later. Source locations are left out, so the text
    (and the Verilator cache key) does not change with the checkout's path or line numbers.
    The rings are declared ascending (:func:`~qfab.sim.harness.ascending_rings`).
    """
    harness = CosimHarness(accel, in_depth=in_depth, out_depth=out_depth, accel_name=name)
    header = describe(accel, in_depth=in_depth, out_depth=out_depth, top=TOP).header()
    return header + "\n" + ascending_rings(convert(harness, name=TOP, emit_src=False))


def _load_verilog(source: str | Path) -> str:
    if isinstance(source, str) and ("\n" in source or source.startswith(HarnessInfo.HEADER)):
        return source
    path = Path(source)
    if not path.is_file():
        raise QfabError(f"co-simulation Verilog not found: {path}")
    return path.read_text()


def _check_inputs(inputs: np.ndarray, info: HarnessInfo) -> np.ndarray:
    array = np.asarray(inputs)
    if array.ndim != 2 or array.shape[1] != info.n_in or array.shape[0] < 1:
        raise QfabError(f"inputs must be beats [n_beats >= 1, {info.n_in}], "
                        f"got shape {array.shape}")
    if not (np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_):
        raise QfabError(f"inputs must be integer element codes, got dtype {array.dtype}")
    if array.shape[0] >= 1 << COUNTER_BITS:
        raise QfabError(f"{array.shape[0]} input beats are more than the harness counts "
                        f"({(1 << COUNTER_BITS) - 1})")
    return array


def _completions(stamps: np.ndarray, beats_per_inference: int) -> tuple[list[int], float | None]:
    ends = stamps[beats_per_inference - 1::beats_per_inference] + 1
    ii = float(np.diff(ends).mean()) if len(ends) > 1 else None
    return [int(e) for e in ends], ii


def _simulate(build_dir: Path, run_dir: Path, *, waves: bool) -> tuple[dict, bytes, bytes]:
    runner = QfabVerilator(waves=waves)
    results_xml = run_dir / "results.xml"
    try:
        runner.test(test_module="qfab.sim.cocotb_top", hdl_toplevel=TOP, build_dir=build_dir,
                    hdl_toplevel_lang="verilog", test_dir=run_dir,
                    results_xml=str(results_xml), waves=waves,
                    extra_env={"QFAB_COSIM_DIR": str(run_dir)}, log_file=run_dir / "sim.log")
    except (RuntimeError, SystemExit):
        pass  # the result file and the log below say what went wrong
    result_file = run_dir / RESULT_FILE
    failed = 0
    if results_xml.is_file():
        _, failed = get_results(results_xml)
    if failed or not result_file.is_file():
        log = run_dir / "sim.log"
        lines = log.read_text(errors="replace").splitlines() if log.is_file() else []
        errors = [ln.strip() for ln in lines if "Error" in ln or "FAIL" in ln]
        raise CosimError(f"the simulation of {TOP} wrote no result: "
                         f"{errors[-1] if errors else 'no log'}; log: {log}")
    return (json.loads(result_file.read_text()), (run_dir / OUTPUT_FILE).read_bytes(),
            (run_dir / STAMP_FILE).read_bytes())


def run(component_or_verilog: wiring.Component | str | Path, inputs: np.ndarray, *,
        n_out_beats: int, name: str = "accel", waves: bool = False,
        work_dir: str | Path | None = None, timeout_cycles: int = DEFAULT_TIMEOUT_CYCLES,
        beats_per_inference: int | None = None, cache_dir: str | Path | None = None,
        in_depth: int | None = None, out_depth: int | None = None) -> CosimResult:
    """Run ``inputs`` through an accelerator in Verilator and return outputs and cycle counts.

    Parameters
    ----------
    component_or_verilog : wiring.Component, str or Path
        The accelerator, or Verilog text or a file made by :func:`cosim_verilog`.
    inputs : np.ndarray
        Input beats ``[n_beats, n_in]`` of element codes.
    n_out_beats : int
        Output beats to collect; the run ends when the last one is accepted.
    name : str
        Instance name of the accelerator in the Verilog (components only).
    waves : bool
        Write a VCD trace; its path is ``CosimResult.wave_path``.
    work_dir : str or Path, optional
        Run directory to keep (job, result, logs, trace); a temporary one otherwise, removed
        after the run unless ``waves`` is set.
    timeout_cycles : int
        Cycle limit; reaching it raises :class:`CosimTimeout`.
    beats_per_inference : int, optional
        Output beats of one inference, for ``ii_cycles``; all of them by default.
    cache_dir : str or Path, optional
        Verilator build cache; see :func:`qfab.sim.verilator_build.cache_root`.
    in_depth, out_depth : int, optional
        Harness ring depths (components only), :data:`RING_DEPTH` by default.
    """
    if not isinstance(n_out_beats, numbers.Integral) or not 1 <= n_out_beats < 1 << COUNTER_BITS:
        raise ValueError(f"n_out_beats must be a positive int below 2**{COUNTER_BITS}, "
                         f"not {n_out_beats!r}")
    n_out_beats = int(n_out_beats)
    bpi = n_out_beats if beats_per_inference is None else beats_per_inference
    if not isinstance(bpi, numbers.Integral) or bpi < 1 or n_out_beats % bpi:
        raise ValueError(f"beats_per_inference must divide n_out_beats={n_out_beats}, "
                         f"not {beats_per_inference!r}")
    if not 1 <= timeout_cycles < 1 << COUNTER_BITS:
        raise ValueError(f"timeout_cycles must be 1..2**{COUNTER_BITS}-1, not {timeout_cycles!r}")
    if isinstance(component_or_verilog, wiring.Component):
        accel, text = component_or_verilog, None
        in_depth, out_depth = in_depth or RING_DEPTH, out_depth or RING_DEPTH
        info = describe(accel, in_depth=in_depth, out_depth=out_depth, top=TOP)
    else:
        text = _load_verilog(component_or_verilog)
        info = HarnessInfo.from_verilog(text)
        if info is None:
            raise QfabError(f"not a qfab co-simulation Verilog (no "
                            f"'{HarnessInfo.HEADER.strip()}' header): "
                            f"{str(component_or_verilog)[:80]!r}")
    # Check the user's data before the slow part (Verilog generation and the build).
    array = _check_inputs(inputs, info)
    try:
        words = pack_bytes(array, bits=info.in_bits, signed=info.in_signed)
    except ValueError as e:
        raise QfabError(f"inputs: {e}") from None
    if text is None:
        text = cosim_verilog(accel, name=name, in_depth=in_depth, out_depth=out_depth)

    keep = work_dir is not None or waves
    run_dir = Path(work_dir) if work_dir is not None else Path(
        tempfile.mkdtemp(prefix=f"qfab-cosim-{name}-"))
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        try:
            with ticking(f"building the Verilator model of {name} (once per design)"):
                build = build_model(text, cache_dir=cache_dir)
        except BuildError as e:
            raise CosimError(str(e)) from e
        (run_dir / JOB_FILE).write_text(json.dumps({
            "top": TOP, "n_out_beats": n_out_beats, "timeout_cycles": timeout_cycles,
            "n_stages": len(info.stage_names), "in_depth": info.in_depth,
            "out_depth": info.out_depth, "in_width": info.n_in * info.in_bits,
            "out_width": info.n_out * info.out_bits, "stamp_width": COUNTER_BITS}))
        (run_dir / INPUT_FILE).write_bytes(words)
        (run_dir / RESULT_FILE).unlink(missing_ok=True)
        with ticking(f"simulating {len(array)} input beats of {name} in Verilator"):
            raw, output_words, stamp_words = _simulate(model_binary_dir(build), run_dir,
                                                       waves=waves)
    finally:
        if not keep:
            shutil.rmtree(run_dir, ignore_errors=True)

    outputs = unpack_bytes(output_words, n=info.n_out, bits=info.out_bits,
                           signed=info.out_signed)
    if raw["timed_out"]:
        raise CosimTimeout(
            f"{name}: timed out after {raw['cycles']} cycles with {raw['out_count']} of "
            f"{n_out_beats} output beats; it accepted {raw['in_count']} of {len(array)} input "
            f"beats", outputs=outputs, in_count=raw["in_count"])
    stamps = np.frombuffer(stamp_words, dtype="<u4").astype(np.int64)
    completions, ii = _completions(stamps, bpi)
    n_stages = len(info.stage_names)
    stage_cycles = unpack_words([int(raw["stage_cycles"], 16)], n=n_stages, bits=COUNTER_BITS,
                                signed=False)[0].tolist() if n_stages else []
    wall = raw["wall_seconds"]
    return CosimResult(
        outputs=outputs, cycles=raw["cycles"], latency_cycles=int(stamps[0]), ii_cycles=ii,
        completion_cycles=completions, output_stamps=stamps, stage_names=list(info.stage_names),
        stage_cycles=stage_cycles, cycles_per_second=raw["cycles"] / wall if wall > 0 else 0.0,
        sim_seconds=wall, sim_cpu_seconds=raw["cpu_seconds"],
        wave_path=(run_dir / "dump.vcd") if waves else None, build_seconds=build.seconds,
        cached=build.cached, run_dir=run_dir if keep else None)
