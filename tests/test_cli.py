"""The rasp-compiler command line, run through its installed entry point in subprocesses."""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

from rasp_compiler.export import load_model, save_model

ROOT = pathlib.Path(__file__).resolve().parent.parent
REVERSE = ROOT / "examples" / "reverse.rasp"
_ENTRY = shutil.which("rasp-compiler", path=str(pathlib.Path(sys.executable).parent))
COMMAND = [_ENTRY] if _ENTRY else [sys.executable, "-m", "rasp_compiler.cli"]


def cli(*args, cwd=None, check=None):
    env = dict(os.environ, COLUMNS="200", NO_COLOR="1")
    proc = subprocess.run([*COMMAND, *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=120)
    if check is not None:
        assert proc.returncode == check, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def _one_error_line(proc):
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("cli")


@pytest.fixture(scope="module")
def reverse_file(workdir):
    """compile: a .rasp file to a weight file."""
    target = workdir / "reverse.safetensors"
    proc = cli("compile", REVERSE, "--vocab", "a,b,c", "--max-seq-len", "5", "-o", target, check=0)
    assert "compiled reverse" in proc.stdout and f"wrote {target}" in proc.stdout
    return target


@pytest.fixture(scope="module")
def tampered_file(workdir, reverse_file):
    """The reverse model with two output logits swapped: wrong whenever an 'a' or 'b' is output."""
    model = load_model(reverse_file)
    w_u = model.params["unembed.W_U"]
    model.params["unembed.W_U"] = np.ascontiguousarray(w_u[:, [1, 0, 2]])
    return save_model(model, workdir / "tampered.safetensors")


def test_compile_writes_a_loadable_file_with_its_source(reverse_file):
    model = load_model(reverse_file)
    assert model.config.vocab == ("a", "b", "c") and model.config.max_seq_len == 5
    assert model.source == REVERSE.read_text()
    assert model.metadata["program"] == {"origin": "reverse.rasp", "output": "reverse"}


def test_compile_library_program_with_int_vocab(workdir):
    proc = cli("compile", "lib:sort", "--vocab", "1,2,3", "--max-seq-len", "4", cwd=workdir, check=0)
    assert "wrote sort.safetensors" in proc.stdout
    model = load_model(workdir / "sort.safetensors")
    assert model.config.vocab == (1, 2, 3)  # ints, not the strings "1", "2", "3"
    assert model.metadata["program"]["origin"] == "lib:sort"
    proc = cli("run", workdir / "sort.safetensors", "--input", "3 1 2 1", "--json", check=0)
    assert json.loads(proc.stdout) == {"input": [3, 1, 2, 1], "output": [1, 1, 2, 3],
                                       "expected": [1, 1, 2, 3], "agree": True}


def test_run_model_file(reverse_file):
    proc = cli("run", reverse_file, "--input", "a b c", check=0)
    rows = {line.split()[0]: line.split()[1:] for line in proc.stdout.splitlines()[1:4]}
    assert rows["model"] == ["c", "b", "a"] and rows["evaluate"] == ["c", "b", "a"]
    assert "agree" in proc.stdout


def test_run_program_compiles_first(capsys):
    proc = cli("run", REVERSE, "--vocab", "a,b,c", "--max-seq-len", "4", "--input", "a,b,b", "--sep", ",",
               "--json", check=0)
    assert json.loads(proc.stdout)["output"] == ["b", "b", "a"]
    code, out, _ = in_process(capsys, "run", "lib:frac_prevs", "--input", "x y x", "--json")  # library vocab
    record = json.loads(out)
    assert code == 0 and record["agree"] and record["output"][:2] == [1.0, 0.5]


def test_run_disagreement_exits_1(tampered_file):
    proc = cli("run", tampered_file, "--input", "a c c", check=1)
    assert "disagree at positions 2" in _one_error_line(proc)
    assert "model" in proc.stdout and "evaluate" in proc.stdout


def test_eval(capsys):
    proc = cli("eval", ROOT / "examples" / "frac_prevs.rasp", "--input", "x y x", "--json", check=0)
    out = json.loads(proc.stdout)
    assert out["input"] == ["x", "y", "x"] and out["output"][:2] == [1.0, 0.5]
    code, out, _ = in_process(capsys, "eval", "lib:sort", "--input", "3 1 2")
    assert code == 0 and out.split("\n")[2].split() == ["sort", "1", "2", "3"]
    code, out, _ = in_process(capsys, "eval", ROOT / "examples" / "sort.rasp", "--input", "3 1 2", "--json")
    assert code == 0 and json.loads(out)["input"] == [3, 1, 2]  # integers by default
    code, out, _ = in_process(capsys, "eval", ROOT / "examples" / "hist.rasp", "--input", "3 1 3",
                              "--vocab-type", "str", "--json")
    assert code == 0 and json.loads(out) == {"input": ["3", "1", "3"], "output": [2, 1, 2]}


def test_inspect_and_plot(reverse_file, workdir):
    png = workdir / "plots" / "reverse.png"
    proc = cli("inspect", reverse_file, "--plot", png, check=0)
    for text in ("layers", "attention heads", "MLPs", "residual stream (30 dimensions)",
                 "key indices == query opp_index", "opp_index", "L2 attention", f"wrote {png}"):
        assert text in proc.stdout, text
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


def test_verify_model_file(reverse_file):
    proc = cli("verify", reverse_file, "--exhaustive", check=0)
    assert "exact: 363 of 363 inputs" in proc.stdout


def test_verify_random_program(capsys):
    code, out, _ = in_process(capsys, "verify", "lib:hist", "--random", "50", "--seed", "3")
    assert code == 0 and "50 random inputs (seed 3)" in out and "exact" in out


def test_verify_tampered_model_exits_1(tampered_file):
    proc = cli("verify", tampered_file, check=1)
    assert "inputs differ" in proc.stdout and "first 5 mismatches" in proc.stdout


def test_verify_needs_a_stored_program(workdir, reverse_file):
    model = load_model(reverse_file)
    model.source, model.metadata = None, None
    bare = save_model(model, workdir / "bare.safetensors")
    proc = cli("verify", bare, check=1)
    assert "stores no program" in _one_error_line(proc)
    proc = cli("run", bare, "--input", "a b", check=0)  # running needs no program
    assert "not compared" in proc.stdout


def test_demo(workdir):
    target = workdir / "demo" / "demo.safetensors"
    proc = cli("demo", "--output", target, check=0)
    assert "demo passed" in proc.stdout
    assert "parameters identical: True; outputs identical on all" in proc.stdout
    assert "exact: 1,364 of 1,364 inputs" in proc.stdout
    assert load_model(target).config.output == "sort"


def in_process(capsys, *args):
    """The same app, called in this process (for the many quick error cases): (status, stdout, stderr)."""
    from rasp_compiler.cli import app

    with pytest.raises(SystemExit) as exc:
        app(args=[str(a) for a in args], prog_name="rasp-compiler")
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return exc.value.code, out, err


def test_usage_errors_through_the_entry_point():
    assert "needs its input tokens: add --vocab" in _one_error_line(cli("compile", REVERSE, check=2))
    assert "no such file: missing.safetensors" in _one_error_line(cli("run", "missing.safetensors", "-i", "a",
                                                                      check=2))


@pytest.mark.parametrize("args,message", [
    (["compile", str(REVERSE), "--max-seq-len", "5"], "needs its input tokens: add --vocab"),
    (["compile", str(REVERSE), "--vocab", "a,b"], "add --max-seq-len"),
    (["compile", "missing.rasp", "--vocab", "a", "--max-seq-len", "2"], "no such file: missing.rasp"),
    (["compile", "lib:nope"], "no library program 'nope'"),
    (["compile", str(REVERSE), "--vocab", "a,,b", "--max-seq-len", "2"], "--vocab"),
    (["compile", str(REVERSE), "--vocab", "a,b", "--max-seq-len", "0"], "--max-seq-len"),
    (["compile", str(REVERSE), "--vocab", "a,b", "--max-seq-len", "2", "--output", "nope"], "defines no program"),
    (["compile", str(REVERSE), "--vocab", "a,b", "--max-seq-len", "2", "--output", "flip"], "is a selector"),
    (["compile", str(REVERSE), "--vocab", "a,b", "--vocab-type", "int", "--max-seq-len", "2"], "is not an int"),
    (["run", "missing.safetensors", "--input", "a"], "no such file: missing.safetensors"),
    (["run", "lib:reverse"], "Missing option '--input'"),
    (["run", "lib:reverse", "--input", "a z"], "token 'z' at position 1 is not in the vocabulary"),
    (["run", "lib:reverse", "--input", "  "], "give at least one token"),
    (["verify", "lib:reverse", "--exhaustive", "--random", "3"], "not both"),
    (["demo", "--program", "nope"], "no library program 'nope'"),
    (["frobnicate"], "No such command"),
])
def test_usage_errors_exit_2(capsys, args, message):
    code, _, err = in_process(capsys, *args)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], err


