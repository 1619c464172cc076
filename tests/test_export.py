"""Weight files: exact round trips, exact value types, atomic writes, refusals of bad files."""

import json
import os

import numpy as np
import pytest
import safetensors.numpy

import rasp_compiler
from rasp_compiler import compile_rasp_to_model, rasp
from rasp_compiler.errors import ModelFileError
from rasp_compiler.export import FORMAT, load_model, model_metadata, save_model
from rasp_compiler.export import safetensors_file
from rasp_compiler.export.values import decode_value, encode_value, printable_value
from rasp_compiler.lib import LIBRARY
from rasp_compiler.verify import exhaustive_inputs


def _typed(values):
    """Values with their types, so that 1 == 1.0 == True do not pass as equal."""
    return [(type(v).__name__, repr(v)) for v in values]


@pytest.mark.parametrize("name", sorted(LIBRARY))
def test_round_trip_every_library_program(name, tmp_path):
    entry = LIBRARY[name]
    model = compile_rasp_to_model(entry.build(), entry.vocab, 5)
    path = save_model(model, tmp_path / f"{name}.safetensors")
    loaded = load_model(path)

    assert loaded.compilation is None
    assert loaded.config == model.config
    assert _typed(loaded.config.vocab) == _typed(model.config.vocab)
    assert _typed(loaded.config.output_values) == _typed(model.config.output_values)
    assert loaded.labels == model.labels
    assert loaded.params.keys() == model.params.keys()
    for key, value in model.params.items():
        assert loaded.params[key].dtype == np.float32
        np.testing.assert_array_equal(loaded.params[key], value, err_msg=key)

    inputs = [[model.config.bos, *xs] for xs in exhaustive_inputs(entry.vocab, 4)]
    want = model.apply_batch(inputs, backend="numpy")
    got = loaded.apply_batch(inputs, backend="numpy")
    assert [_typed(o) for o in got] == [_typed(o) for o in want]


def test_round_trip_with_the_jax_forward(tmp_path):
    entry = LIBRARY["reverse"]
    model = compile_rasp_to_model(entry.build(), entry.vocab, 5)
    loaded = load_model(save_model(model, tmp_path / "m.safetensors"))
    inputs = [[model.config.bos, *xs] for xs in exhaustive_inputs(entry.vocab, 3)]
    assert loaded.apply_batch(inputs, backend="jax") == model.apply_batch(inputs, backend="numpy")


@pytest.mark.parametrize("vocab", [
    (1, 2, 3),
    ("a", "b", "c"),
    (("a", 1), ("b", 2), ("c", (3, 4))),
    (True, False),
    (0.5, 1.5, -2.25),
    ("1", 2, (3,)),  # the string "1" and the int 2 must stay apart
    ("", "x"),
])
def test_vocab_and_output_values_keep_their_types(vocab, tmp_path):
    identity = rasp.categorical(rasp.Map(lambda t: t, rasp.tokens)).named("identity")
    model = compile_rasp_to_model(identity, vocab, 3)
    loaded = load_model(save_model(model, tmp_path / "m.safetensors"))
    assert _typed(loaded.config.vocab) == _typed(model.config.vocab)
    assert _typed(loaded.config.output_values) == _typed(model.config.output_values)
    for xs in exhaustive_inputs(vocab, 2):
        assert _typed(loaded.apply(["BOS", *xs]).decoded) == _typed(model.apply(["BOS", *xs]).decoded)


def test_bos_and_pad_of_other_types(tmp_path):
    model = compile_rasp_to_model(LIBRARY["reverse"].build(), ["a", "b"], 3, compiler_bos=0, compiler_pad=(None,))
    loaded = load_model(save_model(model, tmp_path / "m.safetensors"))
    assert _typed([loaded.config.bos, loaded.config.pad]) == [("int", "0"), ("tuple", "(None,)")]
    assert loaded.apply([0, "a", "b"]).decoded == [0, "b", "a"]


