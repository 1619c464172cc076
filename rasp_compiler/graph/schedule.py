"""Stage 3: node -> (layer, sublayer) with the fewest layers.

Sublayers alternate attention (2L) and MLP (2L+1). Each node goes to the earliest
sublayer of its kind after everything it reads is written (as soon as possible),
which meets the lower bound set by the longest chain of dependencies, so no
schedule has fewer layers. Independent nodes share a sublayer as separate heads
or side-by-side MLPs. Embedded and virtual nodes take no sublayer.
"""

from __future__ import annotations

from dataclasses import dataclass

from rasp_compiler.graph.nodes import Kind, ProgramGraph


@dataclass(frozen=True)
class Schedule:
    sublayer: dict[str, int]  # first sublayer of the node (-1: embedding or virtual)
    ready: dict[str, int]  # last sublayer after which the node's value is in the residual stream
    n_layers: int

    def layer_of(self, label: str) -> int | None:
        s = self.sublayer[label]
        return None if s < 0 else s // 2

    def heads(self, layer: int, pg: ProgramGraph) -> list[str]:
        return [n for n, s in self.sublayer.items()
                if s == 2 * layer and pg.nodes[n].kind in (Kind.ATTENTION, Kind.WIDTH)]

    def mlps(self, layer: int, pg: ProgramGraph) -> list[str]:
        return [n for n in self.sublayer
                if (pg.nodes[n].kind is Kind.MLP and self.sublayer[n] == 2 * layer + 1)
                or (pg.nodes[n].kind is Kind.WIDTH and self.sublayer[n] == 2 * layer)]


def schedule(pg: ProgramGraph) -> Schedule:
    sublayer: dict[str, int] = {}
    ready: dict[str, int] = {}
    for label in pg.topological():
        node = pg.nodes[label]
        after = max((ready[src] for src in node.inputs), default=-1)
        if node.kind in (Kind.EMBED, Kind.VIRTUAL):
            sublayer[label], ready[label] = -1, after
            continue
        want = 0 if node.kind in (Kind.ATTENTION, Kind.WIDTH) else 1  # parity of the sublayer
        s = after + 1
        if s % 2 != want:
            s += 1
        sublayer[label] = s
        ready[label] = s + 1 if node.kind is Kind.WIDTH else s
    last = max(ready.values(), default=-1)
    return Schedule(sublayer, ready, n_layers=max(1, last // 2 + 1))
