"""Run a compiled design on the whole SoC in Verilator: the firmware drives the accelerator.

The host writes the job (:func:`qfab.compiler.backend.firmware.job_layout`) and the input
beats into RAM through the debug port while the core is held in reset, releases it, and lets
the model run freely in the C++ harness of :mod:`qfab.sim.run_elf` until the firmware stores
to the exit register. It then reads back the output beats, the argmax the firmware computed
for each image, and the firmware's cycle report, and compares them with the reference.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from qfab.compiler.backend import firmware
from qfab.compiler.backend.design import Design
from qfab.compiler.backend.tail import tail_elems
from qfab.hw.soc.streamer import words_per_beat
from qfab.sim.harness import pack_beats, unpack_words
from qfab.sim.run_elf import build_soc_model, run_harness
from qfab.sim.run_model import SimResult, compare, reference_run

from qfab.errors import QfabError
from qfab.progress import ticking

#: Cycles after which a SoC run that has not exited stops.
DEFAULT_MAX_CYCLES = 50_000_000


def beats_to_words(beats: np.ndarray, bits: int, signed: bool) -> np.ndarray:
    """Beats ``[n, elems]`` of codes -> the 32-bit words they take in RAM, beat by beat,
    element 0 in the low bits of a beat's first word."""
    beats = np.asarray(beats)
    per_beat = words_per_beat(bits * beats.shape[1])
    ints = pack_beats(beats, bits=bits, signed=signed) if len(beats) else []
    return np.array([(v >> (32 * k)) & 0xFFFF_FFFF for v in ints for k in range(per_beat)],
                    dtype=np.uint64)


def words_to_beats(words: np.ndarray, elems: int, bits: int, signed: bool) -> np.ndarray:
    """Inverse of :func:`beats_to_words`: int64 codes ``[n, elems]``."""
    per_beat = words_per_beat(bits * elems)
    rows = np.asarray(words, dtype=np.uint64).reshape(-1, per_beat)
    ints = [sum(int(w) << (32 * k) for k, w in enumerate(row)) for row in rows]
    return unpack_words(ints, n=elems, bits=bits, signed=signed)


def _soc_model(design: Design, work_dir: Path | None, verbose: bool) -> Path:
    """The design's SoC harness: firmware, soc.v and the Verilator build, made once per
    design object."""
    exe = getattr(design, "_soc_model", None)
    if exe is None or work_dir is not None:
        with ticking("building the SoC's firmware and Verilator model (once per design)"):
            _, verilog = firmware.build_soc(design, work_dir)
            exe = design._soc_model = build_soc_model(verilog, verbose=verbose)
    return exe


@dataclass
class SocResult(SimResult):
    """:class:`SimResult` of a SoC run, with what the firmware measured and computed.

    ``cycles`` counts the whole program from reset (boot, job, argmax, tail, report);
    ``accel_cycles`` the accelerator job, start to done; ``control_cycles`` the rest;
    ``firmware_cycles`` what the firmware timed itself, from programming the job to the end
    of the work after it; of that, ``argmax_cycles`` the argmax and ``tail_cycles`` the
    firmware tail (compiler/backend/tail.py; 0 without one); ``console`` what it printed.
    """

    accel_cycles: int = 0
    firmware_cycles: int = 0
    control_cycles: int = 0
    argmax_cycles: int = 0
    tail_cycles: int = 0
    argmax: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    ref_argmax: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    console: str = ""

    @property
    def argmax_matches(self) -> bool:
        return bool(np.array_equal(self.argmax, self.ref_argmax))

    def summary(self) -> dict:
        out = super().summary()
        out.update(soc=True, accel_cycles=self.accel_cycles, control_cycles=self.control_cycles,
                   firmware_cycles=self.firmware_cycles, argmax_cycles=self.argmax_cycles,
                   tail_cycles=self.tail_cycles,
                   argmax=self.argmax.tolist(), argmax_matches=self.argmax_matches)
        return out


def simulate_soc(design: Design, feeds: dict[str, np.ndarray], *,
                 max_cycles: int = DEFAULT_MAX_CYCLES, work_dir: Path | None = None,
                 verbose: bool = False) -> SocResult:
    """Run ``design`` on the SoC on ``feeds`` (input codes/floats by name, any batch)."""
    ref, env = reference_run(design, feeds)
    plan = design.plan
    x = env[plan.input]
    batch = x.shape[0]
    layout = firmware.job_layout(plan, batch)
    exe = _soc_model(design, work_dir, verbose)

    in_words = beats_to_words(design.to_beats(env), plan.in_shape.width, plan.in_shape.signed)
    load = {firmware.JOB_ADDR + 4 * k: w for k, w in enumerate(layout.header())}
    load.update({layout.in_addr + 4 * k: int(w) for k, w in enumerate(in_words)})
    _, wout = firmware.stream_words(plan)
    n_report = firmware.REPORT_WORDS + len(plan.stages)
    dumps = ((layout.out_addr, batch * plan.out_beats * wout), (layout.argmax_addr, batch),
             (layout.report_addr, n_report), (layout.tail_addr, batch * tail_elems(plan)))
    with tempfile.TemporaryFile(mode="w+") as console_file:  # the harness needs a descriptor
        with ticking(f"simulating the SoC on {batch} inferences in Verilator"):
            run = run_harness(exe, load, entry=firmware.ROM.base, max_cycles=max_cycles,
                              dumps=dumps, stdout=console_file, where="SoC simulation")
        console_file.seek(0)
        console = console_file.read()
    if run.reason != "exit" or run.code != 0:
        what = ("timed out" if run.reason == "timeout"
                else f"firmware exited with status {run.code}")
        raise QfabError(f"SoC simulation {what} after {run.cycles} cycles"
                        + (f": {console.strip().splitlines()[-1]}" if console.strip() else ""))
    out_words, argmax, report, tail_words = run.dumps
    beats = words_to_beats(np.array(out_words), plan.out_elems, plan.out_shape.width,
                           plan.out_shape.signed)
    got = design.from_beats(beats, batch)
    tail_codes = np.array(tail_words, np.uint32).view(np.int32) if plan.tail else None
    fields = compare(design, ref, env, got, tail_codes)
    want = fields["ref_codes"].reshape(batch, -1)
    _status, total, accel, latency, argmax_cycles, tail_cycles, n_stages = \
        report[:firmware.REPORT_WORDS]
    stages = [{"name": s.name, "cycles": int(c), "predicted_cycles": s.cycles}
              for s, c in zip(plan.stages, report[firmware.REPORT_WORDS:], strict=True)]
    return SocResult(**fields, cycles=run.cycles, latency_cycles=int(latency), ii_cycles=None,
                     stages=stages, accel_cycles=int(accel),
                     control_cycles=int(run.cycles - accel), firmware_cycles=int(total),
                     argmax_cycles=int(argmax_cycles), tail_cycles=int(tail_cycles),
                     argmax=np.array(argmax, np.int64),
                     ref_argmax=np.argmax(want, axis=1).astype(np.int64), console=console)