@pytest.mark.parametrize("value", [
    0, -7, 2**70, 1.0, 0.1, float("inf"), float("-inf"), "", "1", "True", True, False, None,
    (), (1, "1", 1.0, True, None), ((1, 2), ("a",)), frozenset({1, 2}),
])
def test_value_encoding_is_exact(value):
    data = json.loads(json.dumps(encode_value(value), allow_nan=False))
    back = decode_value(data)
    assert _typed([back]) == _typed([value])


def test_value_encoding_nan_and_refusals():
    assert np.isnan(decode_value(json.loads(json.dumps(encode_value(float("nan")), allow_nan=False))))
    assert encode_value(np.int64(3)) == 3 and type(encode_value(np.int64(3))) is int
    with pytest.raises(ModelFileError, match="cannot write the value"):
        encode_value(object())
    assert printable_value(object())["t"] == "repr"


def test_library_api_names():
    assert rasp_compiler.load_model is load_model
    assert rasp_compiler.save_model is save_model


def test_loaded_model_keeps_source_and_graph(tmp_path):
    entry = LIBRARY["sort"]
    model = compile_rasp_to_model(entry.build(), entry.vocab, 5)
    model.source = "# not parsed by the loader\n"
    model.metadata = {"program": {"origin": "lib:sort", "output": "sort"}}
    loaded = load_model(save_model(model, tmp_path / "m.safetensors"))
    assert loaded.source == model.source
    assert loaded.metadata["program"] == {"origin": "lib:sort", "output": "sort"}
    assert loaded.metadata["format_version"] == "2"
    graph = loaded.metadata["graph"]
    assert graph == json.loads(json.dumps(model_metadata(model)["graph"]))
    nodes = {n["label"]: n for n in graph["nodes"]}
    assert graph["output"] == "sort"
    assert nodes["sort"]["kind"] == "attention" and nodes["sort"]["head"] == [2, 0]
    assert nodes["sort"]["value_set"] == [1, 2, 3, 4, None]  # None: "selected nothing"
    assert nodes["tokens"]["layer"] is None and nodes["tokens"]["kind"] == "embed"
    assert ["tokens", "sort"] in graph["edges"]
    # A loaded model runs with every activation, and saving it again keeps the graph.
    result = loaded.run_with_cache(["BOS", 3, 1, 2])
    assert result.decoded == ["BOS", 1, 2, 3] and "blocks.0.attn.hook_pattern" in result.cache
    again = load_model(save_model(loaded, tmp_path / "again.safetensors"))
    assert again.metadata["graph"] == graph and again.source == model.source


def _files(directory):
    return sorted(p.name for p in directory.iterdir())


