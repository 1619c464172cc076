"""Issue 26, a researcher's first hour: each test runs the command the issue quotes and checks
what a new user now sees (item 10's small points, the demo's hint, examples leaving the checkout
alone, warnings and labels that read, errors with a line)."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from rasp_compiler import compile_rasp_to_model, rasp
from rasp_compiler.export import load_model
from rasp_compiler.export.safetensors_file import FORMAT_VERSION

ROOT = Path(__file__).resolve().parent.parent
CLI = Path(sys.executable).parent / "rasp-compiler"


def cli(*args, cwd=None, env=None):
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", "TERM": "dumb", **(env or {})}
    return subprocess.run([str(CLI), *map(str, args)], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=300)


def one_line(proc) -> str:
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert "Traceback" not in proc.stderr and len(lines) == 1, proc.stderr
    return " ".join(lines[0].split())


class Ran:
    """What one in-process run of the app printed (the CLI's own entry point costs seconds per start)."""

    def __init__(self, code, stdout, stderr):
        self.returncode, self.stdout, self.stderr = code, stdout, stderr


@pytest.fixture
def run(capsys, monkeypatch):
    from rasp_compiler.cli import app

    def go(*args, cwd=None):
        if cwd is not None:
            monkeypatch.chdir(cwd)
        with pytest.raises(SystemExit) as exc:
            app(args=[str(a) for a in args], prog_name="rasp-compiler")
        out, err = capsys.readouterr()
        assert "Traceback" not in err
        return Ran(exc.value.code, out, err)

    return go


# ---------------------------------------------------------------------------- item 10
def test_version_is_the_installed_distribution_version():
    proc = cli("--version")  # the installed entry point itself
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"rasp-compiler {importlib.metadata.version('rasp_compiler')}"


def test_misspelt_library_program_gets_did_you_mean(run, tmp_path):
    proc = run("compile", "lib:sortt", cwd=tmp_path)
    assert proc.returncode == 2
    line = one_line(proc)
    assert "no library program 'sortt'; did you mean 'sort'?" in line and "sort_unique" in line
    assert not list(tmp_path.iterdir())
    proc = run("demo", "--program", "revrse", cwd=tmp_path)
    assert proc.returncode == 2 and "did you mean 'reverse'?" in one_line(proc)
    proc = run("compile", "lib:zzzz", cwd=tmp_path)  # nothing close: no guess, the list only
    assert proc.returncode == 2 and "did you mean" not in one_line(proc)


def test_unwritable_output_path_is_named_as_the_output(run):
    proc = run("compile", "lib:sort", "-o", "/proc/nope/x.safetensors")
    assert proc.returncode == 1
    line = one_line(proc)
    assert "cannot write the output file /proc/nope/x.safetensors (--out/-o)" in line, line
    assert not Path("/proc/nope").exists()


def test_demo_output_path_is_named_as_the_output(run, tmp_path):
    (tmp_path / "file").write_text("x")
    proc = run("demo", "--output", tmp_path / "file" / "demo.safetensors")
    assert proc.returncode == 1
    line = [ln for ln in proc.stderr.splitlines() if ln.strip()][-1]
    assert "file" in line and ("--output" in line or "is a file, not a directory" in line), proc.stderr


def test_weights_above_100_mb_warn_with_their_size(run, tmp_path):
    proc = run("compile", "lib:length", "--max-seq-len", "2100", "-o", tmp_path / "big.safetensors")
    assert proc.returncode == 0, proc.stderr
    size = (tmp_path / "big.safetensors").stat().st_size
    assert size > 100e6
    warning = re.search(r"warning: the weights take ([\d,]+) MB", proc.stderr)
    assert warning, proc.stderr
    assert abs(int(warning.group(1).replace(",", "")) - size / 1e6) < 2  # the file is the weights + a header
    small = run("compile", "lib:length", "-o", tmp_path / "small.safetensors")
    assert small.returncode == 0 and "warning" not in small.stderr


@pytest.fixture(scope="module")
def task_set(tmp_path_factory):
    d = tmp_path_factory.mktemp("fh_tasks")
    from rasp_compiler.interp.tasks import export_tasks

    export_tasks(d, programs=["lib:sort"], variants=["rotated"], n_random=0)
    return d


def test_score_on_a_task_set_points_at_sweep(run, task_set):
    proc = run("testbed", "score", "--method", "eap", task_set)
    assert proc.returncode == 2
    line = one_line(proc)
    assert "is a task set" in line and f"rasp-compiler testbed sweep {task_set}" in line


def _ranked_rows(stdout: str) -> list[list[str]]:
    rows = []
    for ln in stdout.splitlines():
        cells = [c.strip() for c in ln.split("│")]
        if len(cells) > 3 and cells[1].isdigit():
            rows.append(cells[1:-1])
    return rows


def test_embed_is_not_ranked_as_if_scored(run, task_set):
    task = task_set / "lib-sort__rotated__s0"
    proc = run("testbed", "score", "--method", "patching", task)
    assert proc.returncode == 0, proc.stderr
    rows = _ranked_rows(proc.stdout)
    assert rows and all(r[1] != "embed" for r in rows)
    data = json.loads(run("testbed", "score", "--method", "patching", task, "--json").stdout)
    out_target = next(t for t in data["result"]["targets"] if t["is_output"])
    assert "embed" in out_target["scores"]  # the method did score it ...
    view = out_target["views"]["structural"]
    assert len(rows) == view["pos"] + view["neg"]  # ... but the ranking holds exactly the scored candidates
    assert f"not ranked (inputs every circuit keeps, not scored): embed {out_target['scores']['embed']:.4g}" \
        in proc.stdout


def test_target_summary_does_not_claim_a_mean_over_all_targets(run, task_set):
    task = task_set / "lib-sort__rotated__s0"
    data = json.loads(run("testbed", "score", "--method", "patching", task, "--json").stdout)
    names = [t["target"] for t in data["result"]["targets"]]
    assert len(names) > 1
    inner = next(t["target"] for t in data["result"]["targets"] if not t["is_output"])
    proc = run("testbed", "score", "--method", "patching", task, "--target", inner)
    assert proc.returncode == 0, proc.stderr
    assert f"target {inner}" in proc.stdout and "mean AUC over" not in proc.stdout
    proc = run("testbed", "score", "--method", "patching", task)
    assert f"mean AUC over {len(names)} targets" in proc.stdout


def test_report_prints_a_markdown_image(run, task_set, tmp_path):
    results = tmp_path / "results"
    proc = run("testbed", "sweep", task_set, results, "--methods", "patching", "--executor", "serial")
    assert proc.returncode == 0, proc.stderr
    proc = run("testbed", "report", results)
    assert proc.returncode == 0, proc.stderr
    assert "![mean AUC per method and variant](report.png)" in proc.stdout
    assert "!(report.png)" not in proc.stdout
    assert (results / "report.png").is_file()


def test_docs_show_no_machine_specific_paths():
    pattern = re.compile(r"(?<![\w.~])/(?:work|home|Users|root|tmp/pytest)[/\w.-]*/")
    for doc in sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]:
        hits = pattern.findall(doc.read_text(encoding="utf-8"))
        assert not hits, f"{doc.name}: {hits[:3]}"


