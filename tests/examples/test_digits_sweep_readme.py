"""The README's digits sweep figures are the sweep's: run examples/digits_sweep.yaml and
compare the section examples/digits_sweep_summary.py writes from it with the README's."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("digits_sweep_summary",
                                               ROOT / "examples" / "digits_sweep_summary.py")
summary = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(summary)


def test_readme_sweep_figures_are_a_runs(tmp_path):
    rows = summary.run(tmp_path / "sweep")
    written = summary.section(rows)
    assert "| int4 | int4 | int4 | 4 |" in written  # every point has its row
    in_readme = summary.readme_section((ROOT / "README.md").read_text())
    assert in_readme == written, (
        "README.md's digits sweep section is stale; run `python examples/digits_sweep_summary.py`"
        " and paste what it prints:\n" + written)
