"""The InterpBench corpus loader (rasp_compiler.corpus) and the ``corpus:PATH`` program source.

The corpus itself is never part of the project: each test writes a small fake checkout
with the corpus's layout (cases/case_N.py importing tracr, vocabs, common_programs and a
TracrBenchmarkCase base class that imports torch and friends, as the real one does).
"""

from __future__ import annotations

import sys
import textwrap

import pytest

from rasp_compiler import compile_rasp_to_model, rasp
from rasp_compiler.corpus import CorpusError, case_files, load_case, load_corpus
from rasp_compiler.interp.tasks.sources import TaskSetError, select_sources
from rasp_compiler.verify import check_model, exhaustive_inputs

BASE = '''
import itertools
from typing import Optional, Set

import numpy as np
import torch as t
from iit.model_pairs.base_model_pair import BaseModelPair
from jaxtyping import Float
from torch import Tensor
from tracr.compiler import compiling
from tracr.compiler.compiling import TracrOutput
from tracr.rasp import rasp
from tracr.rasp.rasp import RASPExpr

from circuits_benchmark.benchmark.benchmark_case import BenchmarkCase
from circuits_benchmark.transformers.hooked_tracr_transformer import HookedTracrTransformer


class TracrBenchmarkCase(BenchmarkCase):
    def __init__(self):
        super().__init__()
        self.tracr_output: TracrOutput | None = None

    def get_hl_model(self, device: str | t.device = t.device("cuda") if t.cuda.is_available() else t.device("cpu")):
        return HookedTracrTransformer.from_tracr_model(self.get_tracr_output().model, device=device)

    def metric(self, x: Float[Tensor, ""]) -> Optional[Float[Tensor, ""]]:
        return x

    def supports_causal_masking(self) -> bool:
        return True

    def get_max_seq_len(self) -> int:
        return 7

    def get_min_seq_len(self) -> int:
        return 3
'''

BENCHMARK_CASE = '''
import torch as t
from transformer_lens import HookedTransformer


class BenchmarkCase(object):
    def get_name(self) -> str:
        return self.__class__.__name__[4:].lower()

    def get_task_description(self) -> str:
        return ""
'''

VOCABS = '''
import string
from typing import Set

TRACR_BOS = "BOS"
TRACR_PAD = "PAD"


def get_ascii_letters_vocab(count=len(string.ascii_lowercase)) -> Set:
    return set(string.ascii_lowercase[:count])


def get_int_digits_vocab(count=10) -> Set:
    return set(range(count))
'''

COMMON = '''
from tracr.rasp import rasp


def make_length() -> rasp.SOp:
    return rasp.SelectorWidth(rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.TRUE)).named("length")


def make_reverse(sop: rasp.SOp) -> rasp.SOp:
    opp = (make_length() - rasp.indices).named("opp_idx")
    opp = (opp - 1).named("opp_idx-1")
    return rasp.Aggregate(rasp.Select(rasp.indices, opp, rasp.Comparison.EQ), sop).named("reverse")
'''

CASES = {
    1: '''
from typing import Set

from tracr.rasp import rasp

from circuits_benchmark.benchmark import vocabs
from circuits_benchmark.benchmark.common_programs import make_reverse
from circuits_benchmark.benchmark.tracr_benchmark_case import TracrBenchmarkCase
from circuits_benchmark.transformers.hooked_tracr_transformer import HookedTracrTransformerBatchInput


class Case1(TracrBenchmarkCase):
    def get_program(self) -> rasp.SOp:
        return make_reverse(rasp.tokens)

    def get_task_description(self) -> str:
        return "Reverse the input sequence."

    def get_vocab(self) -> Set:
        return vocabs.get_ascii_letters_vocab(count=3)

    def supports_causal_masking(self) -> bool:
        return False

    def sample_data(self, count) -> (HookedTracrTransformerBatchInput, HookedTracrTransformerBatchInput):
        raise NotImplementedError
''',
    2: '''
from typing import Set

from tracr.rasp import rasp

from circuits_benchmark.benchmark import vocabs
from circuits_benchmark.benchmark.tracr_benchmark_case import TracrBenchmarkCase


class Case2(TracrBenchmarkCase):
    def get_program(self) -> rasp.SOp:
        prevs = rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.LEQ)
        return rasp.numerical(rasp.Aggregate(prevs, rasp.numerical(rasp.tokens), default=0)).named("mean")

    def get_vocab(self) -> Set:
        return vocabs.get_int_digits_vocab(count=3)

    def get_max_seq_len(self) -> int:
        return 5
''',
    10: '''
from tracr.rasp import rasp

from circuits_benchmark.benchmark.cases.case_2 import Case2


class Case10(Case2):
    def get_program(self) -> rasp.SOp:
        return rasp.Map(lambda x: x + 1, rasp.tokens).named("plus_one")
''',
}


