"""rasp_compiler next to DeepMind's tracr, program by program, in one run.

Setup (how tracr got here; nothing of tracr is copied into the project):
  tracr is installed from PyPI as ``tracr-pypi`` into the project venv (it is the
  ``bench`` extra of pyproject.toml):  ``.venv/bin/pip install -e '.[bench]'`` or
  ``.venv/bin/pip install tracr-pypi``. It installs in the same venv without
  downgrading anything: it only adds chex, einops and toolz; ``pip check`` is clean and
  jax 0.10.2 / jaxlib 0.10.2 / dm-haiku 0.0.17 / numpy 2.4.6 stay as they were. tracr
  1.0.0 runs on numpy 2 as is, so no compatibility shim is needed and tracr runs in
  this same process (no subprocess worker).

What is measured, per program and per max_seq_len (both compilers get the same program
text from benchmarks/programs.py, built once with each compiler's own rasp module):
  * layers, d_model, heads, parameter count (tracr: model_config + sum of params leaves;
    ours: model.config + sum of model.params arrays). Both count a "layer" as one
    attention sublayer plus one MLP sublayer.
  * time to first output: wall clock from building the program to the first decoded
    output (compile + first apply on a full-length input). JAX is warmed up and each
    compiler compiles a throwaway program once before any timing, and JAX's caches are
    cleared before every timed compile, so neither side profits from the other's traces.
  * exactness: share of inputs whose ``decoded[1:]`` equals the compiler's own
    ``rasp.evaluate`` (numbers within 1e-4, None only equals None). The same inputs go
    to both; exhaustive when the input space is small, else sampled. A second number
    ignores positions where the reference is None (tracr cannot output None). tracr's
    outputs for the check come from one padded forward per chunk of inputs (see
    Tracr.apply_batch); ours use model.apply_batch when the model has it.
  * warm: the same compile + first apply again with JAX's caches warm, to separate
    each compiler's own work from JAX tracing/compilation.
  Every compile runs under a wall-clock budget (SIGALRM); a compiler that timed out at
  one length, or whose time extrapolated from the previous length exceeds 3x the
  budget, is skipped at longer lengths. A global budget stops the run in time.

Run (from the repo root):
  .venv/bin/python benchmarks/compare_tracr.py            # full: lengths 5,10,20,40,64
  .venv/bin/python benchmarks/compare_tracr.py --quick    # lengths 5,10, fewer samples
  .venv/bin/python benchmarks/compare_tracr.py --programs reverse,sort --lengths 5,20
Outputs: a table on stdout, docs/benchmarks.md, benchmarks/results/compare_tracr.json.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import math
import os
import platform
import random
import re
import signal
import sys
import time
import traceback
import zlib
from importlib import metadata
from numbers import Number
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from programs import PROGRAMS, Program, exhaustive_inputs, n_exhaustive  # noqa: E402

BOS, PAD = "BOS", "PAD"
TOL = 1e-4
WARM_LIMIT = 45.0  # seconds: repeat a compile warm only when the cold one was faster than this


# ----------------------------------------------------------------------------- budget
class BudgetExceeded(BaseException):
    """A BaseException, so that no ``except Exception`` inside a compiler swallows it."""


class time_limit:
    """Raise BudgetExceeded in the main thread after ``seconds`` of wall clock."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def _handler(self, signum, frame):
        raise BudgetExceeded(f"exceeded {self.seconds:.0f} s budget")

    def __enter__(self):
        if self.seconds and self.seconds > 0:
            self._old = signal.signal(signal.SIGALRM, self._handler)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def __exit__(self, *exc):
        if self.seconds and self.seconds > 0:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._old)
        return False


# ----------------------------------------------------------------------------- compilers
class Compiler:
    """One side of the comparison: its rasp module, compile function and model accessors."""

    name: str
    available: bool = False
    why_unavailable: str = ""
    rasp: Any = None

    def compile(self, program, vocab, max_seq_len, causal=False):
        raise NotImplementedError

    def sizes(self, model) -> dict:
        raise NotImplementedError

    def apply_batch(self, model, token_lists: list[list]) -> list[list]:
        raise NotImplementedError


