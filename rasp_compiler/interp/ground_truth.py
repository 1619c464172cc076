"""The true circuit of a compiled model, read off its weights.

A compiled model is a ground truth for interpretability because every residual
direction stands for one (RASP node, value) and every component reads and writes a
known set of them. This module turns that into data a method can be scored against:

* :class:`Component`: one unit of computation — ``embed`` (token + position
  embedding), each used attention head ``L{l}.H{h}``, each MLP block of one RASP node
  ``L{l}.MLP:{node}`` (a range of hidden neurons), and ``unembed``. The coarser
  per-layer view has ``L{l}.attn`` and ``L{l}.mlp`` instead.
* :func:`ground_truth`: a networkx DiGraph of components with an edge A -> B when A
  writes a residual direction that B reads and A runs before B. Reads and writes come
  from the weights themselves (nonzero rows of W_Q/W_K/W_V/W_in, nonzero columns of
  W_O/W_out, rows of W_E/W_pos, rows of W_U; "nonzero": above 1e-6 of the component's
  largest |entry| for that matrix, 1e-4 in a rotated basis), never from the compiler's
  bookkeeping, so a model loaded from a file (no ``.compilation``) gets the same graph.
  The constant ``one`` and ``bos`` directions are ignored: every component touches them.
* :meth:`GroundTruth.circuit`: the node- and edge-level circuit of the output or of
  any intermediate SOp (the components and edges on some path into it).
* :func:`feature_dictionary`: every residual direction with the (node, value) it
  encodes and its direction in the residual stream, and every MLP hidden neuron with
  what it detects.

Two graphs, one rule each:

* **structural** (``GroundTruth.graph``): every edge the weights imply, A -> B when A runs
  before B and writes a residual direction B reads. Nothing is left out.
* **functional** (:meth:`GroundTruth.circuit`): the paths into a target that use no edge
  out of a *cancelling group*. A group (``GroundTruth.cancelling``) is a set of components
  of one layer that read the residual through identical weights and write exact opposites,
  so their summed output is 0 on every input: each member alone may move every metric, the
  group jointly moves none, and an edge from a member carries, together with its partners'
  edges into the same receiver, exactly nothing. The distractors variant
  (:mod:`rasp_compiler.interp.variants.distractors`) adds such groups (labels
  ``distractor:<what they read>#k``, blocks ``...#k+`` / ``...#k-``; :func:`cancelling_groups`).

The per-layer view leaves cancelling members out of a layer's reads and writes: they sit
inside one component there, where their sum is 0.

Rotated models (:func:`rasp_compiler.interp.rotate.rotate_residual`) carry a
``residual_basis`` whose row i is the direction of feature ``labels.residual[i]``;
the weights are mapped back to that basis before reading, so the truth is unchanged.
"""

from __future__ import annotations

import ast
import dataclasses
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np

CONSTANT_FEATURES = ("one", "bos")
FRACTION_TAG = "<bos-fraction>"
EMBED, UNEMBED = "embed", "unembed"
DISTRACTOR = "distractor:"


def is_distractor(node: str) -> bool:
    """A component added by the distractors variant: its writes cancel with its partner's."""
    return node.startswith(DISTRACTOR)


def cancelling_groups(comps: list["Component"]) -> tuple[tuple[str, ...], ...]:
    """The cancelling groups among node-level components, by the distractor labels: the heads
    of one layer labelled ``distractor:...#k``, and the blocks ``distractor:...#k+`` and
    ``...#k-`` (their weights are checked by ablation in the tests, not here)."""
    groups: dict[tuple[int, str], list[str]] = {}
    for c in comps:
        if c.kind in ("head", "mlp") and is_distractor(c.node):
            key = c.node[:-1] if c.kind == "mlp" and c.node[-1] in "+-" else c.node
            groups.setdefault((c.layer, c.kind + ":" + key), []).append(c.name)
    return tuple(tuple(names) for _, names in sorted(groups.items()) if len(names) > 1)


