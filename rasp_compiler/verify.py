"""Check a compiled model against ``rasp.evaluate``: the definition of "exact".

Used by the tests, the CLI's ``verify`` and the benchmarks, so all three mean the
same thing by a mismatch: a categorical output differs (in value or in type: ``3``
is not ``3.0``), or a numerical one is off by more than ``NUMERIC_TOLERANCE``. With ``causal=True`` the expected output at position
i is the evaluation of the prefix ending at i.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from numbers import Number
from typing import Any, Callable, Iterable, Iterator, Sequence

from rasp_compiler.rasp import core
from rasp_compiler.rasp.evaluate import evaluate

NUMERIC_TOLERANCE = 1e-5


@dataclass(frozen=True)
class Mismatch:
    input: list
    got: list
    expected: list


@dataclass(frozen=True)
class Report:
    checked: int
    n_mismatches: int
    examples: tuple[Mismatch, ...]  # the first few mismatches

    @property
    def exact(self) -> bool:
        return self.n_mismatches == 0

    @property
    def accuracy(self) -> float:
        return 1.0 - self.n_mismatches / self.checked if self.checked else 1.0


def exhaustive_inputs(vocab: Iterable[Any], max_len: int, min_len: int = 1) -> Iterator[list]:
    v = sorted(vocab, key=repr)
    for n in range(min_len, max_len + 1):
        for xs in itertools.product(v, repeat=n):
            yield list(xs)


def random_inputs(vocab: Iterable[Any], max_len: int, n: int, seed: int = 0, full_length: int = 0) -> list[list]:
    """``n`` inputs of random length 1..max_len, the first ``full_length`` of them of length max_len."""
    rng = random.Random(seed)
    v = sorted(vocab, key=repr)
    return [[rng.choice(v) for _ in range(max_len if i < full_length else rng.randint(1, max_len))]
            for i in range(n)]


def same_type(got: Any, want: Any) -> bool:
    """Of one type (tuples: item by item). A categorical output that prints ``3`` where the
    program gives ``3.0``, or ``1`` for ``True``, is wrong although Python counts it equal."""
    if isinstance(want, tuple) and isinstance(got, tuple):
        return len(got) == len(want) and all(same_type(g, w) for g, w in zip(got, want))
    return type(got) is type(want)


def same_value(got: Any, want: Any, typed: bool = False) -> bool:
    """The model's output ``got`` stands for the evaluator's ``want``: a number within
    ``NUMERIC_TOLERANCE``, anything else equal; with ``typed`` (a categorical output) also
    of the same type (:func:`same_type`)."""
    if typed and not same_type(got, want):
        return False
    if isinstance(want, Number) and not isinstance(want, bool) or isinstance(got, float):
        if got is None or want is None or not isinstance(got, Number) or not isinstance(want, Number):
            return got is want
        return abs(float(got) - float(want)) <= NUMERIC_TOLERANCE * max(1.0, abs(float(want)))
    return got == want


def expected_output(program: core.SOp, xs: Sequence[Any], causal: bool = False) -> list:
    if not causal:
        return evaluate(program, xs)
    return [evaluate(program, xs[: i + 1])[i] for i in range(len(xs))]


def check_model(model, program: core.SOp, inputs: Iterable[Sequence[Any]], batch_size: int = 256,
                backend: str = "auto", progress: Callable[[int], None] | None = None,
                max_mismatches: int = 20, guard: bool = True) -> Report:
    """Run ``model`` on every input (batched) and compare with the evaluator.

    ``backend="auto"`` runs small chunks in numpy (no compile wait) and large ones in
    jitted JAX (faster once compiled). ``guard``: the model's one-hot guard runs too, so
    an input on which an unproven Aggregate blends values raises
    :class:`~rasp_compiler.errors.BlendedValueError` naming SOp, position and input.
    """
    bos = model.config.bos
    typed = not model.config.output_numerical  # a numerical output is a number: 3 and 3.0 are one
    checked, n_bad, examples = 0, 0, []
    it = iter(inputs)
    while chunk := [list(x) for x in itertools.islice(it, batch_size)]:
        chosen = backend if backend != "auto" else ("jax" if len(chunk) >= 128 else "numpy")
        outs = model.apply_batch([[bos, *x] for x in chunk], backend=chosen, guard=guard)
        for xs, out in zip(chunk, outs):
            want = expected_output(program, xs, model.config.causal)
            if len(out) - 1 != len(want) or not all(same_value(g, w, typed) for g, w in zip(out[1:], want)):
                n_bad += 1
                if len(examples) < max_mismatches:
                    examples.append(Mismatch(xs, out[1:], want))
        checked += len(chunk)
        if progress:
            progress(len(chunk))
    return Report(checked, n_bad, tuple(examples))
