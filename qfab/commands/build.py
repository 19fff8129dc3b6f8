"""`qfab build`: place and route a compiled design for a board, write its bitstream and
report the routed Fmax (qfab.cost_model.pnr)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from qfab.errors import QfabError

HELP = ("place and route DIR's accelerator or SoC for a board with open tools (Yosys, "
        "nextpnr): bitstream, routed Fmax, critical path, utilisation")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from qfab.cost_model.pnr import TARGETS, TOPS, VIVADO_TARGETS

    parser.add_argument("dir", metavar="DIR", help="a folder written by `qfab compile`")
    parser.add_argument("--board", metavar="B",
                        help=f"the board: {', '.join(sorted(TARGETS))}, or "
                             f"{', '.join(sorted(VIVADO_TARGETS))} for a Vivado project "
                             "(default: the one in DIR/manifest.json)")
    parser.add_argument("--top", choices=sorted(TOPS), default="accel",
                        help="accel: the accelerator behind the board's UART; soc: the SoC "
                             "with its console on the UART (default: accel)")
    parser.add_argument("--freq", type=float, metavar="MHZ",
                        help="the clock nextpnr aims at (default: the board's oscillator)")
    parser.add_argument("--seed", type=int, default=1, help="nextpnr's placer seed (default 1)")
    parser.add_argument("--json", action="store_true",
                        help='print one JSON object {"build": {...}} (keys: board, top, family, '
                             "target_mhz, fmax_mhz, fmax, critical_path, utilization, "
                             "ii_cycles, throughput_fps, bitstream, seconds, cached, "
                             "vivado_project, estimated_mhz)")
    parser.add_argument("--no-cache", action="store_true",
                        help="run the tools again even if this build was made before")


def _manifest(folder: Path) -> dict:
    path = folder / "manifest.json"
    if not path.is_file():
        raise QfabError(f"{path}: no such file (run `qfab compile MODEL -o {folder}` first)")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise QfabError(f"{path}: not valid JSON ({e.msg})") from None
    if not isinstance(data, dict):
        raise QfabError(f"{path}: not a qfab manifest (expected a JSON object)")
    return data


def _board(args: argparse.Namespace, manifest: dict, folder: Path) -> str:
    if args.board:
        return args.board
    board = manifest.get("board")
    name = board.get("name") if isinstance(board, dict) else board
    if not isinstance(name, str):
        raise QfabError(f"{folder / 'manifest.json'} names no board: pass --board")
    return name


def run(args: argparse.Namespace) -> int:
    from qfab.cost_model.pnr import TOPS, place_and_route
    from qfab.progress import LOGGER

    folder = Path(args.dir)
    manifest = _manifest(folder)
    board = _board(args, manifest, folder)
    file_name, module = TOPS[args.top]
    verilog = folder / file_name
    if not verilog.is_file():
        hint = " (compiled with --no-soc?)" if args.top == "soc" else ""
        raise QfabError(f"{verilog}: no such file{hint}")
    if args.freq is not None and not args.freq > 0:
        raise QfabError(f"--freq must be a positive clock in MHz, not {args.freq:g}")
    stages = [s.get("name", f"stage {i}") for i, s in enumerate(manifest.get("stages", []))
              if isinstance(s, dict)]
    result = place_and_route(verilog.read_text(), module=module, top=args.top, board=board,
                             out_dir=folder / "build" / f"{board}-{args.top}",
                             stage_names=stages, target_mhz=args.freq, seed=args.seed,
                             cache=not args.no_cache, progress=LOGGER.info)
    ii = manifest.get("ii_cycles")
    fps = (round(result.fmax_mhz * 1e6 / ii, 1) if isinstance(ii, int) and ii > 0
           and result.fmax_mhz else None)
    _update_report(folder)
    out_dir = folder / "build" / f"{board}-{args.top}"
    project = (str(out_dir / "build_qfab_board.sh") if result.family == "xilinx7" else None)
    if args.json:
        print(json.dumps({"build": result.as_dict() | {
            "fmax_mhz": result.fmax_mhz, "ii_cycles": ii, "throughput_fps": fps,
            "vivado_project": project}}, indent=2))
        return 0
    if project:
        print(f"{board} ({result.family}), top {args.top}: a Vivado project, not placed and "
              f"routed here (open tools do not support this family); run {project} where "
              "Vivado is installed. Yosys synth_xilinx of the same top:")
        for cell, use in result.utilization.items():
            print(f"  {cell:<16} {use['used']:>6} / {use['available']}")
        return 0
    origin = "from the cache" if result.cached else f"in {result.seconds:.0f} s"
    print(f"{board} ({result.family}), top {args.top}: routed {origin}, "
          f"aiming at {result.target_mhz:g} MHz")
    for clock in result.fmax:
        verdict = "meets" if clock["achieved_mhz"] >= clock["constraint_mhz"] else "MISSES"
        print(f"  Fmax {clock['achieved_mhz']:.1f} MHz on {clock['clock']} "
              f"({verdict} {clock['constraint_mhz']:g} MHz)")
    if result.estimated_mhz:
        print(f"  estimated {result.estimated_mhz:.1f} MHz from the netlist before place and "
              "route")
    path = result.critical_path
    if path:
        print(f"  critical path {path['delay_ns']:.2f} ns ({path['logic_ns']:.2f} logic, "
              f"{path['routing_ns']:.2f} routing): {path['from_stage']} -> {path['to_stage']}")
    for cell, use in result.utilization.items():
        print(f"  {cell:<16} {use['used']:>6} / {use['available']:<6} "
              f"({100 * use['used'] / max(use['available'], 1):.0f}%)")
    if fps is not None:
        print(f"  {fps:,.0f} inferences/s at the routed Fmax (initiation interval {ii} cycles)")
    print(f"  bitstream {result.bitstream}")
    return 0


REPORT_START, REPORT_END = "<!-- qfab build -->", "<!-- end qfab build -->"


def _update_report(folder: Path) -> None:
    """Give DIR/report.md a section with every build in DIR/build (routed figures)."""
    report = folder / "report.md"
    if not report.is_file():
        return
    rows = []
    for path in sorted((folder / "build").glob("*/result.json")):
        try:
            r = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        fmax = min((c["achieved_mhz"] for c in r.get("fmax", [])), default=None)
        cp = r.get("critical_path") or {}
        use = r.get("utilization", {})
        cells = ", ".join(f"{k} {v['used']}" for k, v in use.items()
                          if k in ("TRELLIS_COMB", "TRELLIS_FF", "ICESTORM_LC", "MULT18X18D",
                                   "ICESTORM_DSP", "DP16KD", "ICESTORM_RAM"))
        rows.append(f"| {r['board']} | {r['top']} | {r['target_mhz']:g} | "
                    f"{'' if fmax is None else f'{fmax:.1f}'} | "
                    f"{cp.get('from_stage', '')} -> {cp.get('to_stage', '')} | {cells} |")
    section = "\n".join([
        REPORT_START, "## Place and route (`qfab build`)", "",
        "Routed Fmax from nextpnr (the clock figures above assume the board's oscillator).",
        "", "| board | top | target MHz | routed Fmax MHz | critical path | placed |",
        "|---|---|---|---|---|---|", *rows, REPORT_END])
    text = report.read_text()
    if REPORT_START in text and REPORT_END in text:
        head, rest = text.split(REPORT_START, 1)
        text = head + section + rest.split(REPORT_END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    tmp = report.with_name(f".report.md.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, report)
