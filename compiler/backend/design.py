"""A compiled design: the plan, its accelerator, and the files ``qfab compile`` writes."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from qfab.compiler.backend.accelerator import Accelerator
from qfab.compiler.backend.plan import HwPlan
from qfab.compiler.ir import Graph

from qfab.errors import QfabError
from qfab.output_files import output_folder

TOP_NAME = "qfab_accelerator"
# Said after an initiation interval that is the slowest stage's, not the cycle model's.
LOWER_BOUND = ", a lower bound: the design is too long for the cycle model"
# What manifest.json keeps of the cost model's estimate (report.md has it all).
ESTIMATE_KEYS = ("board", "family", "lut", "ff", "dsp", "bram", "bram_unit", "fits")


@dataclass
class Design:
    """What ``qfab.compile`` returns: the lowered graph, the hardware plan, the board it was
    planned for (a ``qfab.cost_model.boards.Board`` or None), and where its files are
    (``out_dir`` is None until written; ``soc_error`` says why no SoC was written).
    ``ii_cycles`` is the initiation interval the cycle model gives (``qfab.compile`` sets
    it); without it (a design too long for the cycle model), the plan's slowest stage, a
    lower bound. ``target_ii`` is the cycles
    per inference asked for (``--target-ii``, or the clock over ``--target-fps``), if any."""

    graph: Graph
    plan: HwPlan
    model: str
    out_dir: Path | None = None
    board: Any = None
    soc_error: str | None = None
    modeled_ii: int | None = None
    target_ii: int | None = None
    files: list[str] = field(default_factory=list)

    @property
    def ii_cycles(self) -> int:
        return self.modeled_ii if self.modeled_ii is not None else self.plan.ii_cycles

    def missed_target(self) -> str | None:
        """One line saying how far the built design falls short of its target, if it does."""
        if self.target_ii is None or self.ii_cycles <= self.target_ii:
            return None
        clock = self.plan.clock_hz
        return (f"target not met: initiation interval {self.ii_cycles} cycles "
                f"({clock / self.ii_cycles:,.0f} inferences/s) against the {self.target_ii} "
                f"asked for ({clock / self.target_ii:,.0f}/s), "
                f"{1 - self.target_ii / self.ii_cycles:.0%} short")

    def accelerator(self) -> Accelerator:
        return Accelerator(self.plan)

    def verilog(self) -> str:
        from qfab.compiler.backend import verilog_cache
        from qfab.hw._verilog import convert

        from qfab.progress import ticking

        def make() -> str:
            with ticking("elaborating the accelerator and writing its Verilog"):
                return convert(self.accelerator(), name=TOP_NAME, emit_src=False)

        p = self.plan
        return verilog_cache.cached(("accelerator", TOP_NAME, p.stages, p.in_shape, p.in_elems,
                                     p.out_shape, p.out_elems), make)

    # ---- tensors <-> stream beats ------------------------------------------------------
    def to_beats(self, codes: np.ndarray | dict[str, np.ndarray]) -> np.ndarray:
        """Input codes [N, ...] (IR layout; by name for several inputs, or ``env`` holding
        them) -> stream beats [N * beats, in_elems]: the inputs one after the other."""
        if isinstance(codes, dict):
            names = self.plan.inputs or [self.plan.input]
            parts = [np.asarray(codes[n]) for n in names]
            flat = np.concatenate([c.reshape(c.shape[0], -1) for c in parts], axis=1)
        else:
            flat = np.asarray(codes).reshape(codes.shape[0], -1)
        return flat[:, self.plan.in_order].reshape(-1, self.plan.in_elems)

    def from_beats(self, beats: np.ndarray, batch: int) -> dict[str, np.ndarray]:
        """Output beats -> each output tensor's codes [N, ...] in its IR layout, by name."""
        flat = np.asarray(beats).reshape(batch, -1)
        out = np.empty_like(flat)
        out[:, self.plan.out_order] = flat
        codes, at = {}, 0
        for name in self.plan.outputs or [self.plan.output]:
            shape = self.graph.tensors[name].shape
            size = int(np.prod(shape[1:]))
            codes[name] = out[:, at:at + size].reshape((batch,) + tuple(shape[1:]))
            at += size
        return codes

    def manifest(self) -> dict:
        p = self.plan
        return {
            "model": self.model, "top": TOP_NAME, "clock_hz": p.clock_hz,
            "board": _board(self.board),
            "input": {"tensor": p.input, "elements_per_beat": p.in_elems,
                      "element": _shape_str(p.in_shape), "beats": p.in_beats},
            "output": {"tensor": p.output, "elements_per_beat": p.out_elems,
                       "element": _shape_str(p.out_shape), "beats": p.out_beats},
            # several inputs (outputs) share the one stream in this order, each from its
            # first beat of an inference's
            "inputs": self._segments(p.inputs or [p.input], p.in_elems),
            "outputs": self._segments(p.outputs or [p.output], p.out_elems),
            "ii_cycles": self.ii_cycles, "slowest_stage_cycles": p.ii_cycles,
            # False: ii_cycles is the slowest stage's, a lower bound, not the cycle model's
            "ii_exact": self.modeled_ii is not None,
            "target_ii_cycles": self.target_ii,
            "target_met": None if self.target_ii is None else self.missed_target() is None,
            "soc": self._soc_manifest(),
            "stages": [self._stage_manifest(s) for s in p.stages],
            # ops the control core runs on the output codes (compiler/backend/tail.py)
            "tail": [{"name": n.name, "op": n.op, "tensor": n.outputs[0],
                      "format": str(self.graph.tensors[n.outputs[0]].fmt)} for n in p.tail],
        }

    def _segments(self, names: list[str], elems: int) -> list[dict[str, Any]]:
        out, beat = [], 0
        for name in names:
            beats = int(np.prod(self.graph.tensors[name].shape[1:])) // elems
            out.append({"tensor": name, "first_beat": beat, "beats": beats})
            beat += beats
        return out

    def _stage_manifest(self, s) -> dict[str, Any]:
        out = {"name": s.name, "op": s.op, "cycles": s.cycles, "macs": s.macs,
               "folding": s.folding, "in_beats": s.in_beats, "out_beats": s.out_beats,
               "blocks": [b.kind for b in s.blocks]}
        if s.source is not None:  # it reads another stage's stream than the one before
            out["source"] = self.plan.stages[s.source].name
        if s.on_skip:
            out["on_skip"] = True
        if s.skip:  # a join: where its second input comes from, and the blocks on the way
            out["skip"] = {"from": self.plan.stages[s.skip_from].name,
                           "blocks": [b.kind for b in s.skip],
                           "fifo_depth": s.skip[0].params["depth"]}
        return out

    def write(self, out_dir: str | os.PathLike, *, soc: bool = True, estimate=None) -> Path:
        """Write accelerator.v, manifest.json and report.md (with ``estimate``, the cost
        model's ``Estimate``, in both) into ``out_dir``, and with
        ``soc`` the firmware (firmware.elf, .hex, .bin, qfab_model.h) and soc.v: built in a
        temporary folder beside it and renamed into place, so a failure leaves nothing
        (:mod:`qfab.output_files`). An existing ``out_dir`` is replaced only if it is empty
        or an earlier design's. ``files`` then names what was written."""
        from qfab.compiler.backend.firmware import build_soc
        from qfab.compiler.backend.fusesoc import CORE_FILE, core_file

        out = Path(out_dir)
        if out.exists() and not (out.is_dir() and (not any(out.iterdir())
                                                   or (out / "manifest.json").is_file())):
            raise QfabError(f"{out} exists and is not a qfab design folder (no manifest.json); "
                            "choose another -o or remove it")
        with output_folder(out) as tmp:
            accelerator = self.verilog()
            (tmp / "accelerator.v").write_text(accelerator)
            self.soc_error = None
            if soc:
                try:
                    build_soc(self, tmp, accelerator)
                except QfabError as e:  # the accelerator stands on its own without a SoC
                    self.soc_error = str(e)
            manifest = self.manifest()
            if estimate is not None:
                manifest["estimate"] = {k: getattr(estimate, k) for k in ESTIMATE_KEYS}
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
            (tmp / "report.md").write_text(self.report(estimate))
            (tmp / CORE_FILE).write_text(core_file(Path(str(self.model)).stem,
                                                   soc=(tmp / "soc.v").is_file()))
            self.files = sorted(f.name for f in tmp.iterdir())
        self.out_dir = out
        return out

    def _soc_manifest(self) -> dict:
        from qfab.compiler.backend import firmware

        if self.soc_error:
            return {"error": self.soc_error}
        win, wout = firmware.stream_words(self.plan)
        return {"top": "qfab_soc", "job_addr": firmware.JOB_ADDR,
                "in_words_per_beat": win, "out_words_per_beat": wout,
                "max_images": firmware.max_images(self.plan)}

    def report(self, estimate=None) -> str:
        """Markdown: the stages, then ``estimate`` (the cost model's) when given."""
        p = self.plan
        ii = self.ii_cycles
        board = (f"Board {self.board.name} ({self.board.part})" if self.board is not None
                 else "No board given (--board)")
        if self.board is None and estimate is not None:
            board += f"; the estimate below is on {estimate.board}, the default board"
        lines = [f"# qfab design: {self.model}", "",
                 f"{board}. Clock {p.clock_hz / 1e6:g} MHz (assumed, the board's; `qfab "
                 f"build` gives the routed Fmax); initiation interval {ii} cycles "
                 f"({p.clock_hz / ii:,.0f} inferences/s; slowest stage {p.ii_cycles})"
                 f"{'' if self.modeled_ii is not None else LOWER_BOUND}.", "",
                 *([f"**{self.missed_target()}**", ""] if self.missed_target() else []),
                 "| stage | op | PE | SIMD | MACs | cycles | blocks |",
                 "|---|---|---|---|---|---|---|"]
        for s in p.stages:
            lines.append(f"| {s.name} | {s.op} | {s.folding.get('pe', '')} | "
                         f"{s.folding.get('simd', '')} | {s.macs} | {s.cycles} | "
                         f"{', '.join(b.kind for b in s.blocks)} |")
        text = "\n".join(lines) + "\n"
        return text if estimate is None else text + "\n" + estimate.report()


def _board(board) -> dict | None:
    """The board a design was compiled for, as ``qfab synth`` reads it."""
    if board is None:
        return None
    return {"name": board.name, "family": board.family, "part": board.part}


def _shape_str(shape) -> str:
    return f"{'s' if shape.signed else 'u'}{shape.width}"
