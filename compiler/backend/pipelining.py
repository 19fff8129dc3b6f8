"""How deep a plan's blocks register their logic: the clock a board's family is aimed at.

Every choice here is a block parameter (``BlockSpec.params``), so the hardware, the cycle
model (each block's ``*_stages`` or ``mvu_latency``) and the cost model read the same one:
cycles stay exact and resources estimated whatever the depth.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Pipelining:
    """Register placement for one target clock.

    Members
    -------
    target_mhz : float
        The clock the depths below are chosen for (the routed Fmax to aim at).
    adders_per_stage : int
        Adder levels of an adder graph between registers (:mod:`qfab.hw.cmvm`).
    mvu : bool
        Matrix-vector units register their operands, products and adder tree
        (:func:`qfab.hw.mvu.mvu_latency`).
    requant_adders : int or None
        Requantizers register their shift-add products every that many adder levels, or
        their biased accumulator before the multiplier (:mod:`qfab.hw.requant`); None: the
        bias add and the product in one cycle.
    """

    target_mhz: float
    adders_per_stage: int
    mvu: bool
    requant_adders: int | None = None


# Without a board: 7-series at 100 MHz, where four short carry chains fit a cycle.
DEFAULT = Pipelining(target_mhz=100.0, adders_per_stage=4, mvu=False, requant_adders=None)

# ECP5 (speed grade 6) at 150 MHz: a carry chain of a dozen bits and its routing take about
# 2.5 ns there (cost_model/fmax.py), so two adder levels a cycle; an MVU's memory read, its
# multiplier and its tree each need their own cycle.
FAMILIES = {
    "ecp5": Pipelining(target_mhz=150.0, adders_per_stage=2, mvu=True, requant_adders=1),
}


def for_family(family: str | None) -> Pipelining:
    """The pipelining of designs compiled for a board of ``family`` (None: no board)."""
    return FAMILIES.get(family or "", DEFAULT)
