"""Which component of the trained model stands for which component of the compiled one.

The trained model has the compiled model's number of layers. In each layer, every used
compiled head gets a head of its own and every compiled MLP block (one RASP node) a
range of ``neurons_per_node`` hidden neurons; the layer's remaining heads and neurons are
*unmapped* (labelled ``"unmapped"``) and the strictness loss makes them irrelevant. The
ground truth is this mapping applied to the compiled model's graph: trained component
A feeds B when the compiled components they stand for do. It is a claim about what
training achieved, so it is checked by ablation in the tests, and measured (IIA).
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np

from rasp_compiler.errors import UnsupportedProgramError
from rasp_compiler.interp.ground_truth import (EMBED, UNEMBED, Component, Feature, FeatureDictionary, GroundTruth,
                                               Neuron, components, ground_truth)
from rasp_compiler.model.config import ModelConfig, ModelLabels

UNMAPPED = "unmapped"


@dataclass(frozen=True)
class Slot:
    """A head (``head`` set) or a range of MLP neurons ``lo:hi`` of one layer of some model."""

    name: str  # component name as :func:`ground_truth.components` gives it
    layer: int
    head: int | None = None
    lo: int = 0
    hi: int = 0


@dataclass(frozen=True)
class Mapping:
    """The trained model's shape and labels, and its high-level correspondence.

    ``high[i]`` (a compiled component) is implemented by ``low[i]`` (a trained one);
    ``unmapped`` lists the trained components that stand for nothing.
    """

    config: ModelConfig  # of the trained model
    labels: ModelLabels
    high: tuple[Slot, ...]
    low: tuple[Slot, ...]
    unmapped: tuple[Slot, ...]

    def low_of(self, high_name: str) -> str:
        return self.low[[s.name for s in self.high].index(high_name)].name


def make_mapping(compiled, d_model: int = 32, d_head: int = 8, extra_heads: int = 1,
                 neurons_per_node: int = 16, unmapped_neurons: int = 8) -> Mapping:
    """The trained architecture for ``compiled`` and its correspondence (see module doc)."""
    c = compiled.config
    if c.output_numerical:
        raise UnsupportedProgramError(
            f"the trained variant decodes a categorical output with one logit per value; {c.output!r} is "
            f"numerical: wrap it in a categorical Map (e.g. rounding to its value set) to train it")
    hl = [comp for comp in components(compiled) if comp.kind in ("head", "mlp")]
    L = c.n_layers
    heads = [[comp for comp in hl if comp.kind == "head" and comp.layer == l] for l in range(L)]
    mlps = [[comp for comp in hl if comp.kind == "mlp" and comp.layer == l] for l in range(L)]
    n_heads = max(len(h) for h in heads) + extra_heads
    d_mlp = max(len(m) for m in mlps) * neurons_per_node + unmapped_neurons
    if n_heads == 0 or d_mlp == 0:
        raise ValueError("the trained model needs at least one head and one neuron per layer")
    high, low, unmapped = [], [], []
    head_labels, mlp_labels, neuron_labels = [], [], []
    for l in range(L):
        row = []
        for h in range(n_heads):
            name = f"L{l}.H{h}"
            if h < len(heads[l]):
                comp = heads[l][h]
                high.append(Slot(comp.name, l, head=comp.head))
                low.append(Slot(name, l, head=h))
                row.append(comp.node)
            else:
                unmapped.append(Slot(name, l, head=h))
                row.append(UNMAPPED)
        head_labels.append(tuple(row))
        ranges, neurons = [], [UNMAPPED] * d_mlp
        for k, comp in enumerate(mlps[l]):
            lo, hi = k * neurons_per_node, (k + 1) * neurons_per_node
            high.append(Slot(comp.name, l, lo=comp.lo, hi=comp.hi))
            low.append(Slot(f"L{l}.MLP:{comp.node}", l, lo=lo, hi=hi))
            ranges.append((comp.node, lo, hi))
            neurons[lo:hi] = [comp.node] * (hi - lo)
        lo = len(mlps[l]) * neurons_per_node
        if lo < d_mlp:
            unmapped.append(Slot(f"L{l}.MLP:{UNMAPPED}", l, lo=lo, hi=d_mlp))
            ranges.append((UNMAPPED, lo, d_mlp))
        mlp_labels.append(tuple(ranges))
        neuron_labels.append(tuple(neurons))
    config = ModelConfig(n_layers=L, n_heads=n_heads, d_model=d_model, d_head=d_head, d_mlp=d_mlp,
                         max_seq_len=c.max_seq_len, vocab=c.vocab, bos=c.bos, pad=c.pad, causal=c.causal,
                         output=c.output, output_numerical=False, output_values=c.output_values)
    labels = ModelLabels(residual=tuple(f"resid{i}" for i in range(d_model)), heads=tuple(head_labels),
                         mlps=tuple(mlp_labels), neurons=tuple(neuron_labels))
    return Mapping(config, labels, tuple(high), tuple(low), tuple(unmapped))


def slot_masks(slots, config: ModelConfig) -> tuple[np.ndarray, np.ndarray]:
    """(n_layers, n_heads) and (n_layers, d_mlp) 0/1 masks selecting ``slots``."""
    heads = np.zeros((config.n_layers, config.n_heads), np.float32)
    neurons = np.zeros((config.n_layers, config.d_mlp), np.float32)
    for s in slots:
        if s.head is not None:
            heads[s.layer, s.head] = 1
        else:
            neurons[s.layer, s.lo:s.hi] = 1
    return heads, neurons


def mapped_truth(trained, compiled, mapping: Mapping) -> GroundTruth:
    """The trained model's ground truth: the compiled graph, renamed through the mapping.

    The trained residual stream is dense (no direction stands for one value), so every
    edge carries the whole residual and the feature dictionary holds plain ``latent``
    directions; unmapped components are in the graph with no edge at all.
    """
    hl = ground_truth(compiled)
    rename = {s.name: t.name for s, t in zip(mapping.high, mapping.low)}
    rename.update({EMBED: EMBED, UNEMBED: UNEMBED})
    comps: list[Component] = components(trained)
    labels = trained.labels.residual
    eye = np.eye(len(labels))
    writers = tuple(c.name for c in comps if c.writes_residual)
    readers = tuple(c.name for c in comps if c.reads_residual)
    feats = tuple(Feature(i, lab, "", None, "latent", eye[i], writers, readers) for i, lab in enumerate(labels))
    neurons = tuple(Neuron(l, i, f"L{l}.MLP:{node}", node, trained.labels.neurons[l][i])
                    for l, layer in enumerate(trained.labels.mlps) for node, a, b in layer for i in range(a, b))
    g = nx.DiGraph()
    for comp in comps:
        g.add_node(comp.name, component=comp, node=comp.node,
                   reads=labels if comp.reads_residual else (), writes=labels if comp.writes_residual else ())
    g.nodes[EMBED]["node"] = hl.graph.nodes[EMBED]["node"]
    for a, b in hl.graph.edges:
        g.add_edge(rename[a], rename[b], dims=labels)
    return GroundTruth(g, {c.name: c for c in comps}, FeatureDictionary(feats, neurons), trained.config.output, "node")
