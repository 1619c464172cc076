"""Blind task folders: the files a method receives say nothing about the circuit.

The same tasks are exported twice, open and blind. Every obvious oracle (labels in the
weight file's metadata, the graph, component names, circuit sizes, variant settings, the
residual basis, the program, the place of a component in its layer) is run on both: on the
open folders it finds the circuit (so the oracle works), on a method's copy of the blind set
(every task folder without ``answer/``) it finds nothing, or no more than chance. Blinding
must not break the task: the visible model reproduces the stored gaps, and a method scored
on a blind folder gets the scores it gets on the open one.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from rasp_compiler.interp.forward import Decomposed
from rasp_compiler.interp.tasks import TaskSetError, export_tasks, load_task
from rasp_compiler.interp.tasks.blind import ANSWER, VISIBLE, load_visible
from rasp_compiler.interp.tasks.score import score_path

PROGRAMS = ["lib:hist", "lib:sort", "lib:reverse"]
KINDS = ["compiled", "rotated", "distractors", "backups"]
NEUTRAL = re.compile(r"^(embed|unembed|L\d+\.H\d+|L\d+\.MLP\.\d+)$")
GIVEAWAYS = ("distractor", "backup", "unmapped", "copied", "lib:", "ex:", "rand-", "MLP:")


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    """(root, [(open folder, blind folder, method's copy of the blind folder)]) for every task."""
    root = tmp_path_factory.mktemp("blind")
    export_tasks(root / "open", programs=PROGRAMS, variants=KINDS, n_pairs=8)
    report = export_tasks(root / "blind", programs=PROGRAMS, variants=KINDS, n_pairs=8, blind=True)
    assert not report.errors and len(report.tasks) == 12
    # what a method receives: the set without any answer/ folder
    shutil.copytree(root / "blind", root / "method", ignore=shutil.ignore_patterns(ANSWER))
    triples = [(root / "open" / t["open_name"], root / "blind" / t["name"], root / "method" / t["name"])
               for t in report.tasks]
    return root, triples


def _walk(x, strings: set, keys: set) -> None:
    if isinstance(x, dict):
        for k, v in x.items():
            keys.add(k)
            _walk(v, strings, keys)
    elif isinstance(x, list):
        for v in x:
            _walk(v, strings, keys)
    elif isinstance(x, str):
        strings.add(x)
        try:  # safetensors metadata values are JSON text
            inner = json.loads(x)
        except ValueError:
            return
        if isinstance(inner, (dict, list)):
            _walk(inner, strings, keys)


def _header(path: Path) -> dict:
    n = int.from_bytes(path.read_bytes()[:8], "little")
    return json.loads(path.read_bytes()[8:8 + n])


def content(folder: Path) -> tuple[set, set]:
    """Every string and every key in every file of ``folder`` (JSON, safetensors headers with
    their metadata and tensor names, file and folder names)."""
    strings, keys = {folder.name}, set()
    for f in folder.rglob("*"):
        if not f.is_file():
            continue
        strings.add(f.relative_to(folder).as_posix())
        if f.suffix == ".json":
            _walk(json.loads(f.read_text()), strings, keys)
        elif f.suffix == ".safetensors":
            _walk(_header(f), strings, keys)
        else:
            strings.add(f.read_text())
    return strings, keys


def answer_words(blind: Path) -> set:
    """Every name the answer key knows that a method must not see."""
    strings, _ = set(), set()
    circuit = json.loads((blind / ANSWER / "circuit.json").read_text())
    task = json.loads((blind / ANSWER / "task.json").read_text())
    unblind = json.loads((blind / ANSWER / "unblind.json").read_text())
    words = {c["node"] for c in circuit["components"]} | {c["target"] for c in circuit["circuits"]}
    words |= {f["label"] for f in circuit["features"]} | {f["node"] for f in circuit["features"]}
    words |= {n["meaning"] for n in circuit["neurons"]} | set(unblind["components"].values())
    words |= {task["name"], task["program"]["name"], task["program"]["origin"], task["variant"]["kind"]}
    _walk(task["variant"]["settings"], strings, set())
    model = json.loads((blind / ANSWER / "model.json").read_text())
    _walk(model["labels"], words, set())
    public = {"embed", "unembed", "", *map(str, model["config"]["vocab"])}
    # an open head's name is its place (L0.H1), which a neutral name may share: places are no secret
    return {w for w in (words | {s for s in strings if len(s) > 2}) - public if not NEUTRAL.match(w)}


def truth_sets(circuit: dict) -> list[tuple[set, set]]:
    """(circuit nodes, every scored component) per target."""
    scored = {c["name"] for c in circuit["components"] if c["kind"] not in ("embed", "unembed")}
    return [(set(c["nodes"]) & scored, scored) for c in circuit["circuits"]]


# ------------------------------------------------------------------------------ the files
def test_a_method_gets_exactly_the_documented_files(sets):
    root, triples = sets
    assert sorted(p.name for p in (root / "method").iterdir() if p.is_file()) == ["README.md", "manifest.json"]
    card = (root / "method" / "README.md").read_text()  # the dataset card: the audit's figures over all tasks
    for _, blind, _ in triples:
        task = json.loads((blind / ANSWER / "task.json").read_text())
        assert task["program"]["name"] not in card and task["variant"]["kind"] not in card
    for _, blind, method in triples:
        assert sorted(f.name for f in method.iterdir()) == sorted(VISIBLE)
        assert re.fullmatch(r"task-[0-9a-f]{12}", blind.name)
        assert (blind / ANSWER / "circuit.json").is_file() and (blind / ANSWER / "unblind.json").is_file()
    manifest = json.loads((root / "method" / "manifest.json").read_text())
    assert [t["name"] for t in manifest["tasks"]] == sorted(t["name"] for t in manifest["tasks"])  # not export order
    assert all(sorted(t["files"]) == sorted(VISIBLE) for t in manifest["tasks"])


def test_no_name_of_the_answer_is_in_the_visible_files(sets):
    """Name oracle: SOp names, feature labels, open component names, program and variant,
    settings: none occurs as a string in a method's files; every component-like name is neutral."""
    root, triples = sets
    manifest_strings, manifest_keys = content(root / "method")
    for open_, blind, method in triples:
        strings, keys = content(method)
        leaked = answer_words(blind) & (strings | manifest_strings)
        assert not leaked, (blind.name, sorted(leaked)[:10])
        assert not [s for s in strings if any(g in s for g in GIVEAWAYS)], blind.name
        # the oracle works on the open folder: the same search finds the answer's names there
        open_strings, _ = content(open_)
        assert answer_words(blind) & open_strings
    # the score keys a method uses: the components of the visible model, all neutral
    for _, _, method in triples:
        model, _, _ = load_visible(method)
        names = [c.name for c in Decomposed(model).components]
        assert all(NEUTRAL.match(n) for n in names), names


def test_labels_in_the_metadata_name_nothing(sets):
    """Label oracle: labels.heads/mlps/neurons/residual. Open folders: the labels of added
    components say what they are (out of the circuit); blind: only the neutral names."""
    _, triples = sets
    found_open = 0
    for open_, blind, method in triples:
        for folder, layout in ((open_, "open"), (method, "blind")):
            meta = _header(folder / "model.safetensors")["__metadata__"]
            labels = json.loads(meta["labels"])
            flagged = {f"L{l}.H{h}" for l, heads in enumerate(labels["heads"]) for h, x in enumerate(heads)
                       if any(g in x for g in ("distractor", "backup", "unmapped"))}
            if layout == "open":
                found_open += bool(flagged)
                continue
            assert not flagged
            assert set(labels["residual"]) == {""} and all(set(n) == {""} for n in labels["neurons"])
            for l, heads in enumerate(labels["heads"]):
                assert all(x in ("", f"L{l}.H{h}") for h, x in enumerate(heads)), heads
            for l, blocks in enumerate(labels["mlps"]):
                assert [b[0] for b in blocks] == [f"L{l}.MLP.{j}" for j in range(len(blocks))]
            config = json.loads(meta["config"])
            assert config["output"] == "output"
            assert set(meta) == {"format", "format_version", "created_by", "config", "labels", "params_sha256",
                                 "sha256"}
    assert found_open  # distractor and backup heads are labelled as such in the open layout


def test_no_graph_sizes_settings_basis_or_program(sets):
    """Graph, size (the k of top-k), settings, basis and program oracles: the fields and
    files they read exist in the open folders and are absent from a method's files."""
    root, triples = sets
    oracle_keys = {
        "graph": {"graph", "edges", "circuits", "nodes", "reads", "writes", "written_by", "read_by",
                  "cancelling_groups", "features", "components", "active"},  # labels.neurons: all "" (above)
        "sizes": {"sizes", "circuit", "output_nodes", "output_edges", "exactness", "accuracy", "metrics"},
        "settings": {"variant", "settings", "copied", "kind", "seed", "pair_seed"},
        "program": {"program", "source", "text", "origin", "graph"},
        "values": {"clean_values", "corrupt_values", "skipped", "skipped_targets"},
    }
    _, manifest_keys = content(root / "method")
    for open_, blind, method in triples:
        strings, keys = content(method)
        for oracle, fields in oracle_keys.items():
            assert not (keys | manifest_keys) & fields, (oracle, blind.name, (keys | manifest_keys) & fields)
        assert "residual_basis" not in keys and not list(method.glob("*.rasp"))
        _, open_keys = content(open_)
        assert {"graph", "circuits", "sizes", "circuit", "settings", "program"} <= open_keys
        info = json.loads((blind / ANSWER / "task.json").read_text())
        if info["variant"]["kind"] in ("rotated", "dense"):
            assert (open_ / "basis.safetensors").is_file() and not (method / "basis.safetensors").exists()
        # the oracles recover the circuit from the open files
        circuit = json.loads((open_ / "circuit.json").read_text())
        task = json.loads((open_ / "task.json").read_text())
        assert task["circuit"]["output_nodes"] == len(circuit["circuits"][0]["nodes"])
        if info["variant"]["kind"] == "backups":
            copied = task["variant"]["settings"]["copied"]  # the backed-up components, by open name
            assert copied and set(copied) <= set(circuit["circuits"][0]["nodes"])


def test_program_oracle_works_only_on_open_folders(sets):
    """Program oracle: compile the program an open folder names and read its circuit off the
    weights; a blind folder names no program (its name is a hash)."""
    from rasp_compiler.interp.ground_truth import ground_truth
    from rasp_compiler.interp.tasks import select_sources

    _, triples = sets
    for open_, blind, method in triples:
        task = json.loads((open_ / "task.json").read_text())
        if task["variant"]["kind"] != "compiled":
            continue
        (source,), _ = select_sources([task["program"]["origin"]])
        truth = ground_truth(source.compile())
        circuit = json.loads((open_ / "circuit.json").read_text())
        assert sorted(n for n in truth.circuit().nodes if n not in ("embed", "unembed")) == \
            circuit["circuits"][0]["nodes"]
        visible = json.loads((method / "task.json").read_text())
        assert "program" not in visible and visible["name"] == method.name and method.name.startswith("task-")


def _ranks(folder: Path) -> dict[str, float]:
    """A component's place among the listed ones of its kind in its layer, from 0 to 1."""
    labels = json.loads(_header(folder / "model.safetensors")["__metadata__"]["labels"])
    out = {}
    for l, heads in enumerate(labels["heads"]):
        used = [h for h, x in enumerate(heads) if x]
        out.update({f"L{l}.H{h}": r / max(1, len(used) - 1) for r, h in enumerate(used)})
        blocks = labels["mlps"][l]
        for j, (node, _, _) in enumerate(blocks):
            out[node if node.startswith(f"L{l}.MLP.") else f"L{l}.MLP:{node}"] = j / max(1, len(blocks) - 1)
    return out


def _early_auc(tasks: list[tuple[dict, list[tuple[set, set]]]]) -> float:
    """Pooled ROC AUC of "earlier in its layer = in the circuit" over every target with both classes."""
    wins = n = 0.0
    for rank, targets in tasks:
        for pos, scored in targets:
            p = [rank[x] for x in scored if x in pos]
            q = [rank[x] for x in scored if x not in pos]
            if p and q:
                a, b = np.asarray(p)[:, None], np.asarray(q)[None, :]
                wins += float((a < b).sum() + 0.5 * (a == b).sum())
                n += a.size * b.size
    return wins / n


def _null(tasks, draws: int = 1000, seed: int = 0) -> np.ndarray:
    """The oracle's AUC when every layer's order is a uniformly random permutation."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(draws):
        shuffled = []
        for rank, targets in tasks:
            groups: dict[str, list[str]] = {}
            for x in rank:
                groups.setdefault(x.split(".")[0] + (".H" if ".H" in x else ".MLP"), []).append(x)
            r = {}
            for xs in groups.values():
                for i, x in enumerate(rng.permutation(xs)):
                    r[x] = i / max(1, len(xs) - 1)
            shuffled.append((r, targets))
        out.append(_early_auc(shuffled))
    return np.asarray(out)


def test_the_place_of_a_component_in_its_layer_says_nothing(sets):
    """Position oracle: variants append the components they add, so "earlier in its layer"
    finds the circuit in open folders (far outside the random-order null); in blind folders
    the heads and blocks are permuted and the oracle's AUC is an ordinary draw of that null
    (inside its central 99%, either side: an inverted oracle would beat chance too)."""
    _, triples = sets
    for layout in ("open", "blind"):
        tasks = []
        for open_, blind, method in triples:
            folder = open_ if layout == "open" else method
            circuit = json.loads(((open_ / "circuit.json") if layout == "open"
                                  else (blind / ANSWER / "circuit.json")).read_text())
            tasks.append((_ranks(folder), truth_sets(circuit)))
        auc, null = _early_auc(tasks), _null(tasks)
        lo, hi = np.quantile(null, [0.005, 0.995])
        if layout == "open":
            assert auc > hi, (auc, lo, hi)
        else:
            assert lo <= auc <= hi, (auc, lo, hi)


# ------------------------------------------------------------------------------ still a task
def test_the_visible_model_runs_and_reproduces_the_stored_gaps(sets):
    """From a method's files alone: the model loads, its metric reproduces every stored gap,
    and its outputs are the open model's (the permutation is a symmetry)."""
    _, triples = sets
    for open_, blind, method in triples:
        model, pair_sets, info = load_visible(method)
        dec = Decomposed(model)
        for target, by_name in pair_sets.items():
            assert re.fullmatch(r"t\d+", target) and target in info["targets"]
            for p in by_name.values():
                metric = lambda ids: (dec.run(ids, xp=np).astype(np.float64) * p.U).sum((1, 2))
                gap = metric(p.clean) - metric(p.corrupt)
                assert np.allclose(gap, p.gap, rtol=1e-4, atol=1e-5 * np.abs(p.gap).max()), (blind.name, target)
        opened = load_task(open_)
        ids = next(iter(opened.pairs.values())).clean
        ours = dec.run(ids, xp=np) @ model.params["unembed.W_U"]
        theirs = Decomposed(opened.model).run(ids, xp=np) @ opened.model.params["unembed.W_U"]
        assert np.allclose(ours, theirs, atol=1e-4), blind.name


def test_the_torch_loader_of_the_docs_runs_a_method_copy(sets):
    """The documented 16-line torch loader reads a blind folder without its answer key."""
    pytest.importorskip("torch")
    from tests.test_tasks import _doc_loader

    _, triples = sets
    open_, blind, method = next(t for t in triples if "rotated" in t[0].name)
    script = _doc_loader() + textwrap.dedent(f"""
        import sys, json
        sys.modules["rasp_compiler"] = None
        m, circuit, pairs, P = load_task({str(method)!r})
        assert circuit is None
        out = {{}}
        for t in pairs["targets"]:
            key = t["tensors"]
            M = lambda ids: (m(ids).double() * P[key + ".U"]).sum((1, 2))
            out[t["target"]] = (M(P[key + ".clean"]) - M(P[key + ".corrupt"])).tolist()
        print(json.dumps(out))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    _, pair_sets, _ = load_visible(method)
    for target, by_name in pair_sets.items():
        assert np.allclose(got[target], by_name["main"].gap, rtol=1e-4, atol=1e-4), target


def test_a_method_copy_cannot_be_scored_and_says_why(sets):
    _, triples = sets
    with pytest.raises(TaskSetError, match="without its answer key"):
        load_task(triples[0][2])


@pytest.mark.parametrize("method, tasks", [("patching", ("distractors", "backups", "rotated")),
                                           ("eap", ("lib-hist__distractors", "lib-reverse__backups"))])
def test_scores_on_a_blind_folder_equal_the_open_folders(sets, method, tasks):
    """The scorer reads the answer key: the same targets, the same circuits (through the
    unblinding map), the same raw scores, and the same ROC AUC, PR AUC and F1 at k (a node
    method on every task with added or rotated components, an edge method on two: jitted
    gradients take long to compile per model)."""
    _, triples = sets
    checked = 0
    for open_, blind, _ in triples:
        if not any(k in open_.name for k in tasks):
            continue
        unblind = json.loads((blind / ANSWER / "unblind.json").read_text())["components"]
        to_open = lambda key: " -> ".join(unblind[x] for x in key.split(" -> "))
        b, about = score_path(blind, method)
        o, _ = score_path(open_, method)
        assert about["task"] == open_.name and about["variant"] in open_.name
        assert [t["target"] for t in b.data["targets"]] == [t["target"] for t in o.data["targets"]]
        for tb, to in zip(b.data["targets"], o.data["targets"]):
            assert sorted(map(to_open, tb["circuit"])) == sorted(to["circuit"])
            assert sorted(map(to_open, tb["exercised"])) == sorted(to["exercised"])
            mapped = {to_open(k): v for k, v in tb["scores"].items()}
            assert mapped.keys() == to["scores"].keys()
            for k, v in to["scores"].items():
                assert abs(mapped[k] - v) <= 1e-6 * abs(to["gap"]) + 1e-9, (open_.name, k)
            for view, row in to["views"].items():
                for field in ("auc", "pr_auc", "f1"):
                    x, y = row.get(field), tb["views"][view].get(field)
                    assert (x is None and y is None) or abs(x - y) < 1e-9, (open_.name, view, field)
        checked += 1
    assert checked >= min(8, 2 * len(tasks) - 2)


def test_a_blind_export_is_byte_reproducible_and_noise_tasks_blind_too(tmp_path):
    for d in ("a", "b"):
        report = export_tasks(tmp_path / d, programs=["lib:hist", "lib:running_max"],
                              variants=["rotated", "backups", "noise"], n_pairs=4, blind=True)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    for f in files:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    [noise] = [t for t in report.tasks if t["variant"]["kind"] == "noise"]  # its targets passed the truth check
    folder = tmp_path / "b" / noise["name"]
    for f in VISIBLE:
        copy = tmp_path / "copy"
        copy.mkdir(exist_ok=True)
        shutil.copy(folder / f, copy / f)
    strings, keys = content(copy)
    assert not answer_words(folder) & strings and "truth_check" not in keys and "dropped_targets" not in keys
    assert load_task(folder).kind == "noise"
