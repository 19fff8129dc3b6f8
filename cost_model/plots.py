"""Sweep plots: LUT and DSP against bit width per format, accuracy against LUTs with the
Pareto front marked. PNG files, drawn with matplotlib's non-interactive backend."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from qfab.output_files import output_file


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats: fewer or equal cost (first) and higher
    or equal accuracy (second), strictly better in one."""
    front = []
    for i, (c, a) in enumerate(points):
        if not any((c2 <= c and a2 >= a) and (c2 < c or a2 > a)
                   for j, (c2, a2) in enumerate(points) if j != i):
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])


def metric_label(rows: list[dict]) -> str:
    """The y-axis name of the rows' metric."""
    metric = rows[0].get("metric", "top1") if rows else "top1"
    return "test accuracy (top-1)" if metric == "top1" else "output SNR (dB)"


def _series(rows: list[dict]) -> dict[str, list[dict]]:
    by = defaultdict(list)
    for r in rows:
        if r.get("kind") == "per_layer":
            continue
        fold = "".join(f" {k}={r[k]}" for k in ("max_pe", "max_simd", "target_fps")
                       if r.get(k) not in ("", None))
        by[f"{r['kind']}{fold}"].append(r)
    return by


def write_plots(rows: list[dict[str, Any]], out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in rows if r.get("lut") is not None]
    written = []
    for metric in ("lut", "dsp"):
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        for name, series in sorted(_series(rows).items()):
            series = sorted(series, key=lambda r: r["bits"])
            proxy = any(str(r.get("hw", "")).startswith("proxy") for r in series)
            shared = len({r["bits"] for r in series}) < len(series)
            # Formats sharing a width (E2M3 and E3M2) are points named by format, not a line.
            ax.plot([r["bits"] for r in series], [r[metric] for r in series], marker="o",
                    label=name + (" (proxy hw)" if proxy else ""),
                    linestyle="none" if shared else "--" if proxy else "-")
            if shared:
                for r in series:
                    ax.annotate(r["label"].split("_")[0], (r["bits"], r[metric]), fontsize=7,
                                xytext=(4, -3), textcoords="offset points")
        ax.set_xlabel("bit width of one code")
        ax.set_ylabel(f"{metric.upper()} (cost model)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        path = out_dir / f"{metric}_vs_bits.png"
        fig.tight_layout()
        _save(fig, path)
        plt.close(fig)
        written.append(path)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    pts = [(float(r["lut"]), float(r["score"])) for r in rows]
    for name, series in sorted(_series(rows).items()):
        dot = ax.scatter([r["lut"] for r in series], [r["score"] for r in series],
                         label=name, s=22)
        proxy = [r for r in series if str(r.get("hw", "")).startswith("proxy")]
        if proxy:  # hollow: hardware of integer activations as wide stands in
            color = dot.get_facecolors()[0]
            dot.set_edgecolors([color] * len(series))
            dot.set_facecolors(["none" if r in proxy else color for r in series])
    front = pareto_front(pts)
    if front:
        ax.plot([pts[i][0] for i in front], [pts[i][1] for i in front], "k--", lw=1,
                label="Pareto front (hollow: proxy hw)")
        for n, i in enumerate(front):  # name the front only, above and below in turn
            ax.annotate(rows[i]["label"].split("_")[0], pts[i], fontsize=7,
                        xytext=(3, -10 if n % 2 else 4), textcoords="offset points")
    ax.set_xlabel("LUT (cost model)")
    ax.set_ylabel(metric_label(rows))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    path = out_dir / "accuracy_vs_lut.png"
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
    written.append(path)
    return written


def _save(fig, path: Path) -> None:
    with output_file(path) as f:
        fig.savefig(f, dpi=110, format="png")


def search_plot(result: dict[str, Any], path: Path) -> Path:
    """Score against LUTs: the uniform designs, the searched design within each budget of the
    comparison (its front dashed), the one at the best uniform design's noise, the best
    uniform design's formats with a searched folding, and the chosen design starred."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    chosen = result["chosen"]
    searched = sorted((r for r in result["searched"] if "noise_budget" not in r),
                      key=lambda r: r["lut"])
    quiet = [r for r in result["searched"] if "noise_budget" in r]
    # Zoom on the searched range: uniform designs far below it would flatten the plot.
    floor = min([r["score"] for r in searched] + [chosen["score"]])
    floor -= 0.1 * max(abs(floor), 1e-9) if result["metric"] != "top1" else 0.03
    uniform = [u for u in result["uniform"] if u["score"] >= floor]
    hidden = len(result["uniform"]) - len(uniform)
    ax.scatter([u["lut"] for u in uniform], [u["score"] for u in uniform], s=22,
               color="tab:blue", label="uniform precision"
               + (f" ({hidden} scoring lower not shown)" if hidden else ""))
    for n, u in enumerate(sorted(uniform, key=lambda u: u["lut"])):
        name = u["label"].split("_a")[0].removeprefix("w").split("-")[0]
        if u["weights"] != u["activations"]:
            name += "w"
        ax.annotate(name, (u["lut"], u["score"]), fontsize=7,
                    xytext=(3, -10 if n % 2 else 4), textcoords="offset points")
    if searched:
        ax.plot([r["lut"] for r in searched], [r["score"] for r in searched], "--o",
                color="tab:orange", ms=4, lw=1,
                label="searched within a uniform design's LUTs, DSPs and II")
    if quiet:
        ax.scatter([r["lut"] for r in quiet], [r["score"] for r in quiet], marker="s", s=26,
                   color="tab:purple", zorder=4,
                   label="searched at the best uniform design's calibration noise")
    folded = (result.get("comparison") or {}).get("best_uniform_folded")
    if folded:
        ax.scatter([folded["lut"]], [folded["score"]], marker="D", s=30, color="tab:green",
                   zorder=3, label="best uniform, folding searched")
    ax.scatter([chosen["lut"]], [chosen["score"]], marker="*", s=160, color="tab:red",
               zorder=3, label="chosen for the budget")
    ax.set_xlabel("LUT (cost model, corrected by Yosys)" if result.get("correction")
                  else "LUT (cost model)")
    ax.set_ylabel(metric_label([{"metric": result["metric"]}]))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)
    return path
