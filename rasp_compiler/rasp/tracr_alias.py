"""Run code written for tracr on rasp_compiler, without editing it.

``use_as_tracr()`` makes ``import tracr.rasp.rasp``, ``tracr.rasp.causal_eval``,
``tracr.compiler.lib``, ``tracr.compiler.validating`` and ``tracr.compiler.compiling``
resolve to this package's modules (tracr's internals — craft, bases, the haiku model —
stay tracr's, if installed). It is how tracr's own public-API tests are run against us
(``benchmarks/tracr_tests.py``, ``tests/test_tracr_compat.py``), and how a tracr
notebook can be switched over with one line.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import types

#: tracr module -> the rasp_compiler module that stands in for it.
ALIASES = {
    "tracr.rasp.rasp": "rasp_compiler.rasp",
    "tracr.rasp.causal_eval": "rasp_compiler.rasp.causal_eval",
    "tracr.compiler.lib": "rasp_compiler.lib",
    "tracr.compiler.validating": "rasp_compiler.rasp.validating",
    "tracr.compiler.compiling": None,  # built below: compile_rasp_to_model + tracr's constants
}

# tracr modules whose import-time content is built from the aliased ones: re-imported
# after aliasing so that they are built from ours.
_DEPENDENTS = ("tracr.compiler.test_cases",)


def _compiling_module() -> types.ModuleType:
    from rasp_compiler.compiler import compile_rasp_to_model

    module = types.ModuleType("tracr.compiler.compiling", "rasp_compiler's compile_rasp_to_model under tracr's name")
    module.COMPILER_BOS = "compiler_bos"  # tracr's defaults for these two names
    module.COMPILER_PAD = "compiler_pad"

    def tracr_compile_rasp_to_model(program, vocab, max_seq_len, causal=False, compiler_bos=module.COMPILER_BOS,
                                    compiler_pad=module.COMPILER_PAD, mlp_exactness=100):
        return compile_rasp_to_model(program, vocab, max_seq_len, causal=causal, compiler_bos=compiler_bos,
                                     compiler_pad=compiler_pad, mlp_exactness=mlp_exactness)

    tracr_compile_rasp_to_model.__doc__ = compile_rasp_to_model.__doc__
    module.compile_rasp_to_model = tracr_compile_rasp_to_model
    return module


def use_as_tracr() -> dict:
    """Alias tracr's public modules to ours in ``sys.modules`` (idempotent).

    Returns what was there before, for :func:`restore`.
    """
    saved = {name: sys.modules.get(name) for name in (*ALIASES, *_DEPENDENTS, "tracr", "tracr.rasp",
                                                      "tracr.compiler")}
    for name in ("tracr", "tracr.rasp", "tracr.compiler"):
        if name not in sys.modules:
            try:
                importlib.import_module(name)
            except ImportError:  # tracr not installed: stand-in packages
                sys.modules[name] = types.ModuleType(name)
                sys.modules[name].__path__ = []
    for alias, target in ALIASES.items():
        module = _compiling_module() if target is None else importlib.import_module(target)
        sys.modules[alias] = module
        parent, leaf = alias.rsplit(".", 1)
        setattr(sys.modules[parent], leaf, module)
    for name in _DEPENDENTS:
        sys.modules.pop(name, None)
    return saved


def restore(saved: dict) -> None:
    """Undo :func:`use_as_tracr`: tracr's own modules (or none) are imported again."""
    for name, module in saved.items():
        if module is None:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = module
    for alias in ALIASES:
        parent, leaf = alias.rsplit(".", 1)
        if saved.get(parent) is not None:
            if saved.get(alias) is not None:
                setattr(saved[parent], leaf, saved[alias])
            elif hasattr(saved[parent], leaf):
                delattr(saved[parent], leaf)


@contextlib.contextmanager
def as_tracr():
    """``with as_tracr(): ...`` — tracr's public modules are ours inside the block only."""
    saved = use_as_tracr()
    try:
        yield
    finally:
        restore(saved)
