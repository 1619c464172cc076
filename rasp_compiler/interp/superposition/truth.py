"""What an SAE should find in a compiled model: feature groups, derived from the program graph.

Scoring an SAE against every labelled residual dimension as if each were an independent
feature asks for something no dictionary learner can produce, for two reasons:

* **a categorical SOp is a group, not a set of features.** Its one-hot dimensions are
  mutually exclusive (at most one is on), so they span a *subspace* in which exactly one
  direction is active per position; when the SOp is always defined, one value is a
  linear function of the others (``tokens:c = one - bos - tokens:a - tokens:b``) and can
  be folded into a decoder bias. What is identifiable is the group's *varying subspace*
  (its centred activations' span), and per value: a latent that lies in the group's span
  and fires exactly when the SOp takes that value.
* **a value that is a function of other values at the same position is not an
  independent feature.** A position-wise op (``Map``, ``SequenceMap``,
  ``LinearSequenceMap``, the compiler's product spaces: the MLP and virtual nodes)
  computes its value from its inputs *at the same position*. Attention nodes
  (``Aggregate``, ``SelectorWidth``) bring in information from other positions, and
  ``tokens``/``indices`` are the inputs: these are the *independent* features.

So the truth (:func:`feature_truth`) is a list of :class:`FeatureGroup`, one per SOp
with residual dimensions, each with its *sources*: the independent nodes it is a
function of (followed through virtual nodes, which have no dimensions). A group is

* ``"independent"``: tokens, indices, an Aggregate or a SelectorWidth. Its span also
  holds every derived group whose only source it is: ``Map(f, tokens)`` always moves
  together with ``tokens``, so the "tokens is a" direction is ``tokens:a + map:f(a)``;
* ``"interaction"``: derived from two or more independent nodes (``opp_idx =
  length - indices - 1``). Its directions are needed to reconstruct the residual, but
  it is a function of the independent features, not one of them;
* ``"derived"``: derived from a single independent node (merged into that node's
  group above, listed for reference);
* ``"constant"``: derived from nothing (``Full``, ``ConstantSOp``, maps of them).

Each group knows its values and their dimensions (categorical) or its numeric read-out
dimension (numerical), which is what "fires for one value" is checked against. The graph
rule is checked on data by :func:`functional_violations` (tests): every derived group's
value must be a function of its sources' values at the same position.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from rasp_compiler.graph.nodes import Kind
from rasp_compiler.graph.residual import FRACTION, Dir

ROLES = ("independent", "interaction", "derived", "constant")


@dataclass(frozen=True)
class FeatureGroup:
    """One SOp's residual dimensions and how it relates to the program's independent features."""

    name: str
    role: str  # one of ROLES
    sources: tuple[str, ...]  # independent nodes this group is a function of (itself when independent)
    dims: tuple[int, ...]  # residual dimensions spanning the group (independent: with its derived groups)
    values: tuple[Any, ...] = ()  # categorical: one entry per value
    value_dims: tuple[int, ...] = ()  # categorical: the dimension that is 1 exactly when the SOp has that value
    numeric_dim: int | None = None  # numerical: the dimension holding the value
    merged: tuple[str, ...] = ()  # derived groups folded into this one's span

    @property
    def numerical(self) -> bool:
        return self.numeric_dim is not None

    def units(self) -> list[tuple[str, int]]:
        """(label, dimension) of every unit a latent can recover: each value, or the number."""
        if self.numerical:
            return [(self.name, self.numeric_dim)]
        return [(f"{self.name}:{v}", d) for v, d in zip(self.values, self.value_dims)]


@dataclass(frozen=True)
class FeatureTruth:
    """Every feature group of a model (or of planted data), in the original residual basis."""

    groups: tuple[FeatureGroup, ...]
    d: int  # dimensions of the original basis

    def by_role(self, *roles: str) -> list[FeatureGroup]:
        return [g for g in self.groups if g.role in roles]

    @property
    def independent(self) -> list[FeatureGroup]:
        return self.by_role("independent")


def node_sources(model) -> dict[str, frozenset[str]]:
    """node -> the independent nodes it is a function of at the same position (graph rule)."""
    if getattr(model, "compilation", None) is None:
        raise ValueError("feature groups need the program graph: compile the model with compile_rasp_to_model "
                         "(a model loaded from a weight file has no compilation)")
    pg = model.compilation.graph
    sources: dict[str, frozenset[str]] = {}
    for label in pg.topological():
        node = pg.nodes[label]
        if node.kind in (Kind.ATTENTION, Kind.WIDTH) or node.op in ("TokensType", "IndicesType"):
            sources[label] = frozenset({label})
        elif node.kind is Kind.EMBED:  # Full / ConstantSOp
            sources[label] = frozenset()
        else:  # MLP or virtual: a position-wise function of its inputs
            sources[label] = frozenset().union(*(sources[i] for i in node.inputs)) if node.inputs else frozenset()
    return sources


def feature_truth(model, alive: Sequence[int] | None = None) -> FeatureTruth:
    """The feature groups of a compiled model; only dimensions in ``alive`` (default: all) count."""
    sources = node_sources(model)  # raises for a model without its program graph
    layout = model.compilation.layout
    keep = set(range(len(layout.dirs)) if alive is None else alive)
    dims_of: dict[str, list[int]] = {}
    for i, d in enumerate(layout.dirs):
        if d.node in ("one", "bos") or i not in keep:
            continue
        dims_of.setdefault(d.node, []).append(i)

    def role(node: str) -> str:
        s = sources[node]
        if s == {node}:
            return "independent"
        return {0: "constant", 1: "derived"}.get(len(s), "interaction")

    merged: dict[str, list[str]] = {}
    for node in dims_of:
        if role(node) == "derived":
            (src,) = sources[node]
            merged.setdefault(src, []).append(node)
    groups = []
    for node, dims in dims_of.items():
        r = role(node)
        span = list(dims)
        for m in merged.get(node, []) if r == "independent" else []:
            span += dims_of[m]
        pg_node = model.compilation.graph.nodes[node]
        if pg_node.numerical:
            numeric = layout.index.get(Dir(node))
            groups.append(FeatureGroup(node, r, tuple(sorted(sources[node])), tuple(span), numeric_dim=numeric,
                                       merged=tuple(merged.get(node, []) if r == "independent" else ())))
        else:
            vals = [(d.value, i) for i in dims if (d := layout.dirs[i]).value != FRACTION]
            groups.append(FeatureGroup(node, r, tuple(sorted(sources[node])), tuple(span),
                                       tuple(v for v, _ in vals), tuple(i for _, i in vals),
                                       merged=tuple(merged.get(node, []) if r == "independent" else ())))
    return FeatureTruth(tuple(groups), len(layout.dirs))


def planted_truth(k: int) -> FeatureTruth:
    """``k`` independent numerical features, feature i in dimension i (for planted-feature tests)."""
    return FeatureTruth(tuple(FeatureGroup(f"f{i}", "independent", (f"f{i}",), (i,), numeric_dim=i)
                              for i in range(k)), k)


def group_values(group: FeatureGroup, h: np.ndarray) -> np.ndarray:
    """The group's value at every token of ``h`` (original basis) as an integer code
    (categorical: index into ``group.values``, -1 for None) or the number (numerical)."""
    if group.numerical:
        return np.asarray(h[:, group.numeric_dim], np.float64)
    on = np.asarray(h[:, list(group.value_dims)]) > 0.5
    return np.where(on.any(1), on.argmax(1), -1)


def functional_violations(truth: FeatureTruth, h: np.ndarray) -> dict[str, int]:
    """For each derived or interaction group: how many distinct source-value combinations at
    a position map to more than one value of the group in ``h`` (0 everywhere: the graph
    rule holds on this data)."""
    by_name = {g.name: g for g in truth.groups}
    out = {}
    for g in truth.by_role("derived", "interaction"):
        srcs = [by_name[s] for s in g.sources if s in by_name]
        if len(srcs) < len(g.sources):
            continue  # a source has no dimension at this site: nothing to check against
        keys = np.stack([np.round(group_values(s, h), 9) for s in srcs], 1)
        vals = np.round(group_values(g, h), 9)
        seen: dict[tuple, set] = {}
        for key, v in zip(map(tuple, keys), vals):
            seen.setdefault(key, set()).add(float(v))
        out[g.name] = sum(len(v) > 1 for v in seen.values())
    return out


def planted_features(n: int, d: int, k: int, p: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Independent sparse features with known directions: ``(acts (n, d), W (d, k), codes (n, k))``.

    Feature i has a random unit direction ``W[:, i]`` and is on with probability ``p``
    at each token, independently of the others, with a magnitude uniform in [0.5, 1.5];
    ``acts = codes @ W.T``. Every SAE kind must recover these (tests): if one cannot,
    the SAE is broken, not the truth.
    """
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((d, k))
    W /= np.linalg.norm(W, axis=0, keepdims=True)
    codes = (rng.random((n, k)) < p) * rng.uniform(0.5, 1.5, (n, k))
    return (codes @ W.T).astype(np.float32), W.astype(np.float32), codes.astype(np.float32)
