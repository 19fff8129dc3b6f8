"""Fmax before place and route: the slowest register-to-register path of a Yosys netlist.

``synth_ecp5`` / ``synth_ice40`` leave a netlist of the family's cells. Every path starts at
a clocked output (a flip-flop's Q, a block RAM's or a registered DSP's data out) and ends at
a clocked input. Its delay is the sum of

- the cells' own delays, per cell type and arc, as nextpnr's timing database gives them for
  the board's speed grade (read off its reports: an ECP5 LUT4 0.40 ns, a carry chain 0.07 ns
  a CCU2C, ...);
- one routed net per hop between cells, ``route_ns`` each, except the hops inside a carry
  chain and inside a slice (LUT4 into PFUMX, PFUMX into L6MUX21), which have dedicated
  wires;
- the start point's clock-to-output delay.

``route_ns`` is the one figure that only place and route knows: it is fitted per family to
nextpnr's routed Fmax of a few calibration blocks (``tests/board/test_fmax.py`` routes
others, held out, and checks the estimate within 10%).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path


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
_DP16KD_IN = tuple(f"{p}{b}{i}" for b in "AB" for p, n in (("AD", 14), ("DI", 18))
                   for i in range(n)) + tuple(f"{p}{b}" for b in "AB" for p in ("CE", "WE"))

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
_DEDICATED = {
    "ecp5": {("CCU2C", "COUT", "CCU2C", "CIN"), ("LUT4", "Z", "PFUMX", "ALUT"),
             ("LUT4", "Z", "PFUMX", "BLUT"), ("PFUMX", "Z", "L6MUX21", "D0"),
             ("PFUMX", "Z", "L6MUX21", "D1")},
    "ice40": {("SB_CARRY", "CO", "SB_CARRY", "CI")},
}
# A routed net's delay: ROUTE_NS, plus FANOUT_NS a doubling of its sinks, plus HARD_NS if it
# reaches a block RAM or DSP (they sit in columns of their own, away from the logic); ns.
# ROUTE_NS and FANOUT_NS are fitted to nextpnr-ecp5 (python -m qfab.cost_model.fmax_check
# --fit); the iCE40 figures are first guesses, not yet fitted or checked.
ROUTE_NS = {"ecp5": 0.75, "ice40": 1.45}
FANOUT_NS = {"ecp5": 0.05, "ice40": 0.1}
HARD_NS = {"ecp5": 0.8, "ice40": 0.8}
_HARD = {"ecp5": {"DP16KD", "MULT18X18D"}, "ice40": {"SB_RAM40_4K", "SB_MAC16"}}
SETUP_NS = {"ecp5": 0.0, "ice40": 0.47}


@dataclass(frozen=True)
class PathEstimate:
    """The slowest register-to-register path of a netlist, as the model times it.

    Members
    -------
    delay_ns : float
    routed_nets : int
        Hops that go through the general routing.
    logic_ns : float
        Cell delays, clock-to-output included.
    start, end : str
        Cell names at each end.
    """

    family: str
    delay_ns: float
    routed_nets: int
    logic_ns: float
    start: str
    end: str

    @property
    def fmax_mhz(self) -> float:
        return 1000.0 / self.delay_ns if self.delay_ns > 0 else float("inf")


def _port_name(family: str, port: str, index: int, width: int) -> str:
    if width == 1:
        return port
    return f"{port}[{index}]" if family == "ice40" else f"{port}{index}"


def critical_path(netlist: dict, family: str, *, top: str | None = None,
                  route_ns: float | None = None,
                  fanout_ns: float | None = None) -> PathEstimate | None:
    """The slowest register-to-register path of a Yosys JSON netlist (``write_json``) of
    ``family``; None when the design has no such path. Cells the table does not know (I/O
    buffers, PLLs) end paths untimed."""
    table, dedicated = TIMING[family], _DEDICATED[family]
    route = ROUTE_NS[family] if route_ns is None else route_ns
    per_doubling = FANOUT_NS[family] if fanout_ns is None else fanout_ns
    hard = _HARD[family]
    modules = netlist["modules"]
    name = top or next((n for n, m in modules.items()
                        if m.get("attributes", {}).get("top")), next(iter(modules)))
    cells = modules[name]["cells"]
    driver: dict[int, tuple[str, str, str]] = {}       # net -> (cell, type, port)
    inputs: dict[str, list[tuple[str, int]]] = {}      # cell -> [(port, net)]
    for cname, cell in cells.items():
        ctype = cell["type"].lstrip("\\")
        ins = inputs.setdefault(cname, [])
        for port, bits in cell["connections"].items():
            direction = cell.get("port_directions", {}).get(port, "input")
            for i, net in enumerate(bits):
                if not isinstance(net, int):
                    continue
                pname = _port_name(family, port, i, len(bits))
                if direction == "output":
                    driver[net] = (cname, ctype, pname)
                else:
                    ins.append((pname, net))
    sinks: dict[int, int] = {}
    near_hard: set[int] = set()
    for cname, ins in inputs.items():
        is_hard = cells[cname]["type"].lstrip("\\") in hard
        for _, net in ins:
            sinks[net] = sinks.get(net, 0) + 1
            if is_hard:
                near_hard.add(net)
    near_hard |= {net for net, (_, ctype, _) in driver.items() if ctype in hard}
    arrival: dict[tuple[str, str], tuple[float, int, float, str] | None] = {}

    def net_delay(net: int) -> float:
        return (route + per_doubling * math.log2(max(sinks.get(net, 1), 1))
                + (HARD_NS[family] if net in near_hard else 0.0))

    def net_arrival(net: int, sink_type: str, sink_port: str):
        """Arrival at a sink's pin: (ns, routed nets, logic ns, start cell) or None."""
        src = driver.get(net)
        if src is None:
            return None                      # a top-level input or a constant: untimed
        at = output_arrival(src[0], src[1], src[2])
        if at is None:
            return None
        if (src[1], src[2], sink_type, sink_port) in dedicated:
            return at
        return (at[0] + net_delay(net), at[1] + 1, at[2], at[3])

    def output_arrival(cname: str, ctype: str, port: str):
        key = (cname, port)
        if key in arrival:
            return arrival[key]
        timing = table.get(ctype)
        if timing is None:
            arrival[key] = None
            return None
        if port in timing.clk_to_out:
            arrival[key] = (timing.clk_to_out[port], 0, timing.clk_to_out[port], cname)
            return arrival[key]
        arrival[key] = None                  # a combinational loop ends here, untimed
        best = None
        for pname, net in inputs[cname]:
            delay = timing.arcs.get((pname, port))
            if delay is None:
                continue
            at = net_arrival(net, ctype, pname)
            if at is not None and (best is None or at[0] + delay > best[0]):
                best = (at[0] + delay, at[1], at[2] + delay, at[3])
        arrival[key] = best
        return best

    import sys

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 20 * len(cells) + 1000))
    try:
        worst = None
        for cname, cell in cells.items():
            ctype = cell["type"].lstrip("\\")
            timing = table.get(ctype)
            if timing is None or not timing.clocked_inputs:
                continue
            for pname, net in inputs[cname]:
                if pname not in timing.clocked_inputs:
                    continue
                at = net_arrival(net, ctype, pname)
                if at is not None and (worst is None or at[0] > worst[0][0]):
                    worst = (at, cname)
    finally:
        sys.setrecursionlimit(limit)
    if worst is None:
        return None
    (delay, nets, logic, start), end = worst
    delay += SETUP_NS[family]
    return PathEstimate(family, round(delay, 3), nets, round(logic, 3), start, end)


def estimate_file(synth_json: Path, family: str, *, top: str | None = None) -> PathEstimate | None:
    """:func:`critical_path` of a netlist file Yosys wrote."""
    return critical_path(json.loads(Path(synth_json).read_text()), family, top=top)
