"""Text RASP against the reference interpreter (tech-srl/RASP, "Thinking Like Transformers").

Every ``examples/*.rasp`` and a few hundred generated programs run through both
  * the reference interpreter (the oracle), in its own venv, one subprocess for all cases;
  * our ``dsl.parse`` + ``rasp.evaluate`` (inputs converted as the program's ``tokens_*``
    says, as the reference does), and our compiled model where the program compiles;
and the outputs are compared with numbers rounded to 3 decimals, as the reference prints
them (a boolean equals the number 0/1, as in Python). Every difference is listed with
its cause in docs/weiss_compat.md, which this script writes.

Getting the oracle (nothing of it is copied into this project):
  git clone https://github.com/tech-srl/RASP /tmp/RASP
  python3 -m venv /tmp/rasp-venv
  /tmp/rasp-venv/bin/pip install antlr4-python3-runtime==4.9.3 termcolor
Run (from the repo root):
  nice -n 10 .venv/bin/python benchmarks/weiss_oracle.py --reference /tmp/RASP \\
      --reference-python /tmp/rasp-venv/bin/python [--programs 300] [--no-compile]
  (or set WEISS_RASP and WEISS_RASP_PYTHON). ``--record tests/data/weiss_cases.json``
  also writes a small set of (text, input, reference output) cases for tests/.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "weiss_compat.md"

# --------------------------------------------------------------------------- the oracle driver
# Runs under the reference interpreter's own Python: reads [{text, name, inputs}] on stdin,
# runs each text in a fresh environment (with the reference library loaded), evaluates the
# sequence `name` on each input and prints [{errors, outputs: [{ok: [...]} | {error}]}].
_DRIVER = r'''
import contextlib, io, json, os, sys
ref = sys.argv[1]
sys.path.insert(0, ref)
os.chdir(ref)
real_stdout = sys.stdout
with contextlib.redirect_stdout(io.StringIO()):
    from RASP_support.REPL import REPL, LineReader, Stop, LazyPrint
    from RASP_support.Environment import Environment
    from RASP_support.FunctionalSupport import UnfinishedSequence
    repl = REPL()


def run(case):
    env = Environment(name="case", parent_env=repl.base_env)
    repl.set_running_example(case["inputs"][0] if case["inputs"] else [])
    stream, errors = io.StringIO(case["text"]), []
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        while True:
            try:
                tree = LineReader(fromfile=stream).get_input_tree()
            except Exception as e:
                errors.append("syntax: %s" % (getattr(e, "msg", None) or e))
                break
            if isinstance(tree, Stop):
                break
            try:
                rp = repl.evaluate_tree(tree, env)
            except Exception as e:
                errors.append("%s: %s" % (type(e).__name__, e))
                continue
            if isinstance(rp, LazyPrint):
                errors.append(" ".join(str(a) for a in rp.a).replace("\t", " ").strip())
    out = {"errors": errors}
    try:
        value = env.get_variable(case["name"])
    except Exception as e:
        out["error"] = "undefined %s" % case["name"]
        return out
    if not isinstance(value, UnfinishedSequence):
        out["error"] = "not a sequence: %r" % (value,)
        return out
    outputs = []
    for x in case["inputs"]:
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                outputs.append({"ok": value.call(x).get_vals()})
        except Exception as e:
            outputs.append({"error": "%s: %s" % (type(e).__name__, e)})
    out["outputs"] = outputs
    return out


cases = json.load(sys.stdin)
real_stdout.write(json.dumps([run(c) for c in cases]))
'''


def run_reference(cases: list[dict], reference: Path, python: str) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        driver = Path(tmp) / "weiss_driver.py"
        driver.write_text(_DRIVER, encoding="utf-8")
        proc = subprocess.run([python, str(driver), str(reference)], input=json.dumps(cases),
                              capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise SystemExit(f"the reference interpreter failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout)


# --------------------------------------------------------------------------- our side
def output_name(prog) -> str | None:
    for name, value in prog.programs.items():
        if value is prog.output:
            return name
    return None


def run_ours(text: str, name: str, inputs: list, compile_model: bool) -> dict:
    from rasp_compiler import dsl, rasp
    from rasp_compiler.errors import RaspCompilerError
    try:
        prog = dsl.parse(text)
    except RaspCompilerError as exc:
        return {"error": f"parse: {str(exc).splitlines()[0]}"}
    sop = prog.programs.get(name)
    if sop is None or not hasattr(sop, "is_numerical"):
        return {"error": f"{name} is not a sequence"}
    outputs, converted = [], []
    for x in inputs:
        try:
            xs = prog.convert_input(x)
            converted.append(xs)
            outputs.append({"ok": rasp.evaluate(sop, xs)})
        except Exception as exc:  # noqa: BLE001 - every failure is a finding
            outputs.append({"error": f"{type(exc).__name__}: {exc}"})
    out: dict[str, Any] = {"outputs": outputs, "input_type": prog.input_type}
    if compile_model:
        out["compiled"] = run_compiled(sop, converted, outputs)
    return out


def run_compiled(sop, inputs: list[list], outputs: list[dict]) -> dict:
    """Compile once for the inputs' vocab and length; compare with rasp.evaluate."""
    from rasp_compiler import compile_rasp_to_model
    ok_inputs = [(xs, o["ok"]) for xs, o in zip(inputs, outputs) if "ok" in o and xs]
    if not ok_inputs:
        return {"status": "no input"}
    vocab = sorted({t for xs, _ in ok_inputs for t in xs}, key=repr)
    max_len = max(len(xs) for xs, _ in ok_inputs)
    try:
        model = compile_rasp_to_model(sop, vocab=set(vocab), max_seq_len=max_len, compiler_bos="BOS")
    except Exception as exc:  # noqa: BLE001
        return {"status": "refused", "reason": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"}
    wrong = 0
    for xs, want in ok_inputs:
        got = model.apply(["BOS"] + list(xs)).decoded[1:]
        if not same_outputs(got, want, digits=3):
            wrong += 1
    return {"status": "compiled", "inputs": len(ok_inputs), "wrong": wrong}


# --------------------------------------------------------------------------- comparison
def norm(v: Any, digits: int = 3) -> Any:
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)):
        return round(float(v), digits) + 0.0
    return v


