"""Cells' own delays for the Fmax estimate (:mod:`qfab.cost_model.fmax`), per family and
speed grade, as nextpnr's timing database gives them (read off its reports: an ECP5 LUT4
0.3 ns, a carry chain 0.07 ns a CCU2C, a DP16KD's read 5.8 ns, ...), and which hops between
cells take dedicated wires rather than the general routing."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CellTiming:
    """How one cell type takes part in timing paths (delays in ns)."""

    arcs: dict[tuple[str, str], float]   # (input port, output port) -> combinational delay
    clk_to_out: dict[str, float]         # output port -> delay after the clock edge
    clocked_inputs: tuple[str, ...] = ()  # input ports that end a path


_FF_IN_ECP5 = ("DI", "M", "CE", "LSR")
_LUT_IN = ("A", "B", "C", "D")


def _ccu2c() -> CellTiming:
    arcs = {("CIN", "COUT"): 0.071, ("CIN", "S0"): 0.443, ("CIN", "S1"): 0.443}
    for half in "01":
        for p in _LUT_IN:
            arcs[(f"{p}{half}", "COUT")] = 0.447
            arcs[(f"{p}{half}", f"S{half}")] = 0.401
            if half == "0":
                arcs[(f"{p}0", "S1")] = 0.447
    return CellTiming(arcs, {})


_DP16KD_DATA_OUT = {f"DO{b}{i}": 5.83 for b in "AB" for i in range(18)}
# with its output register (REGMODE OUTREG, cost_model/bram_outreg.py)
DP16KD_OUTREG_NS = 0.96
_DP16KD_IN = tuple(f"{p}{b}{i}" for b in "AB" for p, n in (("AD", 14), ("DI", 18))
                   for i in range(n)) + tuple(f"{p}{b}" for b in "AB"
                                              for p in ("CE", "WE", "OCE"))

TIMING: dict[str, dict[str, CellTiming]] = {
    "ecp5": {
        "LUT4": CellTiming({(p, "Z"): 0.3 for p in _LUT_IN}, {}),
        "PFUMX": CellTiming({("ALUT", "Z"): 0.242, ("BLUT", "Z"): 0.242, ("C0", "Z"): 0.4},
                            {}),
        "L6MUX21": CellTiming({("D0", "Z"): 0.242, ("D1", "Z"): 0.242, ("SD", "Z"): 0.4}, {}),
        "CCU2C": _ccu2c(),
        "TRELLIS_FF": CellTiming({}, {"Q": 0.525}, _FF_IN_ECP5),
        "TRELLIS_DPR16X4": CellTiming(
            {(f"RAD{i}", f"DO{j}"): 0.401 for i in range(4) for j in range(4)},
            {f"DO{j}": 0.9 for j in range(4)},
            tuple(f"WAD{i}" for i in range(4)) + tuple(f"DI{i}" for i in range(4)) + ("WRE",)),
        "DP16KD": CellTiming({}, _DP16KD_DATA_OUT, _DP16KD_IN),
        "MULT18X18D": CellTiming(
            {(f"{a}{i}", f"P{j}"): 3.927 for a in "AB" for i in range(18) for j in range(36)},
            {}),
    },
    "ice40": {
        "SB_LUT4": CellTiming({(f"I{i}", "O"): 0.449 for i in range(4)}, {}),
        "SB_CARRY": CellTiming({("CI", "CO"): 0.126, ("I0", "CO"): 0.259,
                                ("I1", "CO"): 0.259}, {}),
        **{ff: CellTiming({}, {"Q": 0.796}, ("D", "E", "R", "S"))
           for ff in ("SB_DFF", "SB_DFFE", "SB_DFFSR", "SB_DFFR", "SB_DFFS", "SB_DFFESR",
                      "SB_DFFER", "SB_DFFES", "SB_DFFSS", "SB_DFFESS", "SB_DFFRR",
                      "SB_DFFERR")},
        "SB_RAM40_4K": CellTiming({}, {f"RDATA[{i}]": 2.146 for i in range(16)},
                                  tuple(f"{p}[{i}]" for p, n in (("RADDR", 11),
                                        ("WADDR", 11), ("WDATA", 16), ("MASK", 16))
                                        for i in range(n)) + ("RE", "WE", "RCLKE",
                                                               "WCLKE")),
        "SB_MAC16": CellTiming({(f"{a}[{i}]", f"O[{j}]"): 6.0 for a in "AB" for i in range(16)
                                for j in range(32)}, {}),
    },
}
# Hops on dedicated wires: (driver cell type, its port) into (sink cell type, its port).
DEDICATED = {
    "ecp5": {("CCU2C", "COUT", "CCU2C", "CIN"), ("LUT4", "Z", "PFUMX", "ALUT"),
             ("LUT4", "Z", "PFUMX", "BLUT"), ("PFUMX", "Z", "L6MUX21", "D0"),
             ("PFUMX", "Z", "L6MUX21", "D1")},
    "ice40": {("SB_CARRY", "CO", "SB_CARRY", "CI")},
}
# Cells in columns of their own, away from the logic: block RAMs and DSPs.
HARD = {"ecp5": {"DP16KD", "MULT18X18D"}, "ice40": {"SB_RAM40_4K", "SB_MAC16"}}
# Where a carry chain meets the general routing nextpnr packs a cell to cross over: (the
# chain's out port, its in port, the feed-out cell's ns, the feed-in cell's ns). On ECP5 a
# CCU2C carries COUT out (FCI -> F, as CIN -> S0) and a signal in (A -> FCO, as A0 -> COUT).
CARRY_FEED = {"ecp5": (("CCU2C", "COUT"), ("CCU2C", "CIN"), 0.443, 0.447)}
