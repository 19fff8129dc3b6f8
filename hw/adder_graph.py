"""Constant matrix-vector multiplication by an adder graph: ``y = W @ x`` without multipliers.

Every weight is written in canonical signed digits (CSD: digits -1, 0, 1, no two non-zero
digits adjacent), so a product ``w * x`` is a few shifted copies of ``x`` added or subtracted.
The terms of one output are pairs waiting to be added, and the same pair (``x_a`` plus or
minus ``x_b`` shifted by ``d``, at any common shift) often appears in several outputs: it is
computed once and shared (common subexpression elimination across the matrix, the technique of
constant matrix-vector multiplication by adder graphs, as in da4ml). Pairs are found in rounds:
each round counts every pair pattern over all outputs, at once, and takes the most frequent
ones (those of the top count) while their terms are free, then counts again; it stops when
no pattern occurs twice. What remains of each output is summed by a tree that always adds
the two shallowest terms, so the depth is the least the terms allow. Zero weights give no
terms and cost nothing.

The graph is plain data (:class:`AdderGraph`); :func:`evaluate` is its NumPy model, and
:class:`qfab.hw.cmvm.ConstantMatrixVectorUnit` is the hardware made from it.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np

__all__ = ["AdderNode", "AdderGraph", "csd_digits", "solve_cmvm", "evaluate"]


@dataclass(frozen=True)
class AdderNode:
    """``(a << shift_a) + sign_b * (b << shift_b)``; ``a`` and ``b`` index the graph's
    values (the inputs first, then the nodes in order). One of the shifts is 0."""

    a: int
    b: int
    shift_a: int
    shift_b: int
    sign_b: int


Term = tuple[int, int, int]  # (value index, left shift, sign): sign * (value << shift)


@dataclass
class AdderGraph:
    """An adder graph computing ``W @ x``.

    Members
    -------
    inputs : int
        Number of inputs (values ``0 .. inputs - 1``).
    nodes : list of AdderNode
        Node ``k`` is value ``inputs + k``; it reads only values before it.
    outputs : list of Term or None
        Output ``j`` is ``sign * (value << shift)``, or None for an all-zero row.
    levels : list of int
        Adder depth of every value (inputs 0).
    shared : int
        Nodes made by sharing a pair between outputs (the rest are the outputs' trees).
    """

    inputs: int
    nodes: list[AdderNode]
    outputs: list[Term | None]
    levels: list[int]
    shared: int = 0

    @property
    def adders(self) -> int:
        return len(self.nodes)

    @property
    def depth(self) -> int:
        """The deepest output's adder depth."""
        return max((self.levels[o[0]] for o in self.outputs if o is not None), default=0)


def csd_digits(value: int) -> list[tuple[int, int]]:
    """Canonical signed digits of an integer: ``[(shift, sign), ...]`` with
    ``value == sum(sign << shift)``, fewest non-zero digits, none adjacent."""
    digits, shift, v = [], 0, int(value)
    while v:
        if v & 1:
            d = 2 - (v & 3)  # +1 when v = 1 mod 4, -1 when v = 3 mod 4
            digits.append((shift, d))
            v -= d
        v >>= 1
        shift += 1
    return digits


def _merge(terms: list[Term]) -> list[Term]:
    """The same value at the same shift twice: cancelled, or once at the next shift."""
    seen: dict[tuple[int, int], int] = {}
    for src, shift, sign in terms:
        key = (src, shift)
        while key in seen:
            other = seen.pop(key)
            if other != sign:  # x - x
                sign = 0
                break
            key = (src, key[1] + 1)  # x + x = x << 1
        if sign:
            seen[key] = sign
    return [(src, shift, sign) for (src, shift), sign in seen.items()]


class _Builder:
    def __init__(self, inputs: int):
        self.inputs = inputs
        self.nodes: list[AdderNode] = []
        self.levels = [0] * inputs
        self.index: dict[AdderNode, int] = {}

    def node(self, n: AdderNode) -> int:
        found = self.index.get(n)
        if found is not None:
            return found
        self.nodes.append(n)
        self.levels.append(max(self.levels[n.a], self.levels[n.b]) + 1)
        self.index[n] = self.inputs + len(self.nodes) - 1
        return self.index[n]

    def add(self, p: Term, q: Term) -> Term:
        """The term ``p + q``, as one new node (a positive term leads, so a subtraction
        needs no negation)."""
        if p[2] < 0 < q[2]:
            p, q = q, p
        low = min(p[1], q[1])
        v = self.node(AdderNode(p[0], q[0], p[1] - low, q[1] - low, p[2] * q[2]))
        return v, low, p[2]


def _pair_keys(src: np.ndarray, shift: np.ndarray, sign: np.ndarray):
    """Every pair of one output's terms as a pattern key, and the pair's term indices."""
    i, j = np.triu_indices(src.size, 1)
    swap = (src[i] > src[j]) | ((src[i] == src[j]) & (shift[i] > shift[j]))
    a, b = np.where(swap, j, i), np.where(swap, i, j)
    d = shift[b] - shift[a] + 64
    rel = (sign[a] * sign[b] > 0).astype(np.int64)
    keys = ((src[a] << 22 | src[b]) << 8 | d) << 1 | rel
    keep = (src[a] != src[b]) | (d != 64)
    return keys[keep], a[keep], b[keep]


def _share_round(g: _Builder, outs: list[list[Term]], pairs: dict[int, tuple]) -> int:
    """One round of pair sharing over all outputs; returns the nodes it made. ``pairs``
    keeps each output's pair keys between rounds; the round drops those of the outputs it
    changes."""
    keys, first, second, owner = [], [], [], []
    for j, terms in enumerate(outs):
        if len(terms) < 2:
            continue
        if j not in pairs:
            arr = np.array(terms, dtype=np.int64)
            k, a, b = _pair_keys(arr[:, 0], arr[:, 1], arr[:, 2])
            pairs[j] = k, a, b, np.full(k.size, j)
        k, a, b, o = pairs[j]
        keys.append(k)
        first.append(a)
        second.append(b)
        owner.append(o)
    if not keys:
        return 0
    keys_all = np.concatenate(keys)
    ordered = np.sort(keys_all)
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    counts = np.diff(np.r_[starts, ordered.size])
    # Only the most frequent patterns: a pair made this round can join a more frequent
    # pattern in the next, which counts taken ahead of it would have spent its terms on.
    top = ordered[starts[counts == max(counts.max(), 2)]]
    if top.size == 0:
        return 0
    cand = np.flatnonzero(np.isin(keys_all, top))
    cand = cand[np.argsort(keys_all[cand], kind="stable")]
    a_all, b_all, o_all = (np.concatenate(x) for x in (first, second, owner))
    used = [bytearray(len(t)) for t in outs]
    taken: dict[int, list[tuple[int, int, int]]] = {}
    for key, j, a, b in zip(keys_all[cand].tolist(), o_all[cand].tolist(),
                               a_all[cand].tolist(), b_all[cand].tolist(), strict=True):
        u = used[j]
        if u[a] or u[b]:
            continue
        u[a] = u[b] = 1
        taken.setdefault(key, []).append((j, a, b))
    made = 0
    for key in sorted(taken):
        uses = taken[key]
        if len(uses) < 2:  # a pair of one output is its tree's business
            for j, a, b in uses:
                used[j][a] = used[j][b] = 0
            continue
        made += 1
        for j, a, b in uses:
            terms = outs[j]
            p, q = terms[a], terms[b]
            # every use shares one node: the first term positive
            if p[2] < 0:
                p, q = (p[0], p[1], 1), (q[0], q[1], -q[2])
                v, low, sign = g.add(p, q)
                terms.append((v, low, -sign))
            else:
                terms.append(g.add(p, q))
    for j, terms in enumerate(outs):
        if len(terms) > len(used[j]):
            keep = [t for t, u in zip(terms, used[j], strict=False) if not u]
            outs[j] = _merge(keep + terms[len(used[j]):])
            pairs.pop(j, None)
    return made


def _tree(g: _Builder, terms: list[Term]) -> Term | None:
    """Sum the terms, the two shallowest first (least depth)."""
    if not terms:
        return None
    heap = [(g.levels[t[0]], k, t) for k, t in enumerate(terms)]
    heapq.heapify(heap)
    count = len(heap)
    while len(heap) > 1:
        _, _, p = heapq.heappop(heap)
        _, _, q = heapq.heappop(heap)
        t = g.add(p, q)
        heapq.heappush(heap, (g.levels[t[0]], count, t))
        count += 1
    return heap[0][2]


_SOLVED: dict[tuple, AdderGraph] = {}  # the planner, cycle and cost models ask again and again


def solve_cmvm(weights: np.ndarray, *, share: bool = True) -> AdderGraph:
    """The adder graph of ``weights`` ``[outputs, inputs]`` (integers): CSD digits, pairs
    shared across outputs (unless ``share`` is False), each output's rest summed by a tree.
    The graph is shared by every caller with the same matrix: do not change it."""
    w = np.asarray(weights)
    if w.ndim == 2 and np.issubdtype(w.dtype, np.integer):
        key = (w.shape, np.ascontiguousarray(w, np.int64).tobytes(), share)
        if key not in _SOLVED:
            if len(_SOLVED) >= 64:
                _SOLVED.pop(next(iter(_SOLVED)))
            _SOLVED[key] = _solve(w, share)
        return _SOLVED[key]
    return _solve(w, share)


def _solve(w: np.ndarray, share: bool) -> AdderGraph:
    if w.ndim != 2:
        raise ValueError(f"weights must be a [outputs, inputs] matrix, not shape {w.shape}")
    if w.size and not np.issubdtype(w.dtype, np.integer) and w.dtype != object:
        raise ValueError(f"weights must be integers, not {w.dtype}")
    n_out, n_in = w.shape
    if n_in >= 1 << 20:
        raise ValueError(f"{n_in} inputs: more than the pair keys hold")
    g = _Builder(n_in)
    outs = [_merge([(i, s, d) for i in range(n_in) for s, d in csd_digits(int(w[j, i]))])
            for j in range(n_out)]
    shared, pairs = 0, {}
    while share:
        made = _share_round(g, outs, pairs)
        shared += made
        if not made:
            break
    results = [_tree(g, terms) for terms in outs]
    return AdderGraph(n_in, g.nodes, results, g.levels, shared)


def evaluate(graph: AdderGraph, x: np.ndarray) -> np.ndarray:
    """The graph's outputs for inputs ``x`` ``[..., inputs]``: ``[..., outputs]`` as Python
    ints in an object array (exact at any width)."""
    x = np.asarray(x)
    if x.shape[-1] != graph.inputs:
        raise ValueError(f"x has {x.shape[-1]} inputs, the graph {graph.inputs}")
    values = [x[..., i].astype(object) for i in range(graph.inputs)]
    for n in graph.nodes:
        values.append(values[n.a] * (1 << n.shift_a) + n.sign_b * values[n.b] * (1 << n.shift_b))
    zero = np.zeros(x.shape[:-1], dtype=object)
    cols = [zero if o is None else o[2] * values[o[0]] * (1 << o[1]) for o in graph.outputs]
    return np.stack(cols, axis=-1) if cols else np.zeros((*x.shape[:-1], 0), dtype=object)
