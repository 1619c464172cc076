"""Which structural circuit members a pair set exercises, and a second pair set for the rest.

The structural circuit (every component and edge on a path into the target, read off the
weights) can hold members that no pair of a given set moves: in ``reverse`` every output
pair of the same-length set has equal lengths, so the length chain writes the same
vectors on the clean and on the corrupted input. A two-input method cannot see such a
member, and a scorer must know which members the pairs it used could show.

*Exercised* (one definition, also checked by the independent audit): a component is
exercised by a pair when its write to the residual stream (its output vector, at some
position of the full context) differs between the clean and the corrupted run by more
than ``TOL`` x the largest absolute entry of its clean output (1 when that is 0); an edge
A -> B is exercised when A's write projected onto the edge's dims (the residual
directions the edge carries; for the sink of an intermediate target, the target's
directions A writes) differs likewise, the scale being that of the projected clean
write. The forward pass is the stored weights' in float64 arithmetic (float32 round-off
alone moves a rotated model's writes by about 1e-6 of their size). A member is exercised by a pair set when some pair of it exercises it; a pair
set's *active circuit* is the structural members it exercises.

:func:`covering_pairs` searches candidate pairs (mixed lengths and same lengths, more than
a pair set holds) for pairs that exercise the members the first set leaves silent, and
keeps greedily the ones that add most.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from rasp_compiler.interp.forward import Decomposed
from rasp_compiler.interp.ground_truth import UNEMBED, GroundTruth
from rasp_compiler.interp.pairs import Pairs, make_pairs

TOL = 1e-6
MAIN, LENGTHS = "main", "lengths"  # the pair set every target has; the covering one some targets add
N_CANDIDATES = 64  # candidate pairs of each kind (mixed lengths, same length) the search draws


@dataclass(frozen=True)
class Members:
    """Scored components (heads, MLP blocks) and edges (sink named ``unembed``) of a circuit."""

    nodes: tuple[str, ...]
    edges: tuple[tuple[str, str], ...]

    def __len__(self) -> int:
        return len(self.nodes) + len(self.edges)

    def as_json(self) -> dict:
        return {"nodes": list(self.nodes), "edges": [list(e) for e in self.edges]}


def structural(gt: GroundTruth, target: str) -> tuple[Members, dict[tuple[str, str], tuple[str, ...]]]:
    """The target's structural members and the dims each edge carries (as ``circuit.json`` lists them)."""
    circ = gt.circuit(target)
    sink = circ.sink
    nodes = tuple(sorted(n for n in circ.nodes if n not in ("embed", sink)))
    labels = set(gt.target_labels(target))
    dims = {}
    for a, b in sorted(circ.edges):
        if b == sink and sink != UNEMBED:
            dims[(a, UNEMBED)] = tuple(lab for lab in gt.graph.nodes[a]["writes"] if lab in labels)
        else:
            dims[(a, UNEMBED if b == sink else b)] = tuple(gt.graph.edges[a, b]["dims"])
    return Members(nodes, tuple(dims)), dims


def _moves(clean: np.ndarray, corrupt: np.ndarray) -> np.ndarray:
    """(P,) whether a write (P, n_ctx, k) differs by more than TOL x its clean scale (1 if 0)."""
    flat = lambda a: np.abs(a).reshape(len(a), -1)
    scale = flat(clean).max(1, initial=0.0)
    scale = np.where(scale > 0, scale, 1.0)
    return flat(corrupt - clean).max(1, initial=0.0) > TOL * scale


@dataclass(frozen=True)
class _Float64:
    """A model's weights in float64 (what :class:`Decomposed` needs of a model): float32
    round-off alone moves a rotated model's writes by ~1e-6 of their size, which would count
    as exercised; the exact forward pass of the stored weights does not."""

    config: object
    labels: object
    params: dict