def test_failures_exit_1(workdir, capsys):
    corrupt = workdir / "corrupt.safetensors"
    corrupt.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not a header}")
    assert "not a readable safetensors file" in _one_error_line(cli("run", corrupt, "--input", "a", check=1))
    bad = workdir / "bad.rasp"
    bad.write_text("x = select(tokens, tokens ==);\n")
    code, _, err = in_process(capsys, "eval", bad, "--input", "a")
    assert code == 1 and err.startswith("error: ") and "bad.rasp:1:" in err
    code, _, err = in_process(capsys, "run", "lib:reverse", "--input", "a b c a b c")
    assert code == 1 and "more than max_seq_len=5" in err
    code, _, err = in_process(capsys, "compile", REVERSE, "--vocab", "a,b,BOS", "--max-seq-len", "2")
    assert code == 1 and "must differ from each other and from every vocabulary token" in err


def test_help_everywhere(capsys):
    assert "Usage" in cli("--help", check=0).stdout
    for command in ["compile", "run", "eval", "inspect", "verify", "demo", "generate", "list"]:
        code, out, _ = in_process(capsys, command, "--help")
        assert code == 0 and "Usage" in out and "Example" in out or command == "list", command
    code, out, err = in_process(capsys)  # bare command: the help
    assert code == 0 and "Usage" in out + err


def test_list_and_generate_without_generator(capsys, monkeypatch):
    code, out, _ = in_process(capsys, "list")
    assert code == 0 and "lib:reverse" in out
    monkeypatch.setitem(sys.modules, "rasp_compiler.fuzz", None)  # as if the generator were not installed
    code, _, err = in_process(capsys, "generate", "--n", "2", "--out", "x")
    assert code == 2 and "rasp_compiler.fuzz" in err and "not available" in err