class Tracr(Compiler):
    name = "tracr"

    def __init__(self):
        try:
            from tracr.compiler import compiling
            from tracr.rasp import rasp as trasp
        except Exception as exc:  # noqa: BLE001
            self.why_unavailable = f"{type(exc).__name__}: {exc}"
            return
        self.rasp, self._compiling, self.available = trasp, compiling, True

    def compile(self, program, vocab, max_seq_len, causal=False):
        return self._compiling.compile_rasp_to_model(
            program, vocab=set(vocab), max_seq_len=max_seq_len, causal=causal,
            compiler_bos=BOS, compiler_pad=PAD, mlp_exactness=100)

    def sizes(self, model) -> dict:
        import jax
        cfg = model.model_config
        return {
            "layers": cfg.num_layers,
            "heads": cfg.num_heads,
            "d_model": int(model.params["token_embed"]["embeddings"].shape[1]),
            "d_mlp": cfg.mlp_hidden_size,
            "params": int(sum(x.size for x in jax.tree_util.tree_leaves(model.params))),
        }

    def apply_batch(self, model, token_lists):
        """model.apply over many inputs in one forward pass, padded with PAD.

        Same steps as tracr's AssembledTransformerModel.apply (encode, forward, decode,
        BOS at position 0), on a [batch, T] array padded to the longest input; tracr's
        model masks PAD keys out of attention, and MLPs act per position, so the real
        positions compute what an unpadded apply computes, up to float rounding. Padding keeps one array
        shape per chunk: tracr's forward is not jitted, and eager JAX compiles every op
        again for each new shape, which made per-length batches many times slower. For
        each model, the longest input (whose model.apply output the timed first run
        already has) and the shortest are checked against model.apply, and the agreement
        is recorded as ``batched_vs_apply_check``. They can disagree where tracr's output
        is a near tie: another batch shape rounds differently and the argmax flips.
        """
        import jax.numpy as jnp
        T = max(len(t) for t in token_lists)
        enc = [model.input_encoder.encode(list(t) + [PAD] * (T - len(t))) for t in token_lists]
        unembedded = model.forward(model.params, jnp.array(enc)).unembedded_output
        out = []
        for toks, row in zip(token_lists, unembedded.tolist()):
            row = row[: len(toks)]
            dec = model.output_encoder.decode(row) if model.output_encoder else row
            out.append([BOS] + list(dec[1:]))
        if not getattr(model, "_bench_checked", False):
            checks = [(list(token_lists[k]), None) for k in (min(range(len(token_lists)), key=lambda j: len(token_lists[j])),)]
            if getattr(model, "_bench_first", None):  # model.apply's output from the timed first run
                checks.append(model._bench_first)
            agree = []
            for toks, ref in checks:
                if ref is None:
                    ref = model.apply(toks).decoded
                k = next((j for j, t in enumerate(token_lists) if list(t) == toks), None)
                got = out[k] if k is not None else self.apply_batch_unchecked(model, [toks])[0]
                agree.append(_same_seq(ref, got))
            model._bench_check = {"checked": len(agree), "agree": sum(agree)}
            model._bench_checked = True
        return out

    def apply_batch_unchecked(self, model, token_lists):
        model._bench_checked = True
        return self.apply_batch(model, token_lists)


class Ours(Compiler):
    name = "ours"

    def __init__(self):
        try:
            from rasp_compiler import rasp as orasp
            self.rasp = orasp
            from rasp_compiler import compile_rasp_to_model
        except Exception as exc:  # noqa: BLE001  (ImportError while the compiler is being written)
            self.why_unavailable = f"{type(exc).__name__}: {exc}"
            return
        self._compile, self.available = compile_rasp_to_model, True

    def compile(self, program, vocab, max_seq_len, causal=False):
        return self._compile(program, vocab=set(vocab), max_seq_len=max_seq_len, causal=causal,
                             compiler_bos=BOS, compiler_pad=PAD, mlp_exactness=100)

    def sizes(self, model) -> dict:
        cfg = getattr(model, "config", None)

        def get(*names):
            for n in names:
                if cfg is not None and hasattr(cfg, n):
                    return getattr(cfg, n)
            return None

        params = getattr(model, "params", None)
        n_params = None
        if isinstance(params, dict):
            n_params = int(sum(getattr(v, "size", 0) for v in _leaves(params)))
        return {"layers": get("n_layers", "num_layers"), "heads": get("n_heads", "num_heads"),
                "d_model": get("d_model"), "d_mlp": get("d_mlp", "mlp_hidden_size"),
                "params": n_params}

    def apply_batch(self, model, token_lists):
        if hasattr(model, "apply_batch"):
            try:
                return [list(d) for d in model.apply_batch(token_lists)]
            except TypeError:
                pass
        return [list(model.apply(t).decoded) for t in token_lists]


def _leaves(d):
    for v in d.values():
        if isinstance(v, dict):
            yield from _leaves(v)
        else:
            yield v


# ----------------------------------------------------------------------------- comparison
def _same(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, Number) and isinstance(b, Number) and (isinstance(a, float) or isinstance(b, float)):
        return math.isfinite(float(a)) and abs(float(a) - float(b)) <= TOL
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001
        return False


def _same_seq(xs, ys) -> bool:
    return len(xs) == len(ys) and all(_same(a, b) for a, b in zip(xs, ys))


