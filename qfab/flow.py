"""The hardware half of the Python API: ``qfab.compile`` and ``qfab.simulate``."""

from __future__ import annotations

import os

import numpy as np

from qfab.errors import QfabError


def _board(board):
    if board is None:
        return None
    try:
        from qfab.cost_model.boards import load_board
    except ImportError:  # boards arrive with the cost model
        raise QfabError("board files are not available in this build") from None
    return load_board(board) if isinstance(board, str | os.PathLike) else board


def compile(model, board=None, target_fps: float | None = None, out_dir=None, *,
            max_pe: int | None = None, max_simd: int | None = None,
            output: str | list[str] | None = None, soc: bool = True,
            input_format: str | None = None,
            target_ii: int | None = None, max_utilization: float | None = None,
            dsp_budget: int | None = None, progress=None,
            layer_folding: dict[str, tuple[int, int]] | None = None):
    """Lower ``model`` and plan it onto hardware; write Verilog, manifest and report to
    ``out_dir`` when given, with the SoC (firmware.elf, .hex and soc.v) unless ``soc`` is
    False. Returns a :class:`qfab.compiler.backend.design.Design`.

    Folding: with ``target_fps`` (or ``target_ii``, cycles per inference), the fewest
    multipliers meeting it (``design.missed_target()`` says when none does); else with a ``board``
    and no ``max_pe``/``max_simd``, the fastest design the cost model fits on the board
    (:func:`fastest_fitting`: at most ``max_utilization``, default 0.8, of any resource, at
    most ``dsp_budget`` DSPs); else with ``max_pe`` or ``max_simd``, at most that (4 x 8
    for the one not given) a layer; else balanced
    (:func:`~qfab.compiler.backend.balance.balanced_plan`: about as fast as 4 x 8 a layer,
    each stage the fewest multipliers meeting the cycle budget that keeps them busiest, its
    join FIFOs sized by the cycle model, :func:`~qfab.cost_model.fifo_sizing.sized_fifos`).
    ``layer_folding`` (MAC layer name -> (pe, simd), as ``qfab search`` writes) sets those
    layers' folding (the others at most 4 x 8) and leaves the board search out.

    Every output of the model is built in the one accelerator, leaving on its output stream
    one after the other (or the last computed on the control core: logits and their
    softmax); ``output`` names the ones to build (a name, comma-separated names or a list),
    with the part of the graph they depend on: needed for a model whose outputs come from
    several inputs.
    ``input_format`` is the number format of a float graph input the model does not quantize
    (``fixed<16,6>``...).

    Long steps (the cycle model, Verilog generation, the firmware build) say what runs every
    few seconds: ``progress`` as in :func:`simulate`."""
    from qfab.progress import progress_to

    with progress_to(progress):
        return _compile(model, board, target_fps, out_dir, max_pe=max_pe, max_simd=max_simd,
                        output=output, soc=soc, input_format=input_format,
                        target_ii=target_ii, max_utilization=max_utilization,
                        dsp_budget=dsp_budget, layer_folding=layer_folding)


def _compile(model, board, target_fps, out_dir, *, max_pe, max_simd, output, soc,
             input_format, target_ii, max_utilization, dsp_budget, layer_folding):
    from qfab.api import lower_model
    from qfab.compiler.backend import plan as planning
    from qfab.compiler.backend.design import Design
    from qfab.compiler.backend.pipelining import for_family
    from qfab.cost_model.timing import plan_timing

    b = _board(board)
    clock_hz = b.clock_hz if b is not None else 100e6
    target_ii = planning.target_cycles(target_fps, target_ii, clock_hz)
    graph = lower_model(model, input_format=input_format)
    if output is not None:
        from qfab.compiler.passes.select import select_output

        graph = select_output(graph, output)
    fitting = (b is not None and target_ii is None and max_pe is None and max_simd is None
               and not layer_folding)
    if not fitting and (max_utilization is not None or dsp_budget is not None):
        raise QfabError("--max-utilization and --dsp-budget choose the design for a --board; "
                        "they do not apply with a target speed or --max-pe/--max-simd")
    pipelining = for_family(b.family if b is not None else None)
    if fitting:
        hw = fastest_fitting(graph, b, max_utilization=0.8 if max_utilization is None
                             else max_utilization, dsp_budget=dsp_budget)
    elif target_ii is None and max_pe is None and max_simd is None and not layer_folding:
        from qfab.compiler.backend.balance import balanced_plan
        from qfab.cost_model.fifo_sizing import sized_fifos

        hw = sized_fifos(balanced_plan(graph, clock_hz=clock_hz))
    else:
        hw = planning.plan(graph, budget_cycles=target_ii, clock_hz=clock_hz,
                           max_pe=planning.DEFAULT_MAX_PE if max_pe is None else max_pe,
                           max_simd=planning.DEFAULT_MAX_SIMD if max_simd is None else max_simd,
                           layer_folding=layer_folding, pipelining=pipelining)
    name = str(model) if isinstance(model, str | os.PathLike) else graph.name
    timing = plan_timing(hw, 2)  # steady_ii's run; lower bounds for a design too long for it
    design = Design(graph, hw, name, board=b, target_ii=target_ii,
                    modeled_ii=timing.ii_cycles if timing.exact else None)
    if out_dir is not None:
        from qfab.api import estimate

        design.write(out_dir, soc=soc, estimate=estimate(design))
    return design


