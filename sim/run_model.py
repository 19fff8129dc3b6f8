"""Co-simulate a compiled design on a model's inputs and compare with the reference."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from qfab.compiler.backend.design import Design
from qfab.sim import cosim
from qfab.sim.reference import Reference


@dataclass
class Mismatch:
    tensor: str
    index: tuple[int, ...]
    expected: int
    got: int

    def __str__(self) -> str:
        return (f"first mismatch in {self.tensor} at index {list(self.index)}: "
                f"expected {self.expected}, got {self.got}")


@dataclass
class SimResult:
    """``bit_exact`` is True when every output code equals the reference's."""

    bit_exact: bool
    outputs: dict[str, np.ndarray]
    hw_codes: np.ndarray
    ref_codes: np.ndarray
    cycles: int
    latency_cycles: int
    ii_cycles: float | None
    stages: list[dict] = field(default_factory=list)
    mismatches: int = 0
    first_mismatch: Mismatch | None = None
    cosim: cosim.CosimResult | None = None

    def summary(self) -> dict:
        return {"bit_exact": self.bit_exact, "cycles": self.cycles,
                "latency_cycles": self.latency_cycles, "ii_cycles": self.ii_cycles,
                "stages": self.stages, "mismatches": self.mismatches,
                "first_mismatch": str(self.first_mismatch) if self.first_mismatch else None}


def simulate(design: Design, feeds: dict[str, np.ndarray], *, waves: bool = False,
             work_dir=None) -> SimResult:
    """Run the design in Verilator on ``feeds`` (input codes/floats by name, any batch)."""
    ref = Reference(design.graph, "dyadic")
    env = ref.run({name: feeds[name] for name in design.graph.inputs}, keep=True)
    x = env[design.plan.input]
    batch = x.shape[0]
    res = cosim.run(design.accelerator(), design.to_beats(x),
                    n_out_beats=batch * design.plan.out_beats,
                    beats_per_inference=design.plan.out_beats, waves=waves, work_dir=work_dir,
                    name="accel")
    got = design.from_beats(res.outputs, batch)
    stages = [{"name": n, "cycles": int(c), "predicted_cycles": s.cycles}
              for n, c, s in zip(res.stage_names, res.stage_cycles, design.plan.stages,
                                 strict=False)]
    return SimResult(**compare(design, ref, env, got), cycles=res.cycles,
                     latency_cycles=res.latency_cycles, ii_cycles=res.ii_cycles, stages=stages,
                     cosim=res)


def compare(design: Design, ref: Reference, env: dict, got: np.ndarray) -> dict:
    """The hardware's output codes ``got`` against the reference's in ``env``: the fields of
    :class:`SimResult` that say whether and where they differ, and the model's outputs."""
    want = np.asarray(env[design.plan.output]).astype(np.int64)
    diff = np.argwhere(got != want)
    first = None
    if diff.size:
        idx = tuple(int(i) for i in diff[0])
        first = Mismatch(design.plan.output, idx, int(want[idx]), int(got[idx]))
    # The host finishes what the fabric does not: the final dequantization or argmax.
    from qfab.compiler.backend.plan import HOST_OPS

    env_hw = dict(env)
    env_hw[design.plan.output] = got
    for node in design.graph.nodes:
        if node.op in HOST_OPS and node.inputs[0] == design.plan.output:
            env_hw[node.outputs[0]] = getattr(ref, "_" + node.op)(node, got)
    outputs = {name: env_hw[name] for name in design.graph.outputs}
    return {"bit_exact": not diff.size, "outputs": outputs, "hw_codes": got, "ref_codes": want,
            "mismatches": int(len(diff)), "first_mismatch": first}