def same_outputs(a: list, b: list, digits: int = 3) -> bool:
    return len(a) == len(b) and all(norm(x, digits) == norm(y, digits) for x, y in zip(a, b))


def only_types_differ(a: list, b: list) -> bool:
    return any(isinstance(x, bool) != isinstance(y, bool) for x, y in zip(a, b))


# Known causes of a difference: (what the reference said, what we did) -> explanation.
CAUSES = [
    ("asked to average multiple values, but they are non-numbers",
     "the reference refuses to average booleans or strings (several selected); we average "
     "booleans as 0/1 and copy a string when every selected position holds it"),
    ("attempted to create sequence with vals of different types",
     "the reference refuses a sequence mixing types (e.g. the default 0 where nothing is "
     "selected, among strings); we allow mixed values"),
    ("'str' object has no attribute 'get_vals'",
     "the reference crashes (an internal AttributeError while reporting a sequence that mixes "
     "types: its default 0 where nothing is selected, among strings); we give None there"),
    ("illegal val types",
     "the reference refuses a sequence of lists; we refuse it at parse time or compute it"),
    ("not in dict", "a key missing from a dictionary lookup"),
    ("out of range", "a list index out of range"),
]


def cause_of(message: str) -> str | None:
    for needle, cause in CAUSES:
        if needle in message:
            return cause
    return None


def cause_of_statement(errors: list[str]) -> str:
    return (cause_of(" ".join(errors)) or errors[-1].replace("!!ignoring input:", "").strip())[:200]


def classify(ref: dict, ours: dict) -> list[dict]:
    """One record per input: kind in same / both_error / ref_error / our_error / differ."""
    n = len(ref.get("outputs", ours.get("outputs", [])))
    records = []
    ref_outs = ref.get("outputs") or [{"error": ref.get("error") or "; ".join(ref.get("errors", []))}] * max(n, 1)
    our_outs = ours.get("outputs") or [{"error": ours.get("error", "?")}] * max(len(ref_outs), 1)
    for r, o in zip(ref_outs, our_outs):
        if "ok" in r and "ok" in o:
            if same_outputs(r["ok"], o["ok"]):
                kind = "same_types_differ" if only_types_differ(r["ok"], o["ok"]) else "same"
            else:
                kind = "differ"
        elif "ok" in r:
            kind = "our_error"
        elif "ok" in o:
            kind = "ref_error"
        else:
            kind = "both_error"
        records.append({"kind": kind, "ref": r, "ours": o})
    return records


