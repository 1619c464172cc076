"""Blind task folders: the files a method may read, and the answer key beside them.

An open task folder gives the circuit away (labels in the weight file's metadata, MLP block
names such as ``L1.MLP:distractor:...``, circuit sizes, variant settings, the basis, the
program text; a folder name such as ``lib-sort__backups__s0`` names a program anyone can
compile). A blind folder splits it in two (docs/testbed_format.md, "Blind task folders"):

* **method-visible** (:data:`VISIBLE`): ``model.safetensors`` whose metadata holds only
  what running the model needs (config with the output called ``output``; labels that are
  the neutral component names ``L{l}.H{h}`` and ``L{l}.MLP.{j}`` and empty strings),
  ``pairs.json`` (targets ``t0``, ``t1``, ...; tokens, positions and gaps, no values),
  ``pairs.safetensors`` (as in the open layout: its keys are already neutral) and a public
  ``task.json`` (model sizes, tokens, targets; no program, variant, exactness or circuit
  size); the set's ``manifest.json`` lists only names and these files' hashes;
* **answer key** (``answer/``): the open ``circuit.json`` (in the neutral names),
  ``task.json`` and ``pairs.json``, ``basis.safetensors``, ``program.rasp``, the scorer's
  config and labels (``model.json``) and the unblinding map (``unblind.json``).

The heads of every layer and the MLP blocks of every layer are permuted (an exact symmetry
of the forward pass), so a component's position says nothing either: variants append the
components they add after the compiled ones. The permutation and the folder name come from
a hash of the answer key itself, so an export is reproducible to the byte by whoever has
the inputs and the answer, and not guessable from the visible files.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rasp_compiler.export.metadata import config_from_json, config_to_json, labels_from_json
from rasp_compiler.model.compiled import CompiledModel
from rasp_compiler.model.config import ModelLabels

ANSWER = "answer"  # the answer key's subfolder
VISIBLE = ("model.safetensors", "pairs.json", "pairs.safetensors", "task.json")  # what a method receives
ANSWER_FILES = ("circuit.json", "task.json", "pairs.json", "model.json", "unblind.json")  # + basis, program
OUTPUT = "output"  # the visible config's name of the output
UNBLIND_FORMAT = "rasp_compiler.task.unblind"


def neutral_mlp(layer: int, j: int) -> str:
    """The neutral name of layer ``layer``'s ``j``-th MLP block (in neuron order)."""
    return f"L{layer}.MLP.{j}"


@dataclass(frozen=True)
class Permutation:
    """Per layer: ``heads[l][new] = old`` head index, ``neurons[l][new] = old`` neuron index,
    ``blocks[l]`` the old block indices (into ``labels.mlps[l]``) in their new order."""

    heads: tuple[tuple[int, ...], ...]
    neurons: tuple[tuple[int, ...], ...]
    blocks: tuple[tuple[int, ...], ...]


def secret(open_name: str, circuit: dict) -> bytes:
    """The hash both the permutation and the folder name come from: of the answer itself."""
    text = json.dumps(circuit, sort_keys=True, allow_nan=False, default=str)
    return hashlib.sha256(f"rasp_compiler blind\0{open_name}\0{text}".encode("utf-8")).digest()


def folder_name(key: bytes) -> str:
    return "task-" + hashlib.sha256(b"name\0" + key).hexdigest()[:12]


def permutation(model, key: bytes) -> Permutation:
    """A permutation of every layer's heads and MLP blocks, drawn from ``key``; neurons of no
    block (zero padding) go after the blocks, in their order."""
    rng = np.random.default_rng(np.frombuffer(hashlib.sha256(b"perm\0" + key).digest(), np.uint32))
    c, labels = model.config, model.labels
    heads, neurons, blocks = [], [], []
    for l in range(c.n_layers):
        heads.append(tuple(int(h) for h in rng.permutation(c.n_heads)))
        order = tuple(int(b) for b in rng.permutation(len(labels.mlps[l])))
        inside = [i for b in order for i in range(labels.mlps[l][b][1], labels.mlps[l][b][2])]
        if len(set(inside)) != len(inside):
            raise ValueError(f"layer {l}: MLP blocks overlap ({labels.mlps[l]}); a blind export needs disjoint ones")
        taken = set(inside)
        neurons.append(tuple(inside + [i for i in range(c.d_mlp) if i not in taken]))
        blocks.append(order)
    return Permutation(tuple(heads), tuple(neurons), tuple(blocks))


