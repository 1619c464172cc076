"""Weight files are tamper-evident and bounded to read (issue 14, classes 4 and 6)."""

import json

import numpy as np
import pytest
import safetensors.numpy

from rasp_compiler import compile_rasp_to_model, rasp
from rasp_compiler.errors import ModelFileError
from rasp_compiler.export import load_model, save_model
from rasp_compiler.export.safetensors_file import file_checksum, json_depth


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    prog = rasp.categorical(rasp.Map(lambda x: {"a": "x", "b": "y"}[x], rasp.tokens)).named("out")
    model = compile_rasp_to_model(prog, {"a", "b"}, 3)
    return save_model(model, tmp_path_factory.mktemp("good") / "m.safetensors")


def _read(path):
    tensors = safetensors.numpy.load(path.read_bytes())
    with open(path, "rb") as fh:
        n = int.from_bytes(fh.read(8), "little")
        meta = json.loads(fh.read(n))["__metadata__"]
    return tensors, meta


def _write(path, tensors, meta, rehash=False):
    meta = {k: v for k, v in meta.items() if v is not None}
    if rehash:
        meta["sha256"] = file_checksum(meta, tensors)
    path.write_bytes(safetensors.numpy.save(tensors, metadata=meta))
    return path


def test_good_file_has_a_checksum_and_loads(good):
    _, meta = _read(good)
    assert len(meta["sha256"]) == 64
    assert load_model(good).apply(["BOS", "a", "b"]).decoded == ["BOS", "x", "y"]


def test_edited_output_value_in_config_is_refused(good, tmp_path):
    tensors, meta = _read(good)
    config = json.loads(meta["config"])
    config["output_values"] = ["x", "z"]  # decodes "y" as "z", same shapes
    meta["config"] = json.dumps(config)
    with pytest.raises(ModelFileError, match="does not match its checksum"):
        load_model(_write(tmp_path / "c.safetensors", tensors, meta))


@pytest.mark.parametrize("key", ["labels", "graph", "program", "source"])
def test_edited_metadata_is_refused(good, tmp_path, key):
    tensors, meta = _read(good)
    meta[key] = meta.get(key, "null").replace("out", "0ut") if key != "source" else "select(...)"
    with pytest.raises(ModelFileError, match="does not match its checksum"):
        load_model(_write(tmp_path / "m.safetensors", tensors, meta))


def test_edited_weights_without_any_checksum_are_refused(good, tmp_path):
    tensors, meta = _read(good)
    tensors["unembed.W_U"] = tensors["unembed.W_U"][:, ::-1].copy()
    meta["params_sha256"] = None
    meta["sha256"] = None
    with pytest.raises(ModelFileError, match="no 'sha256'"):
        load_model(_write(tmp_path / "w.safetensors", tensors, meta))
    meta["sha256"] = _read(good)[1]["sha256"]
    with pytest.raises(ModelFileError, match="does not match its checksum"):
        load_model(_write(tmp_path / "w2.safetensors", tensors, meta))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_weights_are_refused_even_with_a_valid_checksum(good, tmp_path, bad):
    tensors, meta = _read(good)
    tensors["blocks.0.mlp.W_in"] = tensors["blocks.0.mlp.W_in"].copy()
    tensors["blocks.0.mlp.W_in"][0, 0] = bad
    meta["params_sha256"] = None
    with pytest.raises(ModelFileError, match="blocks.0.mlp.W_in holds .* weights must be finite"):
        load_model(_write(tmp_path / "n.safetensors", tensors, meta, rehash=True))


def test_header_length_is_checked_before_reading(tmp_path):
    bad = tmp_path / "huge.safetensors"
    bad.write_bytes((12 * 2**30).to_bytes(8, "little") + b"{}")
    with pytest.raises(ModelFileError, match="header claims 12,884,901,888 bytes but the file has 2"):
        load_model(bad)


def test_padded_file_is_refused_before_reading_the_rest(good, tmp_path):
    bad = tmp_path / "padded.safetensors"
    bad.write_bytes(good.read_bytes() + b"\0" * (3 * 2**20))
    with pytest.raises(ModelFileError, match="accounts for"):
        load_model(bad)


def test_deep_json_header_is_a_clear_error(tmp_path):
    header = b"[" * 100_000 + b"]" * 100_000
    bad = tmp_path / "deep.safetensors"
    bad.write_bytes(len(header).to_bytes(8, "little") + header)
    with pytest.raises(ModelFileError, match="nested 100000 deep"):
        load_model(bad)


def test_deep_json_in_metadata_is_a_clear_error(good, tmp_path):
    tensors, meta = _read(good)
    meta["graph"] = "[" * 5000 + "]" * 5000
    with pytest.raises(ModelFileError, match="'graph' is JSON nested 5000 deep"):
        load_model(_write(tmp_path / "g.safetensors", tensors, meta, rehash=True))


def test_json_depth_ignores_brackets_in_strings():
    assert json_depth(json.dumps(["[[[", 'a\\"[', {"k": "{{"}])) == 2
    assert json_depth("[" * 50 + "]" * 50) == 50


@pytest.mark.parametrize("target", ["", "."])
def test_save_to_a_non_file_name(good, target):
    with pytest.raises(ModelFileError, match="not a file name"):
        save_model(load_model(good), target)


def test_save_under_a_file(good, tmp_path):
    blocker = tmp_path / "plain"
    blocker.write_text("x")
    with pytest.raises(ModelFileError, match="is a file, not a directory"):
        save_model(load_model(good), blocker / "m.safetensors")


def test_stale_temporary_of_a_killed_save_is_removed(good, tmp_path):
    target = tmp_path / "m.safetensors"
    stale = tmp_path / ".m.safetensors.999999999-abcdef.tmp"  # no such process
    stale.write_bytes(b"half")
    save_model(load_model(good), target)
    assert not stale.exists() and load_model(target)