def _same_non_none(out, ref) -> bool:
    return len(out) == len(ref) and all(r is None or _same(o, r) for o, r in zip(out, ref))


def _short(exc: BaseException, n: int = 300) -> str:
    msg = re.sub(r" at 0x[0-9a-fA-F]+", "", f"{type(exc).__name__}: {exc}".replace("\n", " "))
    return msg if len(msg) <= n else msg[: n - 3] + "..."


def _clear_jax_caches():
    import jax
    try:
        jax.clear_caches()
    except Exception:  # noqa: BLE001
        pass


def run_one(comp: Compiler, build: Callable, vocab, max_seq_len: int, inputs: list[list],
            first_input: list, budget: float, eval_budget: float, causal: bool = False,
            warm_limit: float = WARM_LIMIT) -> dict:
    """Compile, time to first output, sizes and exactness for one compiler."""
    res: dict[str, Any] = {"status": "ok"}
    if not comp.available:
        return {"status": "not available", "message": comp.why_unavailable}
    _clear_jax_caches()
    gc.collect()
    stage = "build"
    try:
        with time_limit(budget):
            t0 = time.perf_counter()
            program = build(comp.rasp, max_seq_len=max_seq_len)
            stage = "compile"
            model = comp.compile(program, vocab, max_seq_len, causal=causal)
            t1 = time.perf_counter()
            stage = "first apply"
            first = list(model.apply([BOS, *first_input]).decoded)
            t2 = time.perf_counter()
    except BudgetExceeded as exc:
        return {"status": "timeout", "message": f"{stage}: {exc}", "budget_s": budget}
    except Exception as exc:  # noqa: BLE001
        status = ("unsupported" if comp.name == "tracr" else "rejected") if stage in ("build", "compile") else "error"
        return {"status": status, "stage": stage, "message": _short(exc),
                "traceback_tail": traceback.format_exc().strip().splitlines()[-3:]}
    res.update(time_to_first_output_s=t2 - t0, compile_s=t1 - t0, first_apply_s=t2 - t1)
    try:
        model._bench_first = ([BOS, *first_input], first)
    except Exception:  # noqa: BLE001  (a model that takes no attributes: skip that check)
        pass
    if comp.name == "ours":
        # ours' apply runs a numpy forward by default; time the jitted JAX path too.
        try:
            with time_limit(budget):
                t3 = time.perf_counter()
                jax_first = list(model.apply([BOS, *first_input], backend="jax").decoded)
                res["first_apply_jax_s"] = time.perf_counter() - t3
                res["time_to_first_output_jax_s"] = res["compile_s"] + res["first_apply_jax_s"]
                res["jax_matches_default"] = _same_seq(jax_first, first)
        except TypeError:
            pass  # no backend argument
        except (Exception, BudgetExceeded) as exc:  # noqa: BLE001
            res["jax_apply_error"] = _short(exc)
    try:
        res.update(comp.sizes(model))
    except Exception as exc:  # noqa: BLE001
        res["sizes_error"] = _short(exc)

    # exactness, under its own budget (a partial count is reported as such)
    n_in = n_exact = n_exact_nn = n_ref_err = 0
    first_bad = None
    t3 = time.perf_counter()
    deadline = t3 + eval_budget
    n_params = res.get("params") or 0
    chunk = 256 if n_params < 10**7 else 32 if n_params < 10**8 else 8  # huge models: partial counts in time
    try:
        for start in range(0, len(inputs), chunk):
            if time.perf_counter() > deadline:
                res["eval_truncated"] = True
                break
            batch = inputs[start:start + chunk]
            refs, keep = [], []
            for xs in batch:
                try:
                    refs.append(list(comp.rasp.evaluate(program, xs)))
                    keep.append(xs)
                except Exception:  # noqa: BLE001  (input outside the program's domain)
                    n_ref_err += 1
            if not keep:
                continue
            with time_limit(max(1.0, deadline - time.perf_counter()) + budget):
                outs = comp.apply_batch(model, [[BOS, *xs] for xs in keep])
            for xs, out, ref in zip(keep, outs, refs):
                n_in += 1
                got = list(out[1:])
                if _same_seq(got, ref):
                    n_exact += 1
                elif first_bad is None:
                    first_bad = {"input": xs, "expected": ref, "got": got}
                if _same_non_none(got, ref):
                    n_exact_nn += 1
    except BudgetExceeded as exc:
        res["eval_truncated"] = True
        res["eval_message"] = str(exc)
    except Exception as exc:  # noqa: BLE001
        res["status"] = "error"
        res["stage"] = "evaluation"
        res["message"] = _short(exc)
    res["eval_s"] = time.perf_counter() - t3
    res["exact"] = {"n_inputs": n_in, "n_exact": n_exact, "n_exact_ignoring_none": n_exact_nn,
                    "fraction": (n_exact / n_in) if n_in else None,
                    "fraction_ignoring_none": (n_exact_nn / n_in) if n_in else None,
                    "n_reference_errors": n_ref_err, "first_mismatch": _jsonable(first_bad)}
    res["first_output"] = _jsonable(first)
    if getattr(model, "_bench_check", None):
        res["batched_vs_apply_check"] = model._bench_check
    del model
    # The same again with JAX's caches warm: what is left is the compiler's own work.
    if res["time_to_first_output_s"] < warm_limit:
        try:
            with time_limit(budget):
                t0 = time.perf_counter()
                model = comp.compile(build(comp.rasp, max_seq_len=max_seq_len), vocab, max_seq_len, causal=causal)
                model.apply([BOS, *first_input])
                res["warm_time_to_first_output_s"] = time.perf_counter() - t0
            del model
        except (Exception, BudgetExceeded) as exc:  # noqa: BLE001
            res["warm_error"] = _short(exc)
    return res


