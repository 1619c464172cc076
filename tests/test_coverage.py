"""Pair sets that exercise the structural circuit, and the active circuit each one stores.

"Exercised" is checked here from the model's own forward pass (its activation cache:
``hook_z`` @ W_O for a head, ``hook_post`` @ W_out for an MLP block, ``hook_embed`` +
``hook_pos_embed`` for the embedding), not through the decomposed forward the coverage
module uses.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from rasp_compiler.interp.coverage import LENGTHS, MAIN, TOL, active_circuits, pair_sets, structural
from rasp_compiler.interp.ground_truth import ground_truth
from rasp_compiler.interp.hooks import run_batch_with_cache
from rasp_compiler.interp.tasks import load_task, select_sources, write_task
from rasp_compiler.interp.tasks.export import task_pairs
from rasp_compiler.interp.variants import make_variant


@pytest.fixture(scope="module")
def reverse():
    (source,), _ = select_sources(["lib:reverse"])
    model = source.compile()
    gt = ground_truth(model)
    entries, _ = task_pairs(model, gt, 16, 0)
    sets = pair_sets(model, gt, entries, 16, 0)
    by_target = {p.target: s for (p, _, _), s in zip(entries, sets)}
    return source, model, gt, by_target, active_circuits(model, gt, by_target)


def writes(model, tokens) -> dict[str, np.ndarray]:
    """Each component's write (batch, n_ctx, d_model) from the model's own activation cache."""
    cache = run_batch_with_cache(model, tokens)
    p, labels = model.params, model.labels
    out = {"embed": cache["hook_embed"] + cache["hook_pos_embed"]}
    for l in range(model.config.n_layers):
        for h, name in enumerate(labels.heads[l]):
            if name:
                out[f"L{l}.H{h}"] = cache[f"blocks.{l}.attn.hook_z"][:, :, h] @ p[f"blocks.{l}.attn.W_O"][h]
        for node, a, b in labels.mlps[l]:
            out[f"L{l}.MLP:{node}"] = cache[f"blocks.{l}.mlp.hook_post"][..., a:b] @ p[f"blocks.{l}.mlp.W_out"][a:b]
    return out


def moved(clean, corrupt) -> bool:
    """Some pair's write differs by more than TOL x that pair's largest clean entry (1 if 0)."""
    for c, x in zip(clean, corrupt):
        scale = float(np.abs(c).max()) or 1.0
        if float(np.abs(x - c).max()) > TOL * scale:
            return True
    return False


def independent_active(model, gt, target, pairs) -> tuple[set, set]:
    """The structural members of ``target`` the pairs move, from the model's activation cache."""
    members, dims = structural(gt, target)
    wc, wx = writes(model, pairs.tokens(model, "clean")), writes(model, pairs.tokens(model, "corrupt"))
    index = {lab: i for i, lab in enumerate(model.labels.residual)}  # compiled: feature i = residual dim i
    nodes = {n for n in members.nodes if moved(wc[n], wx[n])}
    edges = set()
    for (a, b), labs in dims.items():
        cols = [index[lab] for lab in labs]
        if moved(wc[a][..., cols], wx[a][..., cols]):
            edges.add((a, b))
    return nodes, edges


def test_reverse_length_chain_is_exercised_by_the_lengths_set(reverse):
    """Same-length pairs leave reverse's length chain silent; the second pair set moves it."""
    _, model, gt, sets, active = reverse
    out = model.config.output
    members, _ = structural(gt, out)
    assert "L0.MLP:length" in members.nodes and len(members.nodes) == 4
    assert "L0.MLP:length" not in active[out][MAIN].nodes  # every main pair has equal lengths
    assert LENGTHS in active[out]
    covered = set(active[out][MAIN].nodes) | set(active[out][LENGTHS].nodes)
    assert covered == set(members.nodes)  # the length chain included
    lengths = sets[out][LENGTHS]
    assert (lengths.gap > 0).all()  # the target differs on every pair of the set
    assert ((lengths.clean != 1).sum(1) != (lengths.corrupt != 1).sum(1)).any()


def test_active_circuit_is_what_the_forward_pass_moves(reverse):
    """Every target, every pair set: the active circuit is exactly the structural members whose
    write moves in the model's own forward pass (so it is a subset of the structural circuit)."""
    _, model, gt, sets, active = reverse
    for target, by_name in sets.items():
        members, _ = structural(gt, target)
        for name, pairs in by_name.items():
            got = active[target][name]
            assert set(got.nodes) <= set(members.nodes) and set(got.edges) <= set(members.edges)
            nodes, edges = independent_active(model, gt, target, pairs)
            assert set(got.nodes) == nodes, (target, name)
            assert set(got.edges) == edges, (target, name)


def test_loaded_task_gives_back_the_pair_sets_and_active_circuits(tmp_path, reverse):
    source, model, gt, sets, active = reverse
    variant = make_variant(model, "compiled", seed=0)
    write_task(tmp_path / "t", source, variant, seed=0, n_pairs=16)
    task = load_task(tmp_path / "t")
    assert set(task.pair_sets) == set(sets)
    for target, by_name in sets.items():
        assert list(task.pair_sets[target]) == list(by_name)
        for name, p in by_name.items():
            q = task.pair_sets[target][name]
            for field in ("clean", "corrupt", "U", "gap", "lengths"):
                assert np.array_equal(getattr(p, field), getattr(q, field)), (target, name, field)
            assert task.active(target, name) == active[target][name].as_json()
        assert task.pairs[target] is task.pair_sets[target][MAIN]
    stored = json.loads((tmp_path / "t" / "pairs.json").read_text())
    assert stored["version"] == 2


def test_version_1_pairs_files_still_load(tmp_path, reverse):
    """A pairs.json written before pair sets (no ``pair_sets``, version 1) loads as ``main`` only."""
    source, model, _, _, _ = reverse
    write_task(tmp_path / "t", source, make_variant(model, "compiled", seed=0), seed=0, n_pairs=4)
    path = tmp_path / "t" / "pairs.json"
    data = json.loads(path.read_text())
    data["version"] = 1
    for t in data["targets"]:
        del t["pair_set"], t["pair_sets"]
    path.write_text(json.dumps(data))
    task = load_task(tmp_path / "t")
    assert all(list(s) == [MAIN] for s in task.pair_sets.values())
    assert list(task.pairs) == [t["target"] for t in data["targets"]]


def test_scoring_on_a_stored_pair_set(tmp_path, reverse):
    """Scoring a task on its ``lengths`` set uses those pairs and scores the exercised view
    against that set's active circuit."""
    from rasp_compiler.interp.tasks.score import score_path

    source, model, _, sets, active = reverse
    write_task(tmp_path / "t", source, make_variant(model, "compiled", seed=0), seed=0, n_pairs=16)
    scored, _ = score_path(tmp_path / "t", "patching", pair_set=LENGTHS)
    data = scored.data
    assert data["pair_set"] == LENGTHS
    assert {t["target"] for t in data["targets"]} == {t for t, s in sets.items() if LENGTHS in s}
    out = next(t for t in data["targets"] if t["is_output"])
    assert set(out["exercised"]) == set(active[model.config.output][LENGTHS].nodes)
    assert "L0.MLP:length" in out["exercised"]
    assert out["scores"]["L0.MLP:length"] > 0  # patching sees the length chain on these pairs
