"""A ground truth as plain JSON (``circuit.json``) and back, without re-reading weights.

A variant's truth is not always what its own weights say (a noisy model keeps the clean
model's circuit; a trained one has the circuit it was trained to), so a task stores the
truth itself: every component, every edge with the residual directions it carries (the
structural graph: every edge the weights imply), the cancelling groups, the feature
dictionary, and the node- and edge-level (functional) circuit of every target. Feature
directions are rows of the residual basis, stored beside it (``basis.safetensors``)
when the model is not in the standard basis.
"""

from __future__ import annotations

from typing import Any

import networkx as nx
import numpy as np

from rasp_compiler.export.values import decode_value, printable_value
from rasp_compiler.interp.ground_truth import (Component, Feature, FeatureDictionary, GroundTruth, Neuron,
                                               UNEMBED)

CIRCUIT_FORMAT = "rasp_compiler.task.circuit"
CIRCUIT_VERSION = 1


def _component_json(c: Component) -> dict:
    return {"name": c.name, "kind": c.kind, "layer": c.layer, "order": c.order, "node": c.node,
            "head": c.head, "lo": c.lo, "hi": c.hi, "heads": list(c.heads)}


def _component(d: dict) -> Component:
    return Component(d["name"], d["kind"], d["layer"], d["order"], d["node"], head=d["head"], lo=d["lo"],
                     hi=d["hi"], heads=tuple(d["heads"]))


def truth_to_json(gt: GroundTruth, targets: list[str], basis_file: str | None,
                  active: dict[str, dict[str, dict]] | None = None) -> dict:
    """``circuit.json`` for ``gt``; ``targets`` (output first) get their circuits written out;
    ``active``: target -> pair set name -> {"nodes", "edges"} exercised by that set
    (:mod:`rasp_compiler.interp.coverage`), written as the circuit's ``active``."""
    g = gt.graph
    circuits = []
    for t in targets:
        c = gt.circuit(t)
        sink = c.sink
        circuits.append({
            "target": t, "is_output": t == gt.output, "sink": sink,
            "reads": list(gt.target_labels(t)),
            "nodes": sorted(n for n in c.nodes if n not in ("embed", sink)),
            "edges": [[a, UNEMBED if b == sink else b] for a, b in sorted(c.edges)],
            **({"active": active[t]} if active is not None and t in active else {}),
        })
    return {
        "format": CIRCUIT_FORMAT,
        "version": CIRCUIT_VERSION,
        "output": gt.output,
        "granularity": gt.granularity,
        "components": [_component_json(c) for c in gt.components.values()],
        "graph": {
            "nodes": [{"name": n, "node": d["node"], "reads": list(d["reads"]), "writes": list(d["writes"])}
                      for n, d in g.nodes(data=True)],
            "edges": [{"from": a, "to": b, "dims": list(d["dims"]), "cancelling": gt.cancelling_group(a)}
                      for a, b, d in g.edges(data=True)],
        },
        # components whose outputs sum to 0 on every input; "cancelling" above: the sender's group
        "cancelling_groups": [list(grp) for grp in gt.cancelling],
        "residual_basis": basis_file,  # null: feature i is residual dimension i
        "features": [{"index": f.index, "label": f.label, "node": f.node, "value": printable_value(f.value),
                      "kind": f.kind, "written_by": list(f.written_by), "read_by": list(f.read_by)}
                     for f in gt.features.features],
        "neurons": [{"layer": n.layer, "index": n.index, "component": n.component, "node": n.node,
                     "meaning": n.meaning} for n in gt.features.neurons],
        "readouts": gt.readouts,
        "circuits": circuits,
    }


def truth_from_json(data: dict[str, Any], basis: np.ndarray | None, d_model: int) -> GroundTruth:
    """The :class:`GroundTruth` that :func:`truth_to_json` wrote (``basis``: the residual basis, None = identity)."""
    if data.get("format") != CIRCUIT_FORMAT:
        raise ValueError(f"not a circuit file (format {data.get('format')!r}, expected {CIRCUIT_FORMAT!r})")
    comps = {d["name"]: _component(d) for d in data["components"]}
    g = nx.DiGraph()
    for d in data["graph"]["nodes"]:
        g.add_node(d["name"], component=comps[d["name"]], node=d["node"], reads=tuple(d["reads"]),
                   writes=tuple(d["writes"]))
    for e in data["graph"]["edges"]:
        g.add_edge(e["from"], e["to"], dims=tuple(e["dims"]))
    rows = np.eye(d_model) if basis is None else np.asarray(basis, np.float64)
    feats = tuple(Feature(f["index"], f["label"], f["node"], decode_value(f["value"]), f["kind"],
                          rows[f["index"]].copy(), written_by=tuple(f["written_by"]), read_by=tuple(f["read_by"]))
                  for f in data["features"])
    neurons = tuple(Neuron(n["layer"], n["index"], n["component"], n["node"], n["meaning"]) for n in data["neurons"])
    return GroundTruth(g, comps, FeatureDictionary(feats, neurons), data["output"], data["granularity"],
                       {k: dict(v) for k, v in data.get("readouts", {}).items()},
                       tuple(tuple(grp) for grp in data.get("cancelling_groups", ())))
