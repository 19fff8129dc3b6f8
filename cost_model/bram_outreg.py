"""ECP5 block RAM output registers: the flip-flops after a DP16KD's read data moved into it.

A DP16KD's read data leaves 5.8 ns after the clock without its output register
(``REGMODE`` ``NOREG``) and 1.0 ns with it (``OUTREG``, a cycle more of read latency), on the
ECP5-85F, speed grade 6, by nextpnr's timing database. ``synth_ecp5`` maps every block RAM
``NOREG``, and a register after the read in the fabric still ends a path of 5.8 ns plus the
route to it. A design compiled for ECP5 registers its sliding windows' words straight after
the read (``registered_read``); here, between Yosys and nextpnr, each such register goes into
the block RAM, port by port: a port's register qualifies when every read data bit of that port
(``DOA*`` or ``DOB*``) drives exactly one flip-flop and nothing else, all of them on the port's
clock with one clock enable and no set or reset. The port then registers its output on that
enable (``OCEA`` or ``OCEB``), which is what the flip-flops did, cycle for cycle; the other
port is left as it is unless it qualifies too (a ROM's unused write port, a RAM's second
port read through logic).
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["absorb_output_registers", "absorb_file"]

_DATA_OUT = ("DOA", "DOB")


def _is_data_out(port: str) -> bool:
    return port.startswith(_DATA_OUT) and port[3:].isdigit()


def _plain_ff(cell: dict, clock: list) -> bool:
    """A flip-flop on ``clock``'s rising edge, with no set or reset, reset value 0."""
    p, conn = cell["parameters"], cell["connections"]
    lsr = conn.get("LSR", ["0"])
    return (cell["type"] == "TRELLIS_FF" and conn.get("CLK") == clock
            and p.get("CLKMUX", "CLK").strip() == "CLK" and lsr in (["0"], [])
            and p.get("REGSET", "RESET").strip() == "RESET")


def _enable(cell: dict) -> list:
    """The flip-flop's clock enable as a net list (``["1"]``: always enabled)."""
    mux = cell["parameters"].get("CEMUX", "1").strip()
    if mux == "1":
        return ["1"]
    if mux != "CE":
        return []  # an inverted enable: not taken
    return cell["connections"].get("CE", ["1"])


def absorb_output_registers(netlist: dict, top: str) -> int:
    """Move read-data registers into their DP16KD (``OUTREG``) in ``netlist`` (a Yosys JSON
    netlist after ``synth_ecp5``), in place; returns how many block RAMs took one."""
    module = netlist["modules"][top]
    cells = module["cells"]
    sinks: dict[int, list[tuple[str, str]]] = {}
    for name, cell in cells.items():
        directions = cell.get("port_directions", {})
        for port, bits in cell["connections"].items():
            if directions.get(port, "input") != "output":
                for bit in bits:
                    if isinstance(bit, int):
                        sinks.setdefault(bit, []).append((name, port))
    for port in module.get("ports", {}).values():
        if port["direction"] != "input":
            for bit in port["bits"]:
                if isinstance(bit, int):
                    sinks.setdefault(bit, []).append(("", "port"))
    taken = 0
    for cell in list(cells.values()):
        if cell["type"] != "DP16KD":
            continue
        took = False
        for x in "AB":
            took |= _absorb_port(cell, x, cells, sinks)
        taken += took
    return taken


def _absorb_port(ram: dict, x: str, cells: dict, sinks: dict) -> bool:
    """Move the register after port ``x``'s read data into ``ram`` when it qualifies."""
    p, conn = ram["parameters"], ram["connections"]
    clock = conn.get(f"CLK{x}")
    if (p.get(f"REGMODE_{x}", "NOREG").strip() != "NOREG" or not clock
            or not isinstance(clock[0], int)
            or p.get(f"CLK{x}MUX", f"CLK{x}").strip() != f"CLK{x}"):
        return False
    regs: dict[str, str] = {}
    for port, bits in conn.items():
        if not _is_data_out(port) or port[2] != x or not isinstance(bits[0], int):
            continue
        users = sinks.get(bits[0], [])
        if not users:  # an unused bit: registered or not, nobody sees it
            continue
        if len(users) != 1 or users[0][1] != "DI":
            return False
        regs[port] = users[0][0]
    ffs = [cells[name] for name in regs.values()]
    if not ffs or not all(_plain_ff(ff, clock) for ff in ffs):
        return False
    enables = {tuple(_enable(ff)) for ff in ffs}
    if len(enables) != 1 or not next(iter(enables)):
        return False
    p[f"REGMODE_{x}"] = "OUTREG"
    conn[f"OCE{x}"] = list(next(iter(enables)))
    for port, name in regs.items():
        conn[port] = cells.pop(name)["connections"]["Q"]
    return True


def absorb_file(path: Path, top: str) -> int:
    """:func:`absorb_output_registers` on the netlist file at ``path``, rewritten in place."""
    netlist = json.loads(Path(path).read_text())
    taken = absorb_output_registers(netlist, top)
    if taken:
        tmp = Path(path).with_suffix(".tmp")
        tmp.write_text(json.dumps(netlist))
        tmp.replace(path)
    return taken
