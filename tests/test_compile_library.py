"""Acceptance: every library program compiles and matches rasp.evaluate on 100% of inputs."""

import json
import pathlib
import string

import pytest

from rasp_compiler import compile_rasp_to_model
from rasp_compiler.lib import LIBRARY
from rasp_compiler.verify import check_model, exhaustive_inputs, random_inputs

VOCAB16 = frozenset(string.ascii_lowercase[:16])
RESULTS = pathlib.Path(__file__).parent.parent / "benchmarks" / "results" / "compare_tracr.json"


@pytest.mark.parametrize("name", sorted(LIBRARY))
def test_exhaustive_up_to_length_5(name):
    entry = LIBRARY[name]
    assert 3 <= len(entry.vocab) <= 4
    program = entry.build()
    model = compile_rasp_to_model(program, entry.vocab, 5)
    inputs = list(exhaustive_inputs(entry.vocab, 5))
    report = check_model(model, program, inputs)
    assert report.checked == sum(len(entry.vocab) ** n for n in range(1, 6))
    assert report.exact, report.examples[:3]


# (program, max_seq_len, vocab): the long-sequence acceptance list. Programs whose
# tokens have a meaning (brackets, the "x" that frac_prevs counts) keep their own
# symbols inside a 16-token vocabulary where that makes sense.
LONG = [
    ("length", 64, VOCAB16),
    ("reverse", 64, VOCAB16),
    ("hist", 64, VOCAB16),
    ("sort_unique", 64, None),  # keys must be unique: its default vocab
    ("sort", 64, VOCAB16),
    ("frac_prevs", 64, VOCAB16 | {"x"}),
    ("pair_balance", 64, frozenset("()") | set(string.ascii_lowercase[:14])),
    ("sort_freq", 32, VOCAB16),
    ("dyck2", 32, frozenset("(){}") | set(string.ascii_lowercase[:12])),
]


@pytest.mark.parametrize("name,n,vocab", LONG, ids=[f"{p}-{n}" for p, n, _ in LONG])
def test_long_sequences_500_random_inputs(name, n, vocab):
    entry = LIBRARY[name]
    program = entry.build()
    vocab = vocab or entry.vocab
    model = compile_rasp_to_model(program, vocab, n)
    inputs = random_inputs(vocab, n, 500, seed=7, full_length=100)
    assert sum(len(x) == n for x in inputs) >= 100
    report = check_model(model, program, inputs)
    assert report.checked == 500
    assert report.exact, report.examples[:2]


@pytest.mark.skipif(not RESULTS.exists(), reason="run benchmarks/compare_tracr.py to measure tracr's layers")
def test_never_more_layers_than_tracr():
    """Layer counts of tracr come from the benchmark's measured run; ours are compiled here."""
    measured = json.loads(RESULTS.read_text())["programs"]
    compared = 0
    for name, info in measured.items():
        entry = LIBRARY.get(name)
        for n, result in info["results"].items():
            tracr = result.get("tracr", {})
            if entry is None or tracr.get("status") != "ok":
                continue
            ours = compile_rasp_to_model(entry.build(), info["vocab"], int(n)).config.n_layers
            assert ours <= tracr["layers"], (name, n, ours, tracr["layers"])
            compared += 1
    assert compared
