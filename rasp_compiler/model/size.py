"""How large a model will be, estimated before any weight or block is built.

From the residual layout (cheap: one label per direction) and the value sets, the
widths every block will have follow directly: a lookup MLP has a neuron per input value
(per pair for a SequenceMap), a numerical-input MLP at most two per input value, a
selector-width MLP two per width; a head's query side is one direction per value it
compares. From those come ``d_mlp``, ``d_head`` and the float32 bytes of every weight
array. ``check_size`` refuses a model past :class:`~rasp_compiler.limits.Limits` with
the estimate and the node that contributes most, so nothing runs out of memory.
"""

from __future__ import annotations

from dataclasses import dataclass

from rasp_compiler.errors import ResourceLimitError
from rasp_compiler.graph.nodes import Kind, ProgramGraph
from rasp_compiler.graph.residual import ResidualLayout
from rasp_compiler.graph.schedule import Schedule
from rasp_compiler.limits import Limits, human_bytes
from rasp_compiler.rasp import core


@dataclass(frozen=True)
class SizeEstimate:
    d_model: int
    d_mlp: int
    n_heads: int
    d_head: int
    n_layers: int
    weight_bytes: int
    parts: tuple[tuple[str, int], ...]  # (what, float32 bytes), largest first

    def describe(self) -> str:
        return (f"d_model={self.d_model}, d_mlp={self.d_mlp}, {self.n_layers} layers x {self.n_heads} heads "
                f"of d_head={self.d_head}: about {human_bytes(self.weight_bytes)} of float32 weights")


def _width(layout: ResidualLayout, label: str) -> int:
    return len(layout.values.get(label, ())) or 1


def mlp_neurons(pg: ProgramGraph, layout: ResidualLayout, label: str, max_seq_len: int,
                value_sets: dict | None = None) -> int:
    node = pg.nodes[label]
    if node.kind is Kind.WIDTH:
        return 2 * (max_seq_len + 1) + 1
    if isinstance(node.expr, core.Map):
        src = node.inputs[0]
        if src in layout.values:
            return _width(layout, src)
        return 2 * len((value_sets or {}).get(src) or ()) + 1
    a, b = node.inputs
    return _width(layout, a) if a == b else _width(layout, a) * _width(layout, b)


def head_width(pg: ProgramGraph, layout: ResidualLayout, label: str) -> int:
    node = pg.nodes[label]
    query = sum(_width(layout, t.query) + 1 for t in node.terms) + 2
    value = _width(layout, node.aggregated) + 1 if node.aggregated in layout.values else 2
    return max(query, value if node.kind is Kind.ATTENTION else 1)


def estimate_size(pg: ProgramGraph, value_sets: dict, sched: Schedule, layout: ResidualLayout, vocab_size: int,
                  max_seq_len: int, n_outputs: int) -> SizeEstimate:
    d = len(layout.dirs)
    layers = range(sched.n_layers)
    d_mlp = max([1] + [sum(mlp_neurons(pg, layout, m, max_seq_len, value_sets) for m in sched.mlps(l, pg)) for l in layers])
    n_heads = max([1] + [len(sched.heads(l, pg)) for l in layers])
    d_head = max([1] + [head_width(pg, layout, h) for l in layers for h in sched.heads(l, pg)])
    parts = {
        f"token embedding ({vocab_size + 2} tokens x d_model={d})": (vocab_size + 2) * d,
        f"position embedding ({max_seq_len + 1} positions x d_model={d})": (max_seq_len + 1) * d,
        f"attention ({sched.n_layers} layers x {n_heads} heads x 4 x d_model={d} x d_head={d_head})":
            sched.n_layers * 4 * n_heads * d * d_head,
        f"MLPs ({sched.n_layers} layers x 2 x d_model={d} x d_mlp={d_mlp})": sched.n_layers * (2 * d * d_mlp + d_mlp + d),
        f"unembedding (d_model={d} x {n_outputs} outputs)": d * max(1, n_outputs),
    }
    parts_bytes = tuple(sorted(((k, 4 * v) for k, v in parts.items()), key=lambda kv: -kv[1]))
    return SizeEstimate(d, d_mlp, n_heads, d_head, sched.n_layers, sum(b for _, b in parts_bytes), parts_bytes)