def test_cli_doc_sample_shows_the_weight_format_written_today(run, tmp_path):
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    shown = re.findall(r"\(format (\d+), rasp_compiler", text)
    assert shown and set(shown) == {FORMAT_VERSION}
    heading = re.findall(r"^## Format \(version (\d+)\)", (ROOT / "docs" / "weight_files.md").read_text(), re.M)
    assert heading == [FORMAT_VERSION]
    proc = run("compile", ROOT / "examples" / "reverse.rasp", "--vocab", "a,b,c", "--max-seq-len", "5", "-o",
               tmp_path / "reverse.safetensors")
    assert proc.returncode == 0
    assert load_model(tmp_path / "reverse.safetensors").metadata["format_version"] == FORMAT_VERSION


def test_transformer_lens_docs_say_how_tokens_become_ids():
    text = " ".join((ROOT / "docs" / "testbed.md").read_text(encoding="utf-8").split())
    assert "BOS is 0, PAD is 1, then the vocabulary in `config.vocab` order" in text
    model = compile_rasp_to_model(rasp.Map(lambda x: x, rasp.tokens).named("copy"), {"c", "a", "b"}, 4)
    assert model.encode(["BOS", "b", "a"])[:3].tolist() == [0, 3, 2]  # the docs' own example
    # and the ids are what the embedding reads: row i of W_E writes token i's direction only
    w_e, labels = model.params["embed.W_E"], model.residual_labels
    for i, tok in enumerate(model.config.input_tokens[2:], 2):
        written = {labels[j] for j in range(len(labels)) if w_e[i, j] and labels[j].startswith("tokens:")}
        assert written == {f"tokens:{tok}"}


