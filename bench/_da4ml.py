"""qfab's lowered IR traced through da4ml (0.6), for the side-by-side bench.

da4ml builds a fully unrolled, pipelined design (initiation interval 1) from a NumPy-like
trace of fixed-point operations, with every constant matrix-vector product an adder graph.
The translation works on integer codes, as the IR does:

- the graph input: integer codes of the first tensor's format (the IR's ``quantize``, a
  float-to-code step, stays outside, as in qfab's accelerator);
- ``dense``: ``(x - zero_point) @ W.T`` with the integer weight codes;
- ``requant``: ``(acc + bias - in_zero_point) * mult / 2**shift``, rounded and saturated to
  the output's codes, then ``+ zero_point``. da4ml rounds half up ('RND') or down ('TRN');
  qfab's ``half_even`` becomes 'RND', so at exact ties (rare, measured by :func:`mismatch`)
  the two designs differ by one code;
- ``threshold``: ``base + sum_k (acc - in_zero_point >= t_k)``;
- a trailing ``dequantize`` stays outside (the accelerator's output is the integer).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from qfab.compiler.ir import Graph
from qfab.numerics import IntFormat

ROUNDING = {"half_even": "RND", "half_up": "RND", "floor": "TRN"}


def _int_format(graph: Graph, name: str) -> IntFormat:
    fmt = graph.tensors[name].fmt
    if not isinstance(fmt, IntFormat):
        raise ValueError(f"tensor {name!r}: da4ml translation takes integer codes, not {fmt}")
    return fmt


def _chain(graph: Graph) -> tuple[str, list]:
    nodes = list(graph.nodes)
    start = graph.inputs[0]
    if nodes and nodes[0].op == "quantize":
        start = nodes.pop(0).outputs[0]
    if nodes and nodes[-1].op == "dequantize":
        nodes.pop()
    return start, nodes


def _saturate(v, lo: int, hi: int, rounding: str):
    """``v`` rounded to an integer and saturated to ``[lo, hi]`` (a two's complement or an
    unsigned range, as the IR's requant outputs are)."""
    if lo == 0:
        return v.quantize(0, max(hi, 1).bit_length(), 0, "SAT", rounding)
    if lo == -hi - 1:
        return v.quantize(1, (hi + 1).bit_length() - 1, 0, "SAT", rounding)
    raise ValueError(f"a requant range [{lo}, {hi}] that is not a full integer format")


def _per_channel(value, channels: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(value, np.float64).reshape(-1), (channels,))


def apply(graph: Graph, x):
    """Run the graph's integer layers on ``x`` (a da4ml FixedVariableArray of codes, or a
    NumPy array of codes: da4ml's operations evaluate on both)."""
    _, nodes = _chain(graph)
    for node in nodes:
        a = node.attrs
        if node.op == "dense":
            w = np.asarray(a["weight"], np.int64)
            if a["x_zero_point"]:
                x = x - int(a["x_zero_point"])
            x = x @ w.T.astype(np.float64)
        elif node.op == "requant":
            c = graph.tensors[node.inputs[0]].shape[1]
            bias = _per_channel(a["bias_int"], c) - _per_channel(a["in_zero_point"], c)
            scale = _per_channel(a["mult"], c) / 2.0 ** _per_channel(a["shift"], c)
            zp = int(a["zero_point"])
            v = (x + bias) * scale
            x = _saturate(v, int(a["lo"]) - zp, int(a["hi"]) - zp, ROUNDING[a["rounding"]])
            if zp:
                x = x + zp
        elif node.op == "threshold":
            thr = np.asarray(a["thresholds"], np.float64)
            v = x - float(np.asarray(a["in_zero_point"]).reshape(-1)[0]) \
                if np.any(a["in_zero_point"]) else x
            x = sum((v >= thr[:, k]) for k in range(thr.shape[1])) + int(a["base"])
        elif node.op in ("reshape", "transpose") and len(graph.tensors[node.inputs[0]].shape) <= 2:
            continue
        else:
            raise ValueError(f"node {node.name!r}: op {node.op!r} has no da4ml translation here")
    return x


def trace(graph: Graph):
    """da4ml's combinational logic (a CombLogic) for the graph's integer layers."""
    from da4ml.trace import FixedVariableArrayInput, comb_trace

    start, _ = _chain(graph)
    fmt = _int_format(graph, start)
    n = int(np.prod(graph.tensors[start].shape[1:]))
    inp = FixedVariableArrayInput(n)
    x = inp.quantize(int(fmt.signed), fmt.bits - int(fmt.signed), 0)
    return comb_trace(inp, apply(graph, x))


def verilog(comb, folder: Path, *, latency_cutoff: float, name: str = "da4ml_top"):
    """Write da4ml's pipelined Verilog of ``comb`` (from :func:`trace`) under ``folder``;
    return (the Verilog of every source, its top module, the pipeline's latency in cycles)."""
    from da4ml.codegen import VerilogModel

    model = VerilogModel(comb, name, folder, latency_cutoff=latency_cutoff,
                         print_latency=False)
    model.write()
    text = "\n".join(p.read_text() for p in sorted((folder / "src").glob("*.v"))
                     if not p.stem.endswith("_wrapper"))
    # the static library modules the design instantiates (one reads a table file it has none of)
    text += "".join("\n" + p.read_text() for p in sorted((folder / "src/static").glob("*.v"))
                    if p.stem in text)
    return text, name, len(model._pipe.solutions)


def mismatch(comb, reference_codes: np.ndarray, codes: np.ndarray) -> int:
    """How many output codes da4ml's arithmetic (``comb`` evaluated in NumPy) gives
    differently from qfab's integer reference ``reference_codes``, on input ``codes``."""
    out = np.asarray(comb.predict(np.asarray(codes, np.float64)))
    return int(np.count_nonzero(out.reshape(reference_codes.shape) != reference_codes))


def cached_trace(graph: Graph, model_path: Path):
    """:func:`trace`, kept under ~/.cache/qfab/da4ml by a hash of the model file and the da4ml
    version: da4ml's search takes minutes on TFC_2W2A's 784-input layer."""
    import hashlib
    import os

    import da4ml
    from da4ml.types import CombLogic

    key = hashlib.sha256(Path(model_path).read_bytes()
                         + da4ml.__version__.encode()).hexdigest()[:24]
    path = Path.home() / ".cache" / "qfab" / "da4ml" / f"{key}.json"
    if path.is_file():
        return CombLogic.load(path)
    comb = trace(graph)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    comb.save(tmp)
    os.replace(tmp, path)
    return comb