def _largest_node(pg: ProgramGraph, value_sets: dict, layout: ResidualLayout, max_seq_len: int) -> str:
    """The node with the most residual directions or MLP neurons, to name in the error."""
    best, size = "", -1
    for label, node in pg.nodes.items():
        n = _width(layout, label) if label in layout.values else 0
        if node.kind in (Kind.MLP, Kind.WIDTH):
            n = max(n, mlp_neurons(pg, layout, label, max_seq_len, value_sets))
        if n > size:
            best, size = f"{node.op} {label} ({n} directions or neurons)", n
    return best


def check_size(pg: ProgramGraph, value_sets: dict, sched: Schedule, layout: ResidualLayout, vocab_size: int,
               max_seq_len: int, n_outputs: int, limits: Limits) -> SizeEstimate:
    est = estimate_size(pg, value_sets, sched, layout, vocab_size, max_seq_len, n_outputs)
    if est.weight_bytes > limits.max_weight_bytes:
        what, nbytes = est.parts[0]
        raise ResourceLimitError(
            f"the compiled model would be too large: {est.describe()}, more than "
            f"Limits.max_weight_bytes={human_bytes(limits.max_weight_bytes)}; the largest part is the {what} "
            f"({human_bytes(nbytes)}) and the largest node {_largest_node(pg, value_sets, layout, max_seq_len)}. Use a "
            f"smaller max_seq_len or vocab, fewer values per SOp, or raise the limit "
            f"(compile_rasp_to_model(..., limits=Limits(max_weight_bytes=...)))")
    for label, node in pg.nodes.items():
        for t in node.terms:
            cells = _width(layout, t.key) * _width(layout, t.query)
            if cells > limits.max_table_cells:
                raise ResourceLimitError(
                    f"the selector {t.source} of {node.op} {label} compares {_width(layout, t.key)} key values "
                    f"with {_width(layout, t.query)} query values, a table of {cells:,} cells, more than "
                    f"Limits.max_table_cells={limits.max_table_cells:,}; reduce those value sets or raise the limit")
    return est


def check_size_early(pg: ProgramGraph, value_sets: dict, vocab_size: int, max_seq_len: int,
                     limits: Limits) -> None:
    """A lower bound of the weight bytes from the value sets alone, checked before validation
    (whose causal check is quadratic in max_seq_len): the residual stream has a direction per
    categorical value, the position embedding a row per position, and each head a query space
    as wide as the values it compares."""
    d = 2 + sum(len(v or ()) if not node.numerical else 1 for node, v in
                ((pg.nodes[label], value_sets.get(label)) for label in pg.nodes))
    head, head_node = max([(0, "")] + [(sum(len(value_sets.get(t.query) or ()) for t in node.terms), node.label)
                                       for node in pg.nodes.values() if node.kind in (Kind.ATTENTION, Kind.WIDTH)])
    widest = max(pg.nodes.values(), key=lambda node: len(value_sets.get(node.label) or ()))
    parts = {f"position embedding ({max_seq_len + 1} positions x d_model>={d})": 4 * (max_seq_len + 1) * d,
             f"token embedding ({vocab_size + 2} tokens x d_model>={d})": 4 * (vocab_size + 2) * d,
             f"head of {head_node} (4 x d_model>={d} x d_head>={head})": 16 * d * head}
    total = sum(parts.values())
    if total > limits.max_weight_bytes:
        what, nbytes = max(parts.items(), key=lambda kv: kv[1])
        raise ResourceLimitError(
            f"the compiled model would be too large: at least {human_bytes(total)} of float32 weights, more than "
            f"Limits.max_weight_bytes={human_bytes(limits.max_weight_bytes)}; the largest part is the {what} "
            f"({human_bytes(nbytes)}) and the largest node {widest.op} {widest.label} "
            f"({len(value_sets.get(widest.label) or ())} values). Use a smaller max_seq_len or vocab, fewer values "
            f"per SOp, or raise the limit (compile_rasp_to_model(..., limits=Limits(max_weight_bytes=...)))")
