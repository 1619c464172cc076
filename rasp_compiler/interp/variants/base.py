"""What every variant returns: the model, its ground truth, and how exact it stayed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from rasp_compiler.interp.ground_truth import GroundTruth
from rasp_compiler.verify import exhaustive_inputs, random_inputs, same_value


@dataclass(frozen=True)
class Exactness:
    """How closely a variant reproduces the compiled model (and so ``rasp.evaluate``).

    ``accuracy``: share of checked inputs whose whole decoded output equals the
    reference's; ``exact`` is ``accuracy == 1``. ``balanced_accuracy``: the mean over output
    classes of the share of positions of that class decoded right (:func:`balanced_accuracy`;
    None when not measured), so a model that always answers the majority class cannot pass. ``how`` says which inputs were checked
    ("exhaustive to length 4", "500 random"). ``metrics`` holds variant-specific figures,
    e.g. ``{"iia": 0.97, "strict_iia": 0.95}`` for a trained model.
    """

    accuracy: float
    checked_inputs: int
    how: str
    metrics: Mapping[str, float] = field(default_factory=dict)
    balanced_accuracy: float | None = None

    @property
    def exact(self) -> bool:
        return self.accuracy == 1.0


@dataclass(frozen=True)
class Variant:
    """A model with a known circuit: ``truth`` is verified by ablation in the tests."""

    kind: str
    model: Any  # same public type as a compiled model (CompiledModel)
    truth: GroundTruth
    exactness: Exactness
    settings: Mapping[str, Any] = field(default_factory=dict)  # seed, scale, ... as given
    # the compiled model (same residual basis) whose values label the pairs, when ``model``
    # is not exact (noise): labels come from the program, never from an inexact model
    reference: Any = None


def check_inputs(model, exhaustive_limit: int = 2_000, n_random: int = 500, seed: int = 0) -> tuple[list, str]:
    """Every input when there are at most ``exhaustive_limit``, else ``n_random`` random ones."""
    c = model.config
    total = sum(len(c.vocab) ** n for n in range(1, c.max_seq_len + 1))
    if total <= exhaustive_limit:
        return list(exhaustive_inputs(c.vocab, c.max_seq_len)), f"exhaustive to length {c.max_seq_len}"
    return random_inputs(c.vocab, c.max_seq_len, n_random, seed=seed, full_length=n_random // 4), \
        f"{n_random} random inputs"


def measure_exactness(model, reference, inputs: list | None = None, how: str = "",
                      metrics: Mapping[str, float] | None = None) -> Exactness:
    """Compare ``model``'s decoded outputs with ``reference``'s (the compiled model, which
    equals ``rasp.evaluate`` on every input) on ``inputs`` (default: :func:`check_inputs`)."""
    if inputs is None:
        inputs, how = check_inputs(reference)
    bos = reference.config.bos
    batch = [[bos, *x] for x in inputs]
    got = model.apply_batch(batch, backend="numpy")
    want = reference.apply_batch(batch, backend="numpy")
    good = sum(len(g) == len(w) and all(same_value(a, b) for a, b in zip(g, w)) for g, w in zip(got, want))
    return Exactness(good / len(inputs) if inputs else 1.0, len(inputs), how, dict(metrics or {}),
                     balanced_accuracy(got, want, [len(x) for x in inputs], reference.config.output_numerical))


N_BINS = 10  # numerical outputs: classes are this many equal-width bins of the reference's values


def balanced_accuracy(got: list[list], want: list[list], lengths: list[int], numerical: bool) -> float:
    """Mean over output classes of per-class accuracy, over every real position (1..n) of
    every input: a position's class is the reference's value there (numerical outputs: its
    bin among :data:`N_BINS` equal-width bins over the reference's values), and it is right
    when the decoded value is the same (``same_value``: numerical outputs snap to the
    nearest value they can take)."""
    cls, right = [], []
    for g, w, n in zip(got, want, lengths):
        for p in range(1, n + 1):
            cls.append(w[p])
            right.append(p < len(g) and same_value(g[p], w[p]))
    if not cls:
        return 1.0
    if numerical:
        vals = np.array([np.nan if v is None else float(v) for v in cls])
        lo, hi = np.nanmin(vals), np.nanmax(vals)
        width = (hi - lo) / N_BINS or 1.0
        cls = [None if np.isnan(v) else min(int((v - lo) / width), N_BINS - 1) for v in vals]
    per: dict = {}
    for c, r in zip(cls, right):
        per.setdefault(repr(c), []).append(r)
    return float(np.mean([np.mean(rs) for rs in per.values()]))


def decoded_with_ablation(model, inputs: list, names: list[str] = ()) -> list[list]:
    """Decoded outputs of ``model`` on ``inputs`` with the named components zero-ablated."""
    from rasp_compiler.interp.hooks import ablate, compose

    hooks = compose(*(ablate(model, n, "zero") for n in names))
    ids = np.stack([model.encode([model.config.bos, *x]) for x in inputs])
    out = model._forward_numpy(ids, hooks=hooks or None)
    return [model._decode(out[i, : len(x) + 1]) for i, x in enumerate(inputs)]


def ablation_changes(model, inputs: list, names: list[str]) -> int:
    """On how many of ``inputs`` zero-ablating the named components (together) changes the
    decoded output: the test a variant's truth must pass (0 outside the circuit, > 0 inside)."""
    base = decoded_with_ablation(model, inputs)
    got = decoded_with_ablation(model, inputs, names)
    return sum(not (len(g) == len(b) and all(same_value(x, y) for x, y in zip(g, b))) for g, b in zip(got, base))