# --------------------------------------------------------------------------- components
@dataclass(frozen=True)
class Component:
    """One unit of computation whose output is a vector added to the residual stream.

    ``kind``: "embed", "head", "mlp" (neurons ``lo:hi`` of layer ``layer``), "attn" (all
    heads of a layer), "mlp_layer" (all neurons of a layer) or "unembed". ``order`` is
    the position in the forward pass (embed 0, layer l's heads 2l+1, its MLPs 2l+2,
    unembed 2L+1): A can feed B only when ``A.order < B.order``.
    """

    name: str
    kind: str
    layer: int
    order: int
    node: str  # the RASP node it computes ("" for embed/unembed/layer views with several)
    head: int | None = None
    lo: int | None = None
    hi: int | None = None
    heads: tuple[int, ...] = ()  # "attn": the used heads of the layer

    @property
    def writes_residual(self) -> bool:
        return self.kind != "unembed"

    @property
    def reads_residual(self) -> bool:
        return self.kind != "embed"


def mlp_name(layer: int, node: str) -> str:
    """An MLP block's component name: ``L{l}.MLP:{node}``, or the label itself when it is
    already a neutral name ``L{l}.MLP.{j}`` (a blind task's weight file, whose labels name
    nothing: :mod:`rasp_compiler.interp.tasks.blind`)."""
    return node if node.startswith(f"L{layer}.MLP.") else f"L{layer}.MLP:{node}"


def components(model, granularity: str = "node") -> list[Component]:
    """The model's components in forward order (see :class:`Component`)."""
    if granularity not in ("node", "layer"):
        raise ValueError(f"granularity must be 'node' or 'layer', got {granularity!r}")
    c, labels, params = model.config, model.labels, model.params
    out = [Component(EMBED, "embed", -1, 0, "")]
    for l in range(c.n_layers):
        used = [h for h in range(c.n_heads) if labels.heads[l][h]]  # unused heads have all-zero weights
        if granularity == "node":
            out += [Component(f"L{l}.H{h}", "head", l, 2 * l + 1, labels.heads[l][h], head=h) for h in used]
            out += [Component(mlp_name(l, node), "mlp", l, 2 * l + 2, node, lo=a, hi=b)
                    for node, a, b in labels.mlps[l]]
        else:
            if used:
                out.append(Component(f"L{l}.attn", "attn", l, 2 * l + 1,
                                     ",".join(labels.heads[l][h] for h in used), heads=tuple(used)))
            if labels.mlps[l]:
                out.append(Component(f"L{l}.mlp", "mlp_layer", l, 2 * l + 2,
                                     ",".join(n for n, _, _ in labels.mlps[l]),
                                     lo=0, hi=int(params[f"blocks.{l}.mlp.W_in"].shape[1])))
    out.append(Component(UNEMBED, "unembed", c.n_layers, 2 * c.n_layers + 1, c.output))
    return out


# --------------------------------------------------------------------------- features
@dataclass(frozen=True)
class Feature:
    """One residual direction: ``labels.residual[index]``.

    ``kind``: "categorical" (node == value), "numerical" (the node's value itself),
    "internal" (a selector width's BOS fraction), or "constant" (``one``, ``bos``).
    ``direction`` is the unit vector in the model's residual stream (a standard basis
    vector, or a row of the rotation for a rotated model).
    """

    index: int
    label: str
    node: str
    value: Any
    kind: str
    direction: np.ndarray = field(repr=False, compare=False)
    written_by: tuple[str, ...] = ()
    read_by: tuple[str, ...] = ()


@dataclass(frozen=True)
class Neuron:
    """One MLP hidden neuron and what it detects (from ``labels.neurons``)."""

    layer: int
    index: int
    component: str
    node: str
    meaning: str


