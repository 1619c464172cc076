"""``testbed list | export | score | sweep | report``: the benchmark from the command line.

    rasp-compiler testbed export tasks/ --random 60          # the default task set
    rasp-compiler testbed score --method eap tasks/lib-sort__rotated__s0
    rasp-compiler testbed sweep tasks/ results/ --methods patching,atp_star
    rasp-compiler testbed report results/
    rasp-compiler testbed audit tasks/                        # every task re-checked from its files
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from rasp_compiler.cli.common import _error, app, command, err, out

testbed_app = typer.Typer(name="testbed", no_args_is_help=True, add_completion=False,
                          help="The interpretability benchmark: export tasks, score a method, sweep, report.")
app.add_typer(testbed_app, name="testbed")


def _csv(text: str | None) -> list[str] | None:
    return None if text is None else [s.strip() for s in text.split(",") if s.strip()]


def _ints(text: str, what: str) -> list[int]:
    try:
        return [int(s) for s in _csv(text) or []]
    except ValueError:
        raise typer.BadParameter(f"give comma-separated integers such as 0,1,2 (got {text!r})",
                                 param_hint=what) from None


def _progress(label: str):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                    TimeElapsedColumn(), console=err, transient=True, disable=not err.is_terminal)


# ---------------------------------------------------------------------------- list
@testbed_app.command("list")
def list_command(
    tasks: Annotated[Optional[Path], typer.Argument(
        help="A task set written by export: list its tasks. Without it: programs, variants, methods.")] = None,
) -> None:
    """List a task set's tasks, or what a task set can be made of."""
    if tasks is not None:
        from rasp_compiler.interp.tasks import load_manifest

        m = load_manifest(tasks)
        if m.get("layout") == "blind":  # a method's copy of a blind set: nothing but names
            out.print(f"{m['n_tasks']} blind tasks (no answer key here): " + " ".join(t["name"] for t in m["tasks"]))
            return
        table = Table(title=f"{m['n_tasks']} tasks, {m['total_bytes'] / 1e6:.2f} MB")
        table.add_column("task", no_wrap=True, min_width=max((len(t.get("open_name", t["name"])) for t in m["tasks"]),
                                                             default=4))
        blind = any("open_name" in t for t in m["tasks"])  # a blind set, listed from its answer key
        if blind:
            table.add_column("folder", no_wrap=True)
        for col in ("variant", "layers", "d_model", "accuracy", "circuit", "targets"):
            table.add_column(col)
        for t in m["tasks"]:
            ex = t["exactness"]
            extra = "".join(f" {k}={v:.2f}" for k, v in ex.get("metrics", {}).items())
            table.add_row(escape(t.get("open_name", t["name"])), *([escape(t["name"])] if blind else []),
                          t["variant"]["kind"], str(t["sizes"]["layers"]),
                          str(t["sizes"]["d_model"]), f"{ex['accuracy']:.3f}{extra}",
                          f"{t['circuit']['output_nodes']}/{t['circuit']['components']}", str(len(t["targets"])))
        out.print(table)
        for note in m.get("skipped", []):
            out.print(f"[dim]skipped: {escape(note)}[/dim]")
        return
    from rasp_compiler.interp.tasks.score import method_level, method_names
    from rasp_compiler.interp.tasks.sources import example_sources, library_sources
    from rasp_compiler.interp.variants import KINDS, available

    have = available()
    out.print("programs: " + " ".join(s.origin for s in library_sources()) + " "
              + " ".join(s.origin for s in example_sources()[0]) + " (+ --random N)")
    out.print("variants: " + " ".join(k if k in have else f"[dim]{k} (not installed)[/dim]" for k in KINDS))
    out.print("methods: " + " ".join(f"{m} ({method_level(m)})" for m in method_names()))


