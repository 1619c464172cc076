"""Resource limits: what the compiler refuses before it allocates or loops over it.

Every size that grows with the program's value sets or ``max_seq_len`` is estimated
before the work that would build it (value sets, weight arrays, quadratic checks), and
refused past these limits with an error naming the node and the estimate, instead of
running until ``MemoryError`` or forever. The defaults fit a machine with a few GB of
memory; raise them for one compilation with
``compile_rasp_to_model(..., limits=Limits(max_weight_bytes=8 * 2**30))`` or for the
whole process with ``limits.set_default(Limits(...))``. See docs/reliability.md.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """Upper bounds checked before the work they bound (all overridable)."""

    max_seq_len: int = 100_000  # positions: the evaluator and causal checks are quadratic in it
    max_values: int = 200_000  # values one SOp can take (one residual direction or MLP neuron each)
    max_pairs: int = 2_000_000  # (value, value) pairs a SequenceMap's function is applied to
    max_weight_bytes: int = 2 * 2**30  # float32 bytes of all weight arrays together
    max_table_cells: int = 50_000_000  # key x query cells of one selector's truth table

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Limits.{name} must be a positive integer, got {value!r}")


_default = Limits()


def default() -> Limits:
    return _default


def set_default(limits: Limits) -> None:
    """Use ``limits`` for every later compilation that does not pass its own."""
    global _default
    if not isinstance(limits, Limits):
        raise TypeError(f"expected a Limits, got {limits!r}")
    _default = limits


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} TiB"