def permuted(model, perm: Permutation) -> CompiledModel:
    """``model`` with its heads and neurons in the permuted order (labels moved with them):
    the same function, up to the order of float32 sums."""
    c, p, labels = model.config, model.params, model.labels
    out = {k: np.asarray(v) for k, v in p.items()}
    heads, mlps, neurons = [], [], []
    for l in range(c.n_layers):
        h, n = np.asarray(perm.heads[l]), np.asarray(perm.neurons[l])
        for w in ("W_Q", "W_K", "W_V", "W_O"):
            out[f"blocks.{l}.attn.{w}"] = np.ascontiguousarray(p[f"blocks.{l}.attn.{w}"][h])
        out[f"blocks.{l}.mlp.W_in"] = np.ascontiguousarray(p[f"blocks.{l}.mlp.W_in"][:, n])
        out[f"blocks.{l}.mlp.b_in"] = np.ascontiguousarray(p[f"blocks.{l}.mlp.b_in"][n])
        out[f"blocks.{l}.mlp.W_out"] = np.ascontiguousarray(p[f"blocks.{l}.mlp.W_out"][n])
        heads.append(tuple(labels.heads[l][i] for i in perm.heads[l]))
        neurons.append(tuple(labels.neurons[l][i] for i in perm.neurons[l]))
        lo, layer_mlps = 0, []
        for b in perm.blocks[l]:
            node, a, e = labels.mlps[l][b]
            layer_mlps.append((node, lo, lo + e - a))
            lo += e - a
        mlps.append(tuple(layer_mlps))
    new = ModelLabels(labels.residual, tuple(heads), tuple(mlps), tuple(neurons))
    moved = CompiledModel(c, out, new, None, model.source, metadata=dict(model.metadata or {}))
    basis = getattr(model, "residual_basis", None)
    if basis is not None:
        moved.residual_basis = basis
    return moved


def names(model, perm: Permutation) -> dict[str, str]:
    """Open component name (in ``model``, before the permutation) -> neutral name."""
    from rasp_compiler.interp.ground_truth import components

    new_head = [{old: new for new, old in enumerate(perm.heads[l])} for l in range(model.config.n_layers)]
    new_block = [{old: new for new, old in enumerate(perm.blocks[l])} for l in range(model.config.n_layers)]
    out = {}
    for comp in components(model):
        if comp.kind == "head":
            out[comp.name] = f"L{comp.layer}.H{new_head[comp.layer][comp.head]}"
        elif comp.kind == "mlp":
            b = next(i for i, (_, a, e) in enumerate(model.labels.mlps[comp.layer]) if (a, e) == (comp.lo, comp.hi))
            out[comp.name] = neutral_mlp(comp.layer, new_block[comp.layer][b])
        else:
            out[comp.name] = comp.name
    return out


