"""The README's "What the digits sweep says": its figures written from a run of
examples/digits_sweep.yaml, so they cannot go stale (tests/examples/test_digits_sweep_readme.py
runs the sweep and compares).

    python examples/digits_sweep_summary.py [OUT]

runs the sweep into OUT (default: a temporary folder), prints the section, and copies the
accuracy-against-LUT plot to docs/digits_sweep_pareto.png.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPACE = ROOT / "examples" / "digits_sweep.yaml"
PLOT = "docs/digits_sweep_pareto.png"
HEADING = "### What the digits sweep says"


def run(out: Path) -> list[dict]:
    """The sweep's rows, run as `qfab sweep --space examples/digits_sweep.yaml -o OUT`."""
    from qfab.cost_model.space import load_space
    from qfab.cost_model.sweep import run_sweep

    space = load_space(SPACE)
    return run_sweep(space, space.model, out, progress=False)


def _name(row: dict) -> str:
    return row["label"].split("_pe")[0]


def _percent(x: float) -> str:
    return f"{100 * x:.1f}%"


def _paragraph(text: str) -> list[str]:
    return [textwrap.fill(text, width=95, break_on_hyphens=False), ""]


def section(rows: list[dict]) -> str:
    """The README section (from its heading to the next one) for the sweep's ``rows``."""
    proxies = [r for r in rows if str(r["hw"]).startswith("proxy")]
    lines = [HEADING, "", f"![accuracy against LUTs of the digits CNN, {len(rows)} points]({PLOT})",
             ""]
    lines += _paragraph(
        f"`qfab sweep --space examples/digits_sweep.yaml -o out`: {len(rows)} points on pynq-z2, "
        "at most 4 PEs and 8 SIMD lanes a layer, quantized by the default post-training "
        "quantizer (`ptq: gptq`, see `qfab search`); accuracy on the 360 test images, LUTs "
        "and DSPs from the cost model. `examples/digits_sweep_summary.py` writes this section "
        "from such a run, and `tests/examples/test_digits_sweep_readme.py` runs it again and "
        "compares.")
    lines += ["| point | weights | activations | bits | accuracy | LUT | DSP | hardware |",
              "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        hw = "proxy" if r in proxies else "real" if r["hw"] == "ok" else "none"
        front = " (front)" if r.get("pareto") else ""
        lines.append(f"| {_name(r)}{front} | {r['weights']} | {r['activations']} | "
                     f"{r['bits']} | {_percent(r['accuracy'])} | {r['lut']} | {r['dsp']} | "
                     f"{hw} |")
    lines.append("")
    if proxies:
        lines += _paragraph(
            f"{len(proxies)} points ({', '.join(_name(r) for r in proxies)}) do not lower yet, "
            "so their accuracy comes from qonnx's float emulation and their cost from the "
            "hardware with integer activations as wide (proxy); the minifloat-weight points "
            "are real hardware.")
    front = sorted((r for r in rows if r.get("pareto")), key=lambda r: r["lut"])
    closing = ("The accuracy-against-LUT front: "
               + ", ".join(f"{_name(r)} ({_percent(r['accuracy'])}, {r['lut']} LUTs)"
                           for r in front) + ".")
    with_dsp = [r for r in rows if r["dsp"]]
    if with_dsp:
        least = min(r["bits"] for r in with_dsp)
        if all(r["dsp"] == 0 for r in rows if r["bits"] < least):
            dsps = sorted({r["dsp"] for r in with_dsp})
            closing += (f" From {least} bits up the products go to DSPs ({dsps[0]}-{dsps[-1]} "
                        "of them); below, they stay in LUTs, so a narrower design can cost "
                        "more LUTs and no DSPs.")
    lines += _paragraph(closing)
    return "\n".join(lines) + "\n"


def readme_section(readme: str) -> str:
    """The README's current section, from its heading to the next heading of level 2 or 3."""
    start = readme.index(HEADING)
    ends = [i for i in (readme.find("\n## ", start), readme.find("\n### ", start + 1))
            if i >= 0]
    return readme[start:min(ends) + 1]


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp())
    rows = run(out)
    shutil.copy(out / "accuracy_vs_lut.png", ROOT / PLOT)
    print(section(rows), end="")
