"""Inputs, expected outputs and residual activations of a compiled model.

A :class:`ProgramData` holds a batch of inputs, their padded token ids and the
evaluator's answers (``rasp.evaluate``, through :func:`rasp_compiler.verify.expected_output`,
so "correct" means exactly what ``verify`` means). Everything downstream (compression
training, SAE activations, spliced accuracy) reads from it, so the evaluator runs once
per input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from rasp_compiler.verify import exhaustive_inputs, expected_output, random_inputs, same_value

NON_FEATURES = ("one", "bos")  # constant directions: every position / only position 0


@dataclass(frozen=True)
class ProgramData:
    inputs: tuple[tuple, ...]  # without BOS
    ids: np.ndarray  # (n, n_ctx) int32, BOS first, padded with the pad id
    lengths: np.ndarray  # (n,) tokens including BOS
    expected: tuple[tuple, ...]  # evaluator output per input (no BOS)

    def __len__(self) -> int:
        return len(self.inputs)

    @property
    def token_mask(self) -> np.ndarray:
        """(n, n_ctx) bool: real positions, BOS included, PAD excluded."""
        return np.arange(self.ids.shape[1])[None] < self.lengths[:, None]

    def subset(self, index) -> "ProgramData":
        index = np.asarray(index)
        return ProgramData(tuple(self.inputs[i] for i in index), self.ids[index], self.lengths[index],
                           tuple(self.expected[i] for i in index))


def make_data(model, program, inputs: Sequence[Sequence[Any]]) -> ProgramData:
    """Encode ``inputs`` (token lists without BOS) for ``model`` and evaluate ``program`` on them."""
    bos = model.config.bos
    inputs = tuple(tuple(x) for x in inputs)
    ids = np.stack([model.encode([bos, *x]) for x in inputs]).astype(np.int32)
    lengths = np.asarray([len(x) + 1 for x in inputs], np.int32)
    expected = tuple(tuple(expected_output(program, list(x), model.config.causal)) for x in inputs)
    return ProgramData(inputs, ids, lengths, expected)


def random_data(model, program, n: int, seed: int) -> ProgramData:
    """``n`` random inputs of length 1..max_seq_len (a quarter of them full length)."""
    c = model.config
    return make_data(model, program, random_inputs(c.vocab, c.max_seq_len, n, seed=seed, full_length=n // 4))


def eval_data(model, program, limit: int = 4096, seed: int = 12345) -> ProgramData:
    """Every input when there are at most ``limit`` of them, else ``limit`` random ones."""
    c = model.config
    k = len(c.vocab)
    total = sum(k ** n for n in range(1, c.max_seq_len + 1))
    if total <= limit:
        return make_data(model, program, list(exhaustive_inputs(c.vocab, c.max_seq_len)))
    return random_data(model, program, limit, seed)


def run_outputs(model, data: ProgramData, hooks: Mapping[str, Callable] | None = None,
                batch_size: int = 1024) -> list[list]:
    """Decoded outputs (no BOS) of ``model`` on ``data`` with the numpy forward pass and ``hooks``."""
    outs: list[list] = []
    for start in range(0, len(data), batch_size):
        ids = data.ids[start:start + batch_size]
        logits = np.asarray(model._forward_numpy(ids, hooks=hooks))
        for i, n in enumerate(data.lengths[start:start + batch_size]):
            outs.append(model._decode(logits[i, :n])[1:])
    return outs


def accuracy(model, data: ProgramData, hooks: Mapping[str, Callable] | None = None) -> float:
    """Fraction of inputs whose whole decoded output equals the evaluator's (``verify.same_value``)."""
    outs = run_outputs(model, data, hooks)
    good = sum(len(o) == len(w) and all(same_value(g, v) for g, v in zip(o, w))
               for o, w in zip(outs, data.expected))
    return good / len(data) if len(data) else 1.0


def residual_sites(model) -> list[str]:
    """Where SAEs read the residual stream: resid_pre of each layer, then the final resid_post."""
    n = model.config.n_layers
    return [f"blocks.{l}.hook_resid_pre" for l in range(n)] + [f"blocks.{n - 1}.hook_resid_post"]


def site_activations(model, data: ProgramData, site: str, include_bos: bool = False) -> np.ndarray:
    """(tokens, d_model) residual vectors at ``site`` over every real position of ``data``."""
    cache: dict = {}
    model._forward_numpy(data.ids, cache=cache)
    acts = np.asarray(cache[site])
    return acts[position_mask(data, include_bos)].astype(np.float32)


def position_mask(data: ProgramData, include_bos: bool = False) -> np.ndarray:
    mask = data.token_mask.copy()
    if not include_bos:
        mask[:, 0] = False
    return mask


def feature_indices(labels: Sequence[str]) -> list[int]:
    """Residual dimensions that are features (every label but 'one' and 'bos')."""
    return [i for i, name in enumerate(labels) if name not in NON_FEATURES]