def exact(dec: Decomposed) -> Decomposed:
    """``dec`` running in float64 (itself when it already does)."""
    params = dec.model.params
    if all(np.asarray(v).dtype == np.float64 for v in params.values()):
        return dec
    model = _Float64(dec.model.config, dec.model.labels, {k: np.asarray(v, np.float64) for k, v in params.items()})
    return Decomposed(model, dec.granularity)


def exercised_per_pair(dec: Decomposed, gt: GroundTruth, target: str, pairs: Pairs) -> list[Members]:
    """For each pair, the structural members of ``target`` it exercises (module docstring);
    run in float64 on the stored weights."""
    members, dims = structural(gt, target)
    dec = exact(dec)
    rc, rx = {}, {}
    with np.errstate(over="ignore", invalid="ignore"):
        dec.run(np.asarray(pairs.clean), record=rc)
        dec.run(np.asarray(pairs.corrupt), record=rx)
    out = lambda rec, n: np.asarray(rec["out:" + n], np.float64)
    node_on = {n: _moves(out(rc, n), out(rx, n)) for n in members.nodes}
    edge_on = {}
    for (a, b), labs in dims.items():
        d = gt.features.directions(labs).T if labs else np.zeros((dec.config.d_model, 0))
        edge_on[(a, b)] = _moves(out(rc, a) @ d, out(rx, a) @ d)
    return [Members(tuple(n for n in members.nodes if node_on[n][i]),
                    tuple(e for e in members.edges if edge_on[e][i])) for i in range(len(pairs))]


def union(per_pair: list[Members], order: Members) -> Members:
    nodes = {n for m in per_pair for n in m.nodes}
    edges = {e for m in per_pair for e in m.edges}
    return Members(tuple(n for n in order.nodes if n in nodes), tuple(e for e in order.edges if e in edges))


def active_circuit(dec: Decomposed, gt: GroundTruth, target: str, pairs: Pairs) -> Members:
    """The structural members of ``target`` that some pair of ``pairs`` exercises."""
    return union(exercised_per_pair(dec, gt, target, pairs), structural(gt, target)[0])


_ROWS = tuple(f.name for f in dataclasses.fields(Pairs) if f.name != "target")  # per-pair arrays


def take(pairs: Pairs, index) -> Pairs:
    """The pairs at ``index`` (a list of row numbers; repeats allowed)."""
    index = np.asarray(index, int)
    return dataclasses.replace(pairs, **{f: getattr(pairs, f)[index] for f in _ROWS})


def _concat(a: Pairs, b: Pairs) -> Pairs:
    return dataclasses.replace(a, **{f: np.concatenate([getattr(a, f), getattr(b, f)]) for f in _ROWS})


def covering_pairs(model, gt: GroundTruth, target: str, first: Pairs, n_pairs: int, seed: int,
                   dec: Decomposed | None = None, labels: Decomposed | None = None) -> Pairs | None:
    """A second pair set exercising structural members ``first`` leaves silent (None when it
    leaves none, or no candidate pair exercises any of them). Candidates: mixed-length and
    same-length pairs on which the target differs; greedily the pair exercising most of the
    still-silent members; repeated to ``n_pairs`` rows (one shape per task, as ``make_pairs``).
    ``labels``: the exact model that labels the pairs (``make_pairs``; noise variants)."""
    dec = dec or Decomposed(model)
    dec64 = exact(dec)  # once: exercised_per_pair would make its float64 copy on every call
    members = structural(gt, target)[0]
    covered = active_circuit(dec64, gt, target, first)
    silent = set(members.nodes) - set(covered.nodes) | set(members.edges) - set(covered.edges)
    silent -= set(input_independent(model, gt, target))  # no pair can move these: nothing to search for
    if not silent:
        return None
    cands = [p for p in (make_pairs(model, gt, target, N_CANDIDATES, seed=seed + 7919, same_length=False, dec=dec, labels=labels,
                                    pad_to_n=False, pool=1024),
                         make_pairs(model, gt, target, N_CANDIDATES, seed=seed + 104729, same_length=True, dec=dec, labels=labels,
                                    pad_to_n=False, pool=1024)) if p is not None]
    if not cands:
        return None
    pool = cands[0] if len(cands) == 1 else _concat(*cands)
    gains = [set(m.nodes) | set(m.edges) for m in exercised_per_pair(dec64, gt, target, pool)]
    chosen: list[int] = []
    while silent and len(chosen) < n_pairs:
        best = max(range(len(pool)), key=lambda i: (len(gains[i] & silent), -i))
        if not gains[best] & silent:
            break
        chosen.append(best)
        silent -= gains[best]
    if not chosen:
        return None
    return take(pool, [chosen[k % len(chosen)] for k in range(n_pairs)])