def rename_circuit(circuit: dict, moved, rename: dict[str, str], perm: Permutation, basis_file: str | None) -> dict:
    """``circuit.json`` data of the open model in the permuted model's neutral names (every
    list of components, edge ends, cancelling groups, feature writers/readers, neurons)."""
    from rasp_compiler.interp.ground_truth import components

    def r(name: str) -> str:
        if name not in rename:
            raise ValueError(f"circuit.json names component {name!r}, which the model does not have")
        return rename[name]

    new_neuron = [{old: new for new, old in enumerate(perm.neurons[l])} for l in range(len(perm.neurons))]
    neutral = components(visible_model(moved), "node")  # the permuted model under its neutral names
    moved_comps = {c.name: c for c in neutral}
    order = {c.name: i for i, c in enumerate(neutral)}
    if circuit.get("granularity") != "node":
        raise ValueError(f"a blind export needs a node-level truth, got {circuit.get('granularity')!r}")
    comps = []
    for d in circuit["components"]:
        c = moved_comps.get(r(d["name"]))
        if c is None:
            raise ValueError(f"component {d['name']!r} has no place in the permuted model")
        comps.append({**d, "name": c.name, "head": c.head, "lo": c.lo, "hi": c.hi})
    comps.sort(key=lambda d: order[d["name"]])
    nodes = sorted(({**d, "name": r(d["name"])} for d in circuit["graph"]["nodes"]), key=lambda d: order[d["name"]])
    edges = [{**e, "from": r(e["from"]), "to": r(e["to"])} for e in circuit["graph"]["edges"]]

    def circ(c: dict) -> dict:
        out = {**c, "nodes": sorted((r(n) for n in c["nodes"]), key=order.get),
               "edges": [[r(a), r(b)] for a, b in c["edges"]]}
        if "active" in c:
            out["active"] = {k: {"nodes": sorted((r(n) for n in v["nodes"]), key=order.get),
                                 "edges": [[r(a), r(b)] for a, b in v["edges"]]} for k, v in c["active"].items()}
        return out

    return {
        **circuit,
        "components": comps,
        "graph": {"nodes": nodes, "edges": edges},
        "cancelling_groups": [[r(n) for n in g] for g in circuit["cancelling_groups"]],
        "residual_basis": basis_file,
        "features": [{**f, "written_by": [r(n) for n in f["written_by"]], "read_by": [r(n) for n in f["read_by"]]}
                     for f in circuit["features"]],
        "neurons": sorted(({**n, "index": new_neuron[n["layer"]][n["index"]], "component": r(n["component"])}
                           for n in circuit["neurons"]), key=lambda n: (n["layer"], n["index"])),
        "circuits": [circ(c) for c in circuit["circuits"]],
    }


def visible_labels(moved) -> ModelLabels:
    """Labels that say nothing: a listed head is called by its place, an MLP block by its
    layer and rank, everything else is the empty string."""
    c, labels = moved.config, moved.labels
    return ModelLabels(
        residual=("",) * c.d_model,
        heads=tuple(tuple(f"L{l}.H{h}" if labels.heads[l][h] else "" for h in range(c.n_heads))
                    for l in range(c.n_layers)),
        mlps=tuple(tuple((neutral_mlp(l, j), a, e) for j, (_, a, e) in enumerate(labels.mlps[l]))
                   for l in range(c.n_layers)),
        neurons=tuple(("",) * c.d_mlp for _ in range(c.n_layers)),
    )


def visible_model(moved) -> CompiledModel:
    """The model a method receives: the permuted weights, a config whose output is called
    ``output``, neutral labels, no program, graph or source."""
    config = dataclasses.replace(moved.config, output=OUTPUT)
    return CompiledModel(config, moved.params, visible_labels(moved), None, None, metadata={})


def scoring_model(visible, answer_model: dict) -> CompiledModel:
    """The model the scorer runs: the visible weights with the answer key's config and labels,
    but MLP blocks under their neutral names, so that every component is called as in the
    answer's circuit.json and in a method's scores."""
    config = config_from_json(answer_model["config"])
    labels = labels_from_json(answer_model["labels"], config)
    if (config.n_layers, config.n_heads, config.d_model, config.d_mlp) != \
            (visible.config.n_layers, visible.config.n_heads, visible.config.d_model, visible.config.d_mlp):
        raise ValueError("the answer key's config does not fit the weight file's")
    labels = dataclasses.replace(labels, mlps=tuple(
        tuple((neutral_mlp(l, j), a, e) for j, (_, a, e) in enumerate(layer)) for l, layer in enumerate(labels.mlps)))
    return CompiledModel(config, visible.params, labels, None, answer_model.get("source"),
                         metadata={**(visible.metadata or {}), "program": answer_model.get("program")})


def answer_model(moved) -> dict:
    """``answer/model.json``: the config and labels (the permuted model's, real names) the
    visible file leaves out, and the program's origin."""
    meta = moved.metadata or {}
    return {"config": config_to_json(moved.config), "labels": moved.labels.to_json(),
            "program": meta.get("program"), "source": moved.source}


