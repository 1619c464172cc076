"""Score every method against the truth on one model: the testbed in one call.

``evaluate(model)`` takes each *target* — the output and every SOp a component
computes (plus virtual read-outs when the compilation is known) — builds
clean/corrupted pairs on which the target changes, runs every method, and scores its
node ranking against the target's circuit (positives: the circuit's heads and MLP
blocks; negatives: all others) and its edge ranking against the circuit's edges
(candidates: every sender -> receiver pair in forward order; the final residual that
reads the target is the receiver ``unembed``).

Two views of the truth are scored:

* ``structural``: the whole circuit read off the weights;
* ``active``: only circuit members whose output actually differs between clean and
  corrupted on some pair (the members a two-input method could possibly find);
  inactive members are left out of the ranking rather than counted as misses;
* ``exercised``: the pair set's active circuit as ``circuit.json`` stores it — the members
  whose write (or, for an edge, the write along its dims) differs between clean and
  corrupted on some pair (:mod:`rasp_compiler.interp.coverage`); members left out of the
  ranking likewise. No path to the sink is required, unlike ``active``.

Each method's ranking gets every figure of :mod:`rasp_compiler.interp.scoring`, plus the
faithfulness of the circuit it would report (its top-k, k = the true size, and its
keys above threshold): the metric with only those nodes (or edges) left clean and every
other one resampled from the pair's corrupted input, over the full model's. The true
circuit's own faithfulness (``TargetResult.truth_faithfulness``) is the yardstick: 1 for
an exact variant whose truth is right.

The node view of the output is usually degenerate (every component of a compiled
program feeds its output, so there are no negatives); intermediate targets and edges
are what separate the methods.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from rasp_compiler.interp.coverage import active_circuit, exact
from rasp_compiler.interp.forward import Decomposed
from rasp_compiler.interp.ground_truth import GroundTruth, ground_truth
from rasp_compiler.interp.methods import EDGE_PARTNER, Scores, component_deltas, edge_keys, method
from rasp_compiler.interp.pairs import Pairs, make_pairs
from rasp_compiler.interp.scoring import Score, faithfulness, reported, score_ranking, top_k


@dataclass
class TargetResult:
    target: str
    is_output: bool
    pairs: Pairs
    circuit_nodes: list[str]  # scored components in the circuit
    circuit_edges: list[tuple[str, str]]  # with the sink named "unembed"
    active_nodes: list[str]
    active_edges: list[tuple[str, str]]
    scores: dict[str, Scores]  # method -> raw scores
    exercised_nodes: list[str] = field(default_factory=list)  # the pair set's active circuit (coverage)
    exercised_edges: list[tuple[str, str]] = field(default_factory=list)
    same_length: bool = True  # False: only pairs of different lengths change this target
    node: dict[str, dict[str, Score]] = field(default_factory=dict)  # view -> method -> Score
    edge: dict[str, dict[str, Score]] = field(default_factory=dict)
    truth_faithfulness: dict[str, float] = field(default_factory=dict)  # "node"/"edge" -> of the true circuit


@dataclass
class ModelResult:
    name: str
    gt: GroundTruth
    targets: list[TargetResult]
    skipped: list[str]  # targets no pair of inputs changes

    def mean(self, level: str, view: str, method: str, field_: str = "auc", outputs_only: bool = False) -> float:
        vals = []
        for t in self.targets:
            if outputs_only and not t.is_output:
                continue
            s = getattr(t, level).get(view, {}).get(method)
            if s is not None and not math.isnan(getattr(s, field_)):
                vals.append(getattr(s, field_))
        return float(np.mean(vals)) if vals else math.nan

    def total(self, level: str, view: str, method: str, field_: str) -> int:
        return int(sum(getattr(getattr(t, level)[view][method], field_) for t in self.targets
                       if view in getattr(t, level) and method in getattr(t, level)[view]))

    def output(self) -> TargetResult | None:
        return next((t for t in self.targets if t.is_output), None)


def targets_of(model, gt: GroundTruth) -> list[str]:
    """The output first, then every SOp some head or MLP computes, then virtual read-outs."""
    out = [model.config.output]
    computed = {gt.features.features[i].node for c in gt.scored
                for i, lab in enumerate(model.labels.residual) if lab in gt.graph.nodes[c]["writes"]}
    for f in gt.features.features:
        if f.kind in ("categorical", "numerical") and f.node in computed and f.node not in out:
            out.append(f.node)
    out += [n for n in gt.readouts if n not in out and not gt.features.of_node(n)]
    return out


def _active(delta: dict, nodes, edges, edge_dims, features, gap: float) -> tuple[list, list]:
    """The part of the circuit the pairs exercise: an edge is active when its sender's change
    has a component along the directions it carries and the receiver's own output changes
    too (the sink always counts); a node is active when an active path leads from it to the
    sink. Necessary conditions for a two-input method to see anything, not sufficient ones."""
    tol = 1e-5 * max(gap, 1e-9)
    varies = {n: float(np.abs(d).max()) > tol for n, d in delta.items()}
    act_edges = []
    for s, r in edges:
        labels = edge_dims.get((s, r), ())
        if not labels or not (r == "unembed" or varies.get(r, False)):
            continue
        if np.abs(delta[s] @ features.directions(labels).T).max() > tol:
            act_edges.append((s, r))
    reach, frontier = {"unembed"}, True
    while frontier:
        frontier = False
        for s, r in act_edges:
            if r in reach and s not in reach:
                reach.add(s)
                frontier = True
    return [n for n in nodes if n in reach], [e for e in act_edges if e[0] in reach]


class _Faithfulness:
    """The metric with only a node set (or edge set) clean and every other one resampled
    from the pair's corrupted run (node: its output; edge: its contribution to one
    receiver's input), over the full model's (:func:`rasp_compiler.interp.scoring.faithfulness`)."""

    def __init__(self, dec: Decomposed, pairs: Pairs, delta: dict):
        self.dec, self.pairs, self.delta = dec, pairs, delta
        self.clean = pairs.metric(self._run(pairs.clean))
        self.corrupt = pairs.metric(self._run(pairs.corrupt))

    def _run(self, ids, **kw):
        with np.errstate(over="ignore", invalid="ignore"):
            return self.dec.run(ids, xp=np, **kw)

    def nodes(self, keep) -> float:
        keep = set(keep) | {"embed"}
        od = {n: d for n, d in self.delta.items() if n not in keep}
        return faithfulness(self.pairs.metric(self._run(self.pairs.clean, out_delta=od)), self.clean, self.corrupt)

    def edges(self, keep, candidates) -> float:
        keep = set(keep)
        idl: dict = {}
        for s, r in candidates:
            if (s, r) not in keep:
                idl[r] = idl.get(r, 0) + self.delta[s]
        return faithfulness(self.pairs.metric(self._run(self.pairs.clean, in_delta=idl)), self.clean, self.corrupt)


def _score(raw: Scores, positives, candidates, gap: float, faith: _Faithfulness) -> Score:
    """``score_ranking`` plus the faithfulness of the method's top-k and reported sets."""
    sc = score_ranking(raw.score, positives, candidates, gap, threshold=getattr(raw, "threshold", None))
    k = len([c for c in candidates if c in set(positives)])
    measure = faith.nodes if raw.level == "node" else (lambda keep: faith.edges(keep, candidates))
    return dataclasses.replace(sc, faithfulness=measure(top_k(raw.score, candidates, k)),
                               faithfulness_t=measure(reported(raw.score, candidates, gap,
                                                               getattr(raw, "threshold", None))))


