"""Datasets of compiled random programs: one weight file each, plus ``index.json``.

Every model is checked against ``rasp.evaluate`` before it is written, so its labels
(which RASP node every head, MLP neuron and residual dimension computes, stored in the
weight file's metadata) are ground truth. A printable program's text is stored in the
weight file too (``source``), so ``rasp-compiler verify FILE`` re-checks it.

``index.json``::

    {"format": "rasp_compiler.fuzz.dataset", "version": 1, "n": ..., "seed": ..., "depth": ...,
     "generator": {"rejected": {reason: count}, "compiler_errors": [...]},
     "programs": [{"file", "seed", "attempt", "output", "output_encoding", "text",
                   "printable", "vocab", "max_seq_len", "causal", "depth", "layers", "sizes",
                   "ops", "verified_inputs", "examples": [{"input", "output"}], "notes"}, ...]}

``notes`` are what building the program would have logged (e.g. "SequenceMap of n1_mean with
itself ..."): about code the generator wrote, so kept here and summarised in one line by
``rasp-compiler generate`` rather than printed per program.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any, Callable

from rasp_compiler.errors import RaspCompilerError, UnsupportedProgramError
from rasp_compiler.export.safetensors_file import atomic_write

DATASET_FORMAT = "rasp_compiler.fuzz.dataset"
DATASET_VERSION = 1
VERIFY_EXHAUSTIVE = 60
VERIFY_RANDOM = 40
MAX_ATTEMPTS = 30


class DatasetError(RaspCompilerError):
    """A dataset could not be written (missing weight-file support, an unusable directory, ...)."""


def _json_value(v: Any) -> Any:
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return v if v == v and abs(v) != float("inf") else repr(v)
    if isinstance(v, (list, tuple)):
        return [_json_value(x) for x in v]
    return repr(v)


def _compile_checked(seed: int, depth: int, rejected: Counter, compiler_errors: list):
    """A compiled program of this seed whose model matches the evaluator on the check inputs.

    Rejections (UnsupportedProgramError) are counted by reason; any other failure (a
    crash or a wrong output: compiler bugs) is recorded and the next attempt is used, so
    a dataset never holds a model whose labels are not ground truth.
    """
    from rasp_compiler.compiler import compile_rasp_to_model
    from rasp_compiler.fuzz.differential import fuzz_inputs
    from rasp_compiler.fuzz.generator import GenerationError, generate_program, rejection_reason
    from rasp_compiler.verify import check_model

    for attempt in range(MAX_ATTEMPTS):
        try:
            gen = generate_program(seed, depth, attempt=attempt)
        except GenerationError as exc:
            rejected[rejection_reason("GenerationError", str(exc))] += 1
            continue
        try:
            model = compile_rasp_to_model(gen.program, gen.vocab, gen.max_seq_len, causal=gen.causal)
        except UnsupportedProgramError as exc:
            rejected[rejection_reason(type(exc).__name__, str(exc))] += 1
            continue
        except Exception as exc:  # noqa: BLE001 - a compiler crash: a bug, recorded, never written
            compiler_errors.append({"seed": seed, "attempt": attempt, "error": f"{type(exc).__name__}: {exc}"})
            continue
        inputs = fuzz_inputs(gen.vocab, gen.max_seq_len, seed, VERIFY_EXHAUSTIVE, VERIFY_RANDOM)
        try:
            report = check_model(model, gen.program, inputs, backend="numpy")
        except Exception as exc:  # noqa: BLE001
            compiler_errors.append({"seed": seed, "attempt": attempt, "error": f"{type(exc).__name__}: {exc}"})
            continue
        if not report.exact:
            m = report.examples[0]
            compiler_errors.append({"seed": seed, "attempt": attempt,
                                    "error": f"{report.n_mismatches} mismatches, e.g. input {m.input!r}: "
                                             f"got {m.got!r}, expected {m.expected!r}"})
            continue
        return gen, model, report.checked
    raise DatasetError(f"seed {seed}: no usable program in {MAX_ATTEMPTS} attempts")


def write_dataset(n: int, out_dir, seed: int = 0, depth: int = 3,
                  progress: Callable[[int], Any] | None = None) -> Path:
    """Compile ``n`` random programs (seeds ``seed .. seed+n-1``) into ``out_dir``.

    Writes ``program_00000.safetensors`` ... (one weight file each, with ground-truth
    labels and, for printable programs, the program text) and ``index.json`` (see the
    module docstring). ``progress``, if given, is called with 1 after each program.
    Returns the path of ``index.json``. Every file is written atomically.
    """
    try:
        from rasp_compiler.export import save_model
    except ImportError as exc:
        raise DatasetError(f"writing a dataset needs weight files (rasp_compiler.export.save_model), which "
                           f"cannot be imported here: {exc}") from exc
    from rasp_compiler.fuzz.generator import describe_ops
    from rasp_compiler.verify import expected_output, random_inputs

    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ValueError(f"depth must be a positive integer, got {depth!r}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise DatasetError(f"{out} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    rejected: Counter = Counter()
    compiler_errors: list[dict] = []
    entries: list[dict] = []
    for i in range(n):
        s = seed + i
        gen, model, verified = _compile_checked(s, depth, rejected, compiler_errors)
        fname = f"program_{i:05d}.safetensors"
        model.source = gen.text
        model.metadata = {
            "program": {"origin": f"rasp_compiler.fuzz seed {s} attempt {gen.attempt}",
                        "output": model.config.output},
            "extra": {"fuzz": {"seed": s, "attempt": gen.attempt, "depth": depth, "printable": gen.printable}},
        }
        save_model(model, out / fname)
        examples = []
        for xs in random_inputs(gen.vocab, gen.max_seq_len, 3, seed=s, full_length=3):
            want = expected_output(gen.program, xs, gen.causal)
            examples.append({"input": _json_value(xs), "output": _json_value(want)})
        entries.append({
            "file": fname,
            "seed": s,
            "attempt": gen.attempt,
            "output": model.config.output,
            "output_encoding": "numerical" if model.config.output_numerical else "categorical",
            "text": gen.text,
            "printable": gen.text is not None,
            "vocab": _json_value(list(gen.vocab)),
            "max_seq_len": gen.max_seq_len,
            "causal": gen.causal,
            "depth": gen.measured_depth,
            "layers": model.config.n_layers,
            "sizes": model.sizes(),
            "ops": list(describe_ops(gen.program)),
            "verified_inputs": verified,
            "examples": examples,
            "notes": list(gen.notes),  # what building it would have logged, kept here instead
        })
        if progress is not None:
            progress(1)
    index = {
        "format": DATASET_FORMAT,
        "version": DATASET_VERSION,
        "n": n,
        "seed": seed,
        "depth": depth,
        "generator": {"rejected": dict(rejected.most_common()), "compiler_errors": compiler_errors},
        "programs": entries,
    }
    path = out / "index.json"
    atomic_write(path, (json.dumps(index, indent=1) + "\n").encode("utf-8"))
    return path


__all__ = ["write_dataset", "DatasetError", "DATASET_FORMAT", "DATASET_VERSION"]
