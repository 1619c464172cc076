"""Sizes are estimated and refused before allocation (issue 14, class 5): each case runs in
a subprocess under an address-space limit, and must end quickly with a clear error,
never a MemoryError, a hang or a crash."""

import json
import subprocess
import sys
import textwrap

import pytest

from rasp_compiler import compile_rasp_to_model, rasp
from rasp_compiler.errors import ResourceLimitError
from rasp_compiler.limits import Limits

ADDRESS_SPACE = 3 * 2**30  # bytes: far below what any of these programs would take
SECONDS = 120

CASES = {
    "copy_20000": ("rasp.Aggregate(rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.EQ), rasp.tokens)"
                   ".named('copy')", "{'a', 'b'}", "20000"),
    "width_1e6": ("rasp.SelectorWidth(rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.EQ)).named('w')",
                  "{'a', 'b'}", "10**6"),
    "parity_1e9": ("rasp.Map(lambda i: i % 2, rasp.indices).named('parity')", "{'a'}", "10**9"),
    "pairs_1400": ("rasp.SequenceMap(lambda a, b: (a + b) % 7, rasp.indices, "
                   "rasp.Map(lambda i: i, rasp.indices).named('idx2')).named('pairs')", "{'a'}", "1400"),
    "vocab_300000": ("rasp.Map(lambda t: t % 2, rasp.tokens).named('m')", "range(300_000)", "4"),
    "huge_length": ("rasp.Map(lambda t: t, rasp.tokens).named('m')", "{'a'}", "99999999999999999999"),
}

_SCRIPT = """
import json, resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
from rasp_compiler import compile_rasp_to_model, rasp
for name, (program, vocab, n) in {cases!r}.items():
    t = time.perf_counter()
    try:
        compile_rasp_to_model(eval(program), eval(vocab), eval(n))
        result = {{"error": None}}
    except BaseException as exc:
        result = {{"error": type(exc).__name__, "message": str(exc)}}
    result.update(case=name, seconds=time.perf_counter() - t)
    print(json.dumps(result), flush=True)
"""


@pytest.fixture(scope="module")
def limited_results() -> dict:
    """Every case in one subprocess (one import) under the address-space limit."""
    code = _SCRIPT.format(limit=ADDRESS_SPACE, cases=CASES)
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=SECONDS * len(CASES))
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    return {r["case"]: r for r in results}


@pytest.mark.parametrize("case", sorted(CASES))
def test_refused_early_under_an_address_space_limit(case, limited_results):
    result = limited_results[case]
    assert result["error"] in ("ResourceLimitError", "ValueSetError"), result
    assert "limit" in result["message"].lower() and "Limits" in result["message"], result["message"]
    assert result["seconds"] < 60, result


def test_causal_copy_at_20000_is_refused_before_the_quadratic_causal_check():
    import time
    copy = rasp.Aggregate(rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.LEQ), rasp.tokens).named("copy")
    start = time.perf_counter()
    with pytest.raises(ResourceLimitError, match=r"at least .*GiB.*head of copy"):
        compile_rasp_to_model(copy, {"a", "b"}, 20000, causal=True)
    assert time.perf_counter() - start < 20


def test_refusal_names_the_node_and_the_estimate():
    copy = rasp.Aggregate(rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.EQ), rasp.tokens).named("copy")
    with pytest.raises(ResourceLimitError, match=r"at least 7.\d+ GiB of float32 weights.*largest part is the "
                                                 r"head of copy \(4 x d_model>=\d+ x d_head>=20000\).*largest "
                                                 r"node IndicesType indices \(20000 values\)"):
        compile_rasp_to_model(copy, {"a", "b"}, 20000)
    pairs = rasp.SequenceMap(lambda a, b: (a + b) % 3, rasp.indices,
                             rasp.Map(lambda i: i, rasp.indices).named("idx2")).named("pairs")
    with pytest.raises(ResourceLimitError, match=r"d_mlp=90000.*MiB of float32 weights.*largest part is the "
                                                 r"MLPs .*largest node SequenceMap pairs \(90000 directions or neurons"):
        compile_rasp_to_model(pairs, {"a"}, 300, limits=Limits(max_weight_bytes=100 * 2**20))


def test_limits_are_overridable():
    prog = rasp.Map(lambda t: t, rasp.tokens).named("m")
    with pytest.raises(ResourceLimitError, match="max_seq_len=50 is more than Limits.max_seq_len=10"):
        compile_rasp_to_model(prog, {"a"}, 50, limits=Limits(max_seq_len=10))
    copy = rasp.Aggregate(rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.EQ), rasp.tokens).named("copy")
    with pytest.raises(ResourceLimitError, match="max_weight_bytes"):
        compile_rasp_to_model(copy, {"a", "b"}, 64, limits=Limits(max_weight_bytes=10_000))
    assert compile_rasp_to_model(copy, {"a", "b"}, 64).apply(["BOS", "a", "b"]).decoded == ["BOS", "a", "b"]
