"""Values told apart by type as well as by Python equality.

``0 == 0.0 == False`` and the three hash alike, so a ``set`` or a ``dict`` keeps only
the first of them: a compiler that keyed one-hot directions that way would output
``0`` where ``rasp.evaluate`` gives ``0.0``. Categorical values are therefore keyed by
:func:`exact_key` (type and value, also inside tuples and frozensets); comparisons the
program makes (a Select's predicate, a categorical Aggregate's "equal values") still
use Python's ``==`` where ``rasp.evaluate`` does.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Set
from typing import Any


def exact_key(v: Any) -> Any:
    """A key that tells apart values Python counts as equal (True, 1, 1.0; (1,), (True,))."""
    if isinstance(v, tuple):
        return (tuple, tuple(exact_key(x) for x in v))
    if isinstance(v, frozenset):
        return (frozenset, frozenset(exact_key(x) for x in v))
    return (type(v), v)


def same_exact(a: Any, b: Any) -> bool:
    """``a == b`` and of the same type (recursively for tuples and frozensets)."""
    return exact_key(a) == exact_key(b)


class ExactSet(Set):
    """An immutable set whose members are distinct by :func:`exact_key`: ``{0, 0.0}`` has two.

    Iterates in insertion order; ``in`` and the set operations (``|``, ``&``, ``-``, also
    with plain sets on either side) use exact keys."""

    __slots__ = ("_items",)

    def __init__(self, values: Iterable[Any] = ()):
        self._items = {}
        for v in values:
            self._items.setdefault(exact_key(v), v)

    @classmethod
    def _from_iterable(cls, it: Iterable[Any]) -> "ExactSet":
        return cls(it)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, v: Any) -> bool:
        try:
            return exact_key(v) in self._items
        except TypeError:  # unhashable: not a member
            return False

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, ExactSet):
            return self._items.keys() == other._items.keys()
        if isinstance(other, Set):
            return self == ExactSet(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(frozenset(self._items))

    def __repr__(self) -> str:
        return f"ExactSet({list(self)!r})"


class ExactDict(Mapping):
    """A read-only mapping keyed by :func:`exact_key`: ``0`` and ``0.0`` are two keys."""

    __slots__ = ("_items",)

    def __init__(self, pairs: Iterable[tuple[Any, Any]] = ()):
        self._items: dict = {}
        for k, v in pairs:
            self._items[exact_key(k)] = (k, v)

    def __getitem__(self, key: Any) -> Any:
        return self._items[exact_key(key)][1]

    def __iter__(self) -> Iterator[Any]:
        return (k for k, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: Any) -> bool:
        try:
            return exact_key(key) in self._items
        except TypeError:
            return False

    def items(self):
        return list(self._items.values())

    def values(self):
        return [v for _, v in self._items.values()]

    def __repr__(self) -> str:
        return f"ExactDict({self.items()!r})"
