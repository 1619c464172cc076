"""Stage 6: place the named blocks into one set of numpy weight arrays.

Parameter names follow TransformerLens (``blocks.{l}.attn.W_Q`` ...), shapes too:
W_Q/W_K/W_V (n_heads, d_model, d_head), W_O (n_heads, d_head, d_model), W_in
(d_model, d_mlp), W_out (d_mlp, d_model), W_U (d_model, n_outputs).

The BOS position: every query can attend to it, so its residual must look the same
to every head as the clean "BOS + one" vector the heads were designed for. Heads
with a default write that default at BOS too (the BOS query attends only to BOS), so
assembly follows the BOS residual layer by layer and corrects the readers at the
``bos`` row: keys and values see the clean vector, and every MLP neuron is held at
-1 there, so MLPs write nothing at BOS.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from rasp_compiler.craft.blocks import AttentionHead, MLPBlock, index_run
from rasp_compiler.craft.build import Blocks
from rasp_compiler.graph.nodes import Kind, ProgramGraph
from rasp_compiler.graph.residual import BOS, ONE, Dir, ResidualLayout
from rasp_compiler.graph.schedule import Schedule
from rasp_compiler.graph.value_sets import sorted_values
from rasp_compiler.model.config import ModelConfig, ModelLabels
from rasp_compiler.model.transformer import Widths
from rasp_compiler.rasp import core


def assemble(pg: ProgramGraph, value_sets: dict, sched: Schedule, layout: ResidualLayout, blocks: Blocks,
             vocab: Sequence[Any], max_seq_len: int, bos: Any, pad: Any, causal: bool
             ) -> tuple[ModelConfig, dict[str, np.ndarray], ModelLabels, tuple[Widths, ...]]:
    """Config, weights, labels, and each layer's widths in use (heads, d_head, d_mlp): the
    weights beyond them are exactly zero padding, which the numpy forward pass skips."""
    d = len(layout.dirs)
    idx = layout.index
    layer_heads = [[blocks.heads[n] for n in sched.heads(l, pg)] for l in range(sched.n_layers)]
    layer_mlps = [[blocks.mlps[n] for n in sched.mlps(l, pg)] for l in range(sched.n_layers)]
    widths = tuple((len(hs), max([0] + [max(len(h.query_dirs), len(h.value_dirs)) for h in hs]),
                    sum(m.n_hidden for m in ms)) for hs, ms in zip(layer_heads, layer_mlps))
    n_heads, d_head, d_mlp = (max([1] + [w[i] for w in widths]) for i in range(3))  # uniform shapes

    out = pg.nodes[pg.output]
    output_values = tuple(sorted_values(v for v in (value_sets[out.label] or ()) if v is not None))
    config = ModelConfig(sched.n_layers, n_heads, d, d_head, d_mlp, max_seq_len, tuple(sorted_values(vocab)),
                         bos, pad, causal, out.label, out.numerical, output_values)

    params: dict[str, np.ndarray] = {}
    w_e, w_pos = _embeddings(pg, layout, config)
    params["embed.W_E"], params["pos_embed.W_pos"] = w_e, w_pos
    clean = w_e[0] + w_pos[0]
    at_bos = clean.copy()  # the residual at the BOS position, followed layer by layer
    head_labels, mlp_ranges, neuron_labels = [], [], []
    for l in range(sched.n_layers):
        # float32 from the start: these arrays are as wide as the biggest value set, and
        # a float64 copy of each only to cast it afterwards doubles the memory touched.
        wq, wk, wv = (np.zeros((n_heads, d, d_head), np.float32) for _ in range(3))
        wo = np.zeros((n_heads, d_head, d), np.float32)
        bos_write = np.zeros(d)
        for h, head in enumerate(layer_heads[l]):
            _place_head(head, idx, wq[h], wk[h], wv[h], wo[h])
            bos_write += _sparse_dot(_sparse_dot(clean, wv[h]), wo[h])
            for w in (wk[h], wv[h]):
                w[idx[BOS]] += _sparse_dot(clean - at_bos, w)
        at_bos = at_bos + bos_write
        w_in, b_in = np.zeros((d, d_mlp), np.float32), np.zeros(d_mlp)
        w_out = np.zeros((d_mlp, d), np.float32)
        ranges, neurons, start = [], [""] * d_mlp, 0
        for block in layer_mlps[l]:
            stop = start + block.n_hidden
            _place_mlp(block, idx, w_in[:, start:stop], b_in[start:stop], w_out[start:stop])
            neurons[start:stop] = block.hidden
            ranges.append((block.node, start, stop))
            start = stop
        w_in[idx[BOS]] -= _sparse_dot(at_bos, w_in) + b_in + 1.0  # every neuron at -1 on the BOS position
        for name, value in (("attn.W_Q", wq), ("attn.W_K", wk), ("attn.W_V", wv), ("attn.W_O", wo),
                            ("mlp.W_in", w_in), ("mlp.b_in", b_in), ("mlp.W_out", w_out),
                            ("mlp.b_out", np.zeros(d))):
            params[f"blocks.{l}.{name}"] = value
        head_labels.append(tuple(h.node for h in layer_heads[l]) + ("",) * (n_heads - len(layer_heads[l])))
        mlp_ranges.append(tuple(ranges))
        neuron_labels.append(tuple(neurons))
    params["unembed.W_U"] = _unembedding(out.label, out.numerical, layout, output_values)
    params = {k: np.asarray(v, np.float32) for k, v in params.items()}
    labels = ModelLabels(tuple(layout.labels), tuple(head_labels), tuple(mlp_ranges), tuple(neuron_labels))
    return config, params, labels, widths


def _embeddings(pg: ProgramGraph, layout: ResidualLayout, config: ModelConfig):
    idx = layout.index
    w_e = np.zeros((len(config.input_tokens), len(layout.dirs)))
    w_pos = np.zeros((config.n_ctx, len(layout.dirs)))
    w_e[0, idx[ONE]] = w_e[0, idx[BOS]] = 1.0
    embedded = [pg.nodes[n] for n in pg.topological() if pg.nodes[n].kind is Kind.EMBED]
    for row, token in enumerate(config.vocab, start=2):
        w_e[row, idx[ONE]] = 1.0
        for node in embedded:
            e = node.expr
            if isinstance(e, core.TokensType):
                _write(w_e[row], idx, "tokens", node.numerical, token)
            elif isinstance(e, core.Full):
                _write(w_e[row], idx, node.label, node.numerical, e.fill)
    for pos in range(1, config.n_ctx):
        for node in embedded:
            e = node.expr
            if isinstance(e, core.IndicesType):
                _write(w_pos[pos], idx, "indices", node.numerical, pos - 1)
            elif isinstance(e, core.ConstantSOp) and pos - 1 < len(e.value):
                _write(w_pos[pos], idx, node.label, node.numerical, e.value[pos - 1])
    return w_e, w_pos


def _write(row: np.ndarray, idx, label: str, numerical: bool, value: Any) -> None:
    if value is None:
        return
    if numerical:
        row[idx[Dir(label)]] += float(value)
    else:
        row[idx[Dir(label, value)]] += 1.0


def _sparse_dot(vec: np.ndarray, mat: np.ndarray) -> np.ndarray:
    """vec @ mat in float64, reading only the rows where vec is non-zero (few, at BOS)."""
    rows = np.flatnonzero(vec)
    return vec[rows] @ mat[rows].astype(np.float64)


def _place_head(head: AttentionHead, idx, wq, wk, wv, wo) -> None:
    """q = x[query_dirs]; k = w_qk @ x[key_dirs]; v = x[value_dirs]; out = v @ w_ov."""
    q, k = _rows(head.query_dirs, idx), _rows(head.key_dirs, idx)
    v, o = _rows(head.value_dirs, idx), _rows(head.output_dirs, idx)
    wq[q, np.arange(len(q))] = 1.0
    wk[index_run(k), : len(q)] += head.w_qk.T
    wv[v, np.arange(len(v))] = 1.0
    wo[: len(v), index_run(o)] += head.w_ov


def _place_mlp(block: MLPBlock, idx, w_in, b_in, w_out) -> None:
    w_in[index_run(_rows(block.reads, idx))] += block.w_in
    b_in[:] = block.b_in
    w_out[:, index_run(_rows(block.writes, idx))] += block.w_out


def _rows(dirs, idx) -> np.ndarray:
    return np.fromiter((idx[d] for d in dirs), dtype=np.int64, count=len(dirs))


def _unembedding(label: str, numerical: bool, layout: ResidualLayout, values: tuple) -> np.ndarray:
    idx = layout.index
    if numerical:
        w_u = np.zeros((len(layout.dirs), 1))
        for dr, w in layout.numeric_readout(label).items():
            w_u[idx[dr], 0] += w
        return w_u
    w_u = np.zeros((len(layout.dirs), len(values)))
    for j, v in enumerate(values):
        w_u[idx[Dir(label, v)], j] = 1.0
    return w_u
