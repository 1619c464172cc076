"""InterpBench's case corpus (github FlyingPumba/circuits-benchmark) as programs of this compiler.

A case file is tracr code: ``from tracr.rasp import rasp`` and a ``CaseN(TracrBenchmarkCase)``
class whose ``get_program()`` builds the program. :func:`load_corpus` runs the files
unchanged, as a user porting them would after switching ``tracr.rasp.rasp`` to
``rasp_compiler.rasp``: each corpus file is executed into a private module object whose
imports are resolved by the loader (nothing enters ``sys.modules``), so that

* ``tracr.rasp.rasp`` is ``rasp_compiler.rasp`` (or any rasp module given, e.g. real tracr's,
  to build the same case with tracr),
* ``circuits_benchmark.benchmark.*`` are the corpus's own files (``vocabs.py``,
  ``common_programs.py``, ``tracr_benchmark_case.py``, ``cases/case_N.py``, ...), so the
  defaults of ``TracrBenchmarkCase`` (max_seq_len, causal flag) are the corpus's,
* the standard library and numpy are the real ones, and every other module (torch,
  transformer_lens, iit, the rest of circuits_benchmark, tracr's compiler) is an inert
  stand-in: the case files and their base class import them for training and plotting
  code that building a program never runs.

Nothing of the corpus is copied into this project; give the path of a local checkout.
"""

from __future__ import annotations

import builtins
import importlib
import importlib.util
import re
import sys
import traceback
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from rasp_compiler.errors import RaspCompilerError

PACKAGE = "circuits_benchmark"
BENCHMARK = f"{PACKAGE}.benchmark"
_CASE_FILE = re.compile(r"case_(\d+)\.py")
_REAL_TOP_LEVEL = {"numpy"}  # third-party modules programs may use; everything else outside stdlib is a stand-in


class CorpusError(RaspCompilerError):
    """A corpus folder or case file cannot be read (names the folder or file)."""


@dataclass(frozen=True)
class CorpusCase:
    """One case, with what compiling it needs.

    ``max_seq_len`` and ``min_seq_len`` are in tokens *without* BOS, as
    ``compile_rasp_to_model`` takes them; the corpus's ``get_max_seq_len()`` counts BOS
    (InterpBench compiles with ``get_max_seq_len() - 1``)."""

    number: int
    file: Path
    program: Any  # the output SOp, built with the loader's rasp module
    vocab: frozenset
    max_seq_len: int
    min_seq_len: int
    causal: bool  # the case's supports_causal_masking()
    description: str

    @property
    def name(self) -> str:
        return f"case_{self.number}"


def benchmark_dir(path: str | Path) -> Path:
    """The ``circuits_benchmark/benchmark`` folder of a checkout, given the checkout, the
    ``circuits_benchmark`` package folder or the ``benchmark`` folder itself."""
    path = Path(path).expanduser()
    if not path.exists():
        raise CorpusError(f"corpus folder {path} does not exist (give a checkout of FlyingPumba/circuits-benchmark)")
    for candidate in (path / PACKAGE / "benchmark", path / "benchmark", path):
        if (candidate / "cases").is_dir():
            return candidate
    raise CorpusError(f"{path} is not a circuits-benchmark checkout: no {PACKAGE}/benchmark/cases folder in it")


def case_files(path: str | Path) -> dict[int, Path]:
    """Case number -> file, for every ``cases/case_N.py`` (N an integer) of the corpus."""
    cases = benchmark_dir(path) / "cases"
    found = {int(m.group(1)): f for f in cases.iterdir() if (m := _CASE_FILE.fullmatch(f.name))}
    if not found:
        raise CorpusError(f"{cases} holds no case_N.py files")
    return dict(sorted(found.items()))


