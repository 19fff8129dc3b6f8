"""Per-stage LUT corrections a search learns from Yosys (``qfab search --synth``).

The cost model prices each stage of a plan (``estimate.stage_resources``). Yosys, run on the
Verilog ``qfab compile`` writes with the hierarchy kept, gives each stage's own LUTs: stage
``i``'s blocks are the accelerator's submodules ``s<i>_<j>_<block>``, and what the top module
holds itself (the streams between stages, the activity counters) is the glue. Per stage, the
ratio of Yosys's LUTs to the model's corrects every design the search prices with that stage
in that structure: its name, each block's PE, SIMD and lane counts and the model's DSP count
(not its bit widths, so a format change at a known folding takes that folding's ratio while
its products stay in DSPs). A structure Yosys has not seen takes the stage's ratio at the
default folding if its DSP count is the same there, else none (products moved between DSPs
and LUTs are what the model prices, not what was measured); the glue is added as measured.

The search learns from the default design and from designs with each MAC layer at one of its
folding options (``designs_to_learn``), so that every folding it may pick is priced from a
synthesis of that folding.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

from qfab.compiler.backend.plan import HwPlan

STRUCTURE = ("pe", "simd", "n_in", "n_out")  # the block parameters a stage's key holds
_STAGE = re.compile(r"^s(\d+)_")


def stage_key(stage, dsp: int) -> tuple:
    """A stage's name, structure and DSP count (the model's), as the correction looks it up."""
    return (stage.name, tuple((b.kind, tuple((k, b.params[k]) for k in STRUCTURE
                                             if k in b.params))
                              for b in [*stage.blocks, *stage.skip]), dsp)


def model_stages(plan: HwPlan, family: str) -> list[tuple[tuple, int]]:
    """Each stage's key and the cost model's LUTs for it."""
    from qfab.cost_model.estimate import stage_resources

    return [(stage_key(s, est.dsp), est.lut)
            for s, est in zip(plan.stages, stage_resources(plan, family), strict=True)]


def yosys_stages(plan: HwPlan, verilog: str, family: str) -> tuple[list[int], int]:
    """Yosys's LUTs for each stage of ``plan`` (its modules summed) and the top module's own."""
    from qfab.compiler.backend.design import TOP_NAME
    from qfab.cost_model.yosys import synthesize_modules

    modules = synthesize_modules(verilog, family, top=TOP_NAME)
    per_stage = [0] * len(plan.stages)
    glue = 0
    for name, got in modules.items():
        inner = name.removeprefix(TOP_NAME).lstrip(".")
        m = _STAGE.match(inner)
        if not inner:
            glue += got.lut
        elif m is not None and int(m.group(1)) < len(per_stage):
            per_stage[int(m.group(1))] += got.lut
    return per_stage, glue


@dataclass
class Correction:
    """Yosys-to-model LUT ratios by stage key, by stage name (at the default folding: the
    ratio and that stage's DSP count), and the top module's glue (the mean over the designs
    learned from)."""

    ratios: dict[tuple, float] = field(default_factory=dict)
    by_name: dict[str, tuple[float, int]] = field(default_factory=dict)
    glue: float = 0.0
    designs: int = 0

    def lut(self, stages: list[tuple[tuple, int]]) -> int:
        """A design's LUTs, corrected stage by stage (its ``model_stages``)."""
        total = self.glue
        for key, lut in stages:
            ratio = self.ratios.get(key)
            if ratio is None:
                default, dsp = self.by_name.get(key[0], (1.0, key[2]))
                ratio = default if dsp == key[2] else 1.0
            total += lut * ratio
        return round(total)

    def as_dict(self) -> dict:
        return {"designs": self.designs, "glue": round(self.glue),
                "stages": [{"stage": k[0], "structure": _structure_label(k), "dsp": k[2],
                            "ratio": round(r, 3)} for k, r in self.ratios.items()]}


def learn(designs: list[tuple[HwPlan, str]], family: str) -> Correction:
    """The correction from Yosys runs of ``designs`` (plan, Verilog), the first the
    default design (its ratios stand for structures not seen)."""
    sums: dict[tuple, list[float]] = defaultdict(lambda: [0.0, 0.0])
    glue = []
    by_name: dict[str, tuple[float, int]] = {}
    for i, (plan, verilog) in enumerate(designs):
        measured, top = yosys_stages(plan, verilog, family)
        glue.append(top)
        for (key, model), got in zip(model_stages(plan, family), measured, strict=True):
            sums[key][0] += got
            sums[key][1] += model
            if i == 0:
                by_name[key[0]] = (got / max(model, 1), key[2])
    ratios = {k: got / max(model, 1) for k, (got, model) in sums.items()}
    return Correction(ratios, by_name, sum(glue) / max(len(glue), 1), len(designs))


def _structure_label(key: tuple) -> str:
    return " ".join(f"{kind}({','.join(f'{k}={v}' for k, v in params)})"
                    for kind, params in key[1])
