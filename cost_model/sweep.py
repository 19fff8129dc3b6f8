"""Design-space sweeps: for every point of a space, quantize the float model, lower, plan and
estimate it (and synthesize it when asked), and measure accuracy with the integer reference.

Points are independent jobs, run on a local process pool or a Dask cluster, and each result
is cached in ``DIR/cache/<job hash>.json`` so an interrupted sweep resumes where it stopped.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from qfab.cost_model.datasets import Dataset, check_fits, load_data, score
from qfab.cost_model.quantize import QuantSpec, batches, data_inputs, fixed_batch
from qfab.cost_model.space import Point, Space

from qfab.errors import QfabError
from qfab.output_files import write_output_text

COLUMNS = ["label", "kind", "bits", "weights", "activations", "max_pe", "max_simd",
           "target_fps", "metric", "score", "accuracy", "accuracy_by", "hw", "lut", "ff", "dsp",
           "bram", "cycles", "latency_cycles", "ii_cycles", "throughput", "fits", "pareto",
           "yosys_lut", "yosys_ff", "yosys_dsp", "yosys_bram", "key"]


@dataclass(frozen=True)
class Job:
    """Everything one worker needs: picklable, so it travels to a process or a Dask worker."""

    key: str
    model: str
    point: Point
    board: str
    data: str
    calibration_images: int
    test_images: int | None
    synth: bool
    ptq: str = "gptq"


def _outputs_qonnx(model, x: np.ndarray) -> np.ndarray:
    """The first output by qonnx's executor (float emulation of the quantizers), for models
    qfab's frontend cannot lower yet."""
    import onnx
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.infer_shapes import InferShapes

    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    fixed.graph.ClearField("value_info")
    for v in list(fixed.graph.input) + list(fixed.graph.output):
        v.type.tensor_type.shape.dim[0].dim_value = len(x)
    wrapper = ModelWrapper(fixed).transform(InferShapes())
    out = execute_onnx(wrapper, {data_inputs(wrapper.graph)[0].name: x})
    return out[wrapper.graph.output[0].name]


def float_outputs(model, x: np.ndarray) -> np.ndarray:
    """The float model's first output by onnxruntime (batch by batch when its batch size is
    fixed). A QONNX model's float network is its Quant nodes bypassed; where other
    quantizers are part of it, its own output by the integer reference (or qonnx)."""
    from qfab.cost_model.reformat import float_path, is_quantized

    if is_quantized(model):
        import qfab

        bypassed = float_path(model)
        if bypassed is not None:
            return float_outputs(bypassed, x)

        try:
            return np.asarray(next(iter(qfab.reference(model, x).values())))
        except QfabError:
            return _outputs_qonnx(model, x)
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])
    name = data_inputs(model.graph)[0].name
    outs = [sess.run(None, {name: b})[0] for b in batches(x, fixed_batch(model, name))]
    return np.concatenate(outs)[:len(x)]


def measure(model, float_model, data: Dataset) -> dict[str, Any]:
    """Score a quantized model on the test set by the integer reference (qonnx's float
    emulation when qfab cannot lower it): ``graph`` (None if it does not lower), ``metric``,
    ``score``, ``accuracy`` (top-1 only), ``accuracy_by``."""
    import qfab

    try:
        graph = qfab.lower_model(model)
        out = next(iter(qfab.reference(graph, data.x_test).values()))
        by = "qfab.reference"
    except QfabError as e:
        graph = None
        out = _outputs_qonnx(model, data.x_test)
        by = f"qonnx (float emulation; qfab: {e})"
    needs_float = data.metric == "snr_db" and data.y_test is None
    value = score(data, out, float_outputs(float_model, data.x_test) if needs_float else None)
    return {"graph": graph, "output": np.asarray(out), "metric": data.metric, "score": value,
            "accuracy": value if data.metric == "top1" else "", "accuracy_by": by}


