"""`qfab inspect`: the lowered integer IR, one line a layer."""

from __future__ import annotations

import argparse
import json
import sys

from qfab.commands.compile import MODEL_HELP, add_input_format

HELP = "show the lowered integer IR: layers, shapes, formats, MACs, widths, requantizers"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object (keys: name, inputs, outputs, layers, "
                             "total_macs) instead of a table")
    add_input_format(parser)


def _shape(t: dict) -> str:
    return "x".join(str(d) for d in t["shape"][1:]) or "1"


def _values(v) -> str:
    if isinstance(v, int):
        return str(v)
    lo, hi = min(v), max(v)
    return f"{lo}" if lo == hi else f"{lo}..{hi}({len(v)})"


def _detail(layer: dict) -> str:
    r = layer["requant"]
    if r and "mult" in r:
        return f"*{_values(r['mult'])} >>{_values(r['shift'])} zp {r['zero_point']}"
    if r:
        return f"a*{r['mult_a']} + b*{r['mult_b']} >>{r['shift']}"
    if "dynamic" in layer:
        return layer["dynamic"]
    if "scale" in layer:
        scale, zp = layer["scale"], layer["zero_point"]
        scale = f"{scale:.6g}" if isinstance(scale, float) else f"per-channel({len(scale)})"
        zp = _values(zp) if isinstance(zp, int | list) else zp
        return f"scale {scale} zp {zp}"
    if "thresholds" in layer:
        return "thresholds {}x{}".format(*layer["thresholds"])
    if "weight_shape" in layer:
        return "weight " + "x".join(map(str, layer["weight_shape"]))
    return ""


def table(summary: dict) -> list[str]:
    """The summary as aligned text lines (shapes without the batch dimension)."""
    head = ("layer", "op", "input", "output", "MACs", "acc", "requant / params")
    rows = [head]
    for layer in summary["layers"]:
        x, y = layer["inputs"][0], layer["outputs"][0]
        rows.append((layer["name"], layer["op"], f"{_shape(x)} {x['format']}",
                     f"{_shape(y)} {y['format']}", str(layer["macs"] or ""),
                     str(layer["acc_bits"] or ""), _detail(layer)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head) - 1)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1]
             for r in rows]
    ins = ", ".join(f"{t['name']} {_shape(t)} {t['format']}" for t in summary["inputs"])
    outs = ", ".join(f"{t['name']} {_shape(t)} {t['format']}" for t in summary["outputs"])
    return [f"model {summary['name']}: inputs {ins}; outputs {outs}", *lines,
            f"total MACs per inference: {summary['total_macs']}"]


def run(args: argparse.Namespace) -> int:
    from qfab.api import lower_model
    from qfab.compiler.summary import summarize

    summary = summarize(lower_model(args.model, input_format=args.input_format))
    if args.json:
        json.dump(summary, sys.stdout)
        sys.stdout.write("\n")
    else:
        print("\n".join(table(summary)))
    return 0
