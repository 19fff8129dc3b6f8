"""Co-simulate a compiled design on a model's inputs and compare with the reference."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from qfab.compiler.backend.design import Design
from qfab.compiler.backend.tail import HOST_OPS
from qfab.sim import cosim
from qfab.sim.reference import Reference

from qfab.progress import ticking


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
    checked_codes: int = 0  # the accelerator's output codes and the firmware tail's
    cosim: cosim.CosimResult | None = None

    def summary(self) -> dict:
        return {"bit_exact": self.bit_exact, "cycles": self.cycles,
                "latency_cycles": self.latency_cycles, "ii_cycles": self.ii_cycles,
                "stages": self.stages, "mismatches": self.mismatches,
                "first_mismatch": str(self.first_mismatch) if self.first_mismatch else None}


def simulate(design: Design, feeds: dict[str, np.ndarray], *, waves: bool = False,
             work_dir=None) -> SimResult:
    """Run the design in Verilator on ``feeds`` (input codes/floats by name, any batch)."""
    ref, env = reference_run(design, feeds)
    x = env[design.plan.input]
    batch = x.shape[0]
    res = cosim.run(cosim_verilog(design), design.to_beats(env),
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


def cosim_verilog(design: Design) -> str:
    """The co-simulation Verilog of ``design``'s accelerator, made once per plan: another
    batch on the same design goes straight to the cached Verilator model."""
    key = ("cosim_verilog",)
    if key not in design.plan.derived:
        with ticking("elaborating the accelerator and its harness"):
            design.plan.derived[key] = cosim.cosim_verilog(design.accelerator(), name="accel")
    return design.plan.derived[key]


def reference_run(design: Design, feeds: dict[str, np.ndarray]) -> tuple[Reference, dict]:
    """The integer reference and every tensor it computes on ``feeds``."""
    ref = Reference(design.graph, "dyadic")
    batch = len(next(iter(feeds.values())))
    with ticking(f"running the integer reference on {batch} inferences"):
        env = ref.run({name: feeds[name] for name in design.graph.inputs}, keep=True)
    return ref, env


def compare(design: Design, ref: Reference, env: dict, got: np.ndarray | dict,
            tail_codes: np.ndarray | None = None) -> dict:
    """The hardware's output codes ``got`` against the reference's in ``env``: the fields of
    :class:`SimResult` that say whether and where they differ, and the model's outputs.

    ``tail_codes`` are the codes the control core computed from ``got`` for the firmware
    tail's last tensor (``sim --soc``), checked like the accelerator's; without them the host
    runs the tail's reference ops."""
    plan = design.plan
    if not isinstance(got, dict):  # the codes of the plan's (first) output
        got = {plan.output: got}
    env_hw = dict(env)
    env_hw.update(got)
    for node in plan.tail:
        env_hw[node.outputs[0]] = getattr(ref, "_" + node.op)(node, env_hw[node.inputs[0]])
    checked = list(got)
    if plan.tail and tail_codes is not None:
        end = plan.tail[-1].outputs[0]
        env_hw[end] = np.asarray(tail_codes, np.int64).reshape(np.shape(env[end]))
        checked.append(end)
    mismatches, first = 0, None
    for name in checked:
        diff = np.argwhere(env_hw[name] != np.asarray(env[name]))
        mismatches += len(diff)
        if diff.size and first is None:
            idx = tuple(int(i) for i in diff[0])
            first = Mismatch(name, idx, int(env[name][idx]), int(env_hw[name][idx]))
    # The host finishes what the fabric does not: the final dequantization or argmax.
    computed = {*got, *(n.outputs[0] for n in plan.tail)}
    for node in design.graph.nodes:
        if node.op in HOST_OPS and node.inputs[0] in computed:
            env_hw[node.outputs[0]] = getattr(ref, "_" + node.op)(node, env_hw[node.inputs[0]])
    outputs = {name: env_hw[name] for name in design.graph.outputs}
    return {"bit_exact": not mismatches, "outputs": outputs, "hw_codes": _joined(got),
            "ref_codes": _joined({name: np.asarray(env[name], np.int64) for name in got}),
            "mismatches": int(mismatches), "first_mismatch": first,
            "checked_codes": int(sum(np.size(env[name]) for name in checked))}


def _joined(codes: dict[str, np.ndarray]) -> np.ndarray:
    """One output's codes as they are; several flattened side by side, [N, total]."""
    if len(codes) == 1:
        return next(iter(codes.values()))
    return np.concatenate([c.reshape(len(c), -1) for c in codes.values()], axis=1)
