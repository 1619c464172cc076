"""The standard library of RASP programs, and a registry of them for tests and benchmarks.

``from rasp_compiler.lib import make_reverse`` gives a factory; :data:`LIBRARY` maps a
short name to a :class:`LibraryProgram`: a zero-argument ``build`` with sensible
defaults, the vocabulary to test and compile it with, a one-line description and an
independent plain-Python ``reference`` (see :mod:`rasp_compiler.lib.reference`).

Example::

    from rasp_compiler import rasp
    from rasp_compiler.lib import LIBRARY

    entry = LIBRARY["reverse"]
    program = entry.build()
    assert rasp.evaluate(program, ["a", "b", "c"]) == entry.reference(["a", "b", "c"])
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

from rasp_compiler.lib import reference
from rasp_compiler.lib.programs import (
    length, make_count, make_count_less_freq, make_detect_pattern, make_dyck, make_first_occurrence,
    make_frac_prevs, make_hist, make_induction_head, make_length, make_nary_sequencemap, make_pair_balance,
    make_reverse, make_running_max, make_running_min, make_shift_by, make_shuffle_dyck, make_shuffle_dyck2,
    make_sort, make_sort_freq, make_sort_unique, detect_pattern, shift_by,
)
from rasp_compiler.rasp import core as rasp

__all__ = [
    "LIBRARY", "LibraryProgram", "reference", "length", "make_count", "make_count_less_freq", "make_detect_pattern",
    "make_nary_sequencemap",
    "make_dyck", "make_first_occurrence", "make_frac_prevs", "make_hist", "make_induction_head", "make_length",
    "make_pair_balance", "make_reverse", "make_running_max", "make_running_min", "make_shift_by",
    "make_shuffle_dyck", "make_shuffle_dyck2", "make_sort", "make_sort_freq", "make_sort_unique",
    "detect_pattern", "shift_by",
]


@dataclass(frozen=True)
class LibraryProgram:
    """One registry entry.

    ``build()`` returns the program, its output labelled ``name``;
    ``vocab`` is the token set to test and compile with; ``max_seq_len`` a sensible length
    for compiling; ``reference(xs)`` the expected output on input ``xs``, computed in
    plain Python (floats for numerical programs, compared with a 1e-9 tolerance).
    """

    name: str
    build: Callable[[], rasp.SOp]
    vocab: tuple
    description: str
    reference: Callable[[list], list]
    max_seq_len: int = 5

    @property
    def numerical(self) -> bool:
        """Whether the program's output is numerical (compare with a tolerance)."""
        return self.build().is_numerical


_LETTERS = ("a", "b", "c")
_NUMBERS = (1, 2, 3, 4)

LIBRARY: dict[str, LibraryProgram] = {entry.name: entry for entry in [
    LibraryProgram("length", make_length, _LETTERS, "number of tokens, at every position",
                   reference.length),
    LibraryProgram("reverse", make_reverse, _LETTERS, "the tokens in reverse order", reference.reverse),
    LibraryProgram("hist", make_hist, _LETTERS, "how often each position's token occurs", reference.hist),
    LibraryProgram("sort_unique", lambda: make_sort_unique(rasp.tokens, rasp.tokens), _NUMBERS,
                   "tokens ascending, assuming no repeats (repeats leave None gaps)",
                   reference.sort_unique),
    LibraryProgram("sort", lambda: make_sort(rasp.tokens, rasp.tokens), _NUMBERS,
                   "tokens ascending, repeats allowed (stable)", reference.sort),
    LibraryProgram("sort_freq", make_sort_freq, _LETTERS,
                   "tokens by descending frequency, ties in input order", reference.sort_freq),
    LibraryProgram("frac_prevs", lambda: make_frac_prevs(lambda t: t == "x"), ("x", "y", "z"),
                   'fraction of "x" among tokens 0..i (numerical)', reference.frac_prevs),
    LibraryProgram("pair_balance", lambda: make_pair_balance(rasp.tokens, "(", ")"), ("(", ")", "x"),
                   '(#"(" - #")") among tokens 0..i, over i+1 (numerical)', reference.pair_balance),
    LibraryProgram("dyck1", lambda: make_shuffle_dyck("()", name="dyck1"), ("(", ")", "x"),
                   "1 if the whole input is balanced in (), else 0 (other tokens ignored)",
                   functools.partial(reference.shuffle_dyck, pairs="()")),
    LibraryProgram("dyck2", lambda: make_shuffle_dyck2(name="dyck2"), ("(", ")", "{", "}"),
                   "1 if () and {} are each balanced over the whole input (shuffle-Dyck-2), else 0",
                   functools.partial(reference.shuffle_dyck, pairs="(){}")),
    LibraryProgram("shift_by", lambda: make_shift_by(1, rasp.tokens, name="shift_by"), _LETTERS,
                   "the token one position earlier (None at position 0)",
                   functools.partial(reference.shift_by, offset=1)),
    LibraryProgram("detect_pattern", lambda: make_detect_pattern(rasp.tokens, "abc", name="detect_pattern"), _LETTERS,
                   'True where the last three tokens are "abc"',
                   functools.partial(reference.detect_pattern, pattern="abc")),
    LibraryProgram("count", lambda: make_count(rasp.tokens, "a", name="count"), _LETTERS,
                   'number of "a" tokens, at every position',
                   functools.partial(reference.count, token="a")),
    LibraryProgram("running_max", lambda: make_running_max(rasp.tokens, _NUMBERS), _NUMBERS,
                   "largest token among tokens 0..i", reference.running_max),
    LibraryProgram("running_min", lambda: make_running_min(rasp.tokens, _NUMBERS), _NUMBERS,
                   "smallest token among tokens 0..i", reference.running_min),
    LibraryProgram("induction", make_induction_head, _LETTERS,
                   "what followed the first earlier occurrence of each token (an induction head; causal)",
                   reference.induction),
    LibraryProgram("first_occurrence", make_first_occurrence, _LETTERS,
                   "True where the token has not occurred earlier", reference.first_occurrence),
]}
