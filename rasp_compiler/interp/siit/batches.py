"""Random (base, source) input pairs and, per row, which components to swap.

Every row of a batch is one of three kinds (a third each): *behaviour* (nothing swapped:
the trained model must give the program's output), *interchange* (one mapped component
swapped in both models: the trained output must follow the compiled model's), *strict*
(each unmapped component swapped with probability 1/2, at least one: the output must
stay the program's output on the base input, as InterpBench's "sample_all" strictness).
The source is at least as long as the base, so every base position has a real source
value to take (a swapped value always comes from a real input), and nodes that depend on
the length (e.g. ``length``) are intervened on too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rasp_compiler.interp.siit.mapping import Mapping, slot_masks

BEHAVIOUR, INTERCHANGE, STRICT = 0, 1, 2


@dataclass(frozen=True)
class Batch:
    base: np.ndarray  # (B, n_ctx) token ids, BOS first, PAD after the length
    source: np.ndarray
    kind: np.ndarray  # (B,) BEHAVIOUR / INTERCHANGE / STRICT
    low_heads: np.ndarray  # (B, L, H) swap masks of the trained model
    low_neurons: np.ndarray  # (B, L, d_mlp)
    high_heads: np.ndarray  # (B, L, H_compiled) swap masks of the compiled model
    high_neurons: np.ndarray  # (B, L, d_mlp_compiled)


def random_ids(rng: np.random.Generator, n: int, config, lengths: np.ndarray) -> np.ndarray:
    """``n`` random token-id rows (BOS=0, PAD=1, vocabulary from 2) of the given lengths."""
    ids = np.ones((n, config.n_ctx), np.int32)
    ids[:, 0] = 0
    toks = 2 + rng.integers(0, len(config.vocab), (n, config.max_seq_len))
    keep = np.arange(config.max_seq_len)[None] < lengths[:, None]
    ids[:, 1:] = np.where(keep, toks, 1)
    return ids


def random_lengths(rng: np.random.Generator, n: int, max_seq_len: int, n_vocab: int) -> np.ndarray:
    """Lengths weighted towards the long ones (where almost all inputs are), every length seen."""
    w = np.minimum(float(n_vocab) ** np.arange(1, max_seq_len + 1), 64.0)
    return 1 + rng.choice(max_seq_len, n, p=w / w.sum())


def make_batch(rng: np.random.Generator, mapping: Mapping, compiled_config, size: int,
               kinds: tuple[int, ...] = (BEHAVIOUR, INTERCHANGE, STRICT)) -> Batch:
    c = mapping.config
    lengths = random_lengths(rng, size, c.max_seq_len, len(c.vocab))
    longer = lengths + (rng.random(size) * (c.max_seq_len + 1 - lengths)).astype(int)
    base, source = random_ids(rng, size, c, lengths), random_ids(rng, size, c, longer)
    kind = rng.choice(np.asarray(kinds), size)
    lh, ln = np.zeros((size, c.n_layers, c.n_heads), np.float32), np.zeros((size, c.n_layers, c.d_mlp), np.float32)
    hc = compiled_config
    hh = np.zeros((size, hc.n_layers, hc.n_heads), np.float32)
    hn = np.zeros((size, hc.n_layers, hc.d_mlp), np.float32)
    for b in range(size):
        if kind[b] == INTERCHANGE:
            k = rng.integers(len(mapping.high))
            lh[b], ln[b] = slot_masks([mapping.low[k]], c)
            hh[b], hn[b] = slot_masks([mapping.high[k]], hc)
        elif kind[b] == STRICT and mapping.unmapped:
            pick = rng.random(len(mapping.unmapped)) < 0.5
            pick[rng.integers(len(pick))] = True
            lh[b], ln[b] = slot_masks([s for s, p in zip(mapping.unmapped, pick) if p], c)
    return Batch(base, source, kind, lh, ln, hh, hn)