def _jsonable(x):
    try:
        json.dumps(x)
        return x
    except TypeError:
        return json.loads(json.dumps(x, default=repr))


# ----------------------------------------------------------------------------- probes
def probe_programs(rasp):
    """Small programs that exercise features tracr is known to lack (built per module)."""
    def select_and(rasp, max_seq_len=None):
        same = rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.EQ)
        before = rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.LT)
        return rasp.SelectorWidth(rasp.SelectorAnd(same, before)).named("and_width")

    def mean_012(rasp, max_seq_len=None):
        val = rasp.numerical(rasp.Map(lambda t: {"a": 0, "b": 1, "c": 2}[t], rasp.tokens)).named("val")
        upto = rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.LEQ)
        return rasp.numerical(rasp.Aggregate(upto, val, default=0)).named("running_mean")

    def full_1(rasp, max_seq_len=None):
        return rasp.Full(1).named("one")

    from programs import build_reverse
    return [
        ("SelectorAnd (SelectorWidth of EQ-token AND LT-index)", select_and, False),
        ("numerical Aggregate of values {0,1,2} (running mean)", mean_012, False),
        ("Full(1)", full_1, False),
        ("reverse with causal=True (reads later tokens)", build_reverse, True),
    ]


# ----------------------------------------------------------------------------- reporting
def _fmt_num(x, kind="int"):
    if x is None:
        return "–"
    if kind == "s":
        return f"{x:.3f}" if x < 1 else f"{x:.2f}" if x < 10 else f"{x:.1f}"
    if kind == "frac":
        return f"{100 * x:.1f}%" if x < 1 else "100%"
    return f"{x:,}" if isinstance(x, int) else str(x)


def _cell(r: dict | None, key: str, kind="int") -> str:
    if r is None:
        return "–"
    if r.get("status") != "ok" and key not in r:
        return _status_word(r)
    if key == "exact":
        ex = r.get("exact") or {}
        s = _fmt_num(ex.get("fraction"), "frac")
        if ex.get("fraction_ignoring_none") is not None and ex["fraction_ignoring_none"] != ex["fraction"]:
            s += f" ({_fmt_num(ex['fraction_ignoring_none'], 'frac')}*)"
        if r.get("eval_truncated"):
            s = "check timed out" if not ex.get("n_inputs") else s + f" [{ex.get('n_inputs')} in]"
        if r.get("status") != "ok":
            s += " " + _status_word(r)
        return s
    return _fmt_num(r.get(key), kind)


def _status_word(r: dict) -> str:
    st = r.get("status", "?")
    return {"unsupported": "unsupported", "rejected": "rejected", "timeout": "timeout", "skipped": "skipped",
            "not available": "n/a", "error": "error"}.get(st, st)


def _pair(row, key, kind="int"):
    return f"{_cell(row.get('ours'), key, kind)} / {_cell(row.get('tracr'), key, kind)}"


def _speedup(row):
    o, t = row.get("ours") or {}, row.get("tracr") or {}
    a, b = o.get("time_to_first_output_s"), t.get("time_to_first_output_s")
    if a and b:
        return f"{b / a:.0f}x" if b / a >= 10 else f"{b / a:.1f}x"
    return "–"


HEADER = ["L", "layers", "d_model", "params", "time to 1st output (s)", "speed-up", "ours via JAX (s)",
          "warm (s)", "exact"]


def program_rows(entry: dict) -> list[list[str]]:
    rows = []
    for L, row in entry["results"].items():
        rows.append([L, _pair(row, "layers"), _pair(row, "d_model"), _pair(row, "params"),
                     _pair(row, "time_to_first_output_s", "s"), _speedup(row),
                     _cell(row.get("ours"), "time_to_first_output_jax_s", "s"),
                     _pair(row, "warm_time_to_first_output_s", "s"), _pair(row, "exact")])
    return rows