# --------------------------------------------------------------------------- generated programs
class TextGen:
    """Random Weiss-syntax programs over a small typed grammar. Parentheses are left out at
    random so that the two interpreters' precedence and grouping rules are exercised."""

    OPS_NUM = ["+", "-", "*", "%", "^"]
    CMP = ["==", "<", ">", "<=", ">="]

    def __init__(self, rng: random.Random, int_tokens: bool, max_len: int):
        self.rng, self.int_tokens, self.max_len = rng, int_tokens, max_len
        self.vars: dict[str, list[str]] = {"num": [], "bool": [], "str": [], "sel": []}
        self.lines: list[str] = []
        self.counter = 0

    def p(self, text: str) -> str:
        return f"({text})" if self.rng.random() < 0.5 else text

    def fresh(self) -> str:
        self.counter += 1
        return f"v{self.counter}"

    def num(self, d: int) -> str:
        r = self.rng
        atoms = ["indices", "length", str(r.randint(0, 3))] + (["tokens"] if self.int_tokens else [])
        if d <= 0 or r.random() < 0.25:
            pool = atoms + self.vars["num"]
            return r.choice(pool)
        k = r.randrange(13)
        if k == 0:
            op = r.choice(self.OPS_NUM)
            right = str(r.randint(1, 3)) if op in "%^" else self.num(d - 1)
            return f"{self.p(self.num(d - 1))} {op} {self.p(right)}"
        if k == 1:
            return f"-{self.p(self.num(d - 1))}"
        if k == 2:
            return f"indicator({self.bool(d - 1)})"
        if k == 3:
            return f"selector_width({self.sel(d - 1)})"
        if k == 4:
            return f"aggregate({self.sel(d - 1)}, {self.num(d - 1)})"
        if k == 5:
            return f"round({self.num(d - 1)})"
        if k == 6:
            return f"{self.p(self.num(d - 1))} if {self.p(self.bool(d - 1))} else {self.p(self.num(d - 1))}"
        if k == 7:
            table = [r.randint(0, 4) for _ in range(self.max_len)]
            return f"{table}[indices]"
        if k == 8 and self.int_tokens:
            table = ", ".join(f"{i}: {r.randint(-2, 5)}" for i in range(4))
            return f"{{{table}}}[tokens]"
        if k == 8:
            table = ", ".join(f'"{c}": {r.randint(-2, 5)}' for c in "abc")
            return f"{{{table}}}[tokens]"
        if k == 9:
            return f"{r.choice(['max', 'min'])}({self.num(d - 1)}, {self.num(d - 1)})"
        if k == 10:
            return f"count(tokens, {self.token_const()})"
        if k == 11:
            return f"{self.p(self.num(d - 1))} * {self.p(self.num(d - 1))} + {self.p(self.num(d - 1))}"
        return f"{self.p(self.num(d - 1))} - {self.p(self.num(d - 1))} % {r.randint(2, 4)}"

    def token_const(self) -> str:
        return str(self.rng.randint(0, 3)) if self.int_tokens else f'"{self.rng.choice("abc")}"'

    def bool(self, d: int) -> str:
        r = self.rng
        if d <= 0 or r.random() < 0.2:
            pool = self.vars["bool"] + [f"tokens == {self.token_const()}", f"indices {r.choice(self.CMP)} 1"]
            return r.choice(pool)
        k = r.randrange(8)
        if k == 0:
            return f"{self.p(self.num(d - 1))} {r.choice(self.CMP)} {self.p(self.num(d - 1))}"
        if k == 1:
            return f"not {self.p(self.bool(d - 1))}"
        if k == 2:
            return f"{self.p(self.bool(d - 1))} {r.choice(['and', 'or'])} {self.p(self.bool(d - 1))}"
        if k == 3:
            items = sorted({r.randint(0, 3) for _ in range(2)})
            return f"{self.p(self.num(d - 1))} in {items}"
        if k == 4:
            return f"{self.token_const()} in tokens"
        if k == 5:
            return f"has_focus({self.sel(d - 1)})"
        if k == 6:
            return f"contains(tokens, {self.token_const()})"
        return f"not {self.bool(d - 1)} == {self.p(self.bool(d - 1))}"

    def strs(self, d: int) -> str:
        r = self.rng
        if d <= 0 or r.random() < 0.3:
            return r.choice(["tokens"] + self.vars["str"])
        k = r.randrange(5)
        if k == 0:
            return f"aggregate(select(indices, indices + {r.randint(-2, 2)}, ==), {self.strs(d - 1)}, \"_\")"
        if k == 1:
            return f"aggregate(select(indices, length - indices - 1, ==), {self.strs(d - 1)})"
        if k == 2:
            return f"\"{r.choice('xyz')}\" if {self.p(self.bool(d - 1))} else {self.p(self.strs(d - 1))}"
        if k == 3:
            return "{" + ", ".join(f'"{c}": "{r.choice("xyz")}"' for c in "abc") + "}[tokens]"
        return f"shift({self.strs(d - 1)}, {r.randint(1, 2)}, \"_\")"

    def sel(self, d: int) -> str:
        r = self.rng
        if d <= 0 or r.random() < 0.3:
            pool = self.vars["sel"] + [f"select(indices, indices, {r.choice(self.CMP + ['!='])})",
                                       f"select(tokens, tokens, {r.choice(self.CMP)})"]
            return r.choice(pool)
        k = r.randrange(5)
        if k == 0:
            return f"select({self.num(d - 1)}, {self.num(d - 1)}, {r.choice(self.CMP + ['!='])})"
        if k == 1:
            return f"{self.p(self.sel(d - 1))} {r.choice(['and', 'or'])} {self.p(self.sel(d - 1))}"
        if k == 2:
            return f"not {self.p(self.sel(d - 1))}"
        if k == 3:
            return f"select(tokens, {self.token_const()}, ==)"
        return f"select({self.strs(d - 1) if not self.int_tokens else 'tokens'}, tokens, ==)"

    def statement(self) -> None:
        r = self.rng
        kind = r.choice(["num", "num", "bool", "sel"] + ([] if self.int_tokens else ["str"]))
        k = r.randrange(10)
        if k == 0 and kind == "num":  # an unrolled loop
            acc = self.fresh()
            self.lines.append(f"{acc} = {self.num(1)};")
            self.lines.append(f"for i in range({r.randint(1, 3)}) {{\n    {acc} = {acc} + i * {self.p(self.num(1))};\n}}")
            self.vars["num"].append(acc)
            return
        if k == 1:  # multiple assignment
            a, b = self.fresh(), self.fresh()
            self.lines.append(f"{a}, {b} = {self.num(2)}, {self.bool(2)};")
            self.vars["num"].append(a)
            self.vars["bool"].append(b)
            return
        if k == 2:  # a function with two results
            f, a, b = f"f{self.counter}", self.fresh(), self.fresh()
            self.lines.append(f"def {f}(x) {{\n    y = x + 1;\n    return y * 2, x == y;\n}}")
            self.lines.append(f"{a}, {b} = {f}({self.num(1)});")
            self.vars["num"].append(a)
            self.vars["bool"].append(b)
            return
        if k == 3:  # a comprehension used as a lookup table
            t, v = self.fresh(), self.fresh()
            self.lines.append(f"{t} = [i * {r.randint(1, 3)} % {r.randint(2, 4)} for i in range({self.max_len})];")
            self.lines.append(f"{v} = {t}[indices] + {self.p(self.num(1))};")
            self.vars["num"].append(v)
            return
        name = self.fresh()
        self.lines.append(f"{name} = {getattr(self, 'strs' if kind == 'str' else kind)(r.randint(1, 3))};")
        self.vars[kind].append(name)

    def program(self) -> tuple[str, str]:
        self.lines = ["tokens = tokens_int;"] if self.int_tokens else []
        for _ in range(self.rng.randint(2, 5)):
            self.statement()
        kind = self.rng.choice(["num", "bool"] + ([] if self.int_tokens else ["str"]))
        expr = {"num": self.num, "bool": self.bool, "str": self.strs}[kind](2)
        anchor = {"num": "indices", "bool": "indices == 0", "str": "tokens"}[kind]
        # The result always reads a sequence (a constant is not a program).
        self.lines.append(f"result = {expr} if indices >= 0 else {anchor};")
        return "\n".join(self.lines) + "\n", "result"