def fastest_fitting(graph, board, *, max_utilization: float = 0.8,
                    dsp_budget: int | None = None):
    """The plan with the shortest initiation interval whose estimate fits ``board`` with
    headroom (at most ``max_utilization`` of every resource: a design near 100% of the LUTs
    does not place and route) and at most ``dsp_budget`` DSPs: the fully unrolled design
    (adder graphs, often smaller than the next folding) if it fits, else a binary search over
    the cycle budget between the fully parallel design (bounded by the stages that do not
    fold) and the fully folded one, each budget given the fewest multipliers that meet it.
    When not even the fully folded design fits, that one (its estimate says so)."""
    from qfab.compiler.backend import plan as planning
    from qfab.compiler.backend.pipelining import for_family
    from qfab.cost_model.estimate import estimate

    if not 0 < max_utilization <= 1:
        raise QfabError(f"--max-utilization must be in (0, 1], not {max_utilization}")
    if dsp_budget is not None and dsp_budget < 0:
        raise QfabError(f"--dsp-budget must be at least 0, not {dsp_budget}")

    plans: dict[int, object] = {}

    def plan(budget: int):
        if budget not in plans:
            plans[budget] = planning.plan(graph, clock_hz=board.clock_hz, budget_cycles=budget,
                                          pipelining=for_family(board.family))
        return plans[budget]

    def fits(budget: int) -> bool:
        est = estimate(plan(budget), board)
        return all(u <= max_utilization for u in est.utilization.values()) \
            and (dsp_budget is None or est.dsp <= dsp_budget)

    lo, hi = plan(1).ii_cycles, plan(2**62).ii_cycles
    if fits(1):
        return plan(1)
    if not fits(hi):
        return plan(hi)
    while lo < hi:
        mid = (lo + hi) // 2
        if fits(mid):
            hi = mid
        else:
            lo = mid + 1
    return plan(hi)


def simulate(design, inputs: dict[str, np.ndarray] | np.ndarray, *, waves: bool = False,
             work_dir=None, soc: bool = False, progress=None):
    """Co-simulate ``design`` in Verilator on ``inputs`` (a batch) and compare every output
    code with the integer reference. Returns a SimResult (``bit_exact``, ``outputs``,
    ``cycles``, ``latency_cycles``, ``ii_cycles``, ``stages``).

    With ``soc``, the whole SoC runs instead: the firmware on the RV32I core drives the
    accelerator through its streamer and computes each image's argmax; the result is a
    SocResult that adds ``accel_cycles``, ``control_cycles``, ``argmax`` and
    ``argmax_matches``.

    Long steps (the Verilator build, the run, the reference on a large batch) say what runs
    every few seconds: ``progress`` is a callable taking each line, False for silence, or
    None for the ``qfab.progress`` logger (stderr when the application configured no
    logging)."""
    from qfab.progress import progress_to

    with progress_to(progress):
        return _simulate(design, inputs, waves=waves, work_dir=work_dir, soc=soc)


def _simulate(design, inputs, *, waves: bool, work_dir, soc: bool):
    from qfab.api import _input_codes

    graph = design.graph
    if not isinstance(inputs, dict):
        inputs = {graph.inputs[0]: inputs}
    missing = [name for name in graph.inputs if name not in inputs]
    if missing:
        raise QfabError(f"missing input {missing[0]!r} (the design's inputs: {graph.inputs})")
    feeds = {name: _input_codes(graph, name, np.asarray(inputs[name])) for name in graph.inputs}
    if soc:
        if waves:
            raise QfabError("--waves traces the bare accelerator; it is not available with --soc")
        from qfab.sim.run_soc import simulate_soc

        return simulate_soc(design, feeds, work_dir=work_dir)
    from qfab.sim.run_model import simulate as run

    return run(design, feeds, waves=waves, work_dir=work_dir)