def test_pyproject_license_is_an_spdx_string():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["project"]["license"] == "Apache-2.0"
    assert any(r.startswith("setuptools>=77") for r in meta["build-system"]["requires"])  # SPDX strings need 77


def test_rasp_file_with_a_utf8_byte_order_mark_compiles(run, tmp_path):
    path = tmp_path / "reverse_bom.rasp"
    path.write_bytes(b"\xef\xbb\xbf" + (ROOT / "examples" / "reverse.rasp").read_bytes())
    proc = run("compile", path, "--vocab", "a,b,c", "--max-seq-len", "4", "-o", tmp_path / "r.safetensors")
    assert proc.returncode == 0, proc.stderr
    proc = run("verify", tmp_path / "r.safetensors")
    assert proc.returncode == 0 and "exact: 120 of 120" in proc.stdout, proc.stdout + proc.stderr
    proc = run("run", tmp_path / "r.safetensors", "--input", "a b c")
    assert proc.returncode == 0 and "model and evaluator agree" in proc.stdout


# ---------------------------------------------------------------------------- item 1
def _path_without_the_cli() -> str:
    return os.pathsep.join(d for d in os.environ.get("PATH", "").split(os.pathsep)
                           if d and not (Path(d) / "rasp-compiler").exists())


def test_demo_next_hint_runs_verbatim_without_the_cli_on_path(tmp_path):
    """As after `make demo` in a fresh shell: the CLI started by its path from the checkout,
    not on PATH; the hint it prints is then run, as printed, by a shell."""
    argv0 = os.path.relpath(CLI, ROOT) if CLI.is_relative_to(ROOT) else str(CLI)
    env = {**os.environ, "PATH": _path_without_the_cli(), "NO_COLOR": "1", "COLUMNS": "200", "TERM": "dumb"}
    output = tmp_path / "demo.safetensors"
    proc = subprocess.run([argv0, "demo", "--output", str(output)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    hint = re.search(r"Next: (.+)$", proc.stdout, re.M).group(1).strip()
    assert not hint.startswith("rasp-compiler "), hint  # not on PATH: the bare name would not run
    assert subprocess.run(f"command -v rasp-compiler", shell=True, env=env, cwd=ROOT).returncode != 0
    ran = subprocess.run(hint, shell=True, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr
    assert re.search(r"^model +sort", ran.stdout, re.M) and (tmp_path / "demo.png").stat().st_size > 1000


def test_hints_say_rasp_compiler_when_it_is_on_path(tmp_path):
    env = {"PATH": os.pathsep.join([str(CLI.parent), _path_without_the_cli()])}
    proc = cli("compile", "lib:nope", cwd=tmp_path, env=env)
    assert proc.returncode == 2 and "(see 'rasp-compiler compile --help')" in one_line(proc)
    proc = cli("compile", "lib:nope", cwd=tmp_path, env={"PATH": _path_without_the_cli()})
    assert f"(see '{CLI} compile --help')" in one_line(proc)  # not on PATH: the path that was run


def test_readme_opens_with_the_two_commands_then_says_how_to_get_the_cli():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
    assert [b.split("#")[0].strip() for b in blocks[:2]] == ["make demo", "make test"]
    assert text.index("source .venv/bin/activate") > text.index("make test")
    assert "source $(BIN)/activate" in (ROOT / "Makefile").read_text()


# ---------------------------------------------------------------------------- item 9
def _git_status() -> str:
    return subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=ROOT,
                          capture_output=True, text=True, check=True).stdout


def _all_files(folder: Path) -> set[Path]:
    return {p.relative_to(folder) for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


@pytest.mark.slow  # every example in full: minutes (run: pytest -m slow tests/test_first_hour.py)
@pytest.mark.parametrize("example", sorted(p.name for p in (ROOT / "examples").glob("*.py")))
def test_examples_write_only_under_out(example, tmp_path):
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    before = _git_status()
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / example)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=1800, env={**os.environ, "MPLBACKEND": "Agg"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert _git_status() == before  # nothing in the checkout changed, not even an ignored-by-accident file
    assert all(p.parts[0] == "out" for p in _all_files(tmp_path)), _all_files(tmp_path)


def test_figure_examples_default_to_out_and_the_benchmark_to_docs_figures():
    """The fast half of the check above: the examples that draw figures send them to out/ unless
    told otherwise, and only benchmarks/example_figures.py points them at docs/figures/."""
    from scripts import load_script
    import inspect

    for name in ("interp_reverse", "interp_hist", "interp_sort"):
        module = load_script(f"examples/{name}.py")
        assert inspect.signature(module.main).parameters["figures"].default == Path("out")
        assert "docs" not in (ROOT / "examples" / f"{name}.py").read_text().split('"""', 2)[2]
    module = load_script("benchmarks/example_figures.py")
    assert inspect.signature(module.main).parameters["figures"].default == ROOT / "docs" / "figures"
    for name in module.EXAMPLES:
        for png in re.findall(r'"(\w+\.png)"', (ROOT / "examples" / f"{name}.py").read_text()):
            assert (ROOT / "docs" / "figures" / png).is_file(), png  # the doc's copies exist


# ---------------------------------------------------------------------------- item 4
SELF_MAP = "with itself: both inputs are the same SOp"


def test_generate_summarises_the_generators_notes_once(tmp_path):
    from rasp_compiler.fuzz.generator import generate_program

    assert generate_program(1).notes  # seed 1 is a SequenceMap of an SOp with itself: the case at hand
    proc = cli("generate", "--n", "3", "--out", tmp_path / "dataset", "--seed", "0")
    assert proc.returncode == 0, proc.stderr
    assert SELF_MAP not in proc.stderr
    assert proc.stdout.count("note:") == 1 and "1 of 3 generated programs carry construction notes" in proc.stdout
    index = json.loads((tmp_path / "dataset" / "index.json").read_text())
    assert [bool(e["notes"]) for e in index["programs"]] == [False, True, False]


def test_testbed_export_does_not_repeat_notes_about_random_programs(tmp_path):
    from rasp_compiler.fuzz.generator import generate_program

    proc = cli("testbed", "export", tmp_path / "tasks", "--programs", "lib:length", "--variants", "compiled",
               "--random", "2")
    assert proc.returncode == 0, proc.stderr
    seeds = [int(t["program"]["origin"].split()[2]) for t in
             json.loads((tmp_path / "tasks" / "answer" / "manifest.json").read_text())["tasks"]
             if t["program"]["name"] != "lib-length"]
    assert any(generate_program(s).notes for s in range(max(seeds) + 1))  # the generator did make such a program
    assert SELF_MAP not in proc.stderr and SELF_MAP not in proc.stdout


def test_user_programs_still_get_the_warning(caplog, tmp_path):
    from rasp_compiler.fuzz.generator import generate_program

    generate_program(1)  # collecting the generator's notes leaves nothing switched off afterwards
    with caplog.at_level("WARNING", logger="rasp_compiler.rasp.core"):
        x = rasp.Map(lambda t: t, rasp.tokens).named("x")
        rasp.SequenceMap(lambda a, b: a, x, x).named("y")
    assert [r.getMessage() for r in caplog.records] == [
        f"SequenceMap of x {SELF_MAP}; a Map of it computes the same with a smaller MLP"]
    program = tmp_path / "self_map.py"
    program.write_text("from rasp_compiler import rasp\n"
                       "x = rasp.Map(lambda t: t, rasp.tokens).named('x')\n"
                       "rasp.SequenceMap(lambda a, b: a, x, x)\n")
    proc = subprocess.run([sys.executable, str(program)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and f"SequenceMap of x {SELF_MAP}" in proc.stderr


# ---------------------------------------------------------------------------- item 5
SEEN = '''def seen(v) {
    s = aggregate(select(indices, indices, <=), v);
    return numerical(s > 0);
}
out = seen(tokens == "a") + seen(tokens == "b") + seen(tokens == "c");
'''


def test_function_labels_name_the_call_in_call_order_and_blocks_follow_the_text(run, tmp_path):
    from rasp_compiler.verify import check_model, exhaustive_inputs

    (tmp_path / "seen.rasp").write_text(SEEN)
    proc = run("compile", tmp_path / "seen.rasp", "--vocab", "a,b,c", "--max-seq-len", "4", "-o",
               tmp_path / "seen.safetensors")
    assert proc.returncode == 0, proc.stderr
    model = load_model(tmp_path / "seen.safetensors")
    assert model.labels.heads[0] == ("seen_1_s", "seen_2_s", "seen_3_s")
    assert [n for n, _, _ in model.labels.mlps[0]] == ["seen_1", "seen_2", "seen_3"]
    # the labels are true: head h of layer 0 writes exactly the residual directions of seen_{h+1}_s
    w_o = model.params["blocks.0.attn.W_O"]  # (heads, d_head, d_model)
    for h in range(3):
        written = {model.residual_labels[j].split(":")[0] for j in range(w_o.shape[-1]) if abs(w_o[h, :, j]).max()}
        assert written == {f"seen_{h + 1}_s"}
    from rasp_compiler.dsl import load

    program = load(tmp_path / "seen.rasp").output
    assert check_model(model, program, exhaustive_inputs(model.config.vocab, 4)).exact


def test_a_function_called_once_keeps_plain_labels_and_python_programs_keep_their_order():
    from rasp_compiler import dsl
    from rasp_compiler.lib import LIBRARY

    once = dsl.parse(SEEN.replace(' + seen(tokens == "b") + seen(tokens == "c")', " + 1"))
    model = compile_rasp_to_model(once.output, {"a", "b"}, 3)
    assert model.labels.heads[0] == ("seen_s",)
    # a program built in Python keeps the depth-first order its saved (trained) weights were made with
    e = LIBRARY["running_max"]
    lib = compile_rasp_to_model(e.build(), e.vocab, e.max_seq_len)
    assert lib.labels.heads[0][0] == "running_max_frac_ge_4"


# ---------------------------------------------------------------------------- item 7
def test_errors_found_after_parsing_carry_file_line_col(run, tmp_path):
    (tmp_path / "maperr.rasp").write_text("x = tokens_int;\ninv = 10 / (x - 2);\n")
    proc = run("compile", tmp_path / "maperr.rasp", "--vocab", "1,2,3", "--max-seq-len", "3", "-o",
               tmp_path / "x.safetensors")
    assert proc.returncode == 1
    first = proc.stderr.splitlines()[0]
    assert first.startswith(f"error: {tmp_path / 'maperr.rasp'}:2:7: the function of Map inv raised "
                            "ZeroDivisionError"), first
    assert "inv = 10 / (x - 2);" in proc.stderr and not (tmp_path / "x.safetensors").exists()
    proc = run("eval", tmp_path / "maperr.rasp", "--input", "1 2 3")
    assert proc.returncode == 1 and f"maperr.rasp:2:7: the function of Map inv raised" in proc.stderr

    (tmp_path / "aggerr.rasp").write_text('sel = select(indices, indices, <=);\nanyt = aggregate(sel, tokens);\n')
    proc = run("compile", tmp_path / "aggerr.rasp", "--vocab", "a,b", "--max-seq-len", "3", "-o",
               tmp_path / "y.safetensors")
    assert proc.returncode == 1
    first = proc.stderr.splitlines()[0]
    assert first.startswith(f"error: {tmp_path / 'aggerr.rasp'}:2:8: categorical Aggregate anyt selects differing"), \
        first


def test_missing_semicolon_points_at_the_end_of_the_previous_statement(run, tmp_path):
    (tmp_path / "semi.rasp").write_text('a = tokens == "a"   # no semicolon\nb = a + 1;\n')
    proc = run("compile", tmp_path / "semi.rasp", "--vocab", "a,b", "--max-seq-len", "3")
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert lines[0] == f"error: {tmp_path / 'semi.rasp'}:1:18: missing ';' at the end of this statement " \
                       "(the next line starts with 'b')"
    assert lines[2].index("^") - lines[1].index("a = tokens") == 17  # the caret just after "a"


# ---------------------------------------------------------------------------- item 2
COUNT_FIRST = '''# count_first: how many tokens equal the first one, at every position
first = aggregate(select(indices, 0, ==), tokens);
count_first = selector_width(select(tokens, first, ==));
'''


def test_your_rasp_file_becomes_a_task(run, tmp_path, monkeypatch):
    from rasp_compiler.interp.tasks import load_task
    from rasp_compiler.rasp import evaluate

    monkeypatch.chdir(tmp_path)
    Path("count_first.rasp").write_text(COUNT_FIRST)
    proc = run("testbed", "export", "mytasks/", "--programs", "count_first.rasp", "--random", "0")
    assert proc.returncode == 1 and "needs the tokens" in proc.stderr and "--vocab" in proc.stderr
    assert not Path("mytasks/manifest.json").exists()
    proc = run("testbed", "export", "mytasks/", "--programs", "count_first.rasp", "--vocab", "a,b,c",
               "--variants", "compiled,rotated", "--random", "0")
    assert proc.returncode == 0, proc.stderr
    assert "wrote 2 blind tasks" in proc.stdout
    folder = _folder_of(Path("mytasks"), "rasp-count_first__rotated__s0")
    task = load_task(folder)
    assert task.model.config.vocab == ("a", "b", "c") and task.model.config.max_seq_len == 5
    for xs in (["b", "a", "b"], ["c", "c", "c", "a"]):  # the task's model is the program
        assert task.model.apply(["BOS", *xs]).decoded[1:] == evaluate(_count_first(), xs)
    proc = run("testbed", "score", "--method", "patching", folder)
    assert proc.returncode == 0 and "target count_first" in proc.stdout


def _folder_of(tasks: Path, open_name: str) -> Path:
    """The folder of a task by its open name (a blind set names folders neutrally; its answer key maps them)."""
    manifest = json.loads((tasks / "answer" / "manifest.json").read_text())
    [name] = [t["name"] for t in manifest["tasks"] if t["open_name"] == open_name]
    return tasks / name


def _count_first():
    from rasp_compiler import dsl

    return dsl.parse(COUNT_FIRST).output


def test_export_tasks_takes_rasp_programs_and_python_builders(tmp_path, monkeypatch):
    from rasp_compiler.interp.tasks import export_tasks
    from rasp_compiler.interp.tasks.sources import TaskSetError

    program = _count_first()
    report = export_tasks(tmp_path / "a", programs=[program], variants=["compiled"], vocab={"a", "b"},
                          max_seq_len=4)
    assert [t["name"] for t in report.tasks] == ["prog-count_first__compiled__s0"]
    monkeypatch.chdir(tmp_path)
    Path("my_programs.py").write_text("from rasp_compiler import dsl\n"
                                      f"def count_first():\n    return dsl.parse({COUNT_FIRST!r}).output\n")
    report = export_tasks(tmp_path / "b", programs=["my_programs:count_first"], variants=["compiled"],
                          vocab=("a", "b"))
    assert [t["name"] for t in report.tasks] == ["py-count_first__compiled__s0"]
    report = export_tasks(tmp_path / "c", programs=["my_programs.py:count_first"], variants=["compiled"],
                          vocab=("a", "b"))
    assert [t["name"] for t in report.tasks] == ["py-count_first__compiled__s0"]
    with pytest.raises(TaskSetError, match="has no function nope"):
        export_tasks(tmp_path / "d", programs=["my_programs:nope"], vocab=("a",))
    with pytest.raises(TaskSetError, match="did you mean 'sort'"):
        export_tasks(tmp_path / "e", programs=["lib:sortt"])
