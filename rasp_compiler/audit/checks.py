"""The four checks of a task folder, each re-derived from the files by the documented rules.

1. **forward**: the values pairs.json states (``clean_values``/``corrupt_values`` at every
   input position, ``positions``), the metric directions ``t{k}.U`` rebuilt from those values,
   and the gaps (``t{k}.gap``, each row's ``gap``) reproduced by :mod:`.forward`; gaps within
   ``GAP_TOL`` x the largest gap of the pair set.
2. **targets**: for every target and pair set, the faithfulness of the claimed (functional)
   circuit, ``(M - M(corrupt)) / gap`` with every unit outside it given its corrupted-run
   output, and the effect ``|ΔM| / gap`` of each single unit outside it, against the variant's
   documented class (:data:`CLASSES`): exact kinds need faithfulness 1 ± 1e-3 and every
   outside effect ≤ 1e-3 on every pair; cancelling kinds excuse a member of a
   ``cancelling_groups`` group whose group is jointly silent (≤ 1e-6 of the gap, 1e-5 dense);
   trained tasks are held to the ``unmapped_bound`` / ``faithfulness_bound`` of task.json, noise
   tasks to their ``truth_check`` (whose stated values are the program's: a noisy read-out that
   differs is counted, not failed).
3. **edges**: reads and writes of every component recomputed from the weights (a row of a
   read matrix / column of a write matrix counts when above 1e-6 of that matrix's largest
   |entry| in the feature basis, 1e-4 with a ``residual_basis``; ``one`` and ``bos`` ignored),
   the structural edges A → B (A before B, a feature A writes and B reads) against
   ``graph.nodes``/``graph.edges``, and every circuit against the functional rule (paths into
   the target using no edge out of a cancelling group). Trained tasks state the trained-to
   graph, not their weights' one: only the circuits' rule is checked there.
4. **coverage**: which circuit members each pair set exercises (docs/testbed.md, "Pair sets
   and coverage"), against each circuit's stored ``active``; the share exercised by some
   pair set is a figure, not a failure.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .files import PAD, AuditFileError, PairSet, TaskFiles, get, load
from .forward import Forward

GAP_TOL = 1e-4  # stored gap vs recomputed, relative to the pair set's largest gap
VALUE_TOL = 1e-4  # a numerical value, relative to max(1, |value|)
U_TOL = 1e-9  # metric directions, relative to their largest entry
EXERCISED_TOL = 1e-6  # docs/testbed.md "Pair sets and coverage"
CONSTANT = ("one", "bos")
EXACT = {"faithfulness": 1e-3, "outside": 1e-3}


@dataclass(frozen=True)
class VariantClass:
    """What a variant kind's documentation promises about every target's circuit."""

    faithfulness: tuple  # (lo, hi): the claimed circuit's faithfulness on every pair
    outside: float  # largest |effect| / gap of one unit outside the circuit
    group: float | None  # None: no cancelling groups; else joint |effect| / gap of a group
    from_weights: bool  # graph.edges is the rule applied to these weights
    model_labels: bool = True  # the stated values are the model's decoding (noise: the program's)


EXACT_FAITH = (1 - 1e-3, 1 + 1e-3)
CLASSES = {
    "compiled": VariantClass(EXACT_FAITH, 1e-3, None, True),
    "rotated": VariantClass(EXACT_FAITH, 1e-3, None, True),
    "backups": VariantClass(EXACT_FAITH, 1e-3, None, True),
    "noise": VariantClass(EXACT_FAITH, 1e-3, None, True, model_labels=False),
    "distractors": VariantClass(EXACT_FAITH, 1e-3, 1e-6, True),
    "dense": VariantClass(EXACT_FAITH, 1e-3, 1e-5, True),
}


def variant_class(files: TaskFiles) -> VariantClass:
    """The documented class of the task's variant: trained tasks are held to the bounds task.json
    states (``exactness.metrics``), noise tasks to their ``truth_check`` bounds when they have one."""
    kind, tfile = files.kind, files.at("task.json")
    if kind == "trained":
        m = get(get(files.task, "exactness", tfile), "metrics", tfile, "exactness")
        bound = lambda k: float(get(m, k, tfile, "exactness.metrics"))
        fb = bound("faithfulness_bound")
        return VariantClass((1 - fb, 1 + fb), bound("unmapped_bound"), None, False)
    if kind == "noise" and "truth_check" in files.task:
        tc = files.task["truth_check"]
        lo, hi = (float(x) for x in get(tc, "faithfulness", tfile, "truth_check"))
        return VariantClass((lo, hi), float(get(tc, "outside_effect_max", tfile, "truth_check")), None, True,
                            model_labels=False)
    if kind not in CLASSES:
        raise AuditFileError(files.at("task.json"), "variant.kind",
                             f"{kind!r} has no documented truth class (known: {', '.join(sorted(CLASSES))}, trained)")
    return CLASSES[kind]


@dataclass(frozen=True)
class Check:
    name: str  # forward | targets | edges | coverage
    ok: bool | None  # None: not applicable to this variant
    problems: tuple = ()
    figures: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TaskAudit:
    name: str
    variant: str
    checks: tuple = ()
    error: str | None = None  # the task could not be read

    @property
    def ok(self) -> bool:
        return self.error is None and all(c.ok is not False for c in self.checks)

    def check(self, name: str) -> Check | None:
        return next((c for c in self.checks if c.name == name), None)

    @property
    def problems(self) -> list[str]:
        return ([self.error] if self.error else []) + [p for c in self.checks for p in c.problems]

    @property
    def reason(self) -> str:
        """One line saying why the task fails ('' when it passes)."""
        probs = self.problems
        return "" if not probs else probs[0] + (f" (and {len(probs) - 1} more)" if len(probs) > 1 else "")


# --------------------------------------------------------------------------- read-outs
@dataclass(frozen=True)
class Readout:
    matrix: np.ndarray  # (d_model, k)
    numerical: bool
    values: tuple  # categorical: each column's value (JSON form)


def circuit_of(files: TaskFiles, target: str) -> dict:
    for c in get(files.circuit, "circuits", files.at("circuit.json")):
        if c.get("target") == target:
            return c
    raise AuditFileError(files.at("circuit.json"), "circuits", f"no circuit for target {target!r}")


def _features(files: TaskFiles) -> dict[str, dict]:
    cfile = files.at("circuit.json")
    feats = get(files.circuit, "features", cfile)
    n = len(files.directions())
    for i, f in enumerate(feats):
        if not (isinstance(f.get("index"), int) and 0 <= f["index"] < n):
            raise AuditFileError(cfile, f"features[{i}].index", f"{f.get('index')!r} is not a row of the basis ({n})")
    return {get(f, "label", cfile, f"features[{i}]"): f for i, f in enumerate(feats)}


def readout(files: TaskFiles, ps: PairSet) -> Readout:
    """How the target's value is read from the final residual (docs: the model's own decoding)."""
    if ps.is_output:
        c = files.config
        return Readout(files.weights["unembed.W_U"], bool(c.get("output_numerical")), tuple(c.get("output_values") or ()))
    feats, D = _features(files), files.directions()
    cfile = files.at("circuit.json")
    readouts = files.circuit.get("readouts") or {}
    own = sorted((f for f in feats.values() if f.get("node") == ps.target and f.get("kind") in ("categorical", "numerical")),
                 key=lambda f: f["index"])
    if own and own[0]["kind"] == "categorical":
        return Readout(D[[f["index"] for f in own]].T, False, tuple(f["value"] for f in own))
    if own:
        return Readout(D[[own[0]["index"]]].T, True, ())
    if ps.target in readouts:
        vec = np.zeros(D.shape[1])
        for label, w in readouts[ps.target].items():
            if label not in feats:
                raise AuditFileError(cfile, f"readouts.{ps.target}", f"unknown feature {label!r}")
            vec += float(w) * D[feats[label]["index"]]
        return Readout(vec[:, None], True, ())
    raise AuditFileError(cfile, "features", f"no feature or read-out encodes target {ps.target!r}")


def decode(ro: Readout, resid: np.ndarray) -> list[list]:
    """Values (B, n_ctx) in JSON form: categorical argmax when above 0.5 (else None), numerical the coordinate."""
    coords = resid @ ro.matrix
    if ro.numerical:
        return coords[..., 0].tolist()
    j = coords.argmax(-1)
    top = np.take_along_axis(coords, j[..., None], -1)[..., 0]
    return [[ro.values[j[b, p]] if top[b, p] > 0.5 else None for p in range(coords.shape[1])]
            for b in range(coords.shape[0])]


def _num(v):
    if isinstance(v, dict) and v.get("t") == "float":
        return float(v["v"])
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def same_value(a, b, numerical: bool) -> bool:
    """Stored and recomputed values agree: JSON-identical (1, 1.0, true and "1" kept apart),
    numerical ones within VALUE_TOL."""
    if a is None or b is None:
        return a is None and b is None
    if numerical:
        x, y = _num(a), _num(b)
        if x is None or y is None:
            return False
        if math.isnan(x) or math.isnan(y):
            return math.isnan(x) and math.isnan(y)
        return abs(x - y) <= VALUE_TOL * max(1.0, abs(y))
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def direction(ro: Readout, clean, corrupt) -> np.ndarray | None:
    """The documented metric direction at a position where the values differ (None: unknown value)."""
    if ro.numerical:
        x, y = _num(clean), _num(corrupt)
        return None if x is None or y is None else np.sign(x - y) * ro.matrix[:, 0]
    key = lambda v: json.dumps(v, sort_keys=True)
    col = {key(v): k for k, v in enumerate(ro.values)}
    u = np.zeros(ro.matrix.shape[0])
    for v, s in ((clean, 1.0), (corrupt, -1.0)):
        if v is not None:
            if key(v) not in col:
                return None
            u += s * ro.matrix[:, col[key(v)]]
    return u


def metric(U: np.ndarray, resid: np.ndarray) -> np.ndarray:
    return (resid * U).sum((1, 2))


def _where(files: TaskFiles, ps: PairSet) -> str:
    return f"{ps.target!r} pair set {ps.name!r}"


def _first(bad: list[str], total: str, what: str) -> str:
    return f"{what}: {len(bad)} of {total} ({bad[0]}" + (", ..." if len(bad) > 1 else "") + ")"


# --------------------------------------------------------------------------- 1. forward
def check_forward(files: TaskFiles, fwd: Forward, runs: dict) -> Check:
    problems, n_values, n_bad_values, n_gaps, n_bad_gaps, n_program = [], 0, 0, 0, 0, 0
    pfile, tfile = files.at("pairs.json"), "pairs.safetensors"
    model_labels = variant_class(files).model_labels  # noise: the values are the program's, not the model's
    toks = files.pairs.get("token_ids")
    for ps in files.pair_sets:
        where = _where(files, ps)
        ro = readout(files, ps)
        clean, corrupt = runs[ps.prefix]
        vals = {"clean": decode(ro, clean.resid), "corrupt": decode(ro, corrupt.resid)}
        ids = {"clean": ps.clean, "corrupt": ps.corrupt}
        bad_vals, bad_pos, bad_toks, bad_u = [], [], [], []
        checked = n_values
        U = np.zeros_like(ps.U)
        for i, row in enumerate(ps.rows):
            length, readable = {}, True
            for side in ("clean", "corrupt"):
                n = int((ids[side][i] != PAD).sum()) - 1
                length[side] = n
                stored = row.get(f"{side}_values")
                if not isinstance(stored, list) or len(stored) != ids[side].shape[1]:
                    bad_vals.append(f"pair {i}: {side}_values has not one value per position")
                    readable = False
                    continue
                if toks is not None and row.get(side) != [toks[t] for t in ids[side][i][:n + 1]]:
                    bad_toks.append(f"pair {i} {side}")
                for p in range(1, n + 1):
                    n_values += 1
                    if not same_value(stored[p], vals[side][i][p], ro.numerical):
                        if not model_labels:  # a noisy model may miss the program's value: a figure
                            n_program += 1
                            continue
                        bad_vals.append(f"pair {i} {side} position {p}: stored {stored[p]!r}, "
                                        f"the model computes {vals[side][i][p]!r}")
            if length["clean"] != int(ps.lengths[i]):
                bad_toks.append(f"pair {i}: {ps.prefix}.lengths {int(ps.lengths[i])}, clean has {length['clean']}")
            if not readable:
                continue
            cv, xv = row["clean_values"], row["corrupt_values"]
            differ = [p for p in range(1, min(length.values()) + 1) if not same_value(cv[p], xv[p], ro.numerical)]
            if row.get("positions") != differ:
                bad_pos.append(f"pair {i}: positions {row.get('positions')}, values differ at {differ}")
            for p in differ:
                u = direction(ro, cv[p], xv[p])
                if u is None:
                    bad_u.append(f"pair {i} position {p}: {cv[p]!r}/{xv[p]!r} is no value of the target")
                else:
                    U[i, p] = u
        n_bad_values += len(bad_vals)
        scale = max(np.abs(ps.U).max(initial=0.0), 1e-300)
        off = np.abs(U - ps.U).max(axis=(1, 2)) > U_TOL * scale
        bad_u += [f"pair {i}" for i in np.nonzero(off)[0]]
        gap = metric(ps.U, clean.resid) - metric(ps.U, corrupt.resid)
        gscale = np.abs(ps.gap).max(initial=0.0)
        wrong = np.abs(gap - ps.gap) > GAP_TOL * gscale
        n_gaps += len(gap)
        n_bad_gaps += int(wrong.sum())
        row_gap = np.array([float(r.get("gap", np.nan)) for r in ps.rows])
        for bad, file, fld, what, total in (
                (bad_vals, pfile, "clean_values/corrupt_values", "values that are not what the model computes",
                 f"{n_values - checked} values"),
                (bad_pos, pfile, "positions", "positions that are not where the stated values differ",
                 f"{len(ps.rows)} pairs"),
                (bad_toks, pfile, "clean/corrupt", "token lists that are not the pair's token ids",
                 f"{len(ps.rows)} pairs"),
                (bad_u, tfile, f"{ps.prefix}.U", "metric directions that are not the stated values' read-outs",
                 f"{len(ps.rows)} pairs")):
            if bad:
                problems.append(f"{files.name}: {file} {fld} ({where}): forward: {_first(bad, total, what)}")
        if wrong.any():
            i = int(np.argmax(np.abs(gap - ps.gap)))
            problems.append(f"{files.name}: {tfile} {ps.prefix}.gap ({where}): forward: {int(wrong.sum())} of "
                            f"{len(gap)} stored gaps differ from the forward pass by more than {GAP_TOL:g} of the "
                            f"largest gap (pair {i}: stored {ps.gap[i]:.6g}, recomputed {gap[i]:.6g})")
        if not np.allclose(row_gap, ps.gap, rtol=1e-9, atol=1e-12 * max(gscale, 1.0)):
            problems.append(f"{files.name}: {pfile} gap ({where}): forward: the rows' gaps are not "
                            f"{tfile} {ps.prefix}.gap")
        if (ps.gap <= 0).any():
            problems.append(f"{files.name}: {tfile} {ps.prefix}.gap ({where}): forward: a gap is not > 0")
    return Check("forward", not problems, tuple(problems),
                 {"values": n_values, "value_disagreements": n_bad_values, "gaps": n_gaps,
                  "model_misses_label": n_program,
                  "gap_disagreements": n_bad_gaps})


# --------------------------------------------------------------------------- 2. targets
def check_targets(files: TaskFiles, fwd: Forward, runs: dict) -> Check:
    cls = variant_class(files)
    cfile = files.at("circuit.json")
    groups = [tuple(g) for g in files.circuit.get("cancelling_groups") or []]
    problems, per_target = [], {}
    worst_outside, worst_member, worst_group, faith_lo, faith_hi = 0.0, 0.0, 0.0, math.inf, -math.inf
    for ps in files.pair_sets:
        where = _where(files, ps)
        circ = circuit_of(files, ps.target)
        inside = set(get(circ, "nodes", cfile, f"circuits[{ps.target}]"))
        clean, corrupt = runs[ps.prefix]
        gap = metric(ps.U, clean.resid) - metric(ps.U, corrupt.resid)
        safe = np.where(gap > 0, gap, np.nan)
        outside = [u.name for u in fwd.units if u.kind != "embed" and u.name not in inside]
        m = metric(ps.U, fwd.run(ps.clean, {u: corrupt.outs[u] for u in outside}).resid)
        faith = (m - metric(ps.U, corrupt.resid)) / safe
        faith_lo, faith_hi = min(faith_lo, float(np.nanmin(faith))), max(faith_hi, float(np.nanmax(faith)))
        bad = []
        lo, hi = cls.faithfulness
        out_of = ~((faith >= lo) & (faith <= hi))
        if out_of.any():
            i = int(np.nanargmax(np.abs(faith - 1)))
            bad.append(f"faithfulness of the claimed circuit {faith[i]:.4g} on pair {i} (allowed {lo:g}..{hi:g}; "
                       f"{int(out_of.sum())} of {len(faith)} pairs out)")
        excused = set()
        if cls.group is not None:
            for gi, g in enumerate(groups):
                if not set(g) & set(outside):
                    continue
                if set(g) & inside:
                    bad.append(f"cancelling group {gi} {list(g)} is partly inside the circuit")
                    continue
                base = metric(ps.U, clean.resid)
                joint = np.abs(metric(ps.U, fwd.run(ps.clean, {u: corrupt.outs[u] for u in g}).resid) - base) / safe
                worst_group = max(worst_group, float(np.nanmax(joint)))
                if np.nanmax(joint) > cls.group:
                    bad.append(f"cancelling group {gi} {list(g)} jointly moves the metric by {np.nanmax(joint):.3g} of "
                               f"the gap (allowed {cls.group:g})")
                else:
                    excused |= set(g)
        base = metric(ps.U, clean.resid)
        for u in outside:
            eff = np.abs(metric(ps.U, fwd.run(ps.clean, {u: corrupt.outs[u]}).resid) - base) / safe
            if u in excused:  # a cancelling member alone may move the metric; its group may not
                worst_member = max(worst_member, float(np.nanmax(eff)))
                continue
            worst_outside = max(worst_outside, float(np.nanmax(eff)))
            if np.nanmax(eff) > cls.outside:
                i = int(np.nanargmax(eff))
                bad.append(f"{u} (outside the circuit) moves the metric by {eff[i]:.3g} of the gap on pair {i} "
                           f"(allowed {cls.outside:g})")
        if np.isnan(safe).any():
            bad.append("a recomputed gap is not > 0")
        if bad:
            problems.append(f"{files.name}: {cfile} circuits[{ps.target}] ({where}): targets: " + "; ".join(bad))
        per_target[ps.target] = per_target.get(ps.target, True) and not bad
    ok_targets = sum(per_target.values())
    return Check("targets", not problems, tuple(problems),
                 {"targets": len(per_target), "targets_ok": ok_targets, "outside_max": worst_outside,
                  "member_max": worst_member, "group_max": worst_group,
                  "faithfulness_min": faith_lo, "faithfulness_max": faith_hi})


# --------------------------------------------------------------------------- 3. edges
def reads_writes(files: TaskFiles) -> dict[str, tuple[set, set]]:
    """component -> (labels it reads, labels it writes), from the weights by the documented rule."""
    W, D = files.weights, files.directions()
    tol = 1e-6 if files.basis is None else 1e-4
    labels = [None] * len(D)
    for label, f in _features(files).items():
        labels[f["index"]] = label

    def rows(m: np.ndarray) -> set:  # m: (features, k)
        m = np.abs(m)
        scale = m.max(initial=0.0)
        if scale == 0:
            return set()
        return {labels[i] for i in np.nonzero(m.max(1) > tol * scale)[0]
                if labels[i] is not None and labels[i] not in CONSTANT}

    read = lambda w: rows(D @ w)  # w: (d_model, k)
    write = lambda w: rows(D @ w.T)  # w: (k, d_model)
    out = {}
    cfile = files.at("circuit.json")
    for i, c in enumerate(get(files.circuit, "components", cfile)):
        kind, l = c["kind"], c.get("layer")
        if kind == "embed":
            out[c["name"]] = (set(), write(W["embed.W_E"]) | write(W["pos_embed.W_pos"]))
        elif kind == "unembed":
            out[c["name"]] = (read(W["unembed.W_U"]), set())
        elif kind in ("head", "attn"):
            heads = [c["head"]] if kind == "head" else list(c["heads"])
            r, w = set(), set()
            for h in heads:
                for s in "QKV":
                    r |= read(W[f"blocks.{l}.attn.W_{s}"][h])
                w |= write(W[f"blocks.{l}.attn.W_O"][h])
            out[c["name"]] = (r, w)
        else:
            sl = slice(c["lo"], c["hi"])
            out[c["name"]] = (read(W[f"blocks.{l}.mlp.W_in"][:, sl]), write(W[f"blocks.{l}.mlp.W_out"][sl]))
    return out


def structural_edges(files: TaskFiles, rw: dict[str, tuple[set, set]]) -> dict[tuple[str, str], set]:
    order = {c["name"]: c["order"] for c in files.circuit["components"]}
    return {(a, b): rw[a][1] & rw[b][0] for a in rw for b in rw
            if order[a] < order[b] and rw[a][1] & rw[b][0]}


def functional(files: TaskFiles, edges: dict[tuple[str, str], set], writes: dict[str, set], circ: dict
               ) -> tuple[set, set]:
    """(nodes, edges) of the target's functional circuit: paths into its sink avoiding cancelling senders."""
    silent = {n for g in files.circuit.get("cancelling_groups") or [] for n in g}
    live = {e for e in edges if e[0] not in silent}
    sink = "unembed"
    if not circ.get("is_output"):
        sink = "probe:" + circ["target"]
        reads = set(circ.get("reads") or [])
        live |= {(n, sink) for n, w in writes.items() if n not in silent and w & reads}
    nodes, frontier = {sink}, [sink]
    while frontier:
        b = frontier.pop()
        for a, bb in live:
            if bb == b and a not in nodes:
                nodes.add(a)
                frontier.append(a)
    cedges = {(a, "unembed" if b == sink else b) for a, b in live if a in nodes and b in nodes}
    return nodes - {"embed", sink}, cedges


