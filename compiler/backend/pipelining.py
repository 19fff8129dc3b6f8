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
    lut_product_width : int
        Matrix-vector units whose two integer operands are at most this wide sum their
        products' partial products in their adder tree, in LUTs, instead of multiplying
        in DSPs (``lut_products``); 0: DSPs.
    requant_shift_add : bool
        Requantizers whose channels share one scale multiply by it in shifts and adds
        (``shift_add``), as the lanes of a channel each do, instead of in a DSP.
    pool_register : bool
        Max and average pools register each tap between their window and their reducer
        (``registered_taps``).
    registered_ready : bool
        Sliding windows (of convolutions and pools) keep their input ``ready`` and their
        "rows available" test as flip-flops (``registered_ready``), not compares of their
        row counters.
    window_register : bool
        Sliding windows (the pools' too) register their line buffer's words straight after
        the read, before the padding select (``registered_read``): ``qfab build`` moves that
        register into the block RAM (ECP5's DP16KD output register).
    weight_lane_words : int
        Pipelined matrix-vector units whose weight memory holds at most this many words
        keep it as one memory a PE, each read from its own copy of the address register
        (``weight_lanes``): where Yosys builds the memory in logic, one address would reach
        a thousand LUTs and more. 0: one memory.
    edge_slices : bool
        Every stream edge between blocks (and the accelerator's input and output) gets a
        register slice (:mod:`.slices`): a beat a cycle, a cycle more, no path across it.
    """

    target_mhz: float
    adders_per_stage: int
    mvu: bool
    requant_adders: int | None = None
    lut_product_width: int = 0
    requant_shift_add: bool = False
    pool_register: bool = False
    registered_ready: bool = False
    window_register: bool = False
    weight_lane_words: int = 0
    edge_slices: bool = False

    def ready_params(self) -> dict:
        """The parameters a sliding window (a pool's too) takes from this pipelining."""
        return {"registered_ready": True} if self.registered_ready else {}


# Without a board: 7-series at 100 MHz, where four short carry chains fit a cycle.
DEFAULT = Pipelining(target_mhz=100.0, adders_per_stage=4, mvu=False, requant_adders=None)

# ECP5 (speed grade 6) at 150 MHz: a carry chain of a dozen bits and its routing take about
# 2.5 ns there (cost_model/fmax.py), so two adder levels a cycle; an MVU's memory read, its
# multiplier and its tree each need their own cycle. Yosys maps a product to a MULT18X18D
# without its input and output registers, and the routing into and out of the DSP column
# alone took 9 ns on the digits CNN (68 MHz): products of bytes go to LUTs instead, as
# partial products in the MVU's pipelined tree, and a requantizer's one scale as shifts and
# adds (README, "Measured: the digits CNN"). A block RAM read takes 5.8 ns there: a pool's
# window read ends in a register before the reducer's compare; every window's read ends in
# a register in the block RAM itself (its output register: 1 ns after the clock, not 5.8).
# Yosys builds a ROM in logic on ECP5 when a bit of it (1/16) costs less than its DP16KD
# (128 a block of up to 36 bits): below 57 to 64 words; its PEs then read their own.
FAMILIES = {
    "ecp5": Pipelining(target_mhz=150.0, adders_per_stage=2, mvu=True, requant_adders=1,
                       lut_product_width=9, requant_shift_add=True, pool_register=True,
                       registered_ready=True, window_register=True, weight_lane_words=56,
                       edge_slices=True),
}


def for_family(family: str | None) -> Pipelining:
    """The pipelining of designs compiled for a board of ``family`` (None: no board)."""
    return FAMILIES.get(family or "", DEFAULT)
