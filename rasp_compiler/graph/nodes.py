"""Typed records passed between the graph stages (no string-keyed attribute bags)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Callable

import networkx as nx

from rasp_compiler.rasp import core


class Kind(enum.Enum):
    """How a node is realised in the transformer."""

    EMBED = "embed"  # written by the token/position embedding (tokens, indices, Full, ConstantSOp)
    VIRTUAL = "virtual"  # a linear read-out of other nodes: no weights, no residual dimension
    MLP = "mlp"  # one MLP block
    ATTENTION = "attention"  # one attention head (Aggregate)
    WIDTH = "selector_width"  # one attention head, then one MLP in the same layer


@dataclass(frozen=True)
class Term:
    """One Boolean table of a head: key SOp, query SOp and predicate(key, query)."""

    key: str
    query: str
    predicate: Callable[[Any, Any], bool]
    source: str = ""  # label of the Select(s) it came from, for error messages


@dataclass(frozen=True)
class Node:
    """One SOp of the program, as the compiler sees it."""

    label: str
    expr: core.SOp
    kind: Kind
    numerical: bool
    inputs: tuple[str, ...]  # SOp labels read (for heads: keys, queries and values)
    terms: tuple[Term, ...] = ()  # heads only: conjunction of Boolean tables
    aggregated: str | None = None  # Aggregate only: the SOp whose values are combined
    synthetic: bool = False  # added by the compiler (product key/query spaces)

    @property
    def op(self) -> str:
        return type(self.expr).__name__


@dataclass(frozen=True)
class ProgramGraph:
    """The program as a networkx DiGraph (edges: data flow) plus typed node records."""

    graph: nx.DiGraph
    nodes: dict[str, Node]
    output: str

    def topological(self) -> list[str]:
        return list(nx.lexicographical_topological_sort(self.graph, key=lambda n: self.graph.nodes[n]["order"]))