def check_edges(files: TaskFiles) -> Check:
    cls = variant_class(files)
    cfile = files.at("circuit.json")
    graph = get(files.circuit, "graph", cfile)
    stored = {(e["from"], e["to"]): e for e in get(graph, "edges", cfile, "graph")}
    stored_nodes = {n["name"]: n for n in get(graph, "nodes", cfile, "graph")}
    groups = [list(g) for g in files.circuit.get("cancelling_groups") or []]
    group_of = {n: i for i, g in enumerate(groups) for n in g}
    problems, diffs = [], 0
    if cls.from_weights:
        rw = reads_writes(files)
        mine = structural_edges(files, rw)
        for name, (r, w) in rw.items():
            node = stored_nodes.get(name)
            if node is None or set(node["reads"]) != r or set(node["writes"]) != w:
                diffs += 1
                problems.append(f"{files.name}: {cfile} graph.nodes[{name}]: edges: reads/writes are not the "
                                f"weights' (weights: reads {sorted(r)}, writes {sorted(w)})")
        for e in sorted(set(mine) | set(stored)):
            if e not in stored:
                problems.append(f"{files.name}: {cfile} graph.edges: edges: {e[0]} -> {e[1]} missing "
                                f"(the weights carry {sorted(mine[e])})")
            elif e not in mine:
                problems.append(f"{files.name}: {cfile} graph.edges: edges: {e[0]} -> {e[1]} is not in the weights")
            elif set(stored[e]["dims"]) != mine[e]:
                problems.append(f"{files.name}: {cfile} graph.edges[{e[0]} -> {e[1]}].dims: edges: "
                                f"{stored[e]['dims']}, the weights carry {sorted(mine[e])}")
            elif stored[e].get("cancelling") != group_of.get(e[0]):
                problems.append(f"{files.name}: {cfile} graph.edges[{e[0]} -> {e[1]}].cancelling: edges: "
                                f"{stored[e].get('cancelling')!r}, the sender's group is {group_of.get(e[0])!r}")
            else:
                continue
            diffs += 1
        edges, writes = mine, {n: w for n, (_, w) in rw.items()}
    else:
        edges = {e: set(d["dims"]) for e, d in stored.items()}
        writes = {n: set(d.get("writes") or []) for n, d in stored_nodes.items()}
    circuit_diffs = 0
    for i, circ in enumerate(get(files.circuit, "circuits", cfile)):
        nodes, cedges = functional(files, edges, writes, circ)
        snodes, sedges = set(circ.get("nodes") or []), {tuple(e) for e in circ.get("edges") or []}
        if nodes != snodes or cedges != sedges:
            circuit_diffs += len(nodes ^ snodes) + len(cedges ^ sedges)
            problems.append(f"{files.name}: {cfile} circuits[{i}] ({circ.get('target')!r}): edges: not the functional "
                            f"circuit of the {'weights' if cls.from_weights else 'stated graph'}: nodes "
                            f"+{sorted(nodes - snodes)} -{sorted(snodes - nodes)}, edges +{sorted(cedges - sedges)} "
                            f"-{sorted(sedges - cedges)}")
    return Check("edges", not problems, tuple(problems),
                 {"edges": len(edges), "edge_diffs": diffs, "circuit_diffs": circuit_diffs,
                  "from_weights": cls.from_weights})