def visible_pairs(data: dict) -> dict:
    """``pairs.json`` for a method: targets ``t{k}``, and per pair only tokens, positions and gap."""
    strip = lambda rows: [{k: r[k] for k in ("clean", "corrupt", "positions", "gap")} for r in rows]
    targets = []
    for t in data["targets"]:
        targets.append({"target": t["tensors"], "is_output": t["is_output"], "same_length": t["same_length"],
                        "tensors": t["tensors"], "pair_set": t["pair_set"], "pairs": strip(t["pairs"]),
                        "pair_sets": [{"name": s["name"], "same_length": s["same_length"], "tensors": s["tensors"],
                                       "pairs": strip(s["pairs"])} for s in t.get("pair_sets", [])]})
    return {"format": data["format"], "version": data["version"], "layout": "blind", "n_pairs": data["n_pairs"],
            "metric": data["metric"], "token_ids": data["token_ids"], "targets": targets}


def visible_task(info: dict, visible, name: str) -> dict:
    """The public ``task.json``: what running the model and reading the pairs needs, nothing more."""
    from rasp_compiler.export.values import printable_value

    c = visible.config
    return {"format": info["format"], "version": info["version"], "layout": "blind", "name": name,
            "vocab": info["vocab"], "max_seq_len": c.max_seq_len, "causal": c.causal,
            "model": {"layers": c.n_layers, "heads": c.n_heads, "d_model": c.d_model, "d_head": c.d_head,
                      "d_mlp": c.d_mlp, "n_ctx": c.n_ctx,
                      "token_ids": [printable_value(t) for t in c.input_tokens],
                      "output": {"numerical": c.output_numerical,
                                 "values": [printable_value(v) for v in c.output_values]}},
            "targets": [f"t{k}" for k in range(len(info["targets"]))], "n_pairs": info["n_pairs"]}


def unblind(rename: dict[str, str], targets: list[str], perm: Permutation, open_name: str, name: str) -> dict:
    """``answer/unblind.json``: neutral name -> open component name, target id -> SOp, and the
    permutation itself (per layer, new index -> old index)."""
    return {"format": UNBLIND_FORMAT, "version": 1, "name": name, "open_name": open_name,
            "components": {v: k for k, v in rename.items()},
            "targets": {f"t{k}": t for k, t in enumerate(targets)},
            "heads": [list(h) for h in perm.heads], "neurons": [list(n) for n in perm.neurons]}


def visible_manifest(manifest: dict) -> dict:
    """The set's public ``manifest.json``: neutral task names and the visible files' hashes."""
    return {"format": manifest["format"], "version": manifest["version"], "layout": "blind",
            "n_tasks": manifest["n_tasks"], "n_pairs": manifest["n_pairs"],
            "tasks": [{"name": t["name"], "files": {f: h for f, h in t["files"].items() if f in VISIBLE}}
                      for t in sorted(manifest["tasks"], key=lambda t: t["name"])]}


def is_blind(path) -> bool:
    return (Path(path) / ANSWER / "task.json").is_file()


def load_visible(path) -> tuple[Any, dict, dict]:
    """What a method can load from a blind folder's visible files alone:
    (model, target id -> pair set name -> Pairs, task.json). No answer key is read."""
    from safetensors.numpy import load

    from rasp_compiler.export import load_model
    from rasp_compiler.interp.tasks.pairs_io import pair_sets_from_files

    path = Path(path)
    info = json.loads((path / "task.json").read_text(encoding="utf-8"))
    pairs = json.loads((path / "pairs.json").read_text(encoding="utf-8"))
    sets = pair_sets_from_files(pairs, load((path / "pairs.safetensors").read_bytes()))
    return load_model(path / "model.safetensors"), sets, info


__all__ = ["ANSWER", "VISIBLE", "Permutation", "folder_name", "is_blind", "load_visible", "names", "permutation",
           "permuted", "rename_circuit", "scoring_model", "secret", "unblind", "visible_model", "visible_pairs",
           "visible_task"]