def _hardware(graph, point: Point, board, synth: bool, model_name: str) -> dict[str, Any]:
    from qfab.compiler.backend import plan as planning
    from qfab.compiler.backend.pipelining import for_family
    from qfab.cost_model.estimate import estimate

    f = point.folding
    hw = planning.plan(graph, target_fps=f.get("target_fps"), clock_hz=board.clock_hz,
                       max_pe=int(f.get("max_pe", planning.DEFAULT_MAX_PE)),
                       max_simd=int(f.get("max_simd", planning.DEFAULT_MAX_SIMD)),
                       pipelining=for_family(board.family))
    est = estimate(hw, board)
    row = {k: getattr(est, k) for k in ("lut", "ff", "dsp", "bram", "cycles",
                                        "latency_cycles", "ii_cycles", "throughput", "fits")}
    if synth:
        from qfab.compiler.backend.design import Design
        from qfab.cost_model.yosys import synthesize

        got = synthesize(Design(graph, hw, model_name).verilog(), board.family)
        row.update(yosys_lut=got.lut, yosys_ff=got.ff, yosys_dsp=got.dsp, yosys_bram=got.bram)
    return row


def _specs(specs: tuple[QuantSpec, ...]) -> QuantSpec | list[QuantSpec]:
    """One spec for every layer, or one a layer."""
    return specs[0] if len(specs) == 1 else list(specs)


def run_job(job: Job) -> dict[str, Any]:
    """Evaluate one point: accuracy on the test set and the cost model's figures."""
    import onnx
    from qfab.cost_model.boards import load_board
    from qfab.cost_model.reformat import model_at

    import qfab

    start = time.time()
    p = job.point
    data = load_data(job.data, job.calibration_images, job.test_images)
    samples = data.x_calibration
    float_model = onnx.load(job.model)
    model = model_at(float_model, _specs(p.weights), _specs(p.activations), samples, job.ptq)
    row: dict[str, Any] = {
        "label": p.label, "kind": p.kind, "bits": p.bits,
        "weights": "/".join(s.label for s in p.weights),
        "activations": "/".join(s.label for s in p.activations),
        "max_pe": p.folding.get("max_pe", ""), "max_simd": p.folding.get("max_simd", ""),
        "target_fps": p.folding.get("target_fps", ""), "key": job.key}
    board = load_board(job.board)
    scored = measure(model, float_model, data)
    graph = scored.pop("graph")
    scored.pop("output")
    row.update(scored)
    try:
        if graph is None:
            raise QfabError("the model does not lower")
        row.update(_hardware(graph, p, board, job.synth, job.model))
        row["hw"] = "ok"
    except (QfabError, ValueError) as e:
        # Estimate what exists: the same weights with integer activations as wide.
        ints = tuple(QuantSpec("int", bits=s.width) for s in p.activations)
        try:
            if ints == p.activations:
                raise
            proxy = model_at(float_model, _specs(p.weights), _specs(ints), samples, job.ptq)
            row.update(_hardware(qfab.lower_model(proxy), p, board, job.synth, job.model))
            row["hw"] = f"proxy: integer activations as wide ({e})"
        except (QfabError, ValueError) as e2:
            row["hw"] = f"none: {e2}"
    row["seconds"] = round(time.time() - start, 2)
    return row


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def make_jobs(space: Space, model: Path) -> list[Job]:
    digest = _digest(model)
    return [Job(space.job_key(p, digest), str(model), p, space.board, space.data,
                space.calibration_images, space.test_images, space.synth, space.ptq)
            for p in space.points]


class Progress:
    """A one-line progress bar on stderr (plain lines when stderr is not a terminal)."""

    def __init__(self, total: int, stream=None):
        self.total, self.done, self.stream = total, 0, stream or sys.stderr
        self.tty = self.stream.isatty()
        self.start = time.time()

    def step(self, label: str) -> None:
        self.done += 1
        width = 30
        filled = width * self.done // max(self.total, 1)
        line = (f"[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} "
                f"{time.time() - self.start:5.0f}s {label}")
        if self.tty:
            self.stream.write("\r" + line[:120].ljust(120))
            if self.done == self.total:
                self.stream.write("\n")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def _run_local(jobs: list[Job], workers: int, on_result: Callable) -> None:
    if workers <= 1:
        for job in jobs:
            on_result(job, run_job(job))
        return
    import multiprocessing

    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(run_job, job): job for job in jobs}
        for fut in as_completed(futures):
            on_result(futures[fut], fut.result())