def random_inputs(rng: random.Random, int_tokens: bool, max_len: int, n: int) -> list[list[str]]:
    alphabet = ["0", "1", "2", "3"] if int_tokens else ["a", "b", "c"]
    return [[rng.choice(alphabet) for _ in range(rng.randint(1, max_len))] for _ in range(n)]


# --------------------------------------------------------------------------- cases
# Hand-written probes: one construct each, precedence first (int programs get digit inputs).
PROBES = [
    "tokens = tokens_int;\nx = -tokens ^ 2;",                      # prefix - binds tighter than ^
    "tokens = tokens_int;\nx = 2 ^ tokens ^ 2;",                   # ^ groups to the left
    "tokens = tokens_int;\nx = tokens * 3 % 4 * 2;",               # % looser than *
    "tokens = tokens_int;\nx = tokens + 7 % 3 - 1;",
    "tokens = tokens_int;\nx = not tokens == 1;",                  # not binds tighter than ==
    "tokens = tokens_int;\nx = tokens == 1 or tokens == 2 and tokens == 0;",  # and/or one level
    "tokens = tokens_int;\nx = 1 if tokens == 0 else 2 if tokens == 1 else 3;",  # if-else groups left
    "tokens = tokens_int;\nx = indices < 2 == 1;",                 # comparisons group left
    "x = indices % 2 * 3;",
    "x = 3 - - indices;",
    "tokens = tokens_int;\nx = tokens / 2 + indices * 0.5;",
    "tokens = tokens_int;\nx = round(tokens / 3) + indicator(tokens > 1);",
    "tokens = tokens_float;\nx = tokens * 1.5;",
    "tokens = tokens_bool;\nx = tokens and indices > 0;",
    "a, b = 1, 2;\nfor i in range(3) { a = a + i; }\nx = indices + a * b;",
    "acc = indices;\nfor k, v in zip([1, 2], [3, 4]) { acc = acc + k * v; }\nx = acc;",
    "def f(a) { return a + 1, a * 2; }\nu, v = f(indices);\nx = u * v;",
    "d = {\"a\": 1, \"b\": 2, \"c\": 3};\nx = d[tokens] + [10, 20, 30, 40, 50][indices];",
    "sq = [i * i for i in range(6)];\nx = sq[indices] + len(sq);",
    "t = {c: i for i, c in zip(range(3), [\"a\", \"b\", \"c\"])};\nx = t[tokens];",
    "x = tokens[0] + tokens[-1];",
    "x = \"a\" in tokens;",
    "x = tokens in [\"a\", \"c\"];",
    "x = \"abcdef\"[indices];",
    "tokens = tokens_int;\nx = aggregate(select(indices, indices, <=), tokens);",
    "x = aggregate(select(indices, indices, <), indicator(tokens == \"a\"));",
    "x = aggregate(select(indices, indices, <), indices, 7);",
    "x = aggregate(select(indices, length - indices - 1, ==), tokens);",
    "x = selector_width(select(tokens, tokens, ==) and not select(indices, indices, ==));",
    "x = count(tokens, \"a\") + length;",
    "x = sort(tokens, tokens);",
    "x = shift(tokens, 1, \"_\");",
    "x = mark_last_instance(tokens, \"a\");",
    "x = aggregate(select_from_first(tokens, \"b\"), indices, -1);",
    "tokens = tokens_int;\nx = max(tokens, indices) - min(tokens, 2);",
    "tokens = tokens_int;\nx = average(tokens);",
    "x = has_focus(select(tokens, \"c\", ==)) or contains(tokens, \"b\");",
    "x = load_from_location(tokens, length - 1);",
    "x = selector_width(select_next_identical(tokens));",
    "y = 2 or 3;\nx = indices + y;",
    "tokens = tokens_int;\nx = tokens;\ntokens = indices;\ny = x + tokens;",
]