@dataclass(frozen=True)
class FeatureDictionary:
    features: tuple[Feature, ...]
    neurons: tuple[Neuron, ...]

    def of_node(self, node: str) -> list[Feature]:
        return [f for f in self.features if f.node == node]

    def by_label(self, label: str) -> Feature:
        for f in self.features:
            if f.label == label:
                return f
        raise KeyError(label)

    def directions(self, labels) -> np.ndarray:
        """(len(labels), d_model): the residual directions of the named features."""
        return np.stack([self.by_label(lab).direction for lab in labels])


def residual_basis(model) -> np.ndarray:
    """(d_model, d_model), row i = the residual direction of ``labels.residual[i]``."""
    basis = getattr(model, "residual_basis", None)
    return np.eye(model.config.d_model) if basis is None else np.asarray(basis, np.float64)


def parse_label(label: str, model=None) -> tuple[str, Any, str]:
    """(node, value, kind) of a residual label; exact values come from the layout when known."""
    if label in CONSTANT_FEATURES:
        return label, None, "constant"
    layout = getattr(getattr(model, "compilation", None), "layout", None)
    if layout is not None:
        for d in layout.dirs:
            if str(d) == label:
                if d.value is None:
                    return d.node, None, "numerical"
                return d.node, d.value, "internal" if d.value == FRACTION_TAG else "categorical"
    node, sep, value = label.partition(":")
    if not sep:
        return label, None, "numerical"
    if value == FRACTION_TAG:
        return node, value, "internal"
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        parsed = value
    return node, parsed, "categorical"


# --------------------------------------------------------------------------- reads and writes
def _nonzero_rows(w: np.ndarray, tol: float) -> np.ndarray:
    """Rows with an entry above tol x the largest |entry| (w: (d_model, k))."""
    w = np.abs(np.asarray(w, np.float64))
    if w.size == 0:
        return np.zeros(w.shape[0], bool)
    scale = w.max()
    if scale == 0:
        return np.zeros(w.shape[0], bool)
    return w.max(axis=1) > tol * scale


