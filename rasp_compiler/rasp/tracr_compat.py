"""tracr's own public-API tests, run against rasp_compiler.

tracr-pypi ships its test files; :func:`run_test_file` loads one of them with tracr's
public modules aliased to ours (:mod:`rasp_compiler.rasp.tracr_alias`) and runs it with
unittest. :data:`EXPECTED_DIFFERENCES` lists, with the reason, each tracr test that is
meant to fail here because we chose differently (documented in docs/tracr_compat.md);
every other failure is a compatibility bug.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import unittest
from dataclasses import dataclass, field
from pathlib import Path

from rasp_compiler.rasp.tracr_alias import as_tracr

#: The public-API test files, relative to the installed ``tracr`` package.
PUBLIC_TEST_FILES = (
    "rasp/rasp_test.py",
    "rasp/causal_eval_test.py",
    "compiler/lib_test.py",
    "compiler/validating_test.py",
    "compiler/rasp_to_transformer_integration_test.py",
)

#: tracr's other test files test its internals, which have no counterpart here.
OUT_OF_SCOPE = {
    "compiler/assemble_test.py": "tracr's assembly into a haiku model (our model/assemble is a different design)",
    "compiler/basis_inference_test.py": "tracr's value-set inference pass over its own graph attributes",
    "compiler/craft_graph_to_model_test.py": "tracr's layer allocation over craft blocks",
    "compiler/expr_to_craft_graph_test.py": "tracr's craft block construction",
    "compiler/rasp_to_craft_integration_test.py": "compares tracr's craft vector spaces, not model outputs",
    "compiler/rasp_to_graph_test.py": "tracr's graph node attribute bags (we use typed dataclasses)",
    "craft/bases_test.py": "tracr's craft.bases vector-space library",
    "craft/chamber/categorical_attn_test.py": "tracr's craft attention constructions",
    "craft/chamber/categorical_mlp_test.py": "tracr's craft MLP constructions",
    "craft/chamber/numerical_mlp_test.py": "tracr's discretising numerical MLP (ours is exact by design)",
    "craft/chamber/selector_width_test.py": "tracr's craft selector-width block",
    "craft/transformers_test.py": "tracr's craft series/parallel block algebra",
    "craft/vectorspace_fns_test.py": "tracr's craft linear maps",
    "transformer/compressed_model_test.py": "tracr's haiku model with a learned residual projection",
    "transformer/encoder_test.py": "tracr's encoder classes (we expose input/output encoders with the same methods, "
                                   "but not its class hierarchy)",
    "transformer/model_test.py": "tracr's haiku transformer module",
    "utils/errors_test.py": "tracr's internal error helper",
}

#: (file, regular expression over the test id) -> why the test is expected to fail here.
_COMPILES = ("rasp_compiler compiles it exactly where tracr refuses it (tracr's test asserts the refusal; "
             "our tests check the compiled model against rasp.evaluate instead)")
_V, _I = "compiler/validating_test.py", "compiler/rasp_to_transformer_integration_test.py"
EXPECTED_DIFFERENCES: dict[tuple[str, str], str] = {
    (_V, r"fail_validation_numerical_numerical_aggregate$"):
        "a numerical mean of any numbers: " + _COMPILES,
    (_V, r"fail_validation_categorical_numerical_aggregate$"):
        "a numerical mean of a categorical SOp with numeric values: " + _COMPILES,
    (_V, r"fail_validation_aggregate_with_not_None_default$"):
        "a numerical Aggregate with default 1: " + _COMPILES,
    (_I, r"raise_exception_aggregate_with_not_None_default$"):
        "a numerical Aggregate with default 1: " + _COMPILES,
    (_V, r"fail_validation_categorical_LinearSequenceMap$"):
        "a LinearSequenceMap of categorical SOps (an MLP over the value pairs): " + _COMPILES,
    (_I, r"raise_exception_categorical_LinearSequenceMap$"):
        "a LinearSequenceMap of categorical SOps (an MLP over the value pairs): " + _COMPILES,
    (_V, r"fail_validation_numerical_(tokens|indices)$"):
        "numerical tokens/indices (one residual direction holding the value): " + _COMPILES,
    (_I, r"raise_exception_numerical_(tokens|indices)$"):
        "numerical tokens/indices (one residual direction holding the value): " + _COMPILES,
    (_I, r"causal_models_produce_expected_output_selector_width$"):
        "SelectorWidth(Select(tokens, tokens, TRUE)) selects later positions; tracr compiles it under "
        "causal=True and the mask silently turns 'length' into 'prefix length'. We refuse a selector that "
        "can select a later position (CausalityError): write Select(...) & Select(indices, indices, LEQ) "
        "to mean the prefix",
}


@dataclass
class FileResult:
    file: str
    total: int = 0
    passed: int = 0
    import_error: str | None = None
    failures: dict[str, str] = field(default_factory=dict)  # test id -> first line of the error
    expected: dict[str, str] = field(default_factory=dict)  # test id -> documented reason

    @property
    def unexpected(self) -> dict[str, str]:
        return {t: e for t, e in self.failures.items() if t not in self.expected}


def tracr_root() -> Path | None:
    """The installed tracr package directory, or None when tracr-pypi is absent."""
    spec = importlib.util.find_spec("tracr")
    return Path(spec.origin).parent if spec and spec.origin else None


def expected_reason(file: str, test_id: str) -> str | None:
    for (f, pattern), reason in EXPECTED_DIFFERENCES.items():
        if f == file and re.search(pattern, test_id):
            return reason
    return None


class _Collect(unittest.TestResult):
    def __init__(self):
        super().__init__()
        self.outcome: dict[str, str | None] = {}

    def _name(self, test) -> str:
        return test.id().split(".", 1)[1]

    def addSuccess(self, test):
        self.outcome.setdefault(self._name(test), None)

    def addFailure(self, test, err):
        self.outcome[self._name(test)] = _first_line(err)

    addError = addFailure

    def addSubTest(self, test, subtest, err):
        if err is not None:
            self.outcome[self._name(test)] = _first_line(err)

    def addSkip(self, test, reason):
        self.outcome.setdefault(self._name(test), None)


def _first_line(err) -> str:
    exc = err[1]
    text = f"{type(exc).__name__}: {exc}".strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def load_tests(file: str, root: Path | None = None) -> unittest.TestSuite:
    """The unittest suite of one tracr test file, imported against rasp_compiler (call within as_tracr())."""
    root = root or tracr_root()
    module_name = "tracr_compat_" + re.sub(r"\W", "_", file[:-3])
    spec = importlib.util.spec_from_file_location(module_name, root / file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return unittest.defaultTestLoader.loadTestsFromModule(module)


def _flatten(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from _flatten(t)
        else:
            yield t


def run_test_file(file: str, root: Path | None = None, select=None) -> FileResult:
    """Run one tracr test file (optionally only the test ids ``select`` accepts)."""
    result = FileResult(file)
    with as_tracr():
        try:
            suite = load_tests(file, root)
        except Exception as exc:  # noqa: BLE001 — reported, not hidden
            result.import_error = f"{type(exc).__name__}: {exc}".splitlines()[0]
            return result
        tests = [t for t in _flatten(suite) if select is None or select(t.id().split(".", 1)[1])]
        collect = _Collect()
        for t in tests:
            t(collect)
    result.total = len(collect.outcome)
    for test_id, err in collect.outcome.items():
        if err is None:
            result.passed += 1
            continue
        result.failures[test_id] = err
        reason = expected_reason(file, test_id)
        if reason:
            result.expected[test_id] = reason
    return result