def notes_for(entry: dict) -> list[str]:
    """Distinct failure messages of a program, once each."""
    seen, notes = set(), []
    for L, row in entry["results"].items():
        for side in ("ours", "tracr"):
            r = row.get(side) or {}
            if r.get("status") in ("ok", None, "not available") and not r.get("eval_message"):
                continue
            text = r.get("message") or (f"exactness check stopped early ({r['eval_message']})" if r.get("eval_message") else "")
            msg = f"{side} {r['status']}: {text}"
            key = (side, r["status"], text[:80])
            if key not in seen:
                seen.add(key)
                notes.append(f"L={L}: {msg}")
    return notes


def print_tables(results: dict, probes: list[dict], meta: dict):
    try:
        from rich.console import Console
        from rich.table import Table
        console = Console(width=160)
    except Exception:  # noqa: BLE001
        console = None
    for name, entry in results.items():
        title = f"{name}  vocab={entry['vocab_desc']}  ({entry['meaning']})   cells: ours / tracr"
        rows = program_rows(entry)
        if console:
            t = Table(title=title, title_justify="left")
            for h in HEADER:
                t.add_column(h)
            for r in rows:
                t.add_row(*r)
            console.print(t)
        else:
            print(title)
            print(" | ".join(HEADER))
            for r in rows:
                print(" | ".join(r))
        for n in notes_for(entry):
            print("   ", n[:220])
    if probes:
        print("\nWhat tracr does with features it lacks:")
        for p in probes:
            for side in ("tracr", "ours"):
                print(f"  {p['probe']:<55} {side:<5} {_probe_cell(p.get(side))}")


def _probe_cell(r):
    if not r:
        return "–"
    if r["status"] == "ok":
        ex = r.get("exact") or {}
        return (f"compiles ({_fmt_num(r.get('time_to_first_output_s'), 's')} s); exact on "
                f"{_fmt_num(ex.get('fraction'), 'frac')} of {ex.get('n_inputs')} inputs")
    return f"{r['status']}: {r.get('message', '')}"


