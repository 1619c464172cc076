"""benchmarks/corpus.py on a small fake corpus (the real one is never part of the project)."""

import json

from test_corpus import CASES, write_corpus
from scripts import load_script


LENGTH_CAUSAL = '''
from tracr.rasp import rasp

from circuits_benchmark.benchmark.common_programs import make_length
from circuits_benchmark.benchmark.tracr_benchmark_case import TracrBenchmarkCase


class Case3(TracrBenchmarkCase):
    def get_program(self) -> rasp.SOp:
        return make_length()

    def get_vocab(self):
        return {"a", "b"}

    def get_max_seq_len(self) -> int:
        return 4
'''


def _bench():
    return load_script("benchmarks/corpus.py")


def test_corpus_benchmark_records_exactness_refusals_and_writes_its_section(tmp_path, capsys):
    bench = _bench()
    corpus = write_corpus(tmp_path / "checkout", {1: CASES[1], 2: CASES[2], 3: LENGTH_CAUSAL})
    doc = tmp_path / "page.md"
    doc.write_text(f"# page\n\n{bench.BEGIN}\nold numbers\n{bench.END}\n\nafter\n")
    bench.main([str(corpus), "--only", "ours", "--n", "40", "--json", str(tmp_path / "r.json"), "--doc", str(doc)])
    progress = capsys.readouterr().out
    assert "[1/3] case   1" in progress and "[3/3] case   3" in progress
    results = json.loads((tmp_path / "r.json").read_text())["results"]
    one, two, three = results["1"], results["2"], results["3"]
    assert not one["declared_causal"] and two["declared_causal"] and three["declared_causal"]
    r = one["non-causal"]["ours"]
    assert r["compiles"] and r["n_inputs"] == 40 and r["exact"] and r["type_exact_all"] and r["compile_s"] >= 0
    assert one["causal"]["ours"] == r  # declared non-causal: the same run
    assert two["causal"]["ours"]["exact"] and two["causal"]["ours"]["n_inputs"] == 40
    assert three["non-causal"]["ours"]["exact"]
    refused = three["causal"]["ours"]
    assert not refused["compiles"] and refused["error_class"] == "CausalityError"
    text = doc.read_text()
    assert "old numbers" not in text and text.startswith("# page") and text.rstrip().endswith("after")
    assert "| non-causal | ours | 3/3 | 3/3 | 3/3 |" in text
    assert "| causal | ours | 2/3 | 2/2 | 2/2 |" in text
    assert "- causal, ours: CausalityError: 3" in text and "- non-causal, ours: none" in text
    assert "case 3, causal: CausalityError:" in text
    assert not (tmp_path / "r.partial.json").exists()


def test_a_run_of_some_cases_is_printed_not_recorded(tmp_path, capsys):
    bench = _bench()
    corpus = write_corpus(tmp_path / "checkout", {1: CASES[1], 2: CASES[2]})
    doc = tmp_path / "page.md"
    doc.write_text("# page\n")
    bench.main([str(corpus), "--only", "ours", "--n", "10", "--cases", "2", "--json", str(tmp_path / "r.json"),
                "--doc", str(doc)])
    assert "| non-causal | ours | 1/1 |" in capsys.readouterr().out
    assert not (tmp_path / "r.json").exists() and doc.read_text() == "# page\n"