def reads_writes(model, comp: Component, tol: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks over features: which the component reads, which it writes (weights only)."""
    p, d = model.params, model.config.d_model
    basis = residual_basis(model)
    if tol is None:
        tol = 1e-6 if getattr(model, "residual_basis", None) is None else 1e-4
    read_side = lambda w: _nonzero_rows(basis @ np.asarray(w, np.float64), tol)  # (d, k): feature rows
    write_side = lambda w: _nonzero_rows((np.asarray(w, np.float64) @ basis.T).T, tol)  # (k, d)
    reads, writes = np.zeros(d, bool), np.zeros(d, bool)
    if comp.kind == "embed":
        writes = write_side(p["embed.W_E"]) | write_side(p["pos_embed.W_pos"])
    elif comp.kind == "unembed":
        reads = read_side(p["unembed.W_U"])
    elif comp.kind in ("head", "attn"):
        l = comp.layer
        heads = [comp.head] if comp.kind == "head" else \
            [h for h in comp.heads if not is_distractor(model.labels.heads[l][h])]
        for h in heads:
            for w in ("W_Q", "W_K", "W_V"):
                reads |= read_side(p[f"blocks.{l}.attn.{w}"][h])
            writes |= write_side(p[f"blocks.{l}.attn.W_O"][h])
    else:  # mlp, mlp_layer
        l = comp.layer
        sl = np.arange(comp.lo, comp.hi)
        if comp.kind == "mlp_layer":  # the layer's own blocks, not its cancelling distractors
            sl = np.asarray([i for node, a, b in model.labels.mlps[l] if not is_distractor(node)
                             for i in range(a, b)], int)
        reads = read_side(p[f"blocks.{l}.mlp.W_in"][:, sl])
        writes = write_side(p[f"blocks.{l}.mlp.W_out"][sl])
        if comp.kind == "mlp_layer":
            writes |= write_side(p[f"blocks.{l}.mlp.b_out"][None])
    constant = np.array([lab in CONSTANT_FEATURES for lab in model.labels.residual])
    return reads & ~constant, writes & ~constant


# --------------------------------------------------------------------------- the graph
@dataclass(frozen=True)
class Circuit:
    """The components and edges on some path into ``sink`` (``unembed`` or ``probe:<node>``)."""

    target: str
    sink: str
    nodes: frozenset[str]
    edges: frozenset[tuple[str, str]]

    def contains(self, name: str) -> bool:
        return name in self.nodes


@dataclass(frozen=True)
class GroundTruth:
    """Components, the true data-flow graph between them, and the feature dictionary.

    Graph node attributes: ``component`` (:class:`Component`), ``node`` (RASP node),
    ``reads``/``writes`` (residual labels). Edge attribute ``dims``: the residual labels
    the sender writes and the receiver reads.
    """

    graph: nx.DiGraph
    components: dict[str, Component]
    features: FeatureDictionary
    output: str
    granularity: str
    readouts: dict[str, dict[str, float]] = field(default_factory=dict)  # virtual node -> {label: weight}
    cancelling: tuple[tuple[str, ...], ...] = ()  # cancelling groups (see the module docstring)

    def cancelling_group(self, name: str) -> int | None:
        """Index in ``cancelling`` of the group ``name`` belongs to (None: it cancels with nothing)."""
        return next((i for i, g in enumerate(self.cancelling) if name in g), None)

    @property
    def cancelling_members(self) -> frozenset[str]:
        return frozenset(n for g in self.cancelling for n in g)

    # which components a method ranks --------------------------------------------------------
    @property
    def scored(self) -> list[str]:
        """Heads and MLP blocks (embed and unembed are in every circuit)."""
        return [n for n, c in self.components.items() if c.kind not in ("embed", "unembed")]

    def candidate_edges(self, sink: str = UNEMBED) -> list[tuple[str, str]]:
        """Every (sender, receiver) pair an edge method ranks: sender before receiver."""
        senders = [c for c in self.components.values() if c.writes_residual]
        receivers = [c for c in self.components.values() if c.kind not in ("embed", "unembed")]
        receivers = receivers + [self.components[sink]] if sink in self.components else receivers
        return [(s.name, r.name) for r in receivers for s in senders if s.order < r.order]

    # circuits ------------------------------------------------------------------------------
    def target_labels(self, target: str | None = None) -> list[str]:
        """Residual labels a target's value is read from (its one-hot, its number, or a read-out)."""
        if target is None or target == self.output:
            return list(self.graph.nodes[UNEMBED]["reads"])
        feats = [f.label for f in self.features.of_node(target) if f.kind in ("categorical", "numerical")]
        if feats:
            return feats
        if target in self.readouts:
            return list(self.readouts[target])
        known = sorted({f.node for f in self.features.features if f.kind != "constant"} | set(self.readouts))
        raise KeyError(f"no residual direction encodes {target!r} (a virtual node of a model loaded without "
                       f"its compilation has no read-out); known nodes: {known}")

    def circuit(self, target: str | None = None) -> Circuit:
        """The functional circuit of the output (``target=None``) or of an SOp: the components
        and edges on some path into it that uses no edge out of a cancelling group."""
        silent = self.cancelling_members
        g = self.graph.copy()
        g.remove_edges_from([(a, b) for a, b in self.graph.edges if a in silent])
        if target is None or target == self.output:
            sink, name = UNEMBED, self.output
        else:
            sink, name = f"probe:{target}", target
            labels = set(self.target_labels(target))
            g.add_node(sink, component=None, node=target, reads=tuple(sorted(labels)), writes=())
            for n, data in self.graph.nodes(data=True):
                carried = labels & set(data["writes"])
                if carried and n not in silent:
                    g.add_edge(n, sink, dims=tuple(sorted(carried, key=self._order)))
        nodes = nx.ancestors(g, sink) | {sink}
        edges = frozenset((a, b) for a, b in g.edges if a in nodes and b in nodes)
        return Circuit(name, sink, frozenset(nodes), edges)

    def _order(self, label: str) -> int:
        return self.features.by_label(label).index

    def summary(self) -> str:
        lines = [f"ground truth ({self.granularity}): {len(self.components)} components, "
                 f"{self.graph.number_of_edges()} edges"]
        for a, b, data in self.graph.edges(data=True):
            lines.append(f"  {a} -> {b}: {', '.join(data['dims'])}")
        return "\n".join(lines)


def feature_dictionary(model, comps: list[Component] | None = None, masks: dict | None = None
                       ) -> FeatureDictionary:
    """Every residual direction with its (node, value), and every used MLP neuron's meaning."""
    comps = comps if comps is not None else components(model)
    masks = masks if masks is not None else {c.name: reads_writes(model, c) for c in comps}
    basis = residual_basis(model)
    feats = []
    for i, label in enumerate(model.labels.residual):
        node, value, kind = parse_label(label, model)
        feats.append(Feature(i, label, node, value, kind, basis[i].copy(),
                             written_by=tuple(c.name for c in comps if masks[c.name][1][i]),
                             read_by=tuple(c.name for c in comps if masks[c.name][0][i])))
    neurons = []
    for l, layer in enumerate(model.labels.mlps):
        for node, a, b in layer:
            for i in range(a, b):
                neurons.append(Neuron(l, i, mlp_name(l, node), node, model.labels.neurons[l][i]))
    return FeatureDictionary(tuple(feats), tuple(neurons))


def ground_truth(model, granularity: str = "node", tol: float | None = None) -> GroundTruth:
    """The true component graph of ``model`` (see the module docstring)."""
    comps = components(model, granularity)
    labels = model.labels.residual
    masks = {c.name: reads_writes(model, c, tol) for c in comps}
    feats = feature_dictionary(model, components(model, "node") if granularity == "layer" else comps,
                               masks if granularity == "node" else None)
    g = nx.DiGraph()
    for c in comps:
        r, w = masks[c.name]
        g.add_node(c.name, component=c, node=c.node,
                   reads=tuple(labels[i] for i in np.nonzero(r)[0]),
                   writes=tuple(labels[i] for i in np.nonzero(w)[0]))
    if granularity == "node":  # embed's node: the embedded SOps
        embedded = sorted({feats.features[i].node for i in np.nonzero(masks[EMBED][1])[0]})
        g.nodes[EMBED]["node"] = ",".join(embedded)
    for a in comps:
        for b in comps:
            if a.order < b.order:
                shared = masks[a.name][1] & masks[b.name][0]
                if shared.any():
                    g.add_edge(a.name, b.name, dims=tuple(labels[i] for i in np.nonzero(shared)[0]))
    readouts = {}
    layout = getattr(getattr(model, "compilation", None), "layout", None)
    if layout is not None:
        readouts = {node: {str(d): w for d, w in ro.items()} for node, ro in layout.readouts.items()}
    return GroundTruth(g, {c.name: c for c in comps}, feats, model.config.output, granularity, readouts,
                       cancelling_groups(comps) if granularity == "node" else ())


def aligned_truth(gt: GroundTruth, model) -> GroundTruth:
    """``gt`` with every feature direction taken from ``model``'s residual basis.

    A variant in a rotated basis may hand over the clean model's truth, whose directions are
    the standard basis; the circuit (components, edges, labels) is right, the directions are
    not, and read-outs of virtual nodes would read the wrong residual coordinates."""
    basis = getattr(model, "residual_basis", None)
    if basis is None:
        return gt
    rows = np.asarray(basis, np.float64)
    if all(np.array_equal(f.direction, rows[f.index]) for f in gt.features.features):
        return gt
    feats = tuple(dataclasses.replace(f, direction=rows[f.index].copy()) for f in gt.features.features)
    return dataclasses.replace(gt, features=FeatureDictionary(feats, gt.features.neurons))
