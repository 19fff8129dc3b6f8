"""What the mutation fuzzer makes (:class:`Mutant`: a model, its IN file and whether either is
invalid by construction) and the view of a seed every mutation works on (:class:`Context`).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import onnx
from fuzz_corpus import Seed
from onnx import numpy_helper


@dataclass(frozen=True)
class Mutant:
    seed: str
    kind: str
    model: bytes
    inputs: bytes  # the IN file for `qfab reference` (.npz bytes)
    invalid: bool  # the model is invalid: exit 0 from any command is a silent accept
    input_invalid: bool = False  # the input file is invalid: exit 0 from `reference` is one

    @property
    def label(self) -> str:
        return f"{self.seed}:{self.kind}"


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


class Context:
    """One mutation's view of a seed: the parsed model and helpers to find things in it."""

    def __init__(self, seed: Seed, rng: np.random.Generator):
        self.seed = seed
        self.rng = rng
        self.model = onnx.load_from_string(seed.model)
        self.graph = self.model.graph
        self.inits = {t.name: t for t in self.graph.initializer}

    def pick(self, items):
        items = list(items)
        return items[self.rng.integers(len(items))] if items else None

    def mutant(self, kind: str, invalid: bool, model: bytes | None = None) -> Mutant:
        data = self.model.SerializeToString() if model is None else model
        return Mutant(self.seed.name, kind, data, npz_bytes(self.seed.inputs), invalid)

    def consumers(self, name: str) -> int:
        return sum(name in n.input for n in self.graph.node) + sum(
            o.name == name for o in self.graph.output)

    def set_init(self, name: str, array: np.ndarray) -> None:
        self.inits[name].CopyFrom(numpy_helper.from_array(array, name))
