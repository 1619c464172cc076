"""InterpBench's 129 case programs with rasp_compiler and with tracr, side by side, in one run.

    .venv/bin/python benchmarks/corpus.py PATH [--n 2000] [--cases 1,5,88] [--only ours|tracr] [--no-doc]

PATH is a local checkout of github.com/FlyingPumba/circuits-benchmark (fetched with the
``fetch`` tool or ``git clone``; nothing of it is committed). Each case file is loaded
unchanged twice by :mod:`rasp_compiler.corpus`: once with ``tracr.rasp.rasp`` standing for
``rasp_compiler.rasp`` (what a user porting the corpus does) and once with real tracr
(``pip install tracr-pypi``), so each compiler gets the program built by its own rasp module.

Per case, in two runs: non-causal, and causal as the case declares
(``supports_causal_masking()``; a case declared non-causal is the same run twice, so its
non-causal figures are reused). Per compiler and run:

* compiles, or the refusal (exception class and message), and the warnings it gave;
* compile time (wall clock of ``compile_rasp_to_model``);
* exact on ``--n`` random inputs (lengths 1..max_seq_len, seeded by the case number, the
  same inputs for both compilers): every position equal to the compiler's own
  ``rasp.evaluate`` (under causal: of the prefix ending there) in value (numbers within
  rasp_compiler.verify's tolerance) and, separately, in type (``type(got) is type(want)``).

Writes the marked ``corpus`` section of docs/tracr_compat.md (per-case table, totals,
refusals by class) and every figure to benchmarks/results/corpus.json. ``--only ours``
re-runs one compiler and keeps the other's rows from that file (the doc then says so).
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import signal
import sys
import time
import warnings
from collections import defaultdict
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from doc_section import replace_section  # noqa: E402

from rasp_compiler.corpus import CorpusCase, load_corpus  # noqa: E402
from rasp_compiler.verify import random_inputs, same_value  # noqa: E402

BOS, PAD = "BOS", "PAD"
DOC = ROOT / "docs" / "tracr_compat.md"
RESULTS = HERE / "results" / "corpus.json"
BEGIN, END = "<!-- corpus:begin -->", "<!-- corpus:end -->"
COMPILE_BUDGET = 600.0  # seconds per compile
CHUNK = 250
RUNS = ("non-causal", "causal")


class Timeout(BaseException):
    """A BaseException, so that no ``except Exception`` inside a compiler swallows it."""


def _alarm(signum, frame):
    raise Timeout(f"more than {COMPILE_BUDGET:.0f} s")


# ----------------------------------------------------------------------------- compilers
class Ours:
    name = "ours"

    def __init__(self):
        from rasp_compiler import compile_rasp_to_model, rasp
        self.rasp, self._compile = rasp, compile_rasp_to_model

    def compile(self, case: CorpusCase, causal: bool):
        return self._compile(case.program, case.vocab, case.max_seq_len, causal=causal,
                             compiler_bos=BOS, compiler_pad=PAD)

    def apply_batch(self, model, inputs: list[list]) -> list[list]:
        return [list(o[1:]) for o in model.apply_batch([[BOS, *x] for x in inputs], backend="numpy")]


class Tracr:
    name = "tracr"

    def __init__(self):
        from tracr.compiler import compiling
        from tracr.rasp import rasp
        self.rasp, self._compiling = rasp, compiling

    def compile(self, case: CorpusCase, causal: bool):
        return self._compiling.compile_rasp_to_model(case.program, vocab=set(case.vocab), max_seq_len=case.max_seq_len,
                                                     causal=causal, compiler_bos=BOS, compiler_pad=PAD)

    def apply_batch(self, model, inputs: list[list]) -> list[list]:
        """tracr's ``model.apply`` (encode, forward, decode) over a batch padded with PAD: tracr
        masks PAD keys and its MLPs act per position, so real positions are what apply gives."""
        import jax.numpy as jnp

        import jax

        width = 1 + max(len(x) for x in inputs)
        ids = [model.input_encoder.encode([BOS, *x] + [PAD] * (width - 1 - len(x))) for x in inputs]
        if not hasattr(model, "_bench_forward"):  # one XLA compile per shape instead of op-by-op dispatch
            model._bench_forward = jax.jit(lambda params, ids: model.forward(params, ids).unembedded_output)
        rows = model._bench_forward(model.params, jnp.array(ids)).tolist()
        out = []
        for x, row in zip(inputs, rows):
            row = row[: 1 + len(x)]
            out.append(list(model.output_encoder.decode(row) if model.output_encoder else row)[1:])
        return out


# ----------------------------------------------------------------------------- one run
def _short(exc: BaseException, n: int = 400) -> str:
    msg = re.sub(r" at 0x[0-9a-fA-F]+", "", f"{type(exc).__name__}: {exc}".replace("\n", " "))
    return msg if len(msg) <= n else msg[: n - 3] + "..."


def _expected(rasp, program, xs: list, causal: bool) -> list:
    if not causal:
        return list(rasp.evaluate(program, xs))
    return [rasp.evaluate(program, xs[: i + 1])[i] for i in range(len(xs))]


def run_one(comp, case: CorpusCase, causal: bool, inputs: list[list]) -> dict:
    """Compile (timed), then value- and type-exactness on ``inputs``."""
    res: dict[str, Any] = {}
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, COMPILE_BUDGET)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            t0 = time.perf_counter()
            model = comp.compile(case, causal)
            res["compile_s"] = round(time.perf_counter() - t0, 3)
    except (Exception, Timeout) as exc:  # noqa: BLE001 - a refusal is a result
        return {"compiles": False, "error_class": type(exc).__name__, "reason": _short(exc)}
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    res["compiles"] = True
    res["warnings"] = sorted({f"{w.category.__name__}: {str(w.message)[:300]}" for w in caught
                              if not issubclass(w.category, (DeprecationWarning, ResourceWarning))})
    n = n_value = n_type = n_noref = n_non_none = 0
    first_value = first_type = None
    t0 = time.perf_counter()
    try:
        for start in range(0, len(inputs), CHUNK):
            keep, refs = [], []
            for xs in inputs[start:start + CHUNK]:
                try:
                    refs.append(_expected(comp.rasp, case.program, xs, causal))
                    keep.append(xs)
                except Exception:  # noqa: BLE001 - an input outside the program's domain
                    n_noref += 1
            if not keep:
                continue
            for xs, got, want in zip(keep, comp.apply_batch(model, keep), refs):
                n += 1
                value = len(got) == len(want) and all(same_value(g, w) for g, w in zip(got, want))
                typed = value and all(type(g) is type(w) for g, w in zip(got, want))
                n_value += value
                n_non_none += len(got) == len(want) and all(w is None or same_value(g, w) for g, w in zip(got, want))
                n_type += typed
                if not value and first_value is None:
                    first_value = {"input": xs, "expected": want, "got": got}
                if value and not typed and first_type is None:
                    first_type = {"input": xs, "expected": [f"{w!r} ({type(w).__name__})" for w in want],
                                  "got": [f"{g!r} ({type(g).__name__})" for g in got]}
    except Exception as exc:  # noqa: BLE001
        res["eval_error"] = _short(exc)
    res.update(eval_s=round(time.perf_counter() - t0, 2), n_inputs=n, value_exact=n_value, type_exact=n_type,
               value_exact_where_not_none=n_non_none,
               no_reference=n_noref,
               first_value_mismatch=_jsonable(first_value), first_type_mismatch=_jsonable(first_type))
    res["exact"] = n > 0 and n_value == n and "eval_error" not in res
    res["type_exact_all"] = res["exact"] and n_type == n
    return res


def _jsonable(x):
    return json.loads(json.dumps(x, default=repr))


# ----------------------------------------------------------------------------- report
def _cell(r: dict | None) -> str:
    if r is None:
        return "–"
    if not r["compiles"]:
        return f"refused ({r['error_class']})"
    n = r.get("n_inputs", 0)
    exact = "exact" if r["exact"] else f"{r['value_exact']}/{n}"
    if not r["exact"] and r.get("value_exact_where_not_none", 0) > r["value_exact"]:
        exact += f" ({r['value_exact_where_not_none']}/{n} where not None)"
    typed = "" if not r["exact"] else (", types ok" if r["type_exact_all"] else f", types {r['type_exact']}/{n}")
    warn = ", warned" if r.get("warnings") else ""
    return f"{exact}{typed}{warn}, {r['compile_s']:.2f} s"


def totals(results: dict, compiler: str, run: str) -> dict:
    rows = [c[run].get(compiler) for c in results.values() if c.get(run, {}).get(compiler) is not None]
    ok = [r for r in rows if r["compiles"]]
    refused = defaultdict(list)
    for number, c in results.items():
        r = c.get(run, {}).get(compiler)
        if r is not None and not r["compiles"]:
            refused[r["error_class"]].append(int(number))
    return {"cases": len(rows), "compiles": len(ok), "exact": sum(r["exact"] for r in ok),
            "type_exact": sum(r["type_exact_all"] for r in ok), "warned": sum(bool(r.get("warnings")) for r in ok),
            "compile_s": sum(r["compile_s"] for r in ok),
            "refused": {k: sorted(v) for k, v in sorted(refused.items())}}


def markdown(results: dict, meta: dict) -> str:
    lines = [f"Generated by `{meta['command']}` against tracr-pypi {meta['tracr']} on the corpus at commit "
             f"{meta['corpus_commit']} ({meta['n_cases']} cases, {meta['n']} random inputs per case and run, "
             f"{meta['seconds']:.0f} s; {meta['python']}, {meta['machine']}). {meta['provenance']}", "",
             "Exact: every position equal to the compiler's own `rasp.evaluate` in value; types ok: and "
             "`type(got) is type(want)` at every position; \"where not None\": positions where "
             "`rasp.evaluate` gives None are not compared (tracr's models cannot output None). Causal: each case compiled with its own "
             "`supports_causal_masking()` (a case declared non-causal is its non-causal run).", "",
             "| run | compiler | compiles | exact in value | exact in value and type | compiled with a warning "
             "| compile time (sum) |", "|---|---|---:|---:|---:|---:|---:|"]
    for run in RUNS:
        for comp in ("ours", "tracr"):
            t = totals(results, comp, run)
            if not t["cases"]:
                continue
            lines.append(f"| {run} | {comp} | {t['compiles']}/{t['cases']} | {t['exact']}/{t['compiles']} | "
                         f"{t['type_exact']}/{t['compiles']} | {t['warned']} | {t['compile_s']:.0f} s |")
    lines += ["", "Refusals by class (case numbers):", ""]
    for run in RUNS:
        for comp in ("ours", "tracr"):
            t = totals(results, comp, run)
            if t["cases"]:
                refused = "; ".join(f"{k}: {', '.join(map(str, v))}" for k, v in t["refused"].items()) or "none"
                lines.append(f"- {run}, {comp}: {refused}")
    lines += ["", "Why ours refuses or differs (one line per case and run):", ""]
    notes = []
    for number, c in sorted(results.items(), key=lambda kv: int(kv[0])):
        for run in RUNS:
            r = c.get(run, {}).get("ours")
            if r is None or (run == "causal" and not c["declared_causal"]):
                continue
            if not r["compiles"]:
                notes.append(f"- case {number}, {run}: {r['reason']}")
            elif not r["type_exact_all"]:
                bad = r.get("first_value_mismatch") or r.get("first_type_mismatch") or r.get("eval_error")
                notes.append(f"- case {number}, {run}: {'value' if not r['exact'] else 'type'} mismatch on "
                             f"{r['n_inputs'] - (r['type_exact'] if r['exact'] else r['value_exact'])} of "
                             f"{r['n_inputs']} inputs, e.g. `{json.dumps(bad)[:300]}`")
            for w in r.get("warnings", []):
                notes.append(f"- case {number}, {run}: warning {w[:300]}")
    lines += notes or ["- none"]
    lines += ["", "| case | declared causal | ours, non-causal | tracr, non-causal | ours, causal | tracr, causal |",
              "|---:|:---:|---|---|---|---|"]
    for number, c in sorted(results.items(), key=lambda kv: int(kv[0])):
        same = not c["declared_causal"]
        causal = ("same" if same else _cell(c.get("causal", {}).get(k)) for k in ("ours", "tracr"))
        lines.append(f"| {number} | {'yes' if c['declared_causal'] else 'no'} | "
                     f"{_cell(c['non-causal'].get('ours'))} | {_cell(c['non-causal'].get('tracr'))} | "
                     f"{' | '.join(causal)} |")
    return "\n".join(lines)


def _corpus_commit(path: Path) -> str:
    import subprocess

    try:
        return subprocess.run(["git", "-C", str(path), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except Exception:  # noqa: BLE001 - an extracted archive has no git
        return "0cfd831 (extracted archive, not a git checkout)"


# ----------------------------------------------------------------------------- main
def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("path", type=Path, help="a checkout of FlyingPumba/circuits-benchmark")
    ap.add_argument("--n", type=int, default=2000, help="random inputs per case and run (default 2000)")
    ap.add_argument("--cases", help="comma-separated case numbers (default: every case)")
    ap.add_argument("--only", choices=("ours", "tracr"), help="one compiler; the other's rows come from --other")
    ap.add_argument("--other", type=Path, help="with --only: the results (.json or .partial.json) of an earlier "
                                               "run to take the other compiler's rows from (default: --json)")
    ap.add_argument("--json", type=Path, default=RESULTS)
    ap.add_argument("--doc", type=Path, default=DOC, help="the page whose corpus section is written")
    ap.add_argument("--no-doc", action="store_true", help="do not write the page")
    ap.add_argument("--resume", action="store_true",
                    help="keep the cases an interrupted run of the same settings finished (its .partial.json)")
    args = ap.parse_args(argv)
    t_start = time.perf_counter()

    numbers = [int(n) for n in args.cases.split(",")] if args.cases else None
    compilers = []
    if args.only != "tracr":
        compilers.append(Ours())
    if args.only != "ours":
        compilers.append(Tracr())
    cases = {c.name: load_corpus(args.path, numbers, rasp_module=c.rasp) for c in compilers}
    other = args.other or args.json
    old = json.loads(other.read_text()) if args.only and other.exists() else {"results": {}}
    partial = args.json.with_suffix(".partial.json")
    settings = {"n": args.n, "only": args.only, "cases": args.cases}
    results: dict[str, dict] = {}
    seconds_before = 0.0
    if args.resume and partial.exists():
        saved = json.loads(partial.read_text())
        if saved["settings"] == settings:
            results, seconds_before = saved["results"], saved["seconds"]
    for i, base in enumerate(next(iter(cases.values()))):
        key = str(base.number)
        if key in results:
            continue
        entry = {"declared_causal": base.causal, "max_seq_len": base.max_seq_len, "vocab_size": len(base.vocab),
                 "non-causal": {}, "causal": {}}  # nothing of the corpus itself (its text) is recorded
        kept = old["results"].get(key, {})
        for run in RUNS:
            entry[run].update({k: v for k, v in kept.get(run, {}).items() if args.only and k != args.only})
        inputs = random_inputs(base.vocab, base.max_seq_len, args.n, seed=base.number)
        for comp in compilers:
            case = cases[comp.name][i]
            entry["non-causal"][comp.name] = run_one(comp, case, False, inputs)
            entry["causal"][comp.name] = run_one(comp, case, True, inputs) if case.causal \
                else entry["non-causal"][comp.name]
        results[key] = entry
        print(f"[{len(results)}/{len(cases[compilers[0].name])}] case {key:>3} (causal {'yes' if base.causal else 'no '}): "
              + "; ".join(f"{comp.name} {run}: {_cell(entry[run].get(comp.name))}" for comp in compilers
                          for run in RUNS if run == "non-causal" or base.causal), flush=True)
        partial.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(json.dumps({"settings": settings, "results": results, "seconds": seconds_before
                                       + time.perf_counter() - t_start}, default=repr))

    seconds = seconds_before + time.perf_counter() - t_start
    results = dict(sorted(results.items(), key=lambda kv: int(kv[0])))
    command = "nice -n 10 .venv/bin/python benchmarks/corpus.py PATH" + (f" --n {args.n}" if args.n != 2000 else "") \
        + (f" --cases {args.cases}" if args.cases else "") + (f" --only {args.only}" if args.only else "")
    meta = {"command": command, "tracr": _version("tracr-pypi"), "corpus_commit": _corpus_commit(args.path),
            "n_cases": len(results), "n": args.n, "seconds": seconds,
            "python": platform.python_version(), "machine": f"{platform.machine()} CPU",
            "provenance": "Both compilers ran in this one run." if not args.only else _provenance(args.only, results)}
    # each compiler's own run time; the other compiler's comes from its record, when that record has it
    meta["compiler_seconds"] = {**{k: v for k, v in old.get("meta", {}).get("compiler_seconds", {}).items()
                                   if args.only and k != args.only}, **{c.name: seconds for c in compilers}}
    if args.only:
        took = meta["compiler_seconds"].get("tracr" if args.only == "ours" else "ours")
        meta["provenance"] += f" That run took {took:.0f} s." if took is not None else \
            " That run's time is not in its record."
    body = markdown(results, meta)
    if numbers is None:  # a run of some cases only is printed, not recorded
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"meta": meta, "results": results}, indent=1, default=repr) + "\n")
        if not args.no_doc:
            replace_section(args.doc, BEGIN, END, body, heading="### Measured: the corpus with both compilers")
        partial.unlink(missing_ok=True)  # (a run of some cases keeps it: --resume goes on from there)
    print(body)


def _provenance(only: str, results: dict) -> str:
    other = "tracr" if only == "ours" else "ours"
    have = sum(other in c["non-causal"] for c in results.values())
    return (f"This run re-ran {only} only; {other}'s rows ({have} of {len(results)} cases"
            f"{'' if have == len(results) else ', the others not run: no time left for them'}) are from an "
            f"earlier run of the same script with `--only {other}` on the same inputs.")


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


if __name__ == "__main__":
    main()