def load_corpus(path: str | Path, numbers: Iterable[int] | None = None, rasp_module: Any = None) -> list[CorpusCase]:
    """Every case of the corpus at ``path`` (or those ``numbers``), in case order.

    ``rasp_module`` stands for ``tracr.rasp.rasp`` (default: ``rasp_compiler.rasp``)."""
    files = case_files(path)
    wanted = list(files) if numbers is None else list(numbers)
    missing = [n for n in wanted if n not in files]
    if missing:
        raise CorpusError(f"no case file case_{missing[0]}.py in {benchmark_dir(path) / 'cases'} "
                          f"(cases there: {min(files)}..{max(files)}, {len(files)} files)")
    loader = _Loader(benchmark_dir(path), rasp_module)
    return [loader.case(n, files[n]) for n in wanted]


def load_case(path: str | Path, number: int, rasp_module: Any = None) -> CorpusCase:
    return load_corpus(path, [number], rasp_module)[0]


# ---------------------------------------------------------------------------- loading
class _Loader:
    """Executes corpus files into private modules; resolves their imports (see the module docstring)."""

    def __init__(self, bench: Path, rasp_module: Any):
        if rasp_module is None:
            rasp_module = importlib.import_module("rasp_compiler.rasp")
        self.bench, self.rasp = bench, rasp_module
        self.modules: dict[str, types.ModuleType] = {}
        self.builtins = dict(vars(builtins), __import__=self._import)
        tracr = self._namespace("tracr")
        tracr.rasp = self._namespace("tracr.rasp")
        tracr.rasp.rasp = rasp_module
        self.modules["tracr.rasp.rasp"] = rasp_module
        self._namespace(PACKAGE).benchmark = self._namespace(BENCHMARK)
        self._namespace(f"{BENCHMARK}.cases")
        self.modules[BENCHMARK].cases = self.modules[f"{BENCHMARK}.cases"]

    def _namespace(self, name: str) -> types.ModuleType:
        module = types.ModuleType(name)
        module.__path__ = []
        self.modules[name] = module
        return module

    def case(self, number: int, file: Path) -> CorpusCase:
        module = self._module(f"{BENCHMARK}.cases.case_{number}")
        base = self._module(f"{BENCHMARK}.tracr_benchmark_case").__dict__.get("TracrBenchmarkCase")
        cls = module.__dict__.get(f"Case{number}")
        if not isinstance(cls, type) or (isinstance(base, type) and not issubclass(cls, base)):
            raise CorpusError(f"{file}: no class Case{number}(TracrBenchmarkCase) in it")
        what = "building the case"
        try:
            case = cls()
            what = "get_program()"
            program = case.get_program()
            what = "get_vocab()"
            vocab = frozenset(case.get_vocab())
            what = "get_max_seq_len()"
            max_len = int(case.get_max_seq_len())
            what = "get_min_seq_len()"
            min_len = int(case.get_min_seq_len()) if hasattr(case, "get_min_seq_len") else 2
            what = "supports_causal_masking()"
            causal = bool(case.supports_causal_masking())
            what = "get_task_description()"
            description = str(case.get_task_description())
        except CorpusError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure of the case's own code
            raise CorpusError(f"{file}: Case{number}.{what} failed: {_where(exc, file)}") from exc
        if not isinstance(program, self.rasp.SOp):
            raise CorpusError(f"{file}: Case{number}.get_program() returned {type(program).__name__}, not an SOp")
        if max_len < 2:
            raise CorpusError(f"{file}: Case{number}.get_max_seq_len() is {max_len}; it counts BOS, so it must be >= 2")
        return CorpusCase(number, file, program, vocab, max_len - 1, max(1, min(min_len, max_len) - 1), causal,
                          description)

    # -- imports of corpus code
    def _import(self, name, globals=None, locals=None, fromlist=(), level=0):
        if level:
            name = importlib.util.resolve_name("." * level + name, (globals or {}).get("__package__") or "")
        top = name.partition(".")[0]
        if top not in ("tracr", PACKAGE):
            if top in sys.stdlib_module_names or top in _REAL_TOP_LEVEL:
                return importlib.__import__(name, globals, locals, fromlist, 0)
            return self._stand_in(name, fromlist)
        if name in self.modules or name.startswith(BENCHMARK + "."):
            module = self._module(name)
        else:  # tracr's compiler, circuits_benchmark's training code: not needed to build a program
            return self._stand_in(name, fromlist)
        if fromlist:
            for attr in fromlist:  # ``from circuits_benchmark.benchmark.cases import case_98``
                if attr != "*" and not hasattr(module, attr) and f"{name}.{attr}" in self._known(name):
                    self._module(f"{name}.{attr}")
            return module
        return self.modules[top]

    def _known(self, package: str) -> set[str]:
        if not package.startswith(BENCHMARK):
            return set()
        folder = self.bench.joinpath(*package.split(".")[2:])
        return {f"{package}.{f.stem}" for f in folder.glob("*.py")} if folder.is_dir() else set()

    def _stand_in(self, name: str, fromlist) -> types.ModuleType:
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            sub = ".".join(parts[:i])
            if sub not in self.modules:
                self.modules[sub] = _StandInModule(sub)
                if i > 1:
                    setattr(self.modules[".".join(parts[:i - 1])], parts[i - 1], self.modules[sub])
        return self.modules[name] if fromlist else self.modules[parts[0]]

    def _module(self, name: str) -> types.ModuleType:
        if name in self.modules:
            return self.modules[name]
        parts = name.split(".")[2:]
        file = self.bench.joinpath(*parts).with_suffix(".py")
        if not file.is_file():
            raise ImportError(f"no module named {name!r}: the corpus has no file {file}", name=name)
        module = types.ModuleType(name)
        module.__file__, module.__package__ = str(file), name.rpartition(".")[0]
        module.__builtins__ = self.builtins
        self.modules[name] = module  # before running it: circular imports see the partial module, as Python's do
        parent = self.modules.get(module.__package__)
        if parent is not None:
            setattr(parent, parts[-1], module)
        try:
            source = file.read_text(encoding="utf-8")
            code = compile(source, str(file), "exec")
        except (OSError, UnicodeDecodeError, SyntaxError, ValueError) as exc:
            del self.modules[name]
            where = f" line {exc.lineno}" if getattr(exc, "lineno", None) else ""
            raise CorpusError(f"{file}{where}: cannot be parsed: {type(exc).__name__}: "
                              f"{getattr(exc, 'msg', None) or exc}") from exc
        try:
            exec(code, module.__dict__)  # noqa: S102 - the point of the loader: run the corpus's code
        except CorpusError:
            del self.modules[name]
            raise
        except Exception as exc:  # noqa: BLE001
            del self.modules[name]
            raise CorpusError(f"{file}: running it failed: {_where(exc, file)}") from exc
        return module


