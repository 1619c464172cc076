"""The JSON that describes a model next to its weights: config, labels, program graph.

``config_to_json`` / ``config_from_json`` wrap :class:`ModelConfig`'s own JSON form with
the exact value encoding of :mod:`.values` (tokens and output values come back with
the same Python types) and validate what they read. ``graph_metadata`` describes the
compiled program: one record per RASP node with what computes it (embedding, head,
MLP) and where (layer, head index, neuron range), plus the data-flow edges.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from rasp_compiler.export.values import decode_value, encode_value, printable_value
from rasp_compiler.model.config import ModelConfig, ModelLabels

_VALUE_FIELDS = ("bos", "pad")
_VALUE_LIST_FIELDS = ("vocab", "output_values")
_INT_FIELDS = ("n_layers", "n_heads", "d_model", "d_head", "d_mlp", "max_seq_len")
_BOOL_FIELDS = ("causal", "output_numerical")
_OPTIONAL_FIELDS = ("unproven_aggregates",)  # added later: files without them still load

VALUE_ENCODING_NOTE = (
    'values are JSON values; a tuple is {"t": "tuple", "v": [...]}, a frozenset '
    '{"t": "frozenset", "v": [...]}, a non-finite float {"t": "float", "v": "inf"|"-inf"|"nan"}; '
    'in value sets only, a value with no JSON form is written as {"t": "repr", "v": repr(value)}')


def config_to_json(config: ModelConfig) -> dict:
    data = config.to_json()
    for key in _VALUE_FIELDS:
        data[key] = encode_value(getattr(config, key))
    for key in _VALUE_LIST_FIELDS:
        data[key] = [encode_value(v) for v in getattr(config, key)]
    return data


def config_from_json(data: Any) -> ModelConfig:
    """A :class:`ModelConfig` from :func:`config_to_json` output; ``ValueError`` saying what is wrong."""
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    names = [f.name for f in dataclasses.fields(ModelConfig)]
    missing = [n for n in names if n not in data and n not in _OPTIONAL_FIELDS]
    unknown = sorted(set(data) - set(names))
    if missing or unknown:
        raise ValueError(f"missing keys {missing}, unknown keys {unknown}" if unknown else f"missing keys {missing}")
    for key in _INT_FIELDS:
        v = data[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{key} must be a positive integer, got {v!r}")
    for key in _BOOL_FIELDS:
        if not isinstance(data[key], bool):
            raise ValueError(f"{key} must be true or false, got {data[key]!r}")
    if not isinstance(data["output"], str):
        raise ValueError(f"output must be a string (the output SOp's label), got {data['output']!r}")
    unproven = data.get("unproven_aggregates", [])
    if not isinstance(unproven, list) or not all(isinstance(x, str) for x in unproven):
        raise ValueError(f"unproven_aggregates must be a list of SOp labels, got {unproven!r}")
    fields = dict(data)
    for key in _VALUE_FIELDS:
        fields[key] = decode_value(data[key])
    for key in _VALUE_LIST_FIELDS:
        if not isinstance(data[key], list):
            raise ValueError(f"{key} must be a list, got {type(data[key]).__name__}")
        fields[key] = tuple(decode_value(v) for v in data[key])
    config = ModelConfig.from_json(fields)
    tokens = config.input_tokens
    if len(set(map(_key, tokens))) != len(tokens):
        raise ValueError(f"BOS, PAD and the vocabulary tokens must all differ, got {list(tokens)!r}")
    return config


def _key(value: Any) -> tuple:
    return (type(value).__name__, value)


def labels_from_json(data: Any, config: ModelConfig) -> ModelLabels:
    """:class:`ModelLabels` checked against the sizes in ``config``; ``ValueError`` if they disagree."""
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    labels = ModelLabels.from_json(data)
    c = config
    if len(labels.residual) != c.d_model:
        raise ValueError(f"{len(labels.residual)} residual labels for d_model={c.d_model}")
    if len(labels.heads) != c.n_layers or any(len(h) != c.n_heads for h in labels.heads):
        raise ValueError(f"head labels do not form {c.n_layers} layers x {c.n_heads} heads")
    if len(labels.neurons) != c.n_layers or any(len(n) != c.d_mlp for n in labels.neurons):
        raise ValueError(f"neuron labels do not form {c.n_layers} layers x {c.d_mlp} neurons")
    if len(labels.mlps) != c.n_layers:
        raise ValueError(f"MLP ranges for {len(labels.mlps)} layers, the model has {c.n_layers}")
    return labels


def expected_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Every parameter's name and shape, from the config alone."""
    c = config
    shapes = {"embed.W_E": (len(c.input_tokens), c.d_model), "pos_embed.W_pos": (c.n_ctx, c.d_model)}
    for l in range(c.n_layers):
        p = f"blocks.{l}."
        shapes.update({
            p + "attn.W_Q": (c.n_heads, c.d_model, c.d_head),
            p + "attn.W_K": (c.n_heads, c.d_model, c.d_head),
            p + "attn.W_V": (c.n_heads, c.d_model, c.d_head),
            p + "attn.W_O": (c.n_heads, c.d_head, c.d_model),
            p + "mlp.W_in": (c.d_model, c.d_mlp),
            p + "mlp.b_in": (c.d_mlp,),
            p + "mlp.W_out": (c.d_mlp, c.d_model),
            p + "mlp.b_out": (c.d_model,),
        })
    shapes["unembed.W_U"] = (c.d_model, 1 if c.output_numerical else len(c.output_values))
    return shapes