# --------------------------------------------------------------------------- 4. coverage
def _moves(clean: np.ndarray, corrupt: np.ndarray) -> bool:
    """Some pair's write differs by more than EXERCISED_TOL x its largest clean entry (1 if 0)."""
    P = len(clean)
    scale = np.abs(clean).reshape(P, -1).max(1, initial=0.0)
    scale = np.where(scale > 0, scale, 1.0)
    return bool((np.abs(corrupt - clean).reshape(P, -1).max(1, initial=0.0) > EXERCISED_TOL * scale).any())


def check_coverage(files: TaskFiles, fwd: Forward, runs: dict) -> Check:
    cfile = files.at("circuit.json")
    feats, D = _features(files), files.directions()
    stored = {(e["from"], e["to"]): set(e["dims"]) for e in files.circuit["graph"]["edges"]}
    writes = {n["name"]: set(n.get("writes") or []) for n in files.circuit["graph"]["nodes"]}
    problems, members, exercised = [], 0, 0
    union: dict[str, set] = {}
    for ps in files.pair_sets:
        circ = circuit_of(files, ps.target)
        clean, corrupt = runs[ps.prefix]
        nodes = [n for n in circ.get("nodes") or []]
        edges = [tuple(e) for e in circ.get("edges") or []]
        on = {("node", n) for n in nodes if n in clean.outs and _moves(clean.outs[n], corrupt.outs[n])}
        for a, b in edges:
            if b == "unembed" and not circ.get("is_output"):
                labels = writes.get(a, set()) & set(circ.get("reads") or [])
            else:
                labels = stored.get((a, b), set())
            idx = [feats[x]["index"] for x in labels if x in feats]
            proj = lambda o: o @ D[idx].T
            if a in clean.outs and idx and _moves(proj(clean.outs[a]), proj(corrupt.outs[a])):
                on.add(("edge", (a, b)))
        union.setdefault(ps.target, set()).update(on)
        active = (circ.get("active") or {}).get(ps.name)
        if active is not None:
            claim = {("node", n) for n in active.get("nodes", [])} | {("edge", tuple(e)) for e in active.get("edges", [])}
            if claim != on:
                extra, missing = sorted(map(str, claim - on)), sorted(map(str, on - claim))
                problems.append(f"{files.name}: {cfile} circuits[{ps.target}].active.{ps.name}: coverage: not the "
                                f"members this pair set exercises (claimed but silent: {extra}; exercised but not "
                                f"claimed: {missing})")
    for target, on in union.items():
        circ = circuit_of(files, target)
        members += len(circ.get("nodes") or []) + len(circ.get("edges") or [])
        exercised += len(on)
    return Check("coverage", not problems, tuple(problems), {"members": members, "exercised": exercised})


# --------------------------------------------------------------------------- one task
def audit_files(files: TaskFiles) -> TaskAudit:
    fwd = Forward(files)
    runs = {ps.prefix: (fwd.run(ps.clean), fwd.run(ps.corrupt)) for ps in files.pair_sets}
    checks = []
    for name, fn in (("forward", lambda: check_forward(files, fwd, runs)),
                     ("targets", lambda: check_targets(files, fwd, runs)),
                     ("edges", lambda: check_edges(files)),
                     ("coverage", lambda: check_coverage(files, fwd, runs))):
        try:
            checks.append(fn())
        except AuditFileError as exc:
            checks.append(Check(name, False, (f"{files.name}: {exc}: {name}",)))
    return TaskAudit(files.name, files.kind, tuple(checks))


def audit_task(folder, name: str | None = None) -> TaskAudit:
    """Audit one task folder from its files alone (a file that cannot be read fails the task);
    ``name``: the task's name if the folder is not called so (yet)."""
    folder = Path(folder)
    name = name or folder.name
    try:
        files = load(folder, name)
    except AuditFileError as exc:
        return TaskAudit(name, "?", (), f"{name}: {exc}: files")
    return audit_files(files)
