"""The edge generators (rasp_compiler.fuzz.edges): deterministic, every kind reached, and
every program refused clearly or compiled exactly (issue 14)."""

import pytest

from rasp_compiler.fuzz.edges import KINDS, check_edge, generate_edge


@pytest.mark.parametrize("kind", KINDS)
def test_edge_kind_has_no_mismatch(kind):
    results = [check_edge(generate_edge(kind, seed)) for seed in range(8)]
    bad = [(r.case.seed, r.case.description, r.detail) for r in results if r.status == "mismatch"]
    assert not bad, bad
    assert {r.status for r in results} <= {"exact", "refused"}


def test_generation_is_deterministic():
    a, b = generate_edge("near_equal", 5), generate_edge("near_equal", 5)
    assert a.description == b.description and a.vocab == b.vocab and a.max_seq_len == b.max_seq_len


def test_both_outcomes_occur():
    statuses = {check_edge(generate_edge(kind, seed)).status for kind in ("magnitudes", "rare_aggregate")
                for seed in range(10)}
    assert statuses == {"exact", "refused"}


def test_a_silently_wrong_model_is_reported_as_a_mismatch(monkeypatch):
    """The checker itself can fail: a model whose output is tampered with is a mismatch."""
    from rasp_compiler.model.compiled import CompiledModel

    case = next(c for c in (generate_edge("near_equal", s) for s in range(40))
                if check_edge(c).status == "exact" and not isinstance(c.program, type(None)))
    original = CompiledModel.apply_batch

    def wrong(self, batch, backend="jax"):
        outs = original(self, batch, backend=backend)
        return [[o[0], "wrong", *o[2:]] for o in outs]

    monkeypatch.setattr(CompiledModel, "apply_batch", wrong)
    assert check_edge(case).status == "mismatch"