def summary_lines(results: dict) -> list[str]:
    """One row per program: exactness at each length, and the range of speed-ups."""
    lengths = sorted({int(L) for e in results.values() for L in e["results"]})
    head = ["program", "vocab"] + [f"exact L={L}" for L in lengths] + ["speed-up"]
    out = ["## Summary", "", "Exactness is `ours / tracr`; speed-up is tracr's time to first output "
           "over ours, smallest to largest across lengths.", "",
           "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, e in results.items():
        cells = [name, e["vocab_desc"]]
        ups = []
        for L in lengths:
            row = e["results"].get(str(L))
            cells.append(_pair(row, "exact") if row else "–")
            if row:
                o, t = row.get("ours") or {}, row.get("tracr") or {}
                if o.get("time_to_first_output_s") and t.get("time_to_first_output_s"):
                    ups.append(t["time_to_first_output_s"] / o["time_to_first_output_s"])
        cells.append(f"{min(ups):.0f}x–{max(ups):.0f}x" if ups else "–")
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return out + [""]


def write_markdown(path: Path, results: dict, probes: list[dict], meta: dict):
    m = meta
    lines = [
        "# Benchmarks: rasp_compiler next to tracr",
        "",
        "Generated by `benchmarks/compare_tracr.py`; raw numbers in "
        "`benchmarks/results/compare_tracr.json`. Regenerate with the command below.",
        "",
        f"- Date: {m['date']}",
        f"- Command: `{m['command']}`",
        f"- Machine: {m['machine']['nproc']} cores, {m['machine']['platform']}, Python {m['machine']['python']}; "
        f"load average (1/5/15 min) {m['machine']['load_average_at_start']} at start, "
        f"{m['machine'].get('load_average_at_end')} at end (other work on the machine slows both sides)",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()),
        f"- Settings: lengths {m['settings']['lengths']}, up to {m['settings']['samples']} sampled inputs per "
        f"length (exhaustive when at most {m['settings']['exhaustive_cap']} inputs), compile budget "
        f"{m['settings']['budget_s']:.0f} s, run took {m['elapsed_s'] / 60:.1f} min",
        "",
        "## How to read the tables",
        "",
        "Every cell is `ours / tracr`. **L** is max_seq_len. **layers**: each compiler's own count; "
        "both count one attention sublayer followed by one MLP sublayer as a layer. **params**: the "
        "total size of the arrays each model exposes as `model.params` (tracr: token and position "
        "embeddings, Q/K/V/O and MLP weights and biases, no unembedding matrix; ours: embeddings, "
        "Q/K/V/O and MLP weights, MLP biases and the unembedding). **time to 1st output**: wall clock from building the program "
        "to the first decoded output (compile + first apply on a full-length input), JAX caches "
        "cleared before each compile, JAX and both compilers warmed up once beforehand. "
        "**speed-up**: tracr's time over ours. **ours via JAX**: our compile plus a first apply "
        "through the jitted JAX forward (`apply(..., backend=\"jax\")`, JAX compile included; our "
        "default `apply` runs the same forward in numpy, tracr's runs eager JAX). **warm**: the same compile + first apply repeated "
        f"in the same process with JAX's caches warm (only when the cold run took under "
        f"{m['settings'].get('warm_limit_s', WARM_LIMIT):.0f} s); most "
        "of tracr's cold time at small lengths is JAX tracing and compiling, not tracr itself. **exact**: share of inputs whose `decoded[1:]` equals "
        "that compiler's own `rasp.evaluate` (numbers within 1e-4; None equals only None); the same "
        "inputs go to both, all inputs when there are few. `(x%*)` is the same share ignoring "
        "positions where the reference is None (tracr always decodes a value there). "
        "`unsupported`: the compiler refused the program (message below the table); `timeout` / "
        "`skipped`: over the compile budget, or predicted to be from the previous length.",
        "",
    ]
    checks = [r["tracr"]["batched_vs_apply_check"] for e in results.values() for r in e["results"].values()
              if isinstance(r.get("tracr"), dict) and r["tracr"].get("batched_vs_apply_check")]
    if checks:
        lines += [f"tracr's outputs for the exactness check come from one PAD-padded forward pass per chunk "
                  f"of inputs (tracr masks PAD keys; its own `apply` runs one unjitted sequence at a time). "
                  f"Checked against `model.apply` on the longest and shortest input of every run: "
                  f"{sum(c['agree'] for c in checks)} of {sum(c['checked'] for c in checks)} agree "
                  f"(a disagreement can only be a near tie in tracr's output that rounding flips).", ""]
    lines += summary_lines(results)
    for name, entry in results.items():
        lines += [f"## {name}", "", f"{entry['meaning']}. Vocabulary {entry['vocab_desc']}.", ""]
        lines.append("| " + " | ".join(HEADER) + " |")
        lines.append("|" + "---|" * len(HEADER))
        for r in program_rows(entry):
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in r) + " |")
        notes = notes_for(entry)
        if notes:
            lines.append("")
            lines += [f"- {n}" for n in notes]
        lines.append("")
    if probes:
        lines += ["## Features tracr lacks", "",
                  "Each probe is compiled by both at max_seq_len 5 with vocabulary {a,b,c} and checked "
                  "against the compiler's own evaluator on all inputs.", "",
                  "| probe | tracr | ours |", "|---|---|---|"]
        for p in probes:
            lines.append(f"| {p['probe']} | {_probe_cell(p.get('tracr')).replace('|', '/')} | "
                         f"{_probe_cell(p.get('ours')).replace('|', '/')} |")
        lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))