@pytest.mark.parametrize("fail_at", ["fsync", "replace", "write"])
def test_write_is_atomic(fail_at, tmp_path, monkeypatch):
    model = compile_rasp_to_model(LIBRARY["length"].build(), ("a", "b"), 3)
    target = tmp_path / "m.safetensors"

    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device (simulated)")

    if fail_at == "write":
        real_fdopen = os.fdopen

        class Failing:
            def __init__(self, fh):
                self.fh = fh

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self.fh.close()

            def write(self, data):
                self.fh.write(data[: len(data) // 2])  # half written, then the disk fills up
                boom()

        monkeypatch.setattr(safetensors_file.os, "fdopen", lambda fd, mode: Failing(real_fdopen(fd, mode)))
    else:
        monkeypatch.setattr(safetensors_file.os, fail_at, boom)
    with pytest.raises(OSError, match="simulated"):
        save_model(model, target)
    assert _files(tmp_path) == []  # no file, no temporary file


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    old = compile_rasp_to_model(LIBRARY["length"].build(), ("a", "b"), 3)
    new = compile_rasp_to_model(LIBRARY["reverse"].build(), ("a", "b"), 3)
    target = save_model(old, tmp_path / "m.safetensors")
    before = target.read_bytes()
    monkeypatch.setattr(safetensors_file.os, "replace", lambda *a: (_ for _ in ()).throw(OSError("simulated")))
    with pytest.raises(OSError):
        save_model(new, target)
    assert target.read_bytes() == before
    assert _files(tmp_path) == ["m.safetensors"]


def test_save_creates_directories_and_refuses_misshapen_models(tmp_path):
    model = compile_rasp_to_model(LIBRARY["length"].build(), ("a", "b"), 3)
    assert save_model(model, tmp_path / "a" / "b" / "m.safetensors").is_file()
    model.params["unembed.W_U"] = model.params["unembed.W_U"][:-1]
    with pytest.raises(ModelFileError, match="refusing to write.*unembed.W_U"):
        save_model(model, tmp_path / "bad.safetensors")
    assert not (tmp_path / "bad.safetensors").exists()


# ------------------------------------------------------------------------------ bad files
@pytest.fixture(scope="module")
def good_file(tmp_path_factory):
    model = compile_rasp_to_model(LIBRARY["reverse"].build(), ("a", "b", "c"), 4)
    return save_model(model, tmp_path_factory.mktemp("good") / "reverse.safetensors")


def _read(path):
    tensors = safetensors.numpy.load(path.read_bytes())
    with open(path, "rb") as fh:
        n = int.from_bytes(fh.read(8), "little")
        meta = json.loads(fh.read(n))["__metadata__"]
    return tensors, meta


def _rewrite(good, path, tensors=None, **changes):
    """A copy of the good file with some tensors or metadata replaced (None deletes a key),
    its integrity checksum recomputed unless changed too: these tests reach the checks
    behind it (a file edited by someone who also rewrote the checksum)."""
    from rasp_compiler.export.safetensors_file import file_checksum

    t, meta = _read(good)
    t.update(tensors or {})
    t = {k: v for k, v in t.items() if v is not None}
    meta.update(changes)
    meta = {k: v for k, v in meta.items() if v is not None}
    if "sha256" not in changes:
        meta["sha256"] = file_checksum(meta, t)
    path.write_bytes(safetensors.numpy.save(t, metadata=meta))
    return path


def test_good_file_loads(good_file):
    assert load_model(good_file).apply(["BOS", "a", "b", "c"]).decoded == ["BOS", "c", "b", "a"]


def test_missing_file(tmp_path):
    with pytest.raises(ModelFileError, match=r"nope\.safetensors: no such file"):
        load_model(tmp_path / "nope.safetensors")


def test_not_a_file(tmp_path):
    with pytest.raises(ModelFileError, match="not a file"):
        load_model(tmp_path)


@pytest.mark.parametrize("cut", [0, 4, 100, -1, -100])
def test_truncated_file(good_file, tmp_path, cut):
    data = good_file.read_bytes()
    bad = tmp_path / "truncated.safetensors"
    bad.write_bytes(data[:cut] if cut >= 0 else data[:len(data) + cut])  # 0: an empty file
    with pytest.raises(ModelFileError, match=r"truncated\.safetensors: not a readable safetensors file"):
        load_model(bad)


def test_not_safetensors_at_all(tmp_path):
    bad = tmp_path / "model.safetensors"
    bad.write_text("reverse = aggregate(select(indices, length - indices - 1, ==), tokens);\n")
    with pytest.raises(ModelFileError, match="not a readable safetensors file"):
        load_model(bad)


def test_corrupt_header_bytes(good_file, tmp_path):
    data = bytearray(good_file.read_bytes())
    data[8:40] = b"\xff" * 32  # garbage inside the JSON header
    bad = tmp_path / "corrupt.safetensors"
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="corrupt"):
        load_model(bad)


def test_corrupt_weight_bytes_fail_the_checksum(good_file, tmp_path):
    data = bytearray(good_file.read_bytes())
    data[-20:-16] = np.float32(123.0).tobytes()  # one weight changed, the header intact
    bad = tmp_path / "corrupt.safetensors"
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="checksum"):
        load_model(bad)


def test_not_our_format(good_file, tmp_path):
    bad = _rewrite(good_file, tmp_path / "other.safetensors", format="someone.else")
    with pytest.raises(ModelFileError, match="not a rasp_compiler model"):
        load_model(bad)
    plain = tmp_path / "plain.safetensors"
    plain.write_bytes(safetensors.numpy.save({"w": np.zeros(3, np.float32)}))
    with pytest.raises(ModelFileError, match="not a rasp_compiler model"):
        load_model(plain)