def pair_sets(model, gt: GroundTruth, entries, n_pairs: int, seed: int, dec: Decomposed | None = None,
              labels: Decomposed | None = None) -> list[dict[str, Pairs]]:
    """Per entry of ``task_pairs`` (same order): ``{"main": its pairs}`` plus ``"lengths"``, the
    covering set, when the main set leaves structural members silent and a candidate helps.
    ``dec`` and ``labels`` as ``task_pairs`` made the main sets with."""
    dec = dec or Decomposed(model)  # pairs are made (values, gaps) by the model's own arithmetic, as make_pairs does
    out = []
    for k, (pairs, _, _) in enumerate(entries):
        sets = {MAIN: pairs}
        with np.errstate(over="ignore", invalid="ignore"):
            extra = covering_pairs(model, gt, pairs.target, pairs, n_pairs, seed + k, dec, labels)
        if extra is not None:
            sets[LENGTHS] = extra
        out.append(sets)
    return out


def active_circuits(model, gt: GroundTruth, sets: dict[str, dict[str, Pairs]]) -> dict[str, dict[str, Members]]:
    """target -> pair set name -> its active circuit."""
    dec = exact(Decomposed(model))
    return {t: {name: active_circuit(dec, gt, t, p) for name, p in by_name.items()} for t, by_name in sets.items()}


def input_independent(model, gt: GroundTruth, target: str) -> tuple[tuple[str, str], ...]:
    """Edges no pair can exercise: out of ``embed`` along dims its token embedding never
    writes (position directions only), so its projected write is the same on every input."""
    _, dims = structural(gt, target)
    w_e = np.asarray(model.params["embed.W_E"], np.float64)
    out = []
    for (a, b), labs in dims.items():
        if a != "embed" or not labs:
            continue
        proj = w_e @ gt.features.directions(labs).T
        if np.abs(proj - proj[:1]).max() <= TOL * max(float(np.abs(proj).max()), 1.0):
            out.append((a, b))
    return tuple(out)


@dataclass(frozen=True)
class Coverage:
    """Structural members (summed over targets), how many some pair set exercises, and how
    many no input can move (:func:`input_independent`)."""

    members: int
    exercised: int
    input_independent: int = 0

    @property
    def fraction(self) -> float:
        return self.exercised / self.members if self.members else 1.0

    @property
    def fraction_possible(self) -> float:
        """Exercised over the members some input could move."""
        n = self.members - self.input_independent
        return self.exercised / n if n else 1.0

    def __add__(self, other: "Coverage") -> "Coverage":
        return Coverage(self.members + other.members, self.exercised + other.exercised,
                        self.input_independent + other.input_independent)


def coverage(model, gt: GroundTruth, active: dict[str, dict[str, Members]]) -> Coverage:
    """Members exercised by some pair set, over every target of ``active``."""
    total = hit = fixed = 0
    for t, by_name in active.items():
        members = structural(gt, t)[0]
        total += len(members)
        hit += len(union(list(by_name.values()), members))
        fixed += len(input_independent(model, gt, t))
    return Coverage(total, hit, fixed)


__all__ = ["TOL", "MAIN", "LENGTHS", "Members", "Coverage", "structural", "exercised_per_pair", "active_circuit",
           "covering_pairs", "pair_sets", "active_circuits", "coverage", "input_independent", "take"]
