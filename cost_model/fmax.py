"""Fmax before place and route: the slowest register-to-register path of a Yosys netlist.

``synth_ecp5`` / ``synth_ice40`` leave a netlist of the family's cells. Every path starts at
a clocked output (a flip-flop's Q, a block RAM's or a registered DSP's data out) and ends at
a clocked input. Its delay is the sum of

- the cells' own delays (:mod:`qfab.cost_model.cell_timing`);
- one routed net per hop between cells, except the hops inside a carry chain and inside a
  slice (LUT4 into PFUMX, PFUMX into L6MUX21), which have dedicated wires;
- where a carry chain meets the general routing, the cell the placer adds to carry the
  signal out of the chain or into it (nextpnr-ecp5 packs a CCU2C to feed a carry out to
  logic, and another to feed logic into a carry in, so a carry out that also reaches logic
  splits its chain in two);
- the start point's clock-to-output delay.

A routed net costs ``ROUTE_NS``, plus ``FANOUT_NS`` a doubling of its sinks, plus ``HARD_NS``
when it reaches a block RAM or DSP, plus ``SIZE_NS`` a doubling of the design's cells past
``SIZE_REF_CELLS`` (a bigger design spreads wider, and its nets run longer). Only place and
route knows these figures: they are fitted per family to nextpnr's routed Fmax of calibration
blocks (``python -m qfab.cost_model.fmax_check --fit``); ``tests/board/test_fmax.py`` routes
others, held out, and checks the estimate within 10%.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from qfab.cost_model.cell_timing import CARRY_FEED, DEDICATED, DP16KD_OUTREG_NS, HARD, TIMING

# Routed nets' figures, ns (see the module's docstring). The ECP5 ones are fitted to
# nextpnr-ecp5 (python -m qfab.cost_model.fmax_check --fit); the iCE40 ones are first
# guesses, not yet fitted or checked.
ROUTE_NS = {"ecp5": 0.55, "ice40": 1.45}
FANOUT_NS = {"ecp5": 0.1, "ice40": 0.1}
SIZE_NS = {"ecp5": 0.0, "ice40": 0.0}
HARD_NS = {"ecp5": 0.8, "ice40": 0.8}
SETUP_NS = {"ecp5": 0.0, "ice40": 0.47}
SIZE_REF_CELLS = 1000


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


class TimingGraph:
    """A netlist's timing points and the hops between them, read once and timed with any
    routing figures (:meth:`critical_path`): the fit times each calibration netlist many
    times.

    Parameters
    ----------
    netlist : dict
        Yosys JSON (``write_json``).
    family : str
    top : str, optional
        The module to time; the one marked ``top`` by default.

    Members
    -------
    cells : int
        Cells in the module, the design's size.
    """

    def __init__(self, netlist: dict, family: str, *, top: str | None = None):
        self.family = family
        table, dedicated, hard = TIMING[family], DEDICATED[family], HARD[family]
        feed = CARRY_FEED.get(family)
        modules = netlist["modules"]
        name = top or next((n for n, m in modules.items()
                            if m.get("attributes", {}).get("top")), next(iter(modules)))
        cells = modules[name]["cells"]
        self.cells = len(cells)
        types = {c: cell["type"].lstrip("\\") for c, cell in cells.items()}
        driver: dict[int, tuple[str, str]] = {}         # net -> (cell, port)
        inputs: dict[str, list[tuple[str, int]]] = {}   # cell -> [(port, net)]
        for cname, cell in cells.items():
            ins = inputs.setdefault(cname, [])
            for port, bits in cell["connections"].items():
                direction = cell.get("port_directions", {}).get(port, "input")
                for i, net in enumerate(bits):
                    if not isinstance(net, int):
                        continue
                    pname = _port_name(family, port, i, len(bits))
                    if direction == "output":
                        driver[net] = (cname, pname)
                    else:
                        ins.append((pname, net))
        sinks: dict[int, int] = {}
        near_hard: set[int] = set()
        for cname, ins in inputs.items():
            for _, net in ins:
                sinks[net] = sinks.get(net, 0) + 1
                if types[cname] in hard:
                    near_hard.add(net)
        near_hard |= {net for net, (c, _) in driver.items() if types[c] in hard}

        def wire(net: int, src: tuple[str, str], sink_type: str, sink_port: str):
            """(routed, the feed cells' ns) of the hop from ``src`` over ``net``."""
            link = (types[src[0]], src[1], sink_type, sink_port)
            if feed is None:
                return link not in dedicated, 0.0
            out_port, in_port, out_ns, in_ns = feed
            chained = link in dedicated and (
                (link[0], link[1]) != out_port or sinks.get(net, 1) == 1)
            if chained:
                return False, 0.0
            extra = (out_ns if (link[0], link[1]) == out_port else 0.0) + (
                in_ns if (sink_type, sink_port) == in_port else 0.0)
            return True, extra

        # Timing points are cells' outputs, numbered in an order where every point comes
        # after the points it reads. A point is a start (its clock-to-output delay) or
        # reads hops: (point, arc ns, routed, doublings of the net's sinks, reaches hard).
        self._start: list[tuple[float, str] | None] = []
        self._hops: list[list[tuple[int, float, bool, float, bool]]] = []
        index: dict[tuple[str, str], int | None] = {}

        def clock_to_out(cname: str, port: str, timing) -> float:
            # a DP16KD with its output register (REGMODE OUTREG) gives its data sooner
            if types[cname] == "DP16KD" and str(cells[cname].get("parameters", {}).get(
                    f"REGMODE_{port[2]}", "")).strip() == "OUTREG":
                return DP16KD_OUTREG_NS
            return timing.clk_to_out[port]

        def hop(net: int, sink_type: str, sink_port: str):
            """The point driving ``net`` into a sink and how the hop is routed, or None."""
            src = driver.get(net)
            if src is None:
                return None                  # a top-level input or a constant: untimed
            point = visit(*src)
            if point is None:
                return None
            routed, extra = wire(net, src, sink_type, sink_port)
            return point, extra, routed, math.log2(max(sinks.get(net, 1), 1)), net in near_hard

        def visit(cname: str, port: str) -> int | None:
            stack = [(cname, port, None)]
            while stack:
                c, p, pending = stack.pop()
                key = (c, p)
                timing = table.get(types[c])
                if pending is None:
                    if key in index:
                        continue
                    if timing is None:
                        index[key] = None
                        continue
                    if p in timing.clk_to_out:
                        index[key] = len(self._start)
                        self._start.append((clock_to_out(c, p, timing), c))
                        self._hops.append([])
                        continue
                    index[key] = None        # on the stack: a loop back here is untimed
                    arcs = [(pn, net, timing.arcs[(pn, p)]) for pn, net in inputs[c]
                            if (pn, p) in timing.arcs]
                    stack.append((c, p, arcs))
                    for _, net, _ in arcs:
                        src = driver.get(net)
                        if src is not None and src not in index:
                            stack.append((src[0], src[1], None))
                    continue
                hops = []
                for pn, net, delay in pending:
                    src = driver.get(net)
                    point = index.get(src) if src is not None else None
                    if point is None:
                        continue
                    routed, extra = wire(net, src, types[c], pn)
                    hops.append((point, delay + extra, routed,
                                 math.log2(max(sinks.get(net, 1), 1)), net in near_hard))
                if hops:
                    index[key] = len(self._start)
                    self._start.append(None)
                    self._hops.append(hops)
            return index.get((cname, port))

        # Path ends: (cell, [(point, 0.0, routed, doublings, reaches hard)]).
        self._ends: list[tuple[str, list[tuple[int, float, bool, float, bool]]]] = []
        for cname in cells:
            timing = table.get(types[cname])
            if timing is None or not timing.clocked_inputs:
                continue
            hops = []
            for pname, net in inputs[cname]:
                if pname in timing.clocked_inputs:
                    h = hop(net, types[cname], pname)
                    if h is not None:
                        hops.append(h)
            if hops:
                self._ends.append((cname, hops))

    def critical_path(self, *, route_ns: float | None = None, fanout_ns: float | None = None,
                      size_ns: float | None = None) -> PathEstimate | None:
        """The slowest path with these routing figures (the fitted ones by default); None
        when the design has no register-to-register path."""
        worst = max(self._timed_ends(route_ns, fanout_ns, size_ns), default=None,
                    key=lambda end: end[0][0])
        return None if worst is None else self._estimate(*worst)

    def slowest_paths(self, count: int, **figures: float | None) -> list[PathEstimate]:
        """The slowest path into each end point, the ``count`` slowest end points first
        (the routing figures as :meth:`critical_path` takes them)."""
        ends = sorted(self._timed_ends(figures.get("route_ns"), figures.get("fanout_ns"),
                                       figures.get("size_ns")), key=lambda end: -end[0][0])
        return [self._estimate(*end) for end in ends[:count]]

    def _estimate(self, at: tuple[float, int, float, str], end: str) -> PathEstimate:
        delay, nets, logic, start = at
        delay += SETUP_NS[self.family]
        return PathEstimate(self.family, round(delay, 3), nets, round(logic, 3), start, end)

    def _timed_ends(self, route_ns: float | None, fanout_ns: float | None,
                    size_ns: float | None):
        """Each end point's slowest arrival ``((ns, routed hops, logic ns, start), end)``."""
        family = self.family
        route = ROUTE_NS[family] if route_ns is None else route_ns
        route += (SIZE_NS[family] if size_ns is None else size_ns) * math.log2(
            max(self.cells, 1) / SIZE_REF_CELLS)
        per_doubling = FANOUT_NS[family] if fanout_ns is None else fanout_ns
        hard_ns = HARD_NS[family]

        def through(hops, arrival):
            best = None
            for point, delay, routed, doublings, hard in hops:
                at = arrival[point]
                if at is None:
                    continue
                wire = (route + per_doubling * doublings + (hard_ns if hard else 0.0)
                        if routed else 0.0)
                t = at[0] + wire + delay
                if best is None or t > best[0]:
                    best = (t, at[1] + routed, at[2] + delay, at[3])
            return best

        arrival: list[tuple[float, int, float, str] | None] = []
        for start, hops in zip(self._start, self._hops, strict=True):
            arrival.append((start[0], 0, start[0], start[1]) if start is not None
                           else through(hops, arrival))
        for cname, hops in self._ends:
            at = through(hops, arrival)
            if at is not None:
                yield at, cname


def critical_path(netlist: dict, family: str, *, top: str | None = None,
                  route_ns: float | None = None, fanout_ns: float | None = None,
                  size_ns: float | None = None) -> PathEstimate | None:
    """The slowest register-to-register path of a Yosys JSON netlist (``write_json``) of
    ``family``; None when the design has no such path. Cells the table does not know (I/O
    buffers, PLLs) end paths untimed."""
    return TimingGraph(netlist, family, top=top).critical_path(
        route_ns=route_ns, fanout_ns=fanout_ns, size_ns=size_ns)


def estimate_file(synth_json: Path, family: str, *, top: str | None = None) -> PathEstimate | None:
    """:func:`critical_path` of a netlist file Yosys wrote."""
    return critical_path(json.loads(Path(synth_json).read_text()), family, top=top)


def main(argv: list[str] | None = None) -> int:
    """``python -m qfab.cost_model.fmax NETLIST [--family F] [--paths N]``: the slowest path
    into each of the ``N`` slowest end points of a Yosys JSON netlist (``synth.json`` of a
    ``qfab build``, kept with its cached build), one a line."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m qfab.cost_model.fmax")
    parser.add_argument("netlist", type=Path)
    parser.add_argument("--family", default="ecp5", choices=sorted(ROUTE_NS))
    parser.add_argument("--paths", type=int, default=20)
    args = parser.parse_args(argv)
    try:
        netlist = json.loads(args.netlist.read_text())
    except (OSError, ValueError) as exc:
        print(f"error: cannot read netlist {args.netlist}: {exc}", file=sys.stderr)
        return 2
    for p in TimingGraph(netlist, args.family).slowest_paths(args.paths):
        print(f"{p.delay_ns:6.2f} ns {p.fmax_mhz:6.1f} MHz  {p.routed_nets:2d} routed, "
              f"{p.logic_ns:4.2f} ns logic  {p.start} -> {p.end}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