def test_unknown_format_version(good_file, tmp_path):
    bad = _rewrite(good_file, tmp_path / "future.safetensors", format_version="3",
                   created_by="rasp_compiler 9.0.0")
    with pytest.raises(ModelFileError, match=r"format_version '3' is not supported.*supported: 2.*9\.0\.0"):
        load_model(bad)


def test_missing_tensor(good_file, tmp_path):
    bad = _rewrite(good_file, tmp_path / "missing.safetensors", {"blocks.1.attn.W_K": None}, params_sha256=None)
    with pytest.raises(ModelFileError, match=r"missing tensors \['blocks\.1\.attn\.W_K'\]"):
        load_model(bad)


def test_unexpected_tensor(good_file, tmp_path):
    bad = _rewrite(good_file, tmp_path / "extra.safetensors", {"blocks.9.attn.W_K": np.zeros(2, np.float32)})
    with pytest.raises(ModelFileError, match="unexpected tensors"):
        load_model(bad)


@pytest.mark.parametrize("name", ["embed.W_E", "pos_embed.W_pos", "blocks.0.attn.W_Q", "blocks.2.attn.W_O",
                                  "blocks.1.mlp.W_in", "blocks.1.mlp.b_in", "blocks.0.mlp.W_out",
                                  "blocks.2.mlp.b_out", "unembed.W_U"])
def test_misshapen_tensor(good_file, tmp_path, name):
    tensors, _ = _read(good_file)
    wrong = np.zeros(tensors[name].shape[:-1] + (tensors[name].shape[-1] + 1,), np.float32)
    bad = _rewrite(good_file, tmp_path / "misshapen.safetensors", {name: wrong}, params_sha256=None)
    with pytest.raises(ModelFileError, match=rf"tensor {name} has shape .* needs {tensors[name].shape}".replace("(", r"\(").replace(")", r"\)")):
        load_model(bad)


def test_wrong_dtype(good_file, tmp_path):
    tensors, _ = _read(good_file)
    bad = _rewrite(good_file, tmp_path / "f64.safetensors", {"unembed.W_U": tensors["unembed.W_U"].astype(np.float64)},
                   params_sha256=None)
    with pytest.raises(ModelFileError, match="dtype float64, expected float32"):
        load_model(bad)


@pytest.mark.parametrize("key,value,message", [
    ("config", "{not json", "metadata 'config' is not valid JSON"),
    ("config", json.dumps({"n_layers": 3}), "bad metadata 'config': missing keys"),
    ("labels", "[1, 2", "metadata 'labels' is not valid JSON"),
    ("labels", json.dumps({"residual": ["one"], "heads": [], "mlps": [], "neurons": []}), "bad metadata 'labels'"),
    ("graph", "{", "metadata 'graph' is not valid JSON"),
    ("config", None, "metadata has no 'config'"),
])
def test_bad_json_metadata(good_file, tmp_path, key, value, message):
    bad = _rewrite(good_file, tmp_path / "meta.safetensors", **{key: value})
    with pytest.raises(ModelFileError, match=message):
        load_model(bad)


def test_config_values_are_checked(good_file, tmp_path):
    _, meta = _read(good_file)
    config = json.loads(meta["config"])
    config["n_heads"] = -1
    bad = _rewrite(good_file, tmp_path / "c.safetensors", config=json.dumps(config))
    with pytest.raises(ModelFileError, match="n_heads must be a positive integer"):
        load_model(bad)


def test_file_format_is_plain_safetensors(good_file):
    """Any safetensors reader sees the parameters and string metadata; nothing is pickled."""
    tensors, meta = _read(good_file)
    assert meta["format"] == FORMAT and meta["format_version"] == "2"
    assert meta["created_by"].startswith("rasp_compiler ")
    assert {"config", "labels", "graph", "params_sha256", "sha256"} <= set(meta)
    assert all(isinstance(v, str) for v in meta.values())
    assert json.loads(meta["config"])["vocab"] == ["a", "b", "c"]
    assert tensors["embed.W_E"].dtype == np.float32
    assert b"pickle" not in good_file.read_bytes()
