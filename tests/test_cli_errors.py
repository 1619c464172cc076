"""Every user error of the CLI is one line on stderr with exit status 1 (2 for usage),
never a traceback (issue 14, class 3)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import safetensors.numpy

from rasp_compiler import compile_rasp_to_model, rasp
from rasp_compiler.export import save_model
from rasp_compiler.export.safetensors_file import file_checksum

CLI = Path(sys.executable).parent / "rasp-compiler"


def cli(*args, cwd=None):
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", "TERM": "dumb"}
    return subprocess.run([str(CLI), *map(str, args)], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=300)


def _one_line(proc):
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert "Traceback" not in proc.stderr, proc.stderr
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.fixture(scope="module")
def float_model(tmp_path_factory):
    prog = rasp.numerical(rasp.Map(lambda t: t * 2, rasp.tokens)).named("double")
    return save_model(compile_rasp_to_model(prog, {1.0, 2.5}, 3), tmp_path_factory.mktemp("f") / "f.safetensors")


def test_float_vocab_model_can_be_fed_from_the_command_line(float_model):
    proc = cli("run", float_model, "--input", "1 2.5", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["output"] == [2.0, 5.0]


@pytest.mark.parametrize("flag,value", [("--vocab", "a,b"), ("--max-seq-len", "9"), ("--causal", None)])
def test_compile_options_with_a_weight_file_are_refused(float_model, flag, value):
    proc = cli("run", float_model, "--input", "1", flag, *([value] if value else []))
    assert proc.returncode == 2
    assert f"{flag} applies when compiling a PROGRAM" in _one_line(proc)


@pytest.mark.parametrize("key,value", [("graph", json.dumps({"nodes": 3})), ("graph", json.dumps([1, 2])),
                                       ("program", json.dumps("lib:reverse")),
                                       ("program", json.dumps({"origin": 7}))])
def test_malformed_graph_or_program_metadata_is_one_line(float_model, tmp_path, key, value):
    data = float_model.read_bytes()
    tensors = safetensors.numpy.load(data)
    n = int.from_bytes(data[:8], "little")
    meta = json.loads(data[8:8 + n])["__metadata__"]
    meta[key] = value
    meta["sha256"] = file_checksum(meta, tensors)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(safetensors.numpy.save(tensors, metadata=meta))
    for command in (("inspect", bad), ("run", bad, "--input", "1")):
        proc = cli(*command)
        assert proc.returncode == 1
        assert f"bad metadata '{key}'" in _one_line(proc)


def test_huge_max_seq_len_is_one_line():
    proc = cli("compile", "lib:reverse", "--max-seq-len", "99999999999999999999", "--out", "x.safetensors")
    assert proc.returncode == 1
    assert "Limits.max_seq_len" in _one_line(proc)