# ---------------------------------------------------------------------------- export
@testbed_app.command("export")
def export_command(
    directory: Annotated[Path, typer.Argument(help="Folder to write the task folders and manifest.json into.")],
    programs: Annotated[str, typer.Option(
        "--programs", help="Comma-separated: lib (every library program), lib:NAME, examples, ex:NAME, "
                                 "corpus:PATH (InterpBench's cases), corpus:PATH:1,5,88, your FILE.rasp or "
                                 "MODULE:FUNCTION (a Python function returning the program; these need --vocab).")]
    = "lib,examples",
    variants: Annotated[Optional[str], typer.Option(
        "--variants", help="Comma-separated variant kinds (default: every installed one).")] = None,
    seeds: Annotated[str, typer.Option("--seeds", help="Variant seeds, comma-separated.")] = "0",
    random: Annotated[int, typer.Option("--random", min=0, help="Also N random programs of 2+ layers.")] = 60,
    seed: Annotated[int, typer.Option("--seed", help="First generator seed of the random programs.")] = 0,
    n_pairs: Annotated[int, typer.Option("--n-pairs", min=1, help="Clean/corrupted pairs per target.")] = 16,
    open_layout: Annotated[bool, typer.Option(
        "--open", help="Write the open layout (every file, named folders; for development) instead of blind "
                       "folders whose answer key sits in answer/.")] = False,
    vocab: Annotated[Optional[str], typer.Option(
        "--vocab", help="Tokens your own programs (FILE.rasp, MODULE:FUNCTION) are compiled with, e.g. a,b,c.")]
    = None,
    max_seq_len: Annotated[Optional[int], typer.Option(
        "--max-seq-len", min=1, help="Longest input of your own programs (default 5).")] = None,
    causal: Annotated[bool, typer.Option("--causal", help="Compile your own programs causal.")] = False,
) -> None:
    """Write one folder per task (program x variant x seed) and manifest.json.

    Blind by default: each task folder holds the files a method may read (neutral names, no
    labels) and its answer key in answer/ (docs/testbed_format.md).

    Example: rasp-compiler testbed export tasks/ --programs lib --random 10
    Your program: rasp-compiler testbed export mytasks/ --programs count_first.rasp --vocab a,b,c --random 0
    """
    import warnings

    from rasp_compiler.interp.tasks import export_tasks
    from rasp_compiler.interp.tasks.trained_gate import TrainedBarWarning

    with warnings.catch_warnings(), _progress("export") as progress:
        warnings.simplefilter("ignore", TrainedBarWarning)  # each refusal is one "skipped:" line below
        bar = progress.add_task("", total=None)

        def advance(name: str, done: int, total: int) -> None:
            progress.update(bar, completed=done, total=total, description=name)

        from rasp_compiler.cli.common import VocabType, _parse_vocab

        report = export_tasks(directory, programs=_csv(programs), variants=_csv(variants),
                              seeds=_ints(seeds, "--seeds"), n_random=random, random_seed=seed, n_pairs=n_pairs,
                              progress=advance, blind=not open_layout,
                              vocab=None if vocab is None else _parse_vocab(vocab, VocabType.auto),
                              max_seq_len=max_seq_len, causal=causal)
    size = sum((directory / t["name"] / f).stat().st_size for t in report.tasks for f in t["files"])
    out.print(f"wrote {len(report.tasks)} {'open' if open_layout else 'blind'} tasks ({size / 1e6:.1f} MB) to "
              f"{escape(str(directory))} in {report.seconds:.0f} s; manifest: {escape(str(report.manifest))}")
    if not open_layout and report.tasks:
        out.print("[dim]a method receives each folder without answer/ (and the set without answer/); "
                  "`testbed list` shows which task is which[/dim]")
    refused = sum(not a.ok for a in report.audits)
    out.print(f"audit (rasp_compiler.audit, from the files alone): {len(report.audits) - refused} passed, "
              f"{refused} refused and not written; dataset card: {escape(str(directory / 'README.md'))}")
    for note in report.skipped:
        out.print(f"[dim]skipped: {escape(note)}[/dim]")
    for e in report.errors:
        _error(f"{e['task']}: {e['error']}")
    if report.errors:
        raise typer.Exit(1)