EXAMPLE_INPUTS = {
    "str": [list("abc"), list("aab"), list("cabca"), list("(){}"), list("({)}"), list("x"), list("xyxx")],
    "int": [list("0123"), list("3120"), list("2"), list("1102")],
}


EXAMPLE_ALPHABETS = {"frac_prevs": "xy", "pair_balance": "()a", "dyck2": "(){}"}


def example_cases() -> list[dict]:
    """Every example on a few inputs over its own alphabet (digits for tokens_int programs)."""
    from rasp_compiler import dsl
    cases = []
    for path in sorted((ROOT / "examples").glob("*.rasp")):
        text = path.read_text(encoding="utf-8")
        prog = dsl.parse(text, filename=str(path))
        if prog.input_type == "int":
            inputs = EXAMPLE_INPUTS["int"]
        else:
            alphabet = EXAMPLE_ALPHABETS.get(path.stem, "abc")
            inputs = [list(alphabet), list(alphabet[::-1] + alphabet[0]), list(alphabet[0]),
                      list(alphabet[1] + alphabet[0] * 2 + alphabet[-1])]
        cases.append({"id": f"examples/{path.name}", "text": text, "name": output_name(prog), "inputs": inputs})
    return cases


def probe_cases() -> list[dict]:
    cases = []
    for i, text in enumerate(PROBES):
        numbers = any(kind in text for kind in ("tokens_int", "tokens_float"))
        inputs = ([list("0123"), list("31"), list("2")] if numbers else
                  [list("1010")] if "tokens_bool" in text else [list("abca"), list("cb"), list("a")])
        name = "y" if "\ny = " in text else "x"
        cases.append({"id": f"probe{i}", "text": text + "\n", "name": name, "inputs": inputs})
    return cases