def write_corpus(root, cases=CASES, base=BASE):
    bench = root / "circuits_benchmark" / "benchmark"
    (bench / "cases").mkdir(parents=True)
    for f in (root / "circuits_benchmark" / "__init__.py", bench / "__init__.py", bench / "cases" / "__init__.py"):
        f.write_text("")
    for name, text in {"tracr_benchmark_case": base, "benchmark_case": BENCHMARK_CASE, "vocabs": VOCABS,
                       "common_programs": COMMON}.items():
        (bench / f"{name}.py").write_text(textwrap.dedent(text))
    for n, text in cases.items():
        (bench / "cases" / f"case_{n}.py").write_text(textwrap.dedent(text))
    (bench / "cases" / "case_ioi.py").write_text("import torch\n")  # not a numbered case: not loaded
    return root


@pytest.fixture
def corpus(tmp_path):
    return write_corpus(tmp_path / "checkout")


def test_cases_have_their_own_and_the_base_class_defaults(corpus):
    assert list(case_files(corpus)) == [1, 2, 10]
    by = {c.number: c for c in load_corpus(corpus)}
    assert sorted(by) == [1, 2, 10]
    one, two, ten = by[1], by[2], by[10]
    assert one.vocab == frozenset("abc") and two.vocab == frozenset({0, 1, 2})
    # get_max_seq_len() counts BOS: the base class's 7 -> 6 tokens, case 2's own 5 -> 4, inherited by case 10
    assert (one.max_seq_len, two.max_seq_len, ten.max_seq_len) == (6, 4, 4)
    assert one.min_seq_len == 2
    assert (one.causal, two.causal, ten.causal) == (False, True, True)
    assert one.description == "Reverse the input sequence." and two.description == ""
    assert one.file.name == "case_1.py" and one.name == "case_1"


def test_programs_are_ours_and_mean_what_the_files_say(corpus):
    one, two, ten = load_corpus(corpus)
    assert isinstance(one.program, rasp.SOp)
    assert rasp.evaluate(one.program, list("abcc")) == list("ccba")
    assert rasp.evaluate(two.program, [2, 0, 1]) == [2, 1, 1]
    assert rasp.evaluate(ten.program, [0, 2]) == [1, 3]


def test_loaded_programs_compile_exactly(corpus):
    for case in load_corpus(corpus):
        model = compile_rasp_to_model(case.program, case.vocab, case.max_seq_len, causal=case.causal)
        report = check_model(model, case.program, exhaustive_inputs(case.vocab, case.max_seq_len))
        assert report.checked > 0 and report.exact, (case.number, report.examples[:1])


def test_loading_leaves_sys_modules_alone(corpus):
    before = set(sys.modules)
    load_corpus(corpus)
    new = set(sys.modules) - before
    assert not {m for m in new if m.split(".")[0] in ("circuits_benchmark", "torch", "iit", "jaxtyping",
                                                        "transformer_lens")}
    assert "tracr.rasp.rasp" not in new