# ---------------------------------------------------------------------------- audit
@testbed_app.command("audit")
def audit_command(
    paths: Annotated[list[Path], typer.Argument(metavar="DIR...",
                                                help="Task folders, or task sets (a folder with manifest.json).")],
    problems: Annotated[int, typer.Option("--problems", min=0, help="Problem lines to print per failing task.")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Print every task's checks and figures as JSON.")] = False,
) -> None:
    """Re-check every task from its files alone (rasp_compiler.audit); exit 1 if any task fails.

    Example: rasp-compiler testbed audit tasks/
    """
    import dataclasses
    import json

    from rasp_compiler.audit import AuditFileError, audit_paths, figures_by_variant, table_rows
    from rasp_compiler.audit.report import COLUMNS, VARIANT_COLUMNS

    for p in paths:
        if not p.exists():
            raise typer.BadParameter(f"no such folder: {p}", param_hint="DIR...")
    try:
        with _progress("audit") as progress:
            bar = progress.add_task("", total=None)
            audits = audit_paths(paths, progress=lambda name, done, total: progress.update(
                bar, completed=done, total=total, description=name))
    except AuditFileError as exc:
        _error(str(exc))
        raise typer.Exit(1) from None
    if as_json:
        out.print_json(json.dumps([dataclasses.asdict(a) | {"ok": a.ok} for a in audits], default=str))
    else:
        table = Table(title=f"audit of {len(audits)} tasks (docs/testbed.md, \"The audit\")")
        table.add_column(COLUMNS[0], no_wrap=True, min_width=max((len(a.name) for a in audits), default=4))
        for col in COLUMNS[1:]:
            table.add_column(col)
        for row in table_rows(audits):
            table.add_row(*(escape(x) for x in row[:-1]),
                          "[green]ok[/green]" if row[-1] == "ok" else f"[red]{escape(row[-1])}[/red]")
        out.print(table)
        if len({a.variant for a in audits}) > 1:
            by = Table(*VARIANT_COLUMNS, title="per variant")
            for row in figures_by_variant(audits):
                by.add_row(*(escape(x.strip("*")) for x in row))
            out.print(by)
        for a in audits:
            for line in a.problems[:problems]:
                out.print(f"[red]FAIL[/red] {escape(line)}")
            if len(a.problems) > problems:
                out.print(f"[dim]... {a.name}: {len(a.problems) - problems} more problem(s)[/dim]")
    failing = sum(not a.ok for a in audits)
    out.print(f"{len(audits) - failing} of {len(audits)} tasks pass the audit")
    if failing:
        raise typer.Exit(1)


# ---------------------------------------------------------------------------- score
@testbed_app.command("score")
def score_command(
    target: Annotated[str, typer.Argument(metavar="MODEL_OR_TASK",
                                          help="A task folder (written by export) or a weight file.")],
    method: Annotated[str, typer.Option("--method", "-m", help="The method (see `testbed list`).")],
    sop: Annotated[Optional[str], typer.Option(
        "--target", help="Which target's ranking to print (default: the output).")] = None,
    plot: Annotated[Optional[Path], typer.Option("--plot", help="Draw the scores next to the true circuit (PNG).")]
    = None,
    n_pairs: Annotated[Optional[int], typer.Option("--n-pairs", min=1, help="Pairs per target (default: "
                                                                            "the task's stored pairs).")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Pair seed (default: the task's).")] = None,
    pair_set: Annotated[Optional[str], typer.Option(
        "--pair-set", help="A task's stored pair set to score on (e.g. lengths; default: main).")] = None,
    top: Annotated[int, typer.Option("--top", min=1, help="Rows of the ranking to show.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole result as JSON.")] = False,
) -> None:
    """Run one method and print its ranking next to the true circuit.

    Example: rasp-compiler testbed score --method atp_star tasks/lib-sort__rotated__s0
    """
    import json

    from rasp_compiler.interp.tasks.score import method_names, score_path

    if method not in method_names():
        raise typer.BadParameter(f"unknown method {method!r}; known: {', '.join(method_names())}",
                                 param_hint="--method")
    path = Path(target)
    if not path.exists():
        raise typer.BadParameter(f"no such file or folder: {target}", param_hint="MODEL_OR_TASK")
    if (path / "manifest.json").is_file():
        raise typer.BadParameter(f"{target} is a task set (it has manifest.json), not one task: score one of its "
                                 f"folders (`{command()} testbed list {target}` names them), or run methods over "
                                 f"all of them with `{command()} testbed sweep {target} results/`",
                                 param_hint="MODEL_OR_TASK")
    with _progress(f"score {method}") as progress:
        progress.add_task(escape(path.name), total=None)
        scored, about = score_path(path, method, n_pairs=n_pairs, seed=seed, pair_set=pair_set)
    data = scored.data
    if as_json:
        out.print_json(json.dumps({k: v for k, v in about.items() if k != "model"} | {"result": data}))
        return
    targets = {t["target"]: t for t in data["targets"]}
    if not targets:
        _error(f"{method} scored no target of {target} (no pair of inputs changes any of them)")
        raise typer.Exit(1)
    chosen = targets.get(sop) if sop else next((t for t in data["targets"] if t["is_output"]), data["targets"][0])
    if chosen is None:
        raise typer.BadParameter(f"no target {sop!r}; scored: {', '.join(targets)}", param_hint="--target")
    circuit, active = set(chosen["circuit"]), set(chosen["active"])
    from rasp_compiler.interp.scoring import FLOOR

    cut = FLOOR * abs(chosen["gap"])  # the scoring's noise floor: below it a score counts as 0
    # a node method also scores the embedding, which no circuit can leave out: it is not ranked
    candidates = set(scored.result.gt.scored) if data["level"] == "node" else set(chosen["scores"])
    ranked = sorted(((k, v if v > cut else 0.0) for k, v in chosen["scores"].items() if k in candidates),
                    key=lambda kv: -kv[1])
    table = Table("rank", "edge" if data["level"] == "edge" else "component", "score", "in circuit",
                  title=f"{method} on {escape(about['task'])}: target {escape(chosen['target'])} "
                        f"({chosen['n_pairs']} pairs, mean gap {chosen['gap']:.3g})")
    for i, (key, value) in enumerate(ranked[:top], 1):
        mark = "[green]yes[/green]" + (" (active)" if key in active else "") if key in circuit else "[dim]no[/dim]"
        table.add_row(str(i), escape(key), f"{value:.4g}" if value else "0 (below floor)", mark)
    out.print(table)
    if len(ranked) > top:
        out.print(f"[dim]... {len(ranked) - top} more; circuit members beyond the top {top}: "
                  f"{sum(k in circuit for k, _ in ranked[top:])}[/dim]")
    unranked = sorted(k for k in chosen["scores"] if k not in candidates)
    if unranked:
        listed = ", ".join(f"{k} {chosen['scores'][k]:.4g}" for k in unranked)
        out.print(f"[dim]not ranked (inputs every circuit keeps, not scored): {escape(listed)}[/dim]")
    for view, row in chosen["views"].items():
        extra = "".join(f", {label} {_num(row[key])}" for key, label in
                        (("pr_auc", "PR AUC"), ("f1", "F1@k"), ("faithfulness", "faithfulness")) if key in row)
        out.print(f"{view}: ROC AUC {_num(row['auc'])}{extra}, TPR {_num(row['tpr'])} / FPR {_num(row['fpr'])} "
                  f"at k = {row['pos']} positives, {row['neg']} negatives")
    if sop is None or len(targets) == 1:
        s = data["summary"]
        out.print(f"mean AUC over {len(targets)} target{'s' if len(targets) != 1 else ''}: "
                  f"active {_num(s['auc_active'])}, structural {_num(s['auc_structural'])}")
    else:
        out.print(f"[dim](the lines above are target {escape(sop)}'s alone; without --target the mean over all "
                  f"{len(targets)} scored targets is printed too)[/dim]")
    if plot is not None:
        from rasp_compiler.interp.plots import plot_target

        result = scored.result
        tr = next(t for t in result.targets if t.target == chosen["target"])
        plot_target(result, tr, str(plot), title=f"{method} on {about['task']}: target {chosen['target']}")
        out.print(f"wrote {escape(str(plot))}")


def _num(x: Any) -> str:
    return "n/a" if x is None else f"{x:.3f}"


# ---------------------------------------------------------------------------- sweep
@testbed_app.command("sweep")
def sweep_command(
    tasks: Annotated[Path, typer.Argument(help="A task set (written by export).")],
    results: Annotated[Path, typer.Argument(help="Folder for the results (one JSON per job); resumable.")],
    methods: Annotated[Optional[str], typer.Option("--methods", help="Comma-separated (default: every method).")]
    = None,
    seeds: Annotated[Optional[str], typer.Option(
        "--seeds", help="Pair seeds, comma-separated (default: each task's stored pairs).")] = None,
    executor: Annotated[str, typer.Option("--executor", help="auto (Ray if installed), ray, processes or serial.")]
    = "auto",
    workers: Annotated[Optional[int], typer.Option("--workers", min=1, help="Parallel jobs (default: CPUs).")]
    = None,
    address: Annotated[Optional[str], typer.Option(
        "--address", help="An existing Ray cluster (e.g. ray://head:10001 or auto); default: a local instance.")]
    = None,
    only: Annotated[Optional[str], typer.Option("--tasks", help="Only task folders whose name contains one of "
                                                              "these (comma-separated).")] = None,
) -> None:
    """Run methods x tasks as independent jobs; a restarted sweep skips finished jobs.

    Example: rasp-compiler testbed sweep tasks/ results/ --methods patching,eap
    """
    from rasp_compiler.interp.sweep import EXECUTORS, sweep
    from rasp_compiler.interp.tasks import task_dirs
    from rasp_compiler.interp.tasks.score import method_names

    if executor not in EXECUTORS:
        raise typer.BadParameter(f"give one of {', '.join(EXECUTORS)} (got {executor!r})", param_hint="--executor")
    chosen = _csv(methods) or method_names()
    unknown = [m for m in chosen if m not in method_names()]
    if unknown:
        raise typer.BadParameter(f"unknown method(s) {', '.join(unknown)}; known: {', '.join(method_names())}",
                                 param_hint="--methods")
    folders = task_dirs(tasks)
    if only:
        from rasp_compiler.interp.tasks import load_manifest

        # a blind set's folders are matched by their open names too (from its answer key)
        known = {t["name"]: t.get("open_name", t["name"])
                 for t in (load_manifest(tasks).get("tasks", []) if (tasks / "manifest.json").is_file() else [])}
        folders = [f for f in folders if any(s in f.name or s in known.get(f.name, "") for s in _csv(only))]
    with _progress("sweep") as progress:
        bar = progress.add_task("", total=None)
        report = sweep(folders, results, chosen, _ints(seeds, "--seeds") if seeds else None, executor, workers,
                       address, progress=lambda job, done, total: progress.update(bar, completed=done, total=total,
                                                                                  description=job))
    out.print(f"{report.total} jobs: {report.skipped} already done, {report.done} run now, {len(report.failed)} "
              f"failed ({report.executor}, {report.workers} workers, {report.seconds:.1f} s); results in "
              f"{escape(str(results))}")
    for job in report.failed:
        _error(f"{job}: see {results / 'jobs' / (job + '.error.json')}")
    if report.failed:
        raise typer.Exit(1)


# ---------------------------------------------------------------------------- report
@testbed_app.command("report")
def report_command(
    results: Annotated[Path, typer.Argument(help="A results folder written by sweep.")],
    output: Annotated[Optional[Path], typer.Option("--out", "-o", help="Markdown file (default: "
                                                                       "RESULTS/report.md; figure beside it).")]
    = None,
) -> None:
    """Turn a results folder into a markdown table of mean AUCs and a figure.

    Example: rasp-compiler testbed report results/
    """
    from rasp_compiler.interp.tasks.report import write_report

    if not (results / "jobs").is_dir():
        raise typer.BadParameter(f"{results} holds no sweep results (no jobs/ folder); run "
                                 f"`{command()} testbed sweep TASKS {results}` first", param_hint="RESULTS")
    md, png = write_report(results, output)
    out.print(md.read_text(encoding="utf-8"), markup=False)  # markdown, not rich markup: keep ![..](..) whole
    out.print(f"wrote {escape(str(md))}" + (f" and {escape(str(png))}" if png else ""))
