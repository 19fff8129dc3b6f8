"""Design spaces for ``qfab sweep``: a YAML file naming formats, bit widths and foldings.

    model: digits/digits_float.onnx     # float model, relative to this file (MODEL overrides)
    dataset: digits                     # the digits test set, or an .npz / folder (datasets.py)
    calibration_images: 256             # training images that set the quantizer scales
    ptq: gptq                           # the post-training quantizer: gptq, or max (plain)
    board: pynq-z2
    formats:
      int: [2, 3, 4, 6, 8]              # uniform widths: weights and activations
      fixed: [4, 6, 8]                  # Qm.n: power-of-two scales
      minifloat: [E2M1, E3M2, E4M3]     # minifloat weights and activations
      minifloat_weights: [E2M1, E4M3]   # minifloat weights, integer activations as wide
    per_layer:                          # integer widths per MAC layer, first to last
      - {weights: [8, 4, 8], activations: [8, 4, 8]}
    folding:
      - {max_pe: 4, max_simd: 8}
      - {target_fps: 100000}
    synth: false                        # also run Yosys on every point

Every format entry crossed with every folding is one point.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml
from qfab.cost_model.datasets import BUILT_IN
from qfab.cost_model.quantize import PTQ_METHODS, QuantSpec, minifloat_params

from qfab.errors import QfabError

FORMAT_KINDS = ("int", "fixed", "minifloat", "minifloat_weights")
TOP_KEYS = ("model", "dataset", "calibration_images", "board", "formats", "per_layer",
            "folding", "synth", "test_images", "ptq")
FOLD_KEYS = ("max_pe", "max_simd", "target_fps")


@dataclass(frozen=True)
class Point:
    """One design: how weights and activations are quantized (per MAC layer) and folded."""

    label: str
    kind: str                      # int | fixed | minifloat | minifloat_weights | per_layer
    bits: int                      # code width of the activations (the plotted bit width)
    weights: tuple[QuantSpec, ...]
    activations: tuple[QuantSpec, ...]
    folding: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Space:
    """A parsed space file: the model, dataset, board and the list of points."""

    path: Path | None
    model: Path | None
    data: str                      # "digits", or the path of an .npz or folder (datasets.py)
    calibration_images: int
    test_images: int | None
    board: str
    synth: bool
    points: list[Point]
    ptq: str = "gptq"              # the post-training quantizer (quantize.PTQ_METHODS)

    def job_key(self, point: Point, model_digest: str) -> str:
        """Hash of everything a point's result depends on, qfab's own code included: the
        cache key."""
        blob = json.dumps({"point": point.as_dict(), "model": model_digest,
                           "code": code_digest(),
                           "dataset": self.data_digest, "cal": self.calibration_images,
                           "test": self.test_images, "board": self.board,
                           "synth": self.synth, "ptq": self.ptq, "version": 1},
                          sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:20]

    @functools.cached_property
    def data_digest(self) -> str:
        from qfab.cost_model.datasets import digest

        return digest(self.data)


@functools.cache
def code_digest() -> str:
    """Hash of the qfab packages a sweep result depends on, so a changed compiler, block or
    cost model invalidates cached points."""
    import qfab.compiler
    import qfab.cost_model
    import qfab.hw
    import qfab.numerics
    import qfab.sim

    h = hashlib.sha256()
    for pkg in (qfab.compiler, qfab.cost_model, qfab.hw, qfab.numerics, qfab.sim):
        root = Path(pkg.__file__).parent
        for f in sorted(root.rglob("*.py")):
            h.update(str(f.relative_to(root)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _err(where: str, key: str, problem: str) -> QfabError:
    return QfabError(f"{where}: key {key!r}: {problem}")


def _spec(kind: str, value: Any, where: str, key: str) -> QuantSpec:
    try:
        if kind == "minifloat":
            if not isinstance(value, str):
                raise ValueError(f"expected a minifloat name like E4M3, got {value!r}")
            minifloat_params(value)
            return QuantSpec("minifloat", minifloat=value.upper().removesuffix("FN"))
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected a bit width, got {value!r}")
        return QuantSpec(kind, bits=value)
    except ValueError as e:
        raise _err(where, key, str(e)) from None


def _folding(data: Any, where: str) -> list[dict[str, float]]:
    if data is None:
        return [{}]
    if not isinstance(data, list) or not data:
        raise _err(where, "folding", "expected a non-empty list of mappings")
    out = []
    for i, f in enumerate(data):
        if not isinstance(f, dict):
            raise _err(where, f"folding[{i}]", f"expected a mapping, got {f!r}")
        for k, v in f.items():
            if k not in FOLD_KEYS:
                raise _err(where, f"folding[{i}].{k}", f"unknown (known: {', '.join(FOLD_KEYS)})")
            if isinstance(v, bool) or not isinstance(v, int | float) or v <= 0:
                raise _err(where, f"folding[{i}].{k}", f"expected a positive number, got {v!r}")
        out.append(dict(f))
    return out


def _points(data: dict, where: str, layers: int | None) -> list[Point]:
    formats = data.get("formats") or {}
    if not isinstance(formats, dict):
        raise _err(where, "formats", "expected a mapping of format kind to a list")
    base: list[tuple] = []
    for kind, values in formats.items():
        if kind not in FORMAT_KINDS:
            raise _err(where, f"formats.{kind}", f"unknown kind (known: {', '.join(FORMAT_KINDS)})")
        if not isinstance(values, list) or not values:
            raise _err(where, f"formats.{kind}", "expected a non-empty list")
        for v in values:
            key = f"formats.{kind}"
            if kind == "minifloat_weights":
                w = _spec("minifloat", v, where, key)
                a = QuantSpec("int", bits=w.width)
                base.append((f"{w.label}w-int{w.width}a", kind, w.width, (w,), (a,)))
            else:
                s = _spec("minifloat" if kind == "minifloat" else kind, v, where, key)
                base.append((s.label, kind, s.width, (s,), (s,)))
    for i, entry in enumerate(data.get("per_layer") or []):
        key = f"per_layer[{i}]"
        if not isinstance(entry, dict) or set(entry) != {"weights", "activations"}:
            raise _err(where, key, "expected {weights: [...], activations: [...]}")
        w = tuple(_spec("int", b, where, key + ".weights") for b in entry["weights"])
        a = tuple(_spec("int", b, where, key + ".activations") for b in entry["activations"])
        if len(w) != len(a) or (layers is not None and len(w) != layers):
            raise _err(where, key, f"needs one width per MAC layer ({layers or len(w)})")
        label = "w" + "-".join(str(s.bits) for s in w) + "_a" + "-".join(str(s.bits) for s in a)
        base.append((label, "per_layer", max(s.bits for s in a), w, a))
    if not base:
        raise _err(where, "formats", "the space has no points")
    points = []
    for fold in _folding(data.get("folding"), where):
        suffix = "".join(f"_{k.replace('max_', '')}{v:g}" for k, v in sorted(fold.items()))
        for label, kind, bits, w, a in base:
            points.append(Point(label + suffix, kind, bits, w, a, fold))
    return points


def load_space(path: str | os.PathLike, layers: int | None = None) -> Space:
    """Parse a space file; a malformed key raises a one-line QfabError naming it."""
    p = Path(path)
    where = f"space file {p}"
    try:
        data = yaml.safe_load(p.read_text())
    except OSError as e:
        raise QfabError(f"{where}: {e.strerror or e}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise QfabError(f"{where}{line}: {getattr(e, 'problem', None) or 'invalid YAML'}") \
            from None
    if not isinstance(data, dict):
        raise QfabError(f"{where}: expected a mapping at the top")
    for key in data:
        if key not in TOP_KEYS:
            raise _err(where, key, f"unknown (known: {', '.join(TOP_KEYS)})")
    model = data.get("model")
    if model is not None and not isinstance(model, str):
        raise _err(where, "model", f"expected a path, got {model!r}")
    dataset = data.get("dataset", "digits")
    if not isinstance(dataset, str):
        raise _err(where, "dataset", f"expected digits, digits-shifted or a path, got "
                                     f"{dataset!r}")
    if dataset not in BUILT_IN:
        dataset = str(p.parent / dataset)
        if not Path(dataset).exists():
            raise _err(where, "dataset", f"{dataset}: no such file or folder")
    ints = {}
    for key, default in (("calibration_images", 256), ("test_images", None)):
        v = data.get(key, default)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise _err(where, key, f"expected a positive integer, got {v!r}")
        ints[key] = v
    board = data.get("board", "pynq-z2")
    from qfab.cost_model.boards import load_board

    load_board(board)
    synth = data.get("synth", False)
    if not isinstance(synth, bool):
        raise _err(where, "synth", f"expected true or false, got {synth!r}")
    ptq = data.get("ptq", "gptq")
    if ptq not in PTQ_METHODS:
        raise _err(where, "ptq", f"expected {' or '.join(PTQ_METHODS)}, got {ptq!r}")
    return Space(path=p, model=(p.parent / model) if model else None, data=dataset,
                 calibration_images=ints["calibration_images"], test_images=ints["test_images"],
                 board=board, synth=synth, points=_points(data, where, layers), ptq=ptq)
