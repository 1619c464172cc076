"""Stage 5: one block (or head + MLP for selector width) per scheduled node."""

from __future__ import annotations

from dataclasses import dataclass

from rasp_compiler.craft import mlp
from rasp_compiler.craft.attention import aggregate_head, width_fractions, width_head
from rasp_compiler.craft.blocks import AttentionHead, MLPBlock
from rasp_compiler.errors import ValueSetError
from rasp_compiler.graph.nodes import Kind, Node, ProgramGraph
from rasp_compiler.graph.residual import FRACTION, Dir, ResidualLayout
from rasp_compiler.rasp import core


@dataclass(frozen=True)
class Blocks:
    heads: dict[str, AttentionHead]  # node -> head
    mlps: dict[str, MLPBlock]  # node -> MLP


def craft_blocks(pg: ProgramGraph, value_sets: dict, layout: ResidualLayout, max_seq_len: int) -> Blocks:
    heads: dict[str, AttentionHead] = {}
    mlps: dict[str, MLPBlock] = {}
    for label in pg.topological():
        node = pg.nodes[label]
        if node.kind is Kind.ATTENTION:
            heads[label] = aggregate_head(node, layout, max_seq_len)
        elif node.kind is Kind.WIDTH:
            heads[label] = width_head(node, layout, max_seq_len)
            mlps[label] = mlp.staircase(label, node.numerical, {Dir(label, FRACTION): 1.0},
                                        width_fractions(max_seq_len), what="bos_weight")
        elif node.kind is Kind.MLP:
            mlps[label] = _map_mlp(node, pg, value_sets, layout)
    return Blocks(heads, mlps)


def node_function(node: Node, layout: ResidualLayout):
    """The node's function with outputs mapped onto its value set's members."""
    f = node.expr.f
    if node.numerical:
        return f
    return lambda *args: layout.canonical(node.label, f(*args))


def _map_mlp(node: Node, pg: ProgramGraph, value_sets: dict, layout: ResidualLayout) -> MLPBlock:
    e = node.expr
    f = node_function(node, layout)
    if isinstance(e, core.Map):
        src = node.inputs[0]
        if not pg.nodes[src].numerical:
            return mlp.map_lookup(node.label, node.numerical, layout.onehot(src), f)
        values = value_sets[src]
        if values is None:
            raise ValueSetError(
                f"Map {node.label} reads numerical SOp {src}, whose values are too many to list, so no "
                "MLP can tell them apart exactly; bound the values it averages, or read it linearly")
        points = [(float(v), f(v)) for v in values]
        return mlp.numeric_input_map(node.label, node.numerical, layout.numeric_readout(src), points, what=src)
    assert isinstance(e, core.SequenceMap)
    if node.inputs[0] == node.inputs[1]:  # f(x, x): a lookup over x alone
        return mlp.map_lookup(node.label, node.numerical, layout.onehot(node.inputs[0]), lambda v: f(v, v))
    return mlp.pair_lookup(node.label, node.numerical, layout.onehot(node.inputs[0]),
                           layout.onehot(node.inputs[1]), f)