def test_tracr_rasp_module_builds_the_same_program(corpus):
    trasp = pytest.importorskip("tracr.rasp.rasp")
    ours, theirs = load_case(corpus, 1), load_case(corpus, 1, rasp_module=trasp)
    assert isinstance(theirs.program, trasp.SOp) and not isinstance(theirs.program, rasp.SOp)
    for xs in exhaustive_inputs(ours.vocab, 4):
        assert trasp.evaluate(theirs.program, xs) == rasp.evaluate(ours.program, xs)


def test_missing_folder_and_missing_layout(tmp_path):
    with pytest.raises(CorpusError, match="does not exist"):
        load_corpus(tmp_path / "nowhere")
    with pytest.raises(CorpusError, match="no circuits_benchmark/benchmark/cases"):
        load_corpus(tmp_path)


def test_the_benchmark_and_package_folders_are_accepted_too(corpus):
    for path in (corpus / "circuits_benchmark", corpus / "circuits_benchmark" / "benchmark"):
        assert [c.number for c in load_corpus(path)] == [1, 2, 10]


def test_unknown_case_number_names_the_folder(corpus):
    with pytest.raises(CorpusError, match=r"no case file case_7\.py in .*cases"):
        load_corpus(corpus, [1, 7])


def test_unparsable_case_names_file_and_line(tmp_path):
    root = write_corpus(tmp_path, {3: "from tracr.rasp import rasp\n\nclass Case3(:\n    pass\n"})
    with pytest.raises(CorpusError, match=r"case_3\.py line 3: cannot be parsed: SyntaxError"):
        load_corpus(root)


def test_failing_program_names_file_method_and_line(tmp_path):
    case = CASES[2].replace("prevs = rasp.Select", "prevs = undefined_name.Select")
    root = write_corpus(tmp_path, {2: case})
    with pytest.raises(CorpusError, match=r"case_2\.py: Case2\.get_program\(\) failed: NameError.*line \d+: "
                                          r"prevs = undefined_name"):
        load_corpus(root)


def test_missing_corpus_module_and_missing_class_are_named(tmp_path):
    root = write_corpus(tmp_path, {4: "from circuits_benchmark.benchmark.nothing_here import x\n",
                                   5: "from tracr.rasp import rasp\n"})
    with pytest.raises(CorpusError, match=r"case_4\.py: running it failed: ImportError.*nothing_here"):
        load_case(root, 4)
    with pytest.raises(CorpusError, match=r"case_5\.py: no class Case5\(TracrBenchmarkCase\)"):
        load_case(root, 5)


def test_not_an_sop_is_refused(tmp_path):
    case = CASES[2].replace('return rasp.numerical(rasp.Aggregate(prevs, rasp.numerical(rasp.tokens), '
                            'default=0)).named("mean")', "return prevs")
    with pytest.raises(CorpusError, match=r"case_2\.py: Case2\.get_program\(\) returned Select, not an SOp"):
        load_corpus(write_corpus(tmp_path, {2: case}))


def test_corpus_program_source(corpus):
    sources, notes = select_sources([f"corpus:{corpus}:1", "10"])  # the CLI splits "corpus:P:1,10" at commas
    assert notes == [] and [s.name for s in sources] == ["corpus-001", "corpus-010"]
    one = sources[0]
    assert (one.vocab, one.max_seq_len, one.causal) == (("a", "b", "c"), 6, False)
    assert one.origin == "circuits_benchmark/benchmark/cases/case_1.py"
    model = one.compile()
    assert check_model(model, one.build(), exhaustive_inputs(one.vocab, 4)).exact
    every, _ = select_sources([f"corpus:{corpus}"])
    assert [s.name for s in every] == ["corpus-001", "corpus-002", "corpus-010"]
    assert every[1].causal and model.metadata["program"]["origin"] == one.origin


def test_corpus_program_source_errors(tmp_path, corpus):
    with pytest.raises(TaskSetError, match="does not exist"):
        select_sources([f"corpus:{tmp_path / 'nowhere'}"])
    with pytest.raises(TaskSetError, match="no case file case_99.py"):
        select_sources([f"corpus:{corpus}:99"])
    with pytest.raises(TaskSetError, match="needs a path"):
        select_sources(["corpus:"])
