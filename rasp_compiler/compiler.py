"""compile_rasp_to_model: the whole pipeline, one pure stage after another."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from rasp_compiler.blas import one_blas_thread
from rasp_compiler.craft.build import Blocks, craft_blocks
from rasp_compiler.craft.check import check_blocks
from rasp_compiler.errors import InputError
from rasp_compiler.graph.build import build_graph
from rasp_compiler.graph.nodes import ProgramGraph
from rasp_compiler.graph.residual import ResidualLayout, build_layout
from rasp_compiler.graph.schedule import Schedule, schedule
from rasp_compiler.graph.validate import validate
from rasp_compiler.graph.value_sets import infer_value_sets
from rasp_compiler.model.assemble import assemble
from rasp_compiler.model.compiled import CompiledModel
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
                          mlp_exactness: int = 100) -> CompiledModel:
    """Compile a RASP program into a transformer that reproduces ``rasp.evaluate`` exactly.

    The arguments are tracr's. ``mlp_exactness`` is accepted for compatibility and
    ignored: MLP slopes come from the gaps between the values each MLP must separate,
    and attention sharpness from ``max_seq_len``, so there is no accuracy knob to turn.
    """
    try:
        vocab = set(vocab)
    except TypeError as exc:
        raise InputError(f"vocab tokens must be hashable (str, int, tuple ...), got {list(vocab)!r}") from exc
    if not vocab:
        raise InputError("vocab is empty: give the set of input tokens")
    if None in vocab:
        raise InputError("None cannot be a token: in RASP it means \"no value\" (what a categorical "
                         "Aggregate gives when it selects nothing); use another token")
    if compiler_bos in vocab or compiler_pad in vocab or compiler_bos == compiler_pad:
        raise InputError(f"BOS {compiler_bos!r} and PAD {compiler_pad!r} must differ from each other and "
                         f"from every vocabulary token")
    if isinstance(max_seq_len, bool) or not isinstance(max_seq_len, int) or max_seq_len < 1:
        raise InputError(f"max_seq_len must be a positive integer, got {max_seq_len!r}")
    with one_blas_thread():
        graph = build_graph(program)
        value_sets = infer_value_sets(graph, vocab, max_seq_len)
        validate(graph, value_sets, vocab, max_seq_len, causal)
        sched = schedule(graph)
        layout = build_layout(graph, value_sets, sched)
        blocks = craft_blocks(graph, value_sets, layout, max_seq_len)
        checked = check_blocks(graph, value_sets, layout, blocks, max_seq_len)
        config, params, labels, widths = assemble(graph, value_sets, sched, layout, blocks, vocab, max_seq_len,
                                                  compiler_bos, compiler_pad, causal)
    return CompiledModel(config, params, labels, Compilation(graph, value_sets, sched, layout, blocks, checked),
                         widths=widths)
