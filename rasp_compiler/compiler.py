"""compile_rasp_to_model: the whole pipeline, one pure stage after another."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Iterable

from rasp_compiler.blas import one_blas_thread
from rasp_compiler.craft.build import Blocks, craft_blocks
from rasp_compiler.craft.check import check_blocks
from rasp_compiler.craft.precision import check_precision
import operator

from rasp_compiler import limits as _limits
from rasp_compiler.errors import InputError, ResourceLimitError, ValueSetError
from rasp_compiler.graph.build import build_graph
from rasp_compiler.graph.nodes import ProgramGraph
from rasp_compiler.graph.residual import ResidualLayout, build_layout
from rasp_compiler.graph.schedule import Schedule, schedule
from rasp_compiler.graph.validate import validate
from rasp_compiler.graph.value_sets import distinct_values, infer_value_sets
from rasp_compiler.model.assemble import assemble
from rasp_compiler.model.compiled import CompiledModel
from rasp_compiler.model.guard import OneHotGuard
from rasp_compiler.model.size import check_size, check_size_early
from rasp_compiler.rasp import core


@dataclass(frozen=True)
class Compilation:
    """Every intermediate artifact, for inspection."""

    graph: ProgramGraph
    value_sets: dict
    schedule: Schedule
    layout: ResidualLayout
    blocks: Blocks
    checked_cases: int


def compile_rasp_to_model(program: core.SOp, vocab: Iterable[Any], max_seq_len: int, causal: bool = False,
                          compiler_bos: Any = "BOS", compiler_pad: Any = "PAD",
                          mlp_exactness: int = 100, limits: _limits.Limits | None = None,
                          strict: bool = False) -> CompiledModel:
    """Compile a RASP program into a transformer that reproduces ``rasp.evaluate`` exactly.

    The arguments are tracr's. ``mlp_exactness`` is accepted for compatibility and
    ignored: MLP slopes come from the gaps between the values each MLP must separate,
    and attention sharpness from ``max_seq_len``, so there is no accuracy knob to turn.
    ``limits`` bounds the sizes the compiler will allocate (see :mod:`rasp_compiler.limits`).

    A categorical Aggregate that no rule proves to copy one value, on a program with too
    many inputs to try them all, compiles with an :class:`UnprovenAggregateWarning`, is
    listed in ``model.config.unproven_aggregates`` and is guarded at run time (``apply``
    raises :class:`BlendedValueError` on an input where it blends values); ``strict=True``
    refuses it with :class:`UnsupportedProgramError` instead.
    """
    lim = limits if limits is not None else _limits.default()
    if not isinstance(lim, _limits.Limits):
        raise InputError(f"limits must be a rasp_compiler.limits.Limits, got {limits!r}")
    vocab = _checked_vocab(vocab, lim)
    for name, token in (("compiler_bos", compiler_bos), ("compiler_pad", compiler_pad)):
        _need_token(token, name)
    if compiler_bos in vocab or compiler_pad in vocab or compiler_bos == compiler_pad:
        raise InputError(f"BOS {compiler_bos!r} and PAD {compiler_pad!r} must differ from each other and "
                         f"from every vocabulary token")
    max_seq_len = _checked_length(max_seq_len, lim)
    if not isinstance(causal, bool) and type(causal).__name__ != "bool_":
        raise InputError(f"causal must be True or False, got {causal!r}")
    causal = bool(causal)
    with one_blas_thread():
        graph = build_graph(program)
        value_sets = infer_value_sets(graph, vocab, max_seq_len, lim)
        check_size_early(graph, value_sets, len(vocab), max_seq_len, lim)
        unproven = validate(graph, value_sets, vocab, max_seq_len, causal, lim, strict=bool(strict))
        check_precision(graph, value_sets, max_seq_len)
        sched = schedule(graph)
        layout = build_layout(graph, value_sets, sched)
        out_values = value_sets[graph.output]
        check_size(graph, value_sets, sched, layout, len(vocab), max_seq_len,
                   1 if graph.nodes[graph.output].numerical else len(out_values or ()), lim)
        blocks = craft_blocks(graph, value_sets, layout, max_seq_len)
        checked = check_blocks(graph, value_sets, layout, blocks, max_seq_len)
        config, params, labels, widths = assemble(graph, value_sets, sched, layout, blocks, vocab, max_seq_len,
                                                  compiler_bos, compiler_pad, causal)
        config = dataclasses.replace(config, unproven_aggregates=unproven)
    return CompiledModel(config, params, labels, Compilation(graph, value_sets, sched, layout, blocks, checked),
                         widths=widths, one_hot=OneHotGuard.from_layout(layout, max_seq_len))


MAX_TOKEN_DEPTH = 64  # nesting of tuple tokens: deeper ones cannot be written, printed or hashed safely


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of tuples/frozensets, iteratively (never a RecursionError), capped at limit + 1."""
    depth, level = 0, [value]
    while level and depth <= limit:
        level = [x for v in level if isinstance(v, (tuple, frozenset)) for x in v]
        depth += 1
    return depth


def _need_token(token: Any, what: str) -> None:
    if _depth(token, MAX_TOKEN_DEPTH) > MAX_TOKEN_DEPTH:
        raise InputError(f"{what}: a token nested more than {MAX_TOKEN_DEPTH} tuples deep; use flat tokens")
    try:
        hash(token)
    except TypeError:
        raise InputError(f"{what} must be hashable (str, int, tuple ...), got {type(token).__name__} "
                         f"{token!r:.80}") from None
    if token != token:
        raise InputError(f"{what} {token!r} is not equal to itself (NaN), so no input could match it; "
                         "use another token")


def _checked_vocab(vocab: Iterable[Any], lim: _limits.Limits) -> frozenset:
    if not isinstance(vocab, Iterable):
        raise InputError(f"vocab must be a collection of tokens (a set or list), got {vocab!r:.80}")
    tokens = []
    for i, token in enumerate(vocab):
        if i >= lim.max_values:
            raise ResourceLimitError(
                f"vocab has more than Limits.max_values={lim.max_values} tokens (one residual direction "
                "each); use a smaller vocabulary or raise the limit")
        _need_token(token, f"vocab token {i}")
        tokens.append(token)
    if not tokens:
        raise InputError("vocab is empty: give the set of input tokens")
    if None in tokens:
        raise InputError("None cannot be a token: in RASP it means \"no value\" (what a categorical "
                         "Aggregate gives when it selects nothing); use another token")
    try:
        return distinct_values(None, tokens, "the vocab")
    except ValueSetError as exc:
        raise InputError(str(exc)) from None


def _checked_length(max_seq_len: Any, lim: _limits.Limits) -> int:
    try:
        n = operator.index(max_seq_len)  # int, numpy integers
    except TypeError:
        n = None
    if n is None or isinstance(max_seq_len, bool) or n < 1:
        raise InputError(f"max_seq_len must be a positive integer, got {max_seq_len!r}")
    if n > lim.max_seq_len:
        raise ResourceLimitError(
            f"max_seq_len={n} is more than Limits.max_seq_len={lim.max_seq_len}: positional value sets, "
            "attention tables and the checks grow with it; use a shorter length or raise the limit "
            "(compile_rasp_to_model(..., limits=Limits(max_seq_len=...)))")
    return int(n)
