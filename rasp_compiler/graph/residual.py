"""Stage 4: the residual stream as named directions.

A direction is ``Dir(node, value)``: one per value of a categorical node, one
(value ``None``) per numerical node, plus ``one`` (1 at every position, the query
side of "always attend to BOS") and ``bos`` (1 only at the BOS position), and each
selector width's internal fraction. Virtual nodes have no direction of their own:
their ``readout`` is a linear combination of others.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, NamedTuple

from rasp_compiler.graph.nodes import Kind, ProgramGraph
from rasp_compiler.graph.schedule import Schedule
from rasp_compiler.graph.value_sets import sorted_values
from rasp_compiler.rasp import core
from rasp_compiler.rasp.exact import ExactDict, ExactSet, exact_key

FRACTION = "<bos-fraction>"  # value tag of a selector width's internal direction


class Dir(NamedTuple):
    """Equal only to a Dir of the same node and the same value *of the same type*:
    ``Dir(n, 0)`` and ``Dir(n, 0.0)`` are two directions (see :mod:`rasp_compiler.rasp.exact`)."""

    node: str
    value: Any = None

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, Dir) and self[0] == other[0] and exact_key(self[1]) == exact_key(other[1])

    def __ne__(self, other: Any) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash((self[0], exact_key(self[1])))

    def __str__(self) -> str:
        if self.value is None:
            return self.node
        return f"{self.node}:{self.value}"


ONE = Dir("one")
BOS = Dir("bos")


@dataclass(frozen=True)
class ResidualLayout:
    dirs: tuple[Dir, ...]
    index: dict[Dir, int]
    values: dict[str, tuple]  # categorical node -> its values in direction order (None excluded)
    nullable: frozenset[str]  # categorical nodes that can hold None: no direction is active
    readouts: dict[str, dict[Dir, float]]  # numerical node (incl. virtual) -> linear read-out

    @property
    def labels(self) -> list[str]:
        return [str(d) for d in self.dirs]

    def onehot(self, node: str) -> ExactDict:
        """value -> direction, for a categorical node (keyed by type too: 0 and 0.0 are two)."""
        return ExactDict((v, Dir(node, v)) for v in self.values[node])

    def canonical(self, node: str, value: Any) -> Any:
        """The member of a categorical node's value set that ``value`` stands for: value sets
        merge floats that differ only by rounding, so a recomputed float may be a twin."""
        if not isinstance(value, float) or value in self._members.get(node, ()):
            return value
        close = [v for v in self.values.get(node, ())
                 if isinstance(v, float) and abs(v - value) <= 1e-12 * max(1.0, abs(value))]
        return close[0] if close else value

    @functools.cached_property
    def _members(self) -> dict[str, ExactSet]:
        """Each categorical node's values as a set: membership tests without a scan."""
        return {node: ExactSet(vs) for node, vs in self.values.items()}

    def numeric_readout(self, node: str) -> dict[Dir, float]:
        """The linear functional of the residual stream that equals the node's numeric value."""
        if node in self.readouts:
            return self.readouts[node]
        return {Dir(node, v): float(v) for v in self.values[node]}


def build_layout(pg: ProgramGraph, value_sets: dict, sched: Schedule) -> ResidualLayout:
    dirs: list[Dir] = [ONE, BOS]
    values: dict[str, tuple] = {}
    readouts: dict[str, dict[Dir, float]] = {}
    order = sorted(pg.topological(), key=lambda n: (sched.sublayer[n], pg.graph.nodes[n]["order"]))
    for label in order:
        node = pg.nodes[label]
        if not node.numerical:
            values[label] = tuple(sorted_values(v for v in value_sets[label] if v is not None))
        if node.kind is Kind.VIRTUAL:
            continue
        if node.kind is Kind.WIDTH:
            dirs.append(Dir(label, FRACTION))
        if node.numerical:
            dirs.append(Dir(label))
            readouts[label] = {Dir(label): 1.0}
        else:
            dirs.extend(Dir(label, v) for v in values[label])
    nullable = frozenset(n for n in values if None in value_sets[n])
    layout = ResidualLayout(tuple(dirs), {d: i for i, d in enumerate(dirs)}, values, nullable, readouts)
    for label in order:  # virtual read-outs, in dependency order
        node = pg.nodes[label]
        if node.kind is Kind.VIRTUAL:
            readouts[label] = _virtual_readout(node, layout)
    return layout


def _virtual_readout(node, layout: ResidualLayout) -> dict[Dir, float]:
    e = node.expr
    out: dict[Dir, float] = {}
    if isinstance(e, core.Map):  # numerical Map of a categorical SOp: sum over its one-hot
        for v, d in layout.onehot(node.inputs[0]).items():
            out[d] = float(e.f(v))
        return out
    assert isinstance(e, core.LinearSequenceMap)
    for src, fac in ((node.inputs[0], e.fst_fac), (node.inputs[1], e.snd_fac)):
        for d, w in layout.numeric_readout(src).items():
            out[d] = out.get(d, 0.0) + fac * w
    return out
