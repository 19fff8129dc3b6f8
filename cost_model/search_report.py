"""What ``qfab search`` writes: the comparison of the searched designs with the best
uniform design (in the cost model's LUTs and Yosys's), and the output folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from qfab.cost_model.search import YOSYS_FRACTION, Scored
from qfab.cost_model.sensitivity import Sensitivities


def versus(got: Scored, best: Scored) -> dict[str, Any]:
    """The test samples ``got`` classifies right and ``best`` wrong, and the reverse (a
    difference in top-1 is these two counts' difference over the test samples; McNemar's
    test reads it against their sum)."""
    if got.right is None or best.right is None:
        return {}
    return {"versus_best": [int(np.sum(got.right & ~best.right)),
                            int(np.sum(best.right & ~got.right))]}


def compare(best: Scored, folded: Scored | None, front: list[dict[str, Any]],
            layers: list[str]) -> dict[str, Any]:
    """The best uniform design against the search: the searched design within its LUTs
    (and DSPs and II), the fewest LUTs the search needed to score as well, and the fewest
    it needed at as little output noise on the calibration data (chosen without the test
    split)."""
    lut = best.cost["lut"]
    at_lut = [r for r in front if r["lut_budget"] == lut and "noise_budget" not in r]
    at_noise = next((r for r in front if "noise_budget" in r), None)
    as_good = [r for r in front if r["score"] >= best.score]
    cheapest = min(as_good, key=lambda r: r["lut"], default=None)
    return {
        "searched_at_its_noise": at_noise,
        "lut_saving_at_its_noise": 1 - at_noise["lut"] / lut if at_noise else None,
        "score_gain_at_its_noise": at_noise["score"] - best.score if at_noise else None,
        "best_uniform": best.row("uniform", layers),
        "best_uniform_folded": None if folded is None else folded.row("uniform folded",
                                                                      layers),
        "searched_at_its_lut": at_lut[0] if at_lut else None,
        "score_gain_at_its_lut": at_lut[0]["score"] - best.score if at_lut else None,
        "searched_at_its_score": cheapest,
        "lut_saving_at_its_score": 1 - cheapest["lut"] / lut if cheapest else None,
    }


def compare_yosys(best: Scored, front: list[dict[str, Any]],
                  within: dict[str, Any] | None) -> dict[str, Any]:
    """The comparison in Yosys's LUTs: of the searched designs scoring at least as well as
    the best uniform design (``within`` among them), the one Yosys gives the fewest LUTs;
    the saving of the design searched at the best uniform design's noise; and the design searched
    within ``YOSYS_FRACTION`` of its Yosys LUTs (``within``), its score against the best
    uniform design's."""
    lut = best.cost["yosys_lut"]
    as_good = [r for r in [*front, *([within] if within else [])]
               if r["score"] >= best.score and "yosys_lut" in r]
    cheapest = min(as_good, key=lambda r: r["yosys_lut"], default=None)
    at_noise = next((r for r in front if "noise_budget" in r and "yosys_lut" in r), None)
    return {"best_uniform_lut": lut, "searched_at_its_score": cheapest,
            "lut_saving_at_its_noise": 1 - at_noise["yosys_lut"] / lut if at_noise else None,
            "lut_saving_at_its_score": 1 - cheapest["yosys_lut"] / lut if cheapest else None,
            "fraction": YOSYS_FRACTION, "searched_within_fraction": within,
            "score_gain_within_fraction": within and within["score"] - best.score}


def write_outputs(out_dir: Path, got: Scored, sens: Sensitivities, result: dict) -> None:
    """Every file into a temporary folder that replaces ``out_dir`` once all are written."""
    import csv

    from qfab.cost_model.plots import search_plot

    from qfab.output_files import output_folder

    with output_folder(out_dir) as tmp:
        onnx.save(got.built.model, tmp / "model.onnx")
        est = got.built.cost["estimate"].as_dict()
        (tmp / "estimate.json").write_text(json.dumps(est, indent=1, default=_plain) + "\n")
        (tmp / "search.json").write_text(json.dumps(result, indent=1, default=_plain) + "\n")
        rows = sens.table()
        with (tmp / "sensitivity.csv").open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["layer"])
            w.writeheader()
            w.writerows(rows)
        search_plot(result, tmp / "pareto.png")


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    return str(v)