# ----------------------------------------------------------------------------- main
def machine_meta() -> dict:
    versions = {}
    for pkg in ("jax", "jaxlib", "dm-haiku", "numpy", "tracr-pypi", "rasp_compiler"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = "not installed"
    return {"machine": {"nproc": os.cpu_count(), "python": platform.python_version(),
                        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
                        "platform": f"{platform.system()} {platform.machine()}"},
            "versions": versions}


def warm_up(comps: list[Compiler]) -> dict:
    """Backend init and one throwaway compile per compiler, not charged to any program."""
    import jax.numpy as jnp
    t = time.perf_counter()
    (jnp.ones((4, 4)) @ jnp.ones((4, 4))).block_until_ready()
    out = {"jax_s": time.perf_counter() - t}

    def toy(rasp, max_seq_len=None):
        return rasp.Map(lambda t: t == "a", rasp.tokens).named("toy")

    for c in comps:
        if c.available:
            t = time.perf_counter()
            try:
                with time_limit(300):
                    c.compile(toy(c.rasp), {"a", "b"}, 3).apply([BOS, "a", "b"])
                out[c.name + "_s"] = time.perf_counter() - t
            except (Exception, BudgetExceeded) as exc:  # noqa: BLE001
                out[c.name + "_error"] = _short(exc)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="lengths 5,10 and 60 samples")
    ap.add_argument("--programs", default="", help="comma-separated names (default: all)")
    ap.add_argument("--lengths", default="", help="comma-separated max_seq_len values")
    ap.add_argument("--samples", type=int, default=None, help="sampled inputs per length (default 200, quick 60)")
    ap.add_argument("--exhaustive-cap", type=int, default=None,
                    help="enumerate all inputs when there are at most this many (default 1500, quick 400)")
    ap.add_argument("--budget", type=float, default=180.0, help="seconds allowed for one compile + first apply")
    ap.add_argument("--eval-budget", type=float, default=45.0, help="seconds allowed for one exactness check")
    ap.add_argument("--max-minutes", type=float, default=23.0, help="stop starting new runs after this")
    ap.add_argument("--only", choices=["both", "ours", "tracr"], default="both")
    ap.add_argument("--no-probes", action="store_true", help="skip the tracr-limitation probes")
    ap.add_argument("--json", default=str(HERE / "results" / "compare_tracr.json"))
    ap.add_argument("--md", default=str(ROOT / "docs" / "benchmarks.md"), help="markdown output ('' to skip)")
    ap.add_argument("--merge", action="store_true",
                    help="add this run's rows to the existing --json results (same program and length "
                         "replaced; earlier probes kept under --no-probes) and rewrite --md from the union")
    ap.add_argument("--render", metavar="JSON", default="",
                    help="only rewrite the tables (stdout and --md) from a saved results file")
    args = ap.parse_args(argv)
    if args.render:
        saved = json.loads(Path(args.render).read_text())
        print_tables(saved["programs"], saved["probes"], saved["meta"])
        if args.md:
            write_markdown(Path(args.md), saved["programs"], saved["probes"], saved["meta"])
            print(f"\nwrote {args.md} from {args.render}")
        return

    lengths = [int(x) for x in args.lengths.split(",") if x] or ([5, 10] if args.quick else [5, 10, 20, 40, 64])
    samples = args.samples or (60 if args.quick else 200)
    cap = args.exhaustive_cap or (400 if args.quick else 1500)
    names = [n for n in args.programs.split(",") if n] or list(PROGRAMS)
    unknown = [n for n in names if n not in PROGRAMS]
    if unknown:
        ap.error(f"unknown programs {unknown}; known: {', '.join(PROGRAMS)}")

    saved_before = None
    if args.merge and Path(args.json).exists():  # read now: partial dumps below overwrite the file
        saved_before = json.loads(Path(args.json).read_text())
    t_start = time.perf_counter()
    deadline = t_start + args.max_minutes * 60
    comps: list[Compiler] = []
    if args.only in ("both", "ours"):
        comps.append(Ours())
    if args.only in ("both", "tracr"):
        comps.append(Tracr())
    for c in comps:
        print(f"{c.name}: " + ("available" if c.available else f"not available ({c.why_unavailable})"))
    warm = warm_up(comps)
    print("warm-up:", {k: (round(v, 2) if isinstance(v, float) else v) for k, v in warm.items()})

    meta = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "command": " ".join([".venv/bin/python", "benchmarks/compare_tracr.py", *(argv or sys.argv[1:])]),
            **machine_meta(),
            "settings": {"lengths": lengths, "samples": samples, "exhaustive_cap": cap,
                         "budget_s": args.budget, "eval_budget_s": args.eval_budget,
                         "max_minutes": args.max_minutes, "tolerance": TOL,
                         "warm_limit_s": WARM_LIMIT},
            "warm_up": warm}

    results: dict[str, dict] = {}
    # per compiler and program: (length, seconds) of the last run, or "dead" after a timeout
    history: dict[tuple[str, str], Any] = {}
    for name in names:
        p = PROGRAMS[name]
        results[name] = {"meaning": p.meaning, "vocab": list(p.vocab), "vocab_size": len(p.vocab),
                         "vocab_desc": _vocab_desc(list(p.vocab)), "results": {}}
    # Lengths outermost: if the global budget runs out, the longest lengths go first.
    for L in lengths:
        for name in names:
            p: Program = PROGRAMS[name]
            vocab = list(p.vocab)
            entry = results[name]
            rng = random.Random(zlib.crc32(f"{name}/{L}".encode()))
            exhaustive = p.exhaustive_ok and n_exhaustive(vocab, L) <= cap
            inputs = exhaustive_inputs(vocab, L) if exhaustive else p.inputs(vocab, L, samples, rng)
            first_input = max(inputs, key=len)
            row: dict[str, Any] = {"n_inputs": len(inputs), "exhaustive": exhaustive}
            for c in comps:
                why_skip = None
                prev = history.get((c.name, name))
                if p.max_len and L > p.max_len:
                    why_skip = f"beyond this program's max length {p.max_len}: {p.max_len_why}"
                elif time.perf_counter() > deadline:
                    why_skip = f"global budget of {args.max_minutes:.0f} min used up"
                elif prev == "dead":
                    why_skip = "timed out at a shorter length"
                elif isinstance(prev, tuple):
                    pl, ps = prev
                    predicted = ps * (L / pl) ** 2
                    if predicted > 3 * args.budget:
                        why_skip = f"predicted {predicted:.0f} s from {ps:.0f} s at L={pl}"
                if why_skip:
                    r = {"status": "skipped", "message": why_skip}
                else:
                    remaining = max(5.0, deadline - time.perf_counter() + 60)
                    r = run_one(c, p.build, vocab, L, inputs, first_input,
                                budget=min(args.budget, remaining), eval_budget=args.eval_budget)
                    if r["status"] == "timeout":
                        history[(c.name, name)] = "dead"
                    elif "time_to_first_output_s" in r:
                        history[(c.name, name)] = (L, r["time_to_first_output_s"])
                row[c.name] = r
                print(f"[{time.perf_counter() - t_start:6.0f}s] {name:<24} L={L:<3} {c.name:<5} "
                      f"{_one_line(r)}", flush=True)
            entry["results"][str(L)] = row
            _dump(args.json, meta, results, [], t_start)  # keep partial results if interrupted

    probes = []
    if not args.no_probes:
        vocab = ["a", "b", "c"]
        inputs = exhaustive_inputs(vocab, 5)
        for label, build, causal in probe_programs(None):
            pr = {"probe": label, "causal": causal}
            for c in comps:
                pr[c.name] = run_one(c, build, vocab, 5, inputs, ["a", "b", "c", "a", "b"],
                                     budget=args.budget, eval_budget=args.eval_budget, causal=causal)
                print(f"probe {label:<55} {c.name:<5} {_probe_cell(pr[c.name])[:150]}", flush=True)
            probes.append(pr)

    meta["elapsed_s"] = time.perf_counter() - t_start
    meta["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    if saved_before is not None:
        meta, results, probes = _merge(saved_before, meta, results, probes)
    _dump(args.json, meta, results, probes, t_start)
    print()
    print_tables(results, probes, meta)
    if args.md:
        write_markdown(Path(args.md), results, probes, meta)
        print(f"\nwrote {args.md} and {args.json} ({meta['elapsed_s'] / 60:.1f} min)")


def _merge(old: dict, meta: dict, results: dict, probes: list):
    """Rows of this run on top of a saved run; both runs' commands kept in the metadata."""
    merged = old["programs"]
    for name, entry in results.items():
        if name not in merged:
            merged[name] = entry
            continue
        rows = dict(merged[name]["results"])
        for L, row in entry["results"].items():  # per compiler: an `--only ours` run keeps tracr's cells
            rows[L] = {**rows.get(L, {}), **row}
        merged[name]["results"] = {L: rows[L] for L in sorted(rows, key=int)}
    runs = old["meta"].get("runs") or [{k: old["meta"][k] for k in ("date", "command", "elapsed_s")}]
    runs.append({k: meta[k] for k in ("date", "command", "elapsed_s")})
    new_meta = {**old["meta"], "runs": runs,
                "command": " && ".join(r["command"] for r in runs),
                "elapsed_s": sum(r["elapsed_s"] for r in runs)}
    new_meta["machine"]["load_average_at_end"] = meta["machine"]["load_average_at_end"]
    old_probes = {p["probe"]: p for p in old.get("probes", [])}
    for p in probes:
        old_probes[p["probe"]] = {**old_probes.get(p["probe"], {}), **p}
    return new_meta, merged, list(old_probes.values())


def _one_line(r: dict) -> str:
    if r.get("status") == "ok":
        ex = r.get("exact") or {}
        return (f"ok  ttfo {r['time_to_first_output_s']:.2f}s  layers {r.get('layers')}  "
                f"d_model {r.get('d_model')}  params {r.get('params')}  exact "
                f"{ex.get('n_exact')}/{ex.get('n_inputs')}  (ignoring None {ex.get('n_exact_ignoring_none')})")
    return f"{r.get('status')}: {str(r.get('message', ''))[:140]}"


def _vocab_desc(vocab) -> str:
    if all(isinstance(v, int) for v in vocab) and vocab == list(range(len(vocab))):
        return f"{{0..{len(vocab) - 1}}} ({len(vocab)})"
    if len(vocab) > 6 and all(isinstance(v, str) and len(v) == 1 for v in vocab):
        return "{" + "".join(vocab) + f"}} ({len(vocab)})"
    return "{" + ",".join(map(str, vocab)) + f"}} ({len(vocab)})"


def _dump(path, meta, results, probes, t_start):
    meta = {**meta, "elapsed_s": meta.get("elapsed_s", time.perf_counter() - t_start)}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(_jsonable({"meta": meta, "programs": results, "probes": probes}), indent=1))


if __name__ == "__main__":
    main()