def _where(exc: BaseException, file: Path) -> str:
    """``Type: message`` plus the last line of ``file`` (or any corpus file) in the traceback."""
    lines = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(file)] or \
        traceback.extract_tb(exc.__traceback__)[-1:]
    at = f" (line {lines[-1].lineno}: {lines[-1].line})" if lines and lines[-1].filename == str(file) else ""
    return f"{type(exc).__name__}: {exc}{at}"


# ---------------------------------------------------------------------------- stand-ins
class _StandInMeta(type):
    """Stand-in classes absorb what module-level and class-body code does with them:
    attributes, calls, ``X[...]`` and ``X | Y`` in annotations, subclassing."""

    def __getattr__(cls, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _stand_in_class(f"{cls.__qualname__}.{name}")

    def __call__(cls, *args, **kwargs):
        if cls.__dict__.get("_stand_in"):
            return _stand_in_class(f"{cls.__qualname__}()")
        return super().__call__(*args, **kwargs)

    def __getitem__(cls, item):
        return cls

    def __or__(cls, other):
        return cls

    __ror__ = __or__


def _stand_in_class(qualname: str) -> type:
    cls = _StandInMeta(qualname.rpartition(".")[2] or qualname, (), {"_stand_in": True, "__module__": "stand-in"})
    cls.__qualname__ = qualname
    return cls


class _StandInModule(types.ModuleType):
    """A module outside what building a program needs (torch, transformer_lens, ...)."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _stand_in_class(f"{self.__name__}.{name}")