def _run_dask(jobs: list[Job], address: str, on_result: Callable) -> None:
    try:
        from distributed import Client
        from distributed import as_completed as dask_completed
    except ImportError:
        raise QfabError("--executor dask:// needs dask.distributed "
                        "(pip install dask distributed)") from None
    try:
        client = Client(address, timeout=30)
    except OSError as e:
        raise QfabError(f"cannot reach the Dask scheduler at {address}: {e}") from None
    with client:
        futures = client.map(run_job, jobs, key=[f"qfab-{j.key}" for j in jobs], pure=False)
        by_key = {f.key: job for f, job in zip(futures, jobs, strict=True)}
        for fut in dask_completed(futures):
            on_result(by_key[fut.key], fut.result())


def run_sweep(space: Space, model: Path, out_dir: Path, executor: str = "local",
              workers: int | None = None, progress: bool = True) -> list[dict[str, Any]]:
    """Run every point (cached ones are read back) and write results.csv, results.json and
    the plots into ``out_dir``. Returns the rows in the space's order."""
    jobs = make_jobs(space, model)
    check_job(jobs[0])
    cache = out_dir / "cache"
    created = [d for d in (out_dir, cache) if not d.exists()]
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise QfabError(f"cannot write the output folder {out_dir}: {e.strerror or e}") from None
    try:
        rows = _run_jobs(jobs, cache, executor, workers, progress)
        write_results(rows, out_dir)
    except BaseException:
        # Finished points stay cached for a resume; folders this run made and left empty go.
        for d in reversed(created):
            if d.is_dir() and not any(d.iterdir()):
                d.rmdir()
        raise
    return rows


def check_job(job: Job) -> None:
    """Fail before any output is written when the data does not read or the model does not
    quantize (the first point's formats stand for all)."""
    import onnx
    from qfab.cost_model.reformat import model_at

    data = load_data(job.data, job.calibration_images, job.test_images)
    model = onnx.load(job.model)
    check_fits(data, model)
    model_at(model, _specs(job.point.weights), _specs(job.point.activations),
             data.x_calibration, job.ptq)


def _run_jobs(jobs: list[Job], cache: Path, executor: str, workers: int | None,
              progress: bool) -> list[dict[str, Any]]:
    results: dict[str, dict] = {}
    todo = []
    for job in jobs:
        f = cache / f"{job.key}.json"
        if f.is_file():
            results[job.key] = json.loads(f.read_text())
        else:
            todo.append(job)
    bar = Progress(len(jobs)) if progress else None
    if bar:
        bar.done = len(jobs) - len(todo) - 1
        bar.step(f"{len(jobs) - len(todo)} cached")

    def on_result(job: Job, row: dict) -> None:
        write_output_text(cache / f"{job.key}.json", json.dumps(row, default=_jsonable))
        results[job.key] = row
        if bar:
            bar.step(job.point.label)

    if executor == "local":
        _run_local(todo, workers or min(2, os.cpu_count() or 1), on_result)
    elif executor.startswith("dask://") or executor.startswith("tcp://"):
        _run_dask(todo, "tcp://" + executor.split("://", 1)[1], on_result)
    else:
        raise QfabError(f"unknown executor {executor!r} (use local or dask://HOST:PORT)")
    return [results[j.key] for j in jobs]


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    return str(v)


def write_results(rows: Iterable[dict], out_dir: Path) -> None:
    from qfab.cost_model.plots import pareto_front

    rows = list(rows)
    costed = [r for r in rows if r.get("lut") is not None]
    front = set(pareto_front([(float(r["lut"]), float(r["score"])) for r in costed]))
    for i, r in enumerate(costed):
        r["pareto"] = i in front
    write_output_text(out_dir / "results.json",
                      json.dumps(rows, indent=1, default=_jsonable) + "\n")
    table = io.StringIO(newline="")
    w = csv.DictWriter(table, fieldnames=COLUMNS + ["seconds"], extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    write_output_text(out_dir / "results.csv", table.getvalue())
    from qfab.cost_model.plots import write_plots

    write_plots(rows, out_dir)