def evaluate(model, name: str = "", n_pairs: int = 16, seed: int = 0, same_length: bool = True,
             targets: list[str] | None = None, edges: str | bool = "output", gt: GroundTruth | None = None,
             methods=("patching", "atp", "atp_qk", "atp_star"), pairs: dict[str, Pairs] | None = None
             ) -> ModelResult:
    """Run and score every method on every target of ``model`` (see the module docstring).

    ``edges``: "output" (edge methods on the output target only: the costly part), True (every
    target) or False. ``gt`` defaults to the model's own ground truth; pass the clean
    model's for a noisy one. ``methods``: names from ``interp.methods.METHODS``; a node
    method also runs its edge version (``EDGE_PARTNER``) where edges are scored. ``pairs``
    (target -> pairs, e.g. a stored pair set of a task): used instead of fresh pairs, and
    only those targets are scored."""
    gt = gt or ground_truth(model)
    dec = Decomposed(model)
    dec64 = exact(dec)  # the exercised members are measured in float64 (interp.coverage), once per model
    # any name of ``interp.methods.METHODS``; a node method brings its edge version along
    chosen = list(dict.fromkeys(n for name in methods for n in (name, EDGE_PARTNER.get(name)) if n))
    for name in chosen:
        method(name)  # fail before any work on an unknown name
    every_edge = edge_keys(dec) if edges else []
    scored = gt.scored
    results, skipped = [], []
    given = pairs
    for k, target in enumerate(targets or (list(given) if given is not None else targets_of(model, gt))):
        if given is not None:
            pairs = given.get(target)
            mixed = pairs is not None and not pairs.same_length
        else:
            pairs = make_pairs(model, gt, target, n_pairs=n_pairs, seed=seed + k, same_length=same_length, dec=dec)
            mixed = pairs is None and same_length
        if mixed and given is None:  # a target only the length changes (e.g. ``length``): compare different lengths
            pairs = make_pairs(model, gt, target, n_pairs=n_pairs, seed=seed + k, same_length=False, dec=dec)
        if pairs is None:
            skipped.append(target)
            continue
        all_edges = every_edge if (edges is True or target == model.config.output) else []
        circ = gt.circuit(target)
        sink = circ.sink
        c_nodes = [n for n in scored if n in circ.nodes]
        rename = lambda n: "unembed" if n == sink else n
        c_edges = sorted((a, rename(b)) for a, b in circ.edges)
        g = gt.graph
        edge_dims = {(a, b): g.edges[a, b]["dims"] for a, b in g.edges}
        if sink != "unembed":  # the sink of an intermediate target reads the target's directions
            labels = set(gt.target_labels(target))
            edge_dims = {e: d for e, d in edge_dims.items() if e[1] != "unembed"}
            for n in scored + ["embed"]:
                carried = tuple(lab for lab in g.nodes[n]["writes"] if lab in labels)
                if carried:
                    edge_dims[(n, "unembed")] = carried
        _, _, delta = component_deltas(dec, pairs)
        act_nodes, act_edges = _active(delta, c_nodes, c_edges, edge_dims, gt.features, float(pairs.gap.mean()))
        raw: dict[str, Scores] = {}
        for name in chosen:
            m = method(name)
            if m.level == "node":
                raw[name] = m.run(dec, pairs, None)
            elif all_edges:
                raw[name] = m.run(dec, pairs, all_edges)
        ex = active_circuit(dec64, gt, target, pairs)
        res = TargetResult(target, target == model.config.output, pairs, c_nodes, c_edges, act_nodes, act_edges, raw,
                           list(ex.nodes), sorted(ex.edges), same_length=same_length and not mixed)
        gap = float(pairs.gap.mean())
        faith = _Faithfulness(dec, pairs, delta)
        res.truth_faithfulness["node"] = faith.nodes(c_nodes)
        if all_edges:
            res.truth_faithfulness["edge"] = faith.edges(c_edges, all_edges)
        for view, pos_n, pos_e in (("structural", c_nodes, c_edges), ("active", act_nodes, act_edges),
                                   ("exercised", res.exercised_nodes, res.exercised_edges)):
            ignore_n = set(c_nodes) - set(pos_n)
            ignore_e = set(c_edges) - set(pos_e)
            cand_n = [n for n in scored if n not in ignore_n]
            cand_e = [e for e in all_edges if e not in ignore_e]
            res.node[view] = {m: _score(s, pos_n, cand_n, gap, faith) for m, s in raw.items() if s.level == "node"}
            if all_edges:
                res.edge[view] = {m: _score(s, pos_e, cand_e, gap, faith) for m, s in raw.items() if s.level == "edge"}
        results.append(res)
    return ModelResult(name or model.config.output, gt, results, skipped)