REFERENCE_FILES = {  # the reference's own programs (read from the checkout, never copied here)
    "paper_examples.rasp": [list("hello"), list("(()())"), list("aabbbc"), list("{(})")],
    "long_addition.rasp": [list("12+34"), list("999+1"), list("55+55")],
}


def reference_file_cases(reference: Path) -> list[dict]:
    """Every top-level sequence of the reference checkout's own example programs."""
    from rasp_compiler import dsl
    from rasp_compiler.errors import RaspCompilerError
    cases = []
    for name, inputs in REFERENCE_FILES.items():
        path = reference / name
        if not path.exists():
            continue
        text = path.read_text(encoding="utf-8")
        try:
            prog = dsl.parse(text, filename=name)
            names = [n for n, v in prog.programs.items() if hasattr(v, "is_numerical")]
        except RaspCompilerError:
            names = ["?"]
        for var in names:
            cases.append({"id": f"{name}:{var}", "text": text, "name": var, "inputs": inputs})
    return cases


def generated_cases(n: int, seed: int) -> list[dict]:
    cases = []
    for i in range(n):
        rng = random.Random(seed * 100003 + i)
        int_tokens = rng.random() < 0.5
        max_len = 5
        text, name = TextGen(rng, int_tokens, max_len).program()
        cases.append({"id": f"gen{i}", "text": text, "name": name,
                      "inputs": random_inputs(rng, int_tokens, max_len, 4)})
    return cases


# --------------------------------------------------------------------------- report
def fmt(out: dict) -> str:
    if "ok" in out:
        return "[" + ", ".join(str(norm(v)) if not isinstance(v, str) else repr(v) for v in out["ok"]) + "]"
    return "error: " + str(out.get("error", "?"))[:160].replace("\n", " ")