def _predicate_name(predicate: Any) -> str:
    name = getattr(predicate, "name", None)  # a Comparison
    if isinstance(name, str):
        return name
    return getattr(predicate, "__name__", None) or repr(predicate)


def graph_metadata(compilation: Any, labels: ModelLabels) -> dict:
    """The compiled program as JSON data: nodes (what, where, which values) and edges."""
    from rasp_compiler.graph.value_sets import sorted_values

    pg, sched = compilation.graph, compilation.schedule
    heads = {node: (l, h) for l, layer in enumerate(labels.heads) for h, node in enumerate(layer) if node}
    mlps = {node: (l, a, b) for l, layer in enumerate(labels.mlps) for node, a, b in layer}
    nodes = []
    for label in pg.topological():
        node = pg.nodes[label]
        values = compilation.value_sets.get(label)
        sub = sched.sublayer.get(label, -1)
        record = {
            "label": label,
            "op": node.op,
            "kind": node.kind.value,
            "encoding": "numerical" if node.numerical else "categorical",
            "inputs": list(node.inputs),
            "layer": None if sub < 0 else sub // 2,
            "sublayer": None if sub < 0 else ("attn" if sub % 2 == 0 else "mlp"),
            "sublayer_index": sub,
            "ready": sched.ready.get(label, -1),
            "head": list(heads[label]) if label in heads else None,
            "mlp_neurons": list(mlps[label]) if label in mlps else None,
            "value_set": None if values is None else [printable_value(v) for v in sorted_values(values)],
        }
        if node.terms:
            record["terms"] = [{"key": t.key, "query": t.query, "predicate": _predicate_name(t.predicate)}
                               for t in node.terms]
        if node.aggregated is not None:
            record["aggregated"] = node.aggregated
        if node.synthetic:
            record["synthetic"] = True
        nodes.append(record)
    return {
        "output": pg.output,
        "nodes": nodes,
        "edges": [[a, b] for a, b in pg.graph.edges],
        "value_encoding": VALUE_ENCODING_NOTE,
    }


def check_graph_json(data: Any) -> None:
    """The ``graph`` metadata as :func:`graph_metadata` writes it; ``ValueError`` saying what is wrong
    (readers such as ``rasp-compiler inspect`` index into it)."""
    if data is None:
        return
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    nodes, edges = data.get("nodes"), data.get("edges", [])
    if not isinstance(nodes, list) or not all(isinstance(n, dict) for n in nodes):
        raise ValueError("'nodes' must be a list of objects")
    labels = set()
    for i, n in enumerate(nodes):
        if not isinstance(n.get("label"), str):
            raise ValueError(f"node {i} has no string 'label'")
        for key in ("op", "kind", "encoding", "sublayer"):
            if n.get(key) is not None and not isinstance(n[key], str):
                raise ValueError(f"node {n['label']!r}: {key!r} must be a string")
        for key in ("inputs",):
            if not isinstance(n.get(key, []), list) or not all(isinstance(x, str) for x in n.get(key, [])):
                raise ValueError(f"node {n['label']!r}: 'inputs' must be a list of labels")
        for key in ("head", "mlp_neurons"):
            v = n.get(key)
            if v is not None and (not isinstance(v, list) or not all(isinstance(x, int) for x in v)):
                raise ValueError(f"node {n['label']!r}: {key!r} must be a list of integers")
        for key in ("layer", "sublayer_index", "ready"):
            v = n.get(key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
                raise ValueError(f"node {n['label']!r}: {key!r} must be an integer")
        terms = n.get("terms", [])
        if not isinstance(terms, list) or not all(isinstance(t, dict) for t in terms):
            raise ValueError(f"node {n['label']!r}: 'terms' must be a list of objects")
        if n.get("value_set") is not None and not isinstance(n["value_set"], list):
            raise ValueError(f"node {n['label']!r}: 'value_set' must be a list")
        labels.add(n["label"])
    if not isinstance(edges, list) or not all(
            isinstance(e, list) and len(e) == 2 and all(isinstance(x, str) for x in e) for e in edges):
        raise ValueError("'edges' must be a list of [from, to] label pairs")
    if data.get("output") is not None and not isinstance(data["output"], str):
        raise ValueError("'output' must be a label")


def check_program_json(data: Any) -> None:
    """The ``program`` metadata: where the program came from; ``ValueError`` if malformed."""
    if data is None:
        return
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    for key in ("origin", "output"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise ValueError(f"{key!r} must be a string, got {data[key]!r}")