def write_doc(results: list[dict], args, elapsed: float) -> str:
    kinds = Counter(rec["kind"] for r in results for rec in r["records"])
    by_group = {g: Counter(rec["kind"] for r in results if r["group"] == g for rec in r["records"])
                for g in ("example", "probe", "reference", "generated")}
    programs = Counter(r["group"] for r in results)
    compiled = Counter(r["ours"].get("compiled", {}).get("status", "not tried") for r in results)
    compiled_wrong = sum(r["ours"].get("compiled", {}).get("wrong", 0) for r in results)
    compiled_inputs = sum(r["ours"].get("compiled", {}).get("inputs", 0) for r in results)
    lines = [
        "# Text RASP against the reference interpreter",
        "",
        "<!-- generated by benchmarks/weiss_oracle.py: do not edit by hand -->",
        f"Command: `{args.command}` ({elapsed:.0f} s). The oracle is tech-srl/RASP (the interpreter of",
        "*Thinking Like Transformers*), run in its own venv with antlr4-python3-runtime 4.9.3; see the",
        "script's docstring for how to get it. Numbers are compared rounded to 3 decimals, as the",
        "reference prints them; a boolean equals the number 0/1 (as in Python).",
        "",
        f"Programs: {programs['example']} examples (`examples/*.rasp`), {programs['probe']} hand-written probes "
        f"(one construct each, precedence first), {programs['reference']} sequences of the reference's own "
        f"example files ({', '.join(REFERENCE_FILES)}, read from the checkout) and {programs['generated']} "
        f"generated texts (seed {args.seed}): {sum(kinds.values())} (program, input) runs.",
        "",
        "| outcome | examples | probes | reference files | generated | all |",
        "|---|---|---|---|---|---|",
    ]
    labels = [("same", "same output"), ("same_types_differ", "same values, bool vs number"),
              ("both_error", "both refuse"), ("ref_error", "reference refuses, we compute"),
              ("our_error", "we refuse, reference computes"), ("differ", "different outputs")]
    for key, label in labels:
        lines.append(f"| {label} | {by_group['example'][key]} | {by_group['probe'][key]} | "
                     f"{by_group['reference'][key]} | {by_group['generated'][key]} | {kinds[key]} |")
    lines += ["", f"Compiled models: {compiled['compiled']} programs compiled, {compiled['refused']} refused by the "
              f"compiler; on the compiled ones {compiled_inputs - compiled_wrong} of {compiled_inputs} inputs give "
              "`rasp.evaluate`'s output (3 decimals).", ""]
    lines += ["## Every difference", ""]
    differences = [(r, rec) for r in results for rec in r["records"] if rec["kind"] in ("ref_error", "our_error", "differ")]
    if not differences:
        lines.append("None.")
    cause_counts: Counter = Counter()
    for r, rec in differences:
        message = rec["ref"].get("error", "") if rec["kind"] == "ref_error" else rec["ours"].get("error", "")
        cause = cause_of(message) or "unexplained"
        if rec["kind"] == "ref_error" and r["ref"].get("errors") and "undefined" in message and cause == "unexplained":
            cause = ("the reference tries each statement on an example input (here the first input) and "
                     "drops the statement if that fails: " + cause_of_statement(r["ref"]["errors"]))
        if rec["kind"] == "our_error" and r["ref"].get("errors") and message.startswith("parse:"):
            cause = ("a statement fails in both: the reference skips it and goes on (the variable stays "
                     "undefined), we refuse the file with the error")
        rec["cause"] = cause
        cause_counts[(rec["kind"], cause)] += 1
    if differences:
        lines += ["| kind | cause | runs |", "|---|---|---|"]
        for (kind, cause), count in sorted(cause_counts.items(), key=lambda kv: -kv[1]):
            lines.append(f"| {kind} | {cause} | {count} |")
        lines += ["", "Each run (program, input, reference output, ours):", ""]
        for r, rec in differences:
            text = r["text"].strip().replace("\n", " ")
            lines.append(f"* `{r['id']}` input `{''.join(r['inputs'][rec['index']])}`: reference {fmt(rec['ref'])}; "
                         f"ours {fmt(rec['ours'])}")
            if r["group"] == "generated":  # (the reference files' text is not reproduced)
                lines.append(f"  <details><summary>program</summary>\n\n  ```\n  {text}\n  ```\n  </details>")
    refused = [r for r in results if r["ours"].get("compiled", {}).get("status") == "refused"]
    if refused:
        lines += ["", "## Programs the compiler refuses", "",
                  "Not differences from the reference (`rasp.evaluate` agrees with it on these); the "
                  "compiler's own refusals, each with its message:", ""]
        reasons = Counter(r["ours"]["compiled"]["reason"].split(":")[0] for r in refused)
        lines.append(", ".join(f"{reason}: {count}" for reason, count in reasons.most_common()))
        lines.append("")
        for r in refused:
            lines.append(f"* `{r['id']}`: {r['ours']['compiled']['reason'][:220]}")
    wrong = [r for r in results if r["ours"].get("compiled", {}).get("wrong")]
    for r in wrong:
        lines.append(f"* compiled model wrong on `{r['id']}`: {r['ours']['compiled']}")
    text = "\n".join(lines) + "\n"
    tmp = DOC.with_suffix(".md.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, DOC)
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", default=os.environ.get("WEISS_RASP"),
                        help="a checkout of github.com/tech-srl/RASP (env WEISS_RASP)")
    parser.add_argument("--reference-python", default=os.environ.get("WEISS_RASP_PYTHON", "python3"),
                        help="a Python with antlr4-python3-runtime==4.9.3 and termcolor (env WEISS_RASP_PYTHON)")
    parser.add_argument("--programs", type=int, default=300, help="how many generated texts")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-compile", action="store_true", help="skip compiling our models")
    parser.add_argument("--record", type=Path, help="also write recorded cases (for tests) to this JSON file")
    parser.add_argument("--no-doc", action="store_true", help="do not rewrite docs/weiss_compat.md")
    args = parser.parse_args(argv)
    if not args.reference or not (Path(args.reference) / "RASP_support").is_dir():
        raise SystemExit("give --reference PATH (a checkout of github.com/tech-srl/RASP); see the docstring")
    args.command = "python benchmarks/weiss_oracle.py " + " ".join(
        a for a in (argv if argv is not None else sys.argv[1:]) if not a.startswith("/"))
    sys.path.insert(0, str(ROOT))
    from rich.progress import track

    start = time.time()
    cases = [dict(c, group="example") for c in example_cases()]
    cases += [dict(c, group="probe") for c in probe_cases()]
    cases += [dict(c, group="reference") for c in reference_file_cases(Path(args.reference))]
    cases += [dict(c, group="generated") for c in generated_cases(args.programs, args.seed)]
    print(f"running {len(cases)} programs through the reference interpreter ...", flush=True)
    ref_results = run_reference([{k: c[k] for k in ("text", "name", "inputs")} for c in cases],
                                Path(args.reference), args.reference_python)
    results = []
    for case, ref in track(list(zip(cases, ref_results)), description="ours"):
        ours = run_ours(case["text"], case["name"], case["inputs"], compile_model=not args.no_compile)
        records = classify(ref, ours)
        for i, rec in enumerate(records):
            rec["index"] = i
        results.append(dict(case, ref=ref, ours=ours, records=records))
    elapsed = time.time() - start
    if not args.no_doc:
        text = write_doc(results, args, elapsed)
        print(text[:3000])
    if args.record:
        record_cases(results, args.record)


def record_cases(results: list[dict], path: Path) -> None:
    """A small, varied set of runs where the reference computed an output (and we agree:
    a regression set), for tests/: every example and probe, and some generated texts."""
    picked, seen = [], Counter()
    for r in results:
        if (r["group"] == "generated" and seen["generated"] >= 40) or r["group"] == "reference":
            continue  # the reference's own files are not recorded (their text is not ours to commit)
        runs = [(r["inputs"][rec["index"]], rec["ref"]["ok"]) for rec in r["records"]
                if rec["kind"] in ("same", "same_types_differ")]
        if not runs:
            continue
        seen[r["group"]] += 1
        picked.append({"id": r["id"], "text": r["text"], "name": r["name"],
                       "runs": [{"input": x, "reference": out} for x, out in runs[:3]]})
    payload = {"source": "outputs recorded from the reference interpreter tech-srl/RASP "
                         "by benchmarks/weiss_oracle.py --record", "cases": picked}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    print(f"recorded {len(picked)} cases to {path}")


if __name__ == "__main__":
    main()
