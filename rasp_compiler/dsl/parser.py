"""Text RASP -> rasp objects.

lark parses the text with the grammar in ``rasp.lark``; :class:`_Interpreter` then walks
the tree once, top to bottom, with lexical environments (functions close over the
environment they are defined in), and builds ``rasp`` expressions. Nothing is ever
passed to Python's ``eval``: elementwise operations become :mod:`formula` trees,
compiled into closures.

See docs/language.md for the language and the encoding rules.
"""

from __future__ import annotations

import difflib
import functools
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Iterator

import lark
from lark import Token, Tree

from rasp_compiler.errors import ParseError
from rasp_compiler.rasp import core
from rasp_compiler.dsl import formula as fm
from rasp_compiler.dsl.formula import Arg, Const, Op

MAX_LITERAL_DIGITS = 1_000  # longer number literals are refused (Python caps int parsing at 4,300 digits)

# --------------------------------------------------------------------------- the grammar
@functools.cache
def _lark() -> lark.Lark:
    text = resources.files("rasp_compiler.dsl").joinpath("rasp.lark").read_text(encoding="utf-8")
    # The basic lexer (not lark's contextual one) so that a keyword in the wrong place is
    # a syntax error rather than silently read as a name.
    return lark.Lark(text, parser="lalr", lexer="basic", propagate_positions=True, maybe_placeholders=True)


KEYWORDS = frozenset({"def", "return", "if", "else", "and", "or", "not", "in", "for", "select",
                      "True", "False", "true", "false", "None"})
BUILTIN_FUNCTIONS = frozenset({"aggregate", "selector_width", "numerical", "categorical",
                               "indicator", "round", "abs", "full", "constant", "range", "zip", "len"})
BUILTIN_VALUES = frozenset({"tokens", "indices", "length",
                            "tokens_str", "tokens_int", "tokens_float", "tokens_bool", "tokens_asis"})
RESERVED = KEYWORDS | BUILTIN_FUNCTIONS | BUILTIN_VALUES
# ``tokens = tokens_int;`` switches the input type, as in the reference interpreter.
ASSIGNABLE = frozenset({"tokens"})
# The input types of the reference interpreter: how each ``tokens_*`` reads an input token.
INPUT_TYPES = {"tokens_str": "str", "tokens_int": "int", "tokens_float": "float", "tokens_bool": "bool",
               "tokens_asis": "asis"}

_PREDICATES = {"==": core.Comparison.EQ, "!=": core.Comparison.NEQ, "<": core.Comparison.LT,
               ">": core.Comparison.GT, "<=": core.Comparison.LEQ, ">=": core.Comparison.GEQ,
               "true": core.Comparison.TRUE, "True": core.Comparison.TRUE,
               "false": core.Comparison.FALSE, "False": core.Comparison.FALSE}
_OUTPUT_DIRECTIVE = re.compile(r"^\s*#\s*output\s*:\s*(\S+)\s*$")


# "Map out raised ...", "categorical Aggregate anyt selects ...": how errors name the node they are about
_NAMED_NODE = re.compile(r"\b(?:Map|SequenceMap|LinearSequenceMap|Aggregate|SelectorWidth|Select|Full|"
                         r"ConstantSOp|SOp|node|selector|sequence)\s+'?([A-Za-z_]\w*)")


# --------------------------------------------------------------------------- public types
@dataclass(frozen=True, eq=False)
class Program:
    """A parsed text RASP file.

    ``programs`` holds every top-level assignment of an SOp or selector, in order of
    first assignment (a name assigned twice maps to its last value), each labelled with
    its variable name. ``output`` is the SOp named by the last ``# output: name``
    comment, else the SOp of the last top-level assignment of an SOp (None if there is
    none). ``input_type`` is how the reference interpreter reads the input tokens:
    ``"str"`` unless the program uses ``tokens_int`` / ``tokens_float`` / ``tokens_bool``
    / ``tokens_asis`` (``"asis"``: the tokens as given).
    """

    programs: dict[str, core.RASPExpr]
    source: str
    filename: str = "<text>"
    output: core.SOp | None = None
    input_type: str = "str"
    positions: dict = field(default_factory=dict)  # unique_id -> (line, column) of the expression that made it

    def locate(self, error: BaseException | str) -> ParseError | None:
        """An error found after parsing (compiling, evaluating) as a :class:`ParseError` at
        ``file:line:col`` of the expression that made the node it names first (``Map out``,
        ``Aggregate anyt`` ...); None when it names no node of this program."""
        message = str(error)
        where = {}
        for root in self.programs.values():
            for expr in core.walk(root):
                if expr.unique_id in self.positions:
                    where.setdefault(expr.label, self.positions[expr.unique_id])
        for m in _NAMED_NODE.finditer(message):
            if m.group(1) in where:
                line, column = where[m.group(1)]
                source_line = self.source.splitlines()[line - 1] if 0 < line <= len(self.source.splitlines()) else None
                return ParseError(message, filename=self.filename, line=line, column=column, source_line=source_line)
        return None

    def convert_input(self, xs) -> list:
        """``xs`` read as the program's input type (``tokens = tokens_int;`` makes "3" the
        number 3), the way the reference interpreter reads an input sequence."""
        convert = {"str": str, "int": int, "float": float, "bool": bool, "asis": lambda x: x}[self.input_type]
        return [convert(x) for x in xs]

    def __getitem__(self, name: str) -> core.RASPExpr:
        try:
            return self.programs[name]
        except KeyError:
            raise KeyError(f"{self.filename} defines no sequence or selector {name!r}; "
                           f"it defines {sorted(self.programs)}") from None

    def __contains__(self, name: object) -> bool:
        return name in self.programs

    def __iter__(self) -> Iterator[str]:
        return iter(self.programs)

    def __len__(self) -> int:
        return len(self.programs)


def parse(text: str, filename: str = "<text>") -> Program:
    """Parse text RASP into a :class:`Program`; raises :class:`ParseError` (file:line:col)."""
    if not isinstance(text, str):
        raise TypeError(f"parse needs the program text as a str, got {type(text).__name__}")
    text = text.removeprefix("\ufeff")  # the byte-order mark Windows editors write: not part of the program
    lines = text.splitlines()
    try:
        tree = _lark().parse(text)
    except lark.exceptions.UnexpectedInput as exc:
        raise _syntax_error(exc, text, lines, filename) from None
    # Two passes: the first counts how often each top-level name is bound (a for loop may
    # bind it several times), so that the second can label the last binding with the name.
    counting = _Interpreter(text, lines, filename)
    counting.run(tree)
    return _Interpreter(text, lines, filename).run(tree, counting.seen, counting.calls)


def load(path) -> Program:
    """Read and parse a ``.rasp`` file."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ParseError(f"cannot read the file: {reason}", filename=str(path)) from exc
    return parse(text, filename=str(path))


# --------------------------------------------------------------------------- syntax errors
_TERMINAL_NAMES = {"NAME": "a name", "INT": "a number", "FLOAT": "a number", "STRING": "a string",
                   "$END": "the end of the file"}


def _describe_terminal(name: str) -> str:
    if name in _TERMINAL_NAMES:
        return _TERMINAL_NAMES[name]
    try:
        pattern = _lark().get_terminal(name).pattern
    except KeyError:
        return name
    if isinstance(pattern, lark.lexer.PatternStr):
        return f"'{pattern.value}'"
    return name


def _expected_text(names) -> str:
    described = sorted({_describe_terminal(n) for n in names if not n.startswith("__")})
    if not described:
        return ""
    if len(described) > 8:  # after an expression: name the punctuation that could end it
        closers = [c for c in ("';'", "')'", "']'", "','") if c in described]
        if "a name" in described:
            return " (expected an expression)"
        return " (expected an operator" + "".join(f" or {c}" for c in closers) + ")"
    return " (expected " + ", ".join(described[:-1]) + (" or " if len(described) > 1 else "") + described[-1] + ")"


def _syntax_error(exc: lark.exceptions.UnexpectedInput, text: str, lines: list[str], filename: str) -> ParseError:
    line, column = getattr(exc, "line", -1), getattr(exc, "column", -1)
    if isinstance(exc, lark.exceptions.UnexpectedToken) and exc.token.type == "$END":
        line, column = -1, -1
    if line is None or line < 1:  # end of input: point just after the last character
        line = max(len(lines), 1)
        column = (len(lines[-1]) if lines else 0) + 1
    source_line = lines[line - 1] if 0 < line <= len(lines) else ""
    if isinstance(exc, lark.exceptions.UnexpectedCharacters):
        ch = text[exc.pos_in_stream] if exc.pos_in_stream < len(text) else ""
        message = f"unexpected character {ch!r}"
        if ch in "\"'":
            message += " (a string must be closed on the same line)"
        message += _expected_text(exc.allowed or ())
    elif isinstance(exc, lark.exceptions.UnexpectedToken) and exc.token.type != "$END":
        expected = exc.accepts or exc.expected
        before = _token_before(text, exc.token.start_pos)
        if "';'" in {_describe_terminal(n) for n in expected} and before is not None \
                and before.end_line < exc.token.line:
            # a statement left open at the end of its line: say so there, not on the next line
            line, column = before.end_line, before.end_column
            source_line = lines[line - 1] if 0 < line <= len(lines) else ""
            return ParseError(f"missing ';' at the end of this statement (the next line starts with "
                              f"{exc.token.value!r})", filename=filename, line=line, column=column,
                              source_line=source_line)
        message = f"unexpected {exc.token.value!r}" + _expected_text(expected)
    else:
        expected = getattr(exc, "accepts", None) or getattr(exc, "expected", None) or ()
        message = "unexpected end of file" + _expected_text(expected)
    return ParseError(message, filename=filename, line=line, column=column, source_line=source_line)


def _token_before(text: str, pos: int):
    """The last token ending at or before ``pos`` (comments and spaces skipped), or None."""
    last = None
    try:
        for tok in _lark().lex(text[:pos]):
            last = tok
    except lark.exceptions.LarkError:
        return None
    return last


# --------------------------------------------------------------------------- values
@dataclass(eq=False)
class _Function:
    name: str
    params: list[str]
    statements: list[Tree]
    ret: Tree
    closure: "_Scope"
    node: Tree


@dataclass(eq=False)
class _Builtin:
    name: str
    min_args: int
    max_args: int
    signature: str


@dataclass(eq=False)
class _Frame:
    """What the statements being run belong to: a function call (None at top level), the
    names used only as aggregated sequences there, and the names its return statement reads."""

    function: "_Function | None"
    aggregate_only: set[str]
    returned: set[str]
    tag: str = ""  # the call's label prefix: the function's name, numbered when it is called more than once


class _Scope:
    def __init__(self, parent: "_Scope | None" = None):
        self.vars: dict[str, Any] = {}
        self.parent = parent

    def lookup(self, name: str) -> tuple[bool, Any]:
        scope: _Scope | None = self
        while scope is not None:
            if name in scope.vars:
                return True, scope.vars[name]
            scope = scope.parent
        return False, None

    def visible_names(self) -> set[str]:
        names: set[str] = set()
        scope: _Scope | None = self
        while scope is not None:
            names |= set(scope.vars)
            scope = scope.parent
        return names


_BUILTINS = {
    "aggregate": _Builtin("aggregate", 2, 3, "aggregate(selector, sequence[, default])"),
    "selector_width": _Builtin("selector_width", 1, 1, "selector_width(selector)"),
    "numerical": _Builtin("numerical", 1, 1, "numerical(sequence)"),
    "categorical": _Builtin("categorical", 1, 1, "categorical(sequence)"),
    "indicator": _Builtin("indicator", 1, 1, "indicator(sequence)"),
    "round": _Builtin("round", 1, 1, "round(sequence)"),
    "abs": _Builtin("abs", 1, 1, "abs(sequence)"),
    "full": _Builtin("full", 1, 1, "full(constant)"),
    "constant": _Builtin("constant", 1, 1, "constant([values...])"),
    "range": _Builtin("range", 1, 3, "range([start,] stop[, step])"),
    "zip": _Builtin("zip", 1, 99, "zip(list, list, ...)"),
    "len": _Builtin("len", 1, 1, "len(list)"),
}


_NOT_GIVEN = object()  # an aggregate written without a default


def _is_const(v: Any) -> bool:
    return isinstance(v, (bool, int, float, str))


def _describe(v: Any) -> str:
    if isinstance(v, core.Selector):
        return f"the selector {v.label}"
    if isinstance(v, core.SOp):
        return f"the sequence {v.label}"
    if isinstance(v, tuple):
        return "a list"
    if isinstance(v, fm.Table):
        return "a dictionary"
    if v is None:
        return "None"
    if isinstance(v, _Function):
        return f"the function {v.name}"
    if isinstance(v, _Builtin):
        return f"the built-in function {v.name}"
    if isinstance(v, str):
        return f"the string {fm.quote(v)}"
    return f"the constant {v!r}"


def _has_name(e: core.RASPExpr) -> bool:
    return isinstance(e, (core.TokensType, core.IndicesType)) or "name" in e.annotations


# --------------------------------------------------------------------------- interpreter
class _Interpreter:
    """Executes a parse tree, building rasp expressions (one instance per parse)."""

    def __init__(self, source: str, lines: list[str], filename: str):
        self.source, self.lines, self.filename = source, lines, filename
        self.used_labels: set[str] = {"tokens", "indices", "length"}
        self.reserved_labels: set[str] = set()
        self.bound: set[int] = set()  # unique_ids reachable through a variable
        # Encoding copies and categorical views, per (node, label): a node named after the
        # copy was made gets its own, so no node is ever seen under two labels.
        self.siblings: dict[tuple[int, str, bool], core.SOp] = {}
        self.active: list[_Function] = []
        self.length = core.SelectorWidth(core.Select(core.tokens, core.tokens, core.Comparison.TRUE)).named("length")
        self.globals = _Scope()
        for name, b in _BUILTINS.items():
            self.globals.vars[name] = b
        for name in ("tokens", *INPUT_TYPES):
            self.globals.vars[name] = core.tokens
        self.globals.vars["indices"] = core.indices
        self.globals.vars["length"] = self.length
        self.bound.update({core.tokens.unique_id, core.indices.unique_id, self.length.unique_id})
        self.input_uses: dict[str, str] = {}  # input type -> the name that reads the input so
        self.scope = _Scope(self.globals)
        self.call_totals: Counter = Counter()  # calls per function in the whole program (set by run)
        self.calls: Counter = Counter()  # calls per function so far
        self.named_by_caller: set[int] = set()  # call nodes whose value an assignment or return names
        self.positions: dict[int, tuple[int, int]] = {}  # see Program.positions
        _load_prelude(self)

    # -- errors ---------------------------------------------------------------------
    def _pos(self, node) -> tuple[int | None, int | None]:
        if isinstance(node, Token):
            return node.line, node.column
        if isinstance(node, Tree):
            meta = node.meta
            if not getattr(meta, "empty", True):
                return meta.line, meta.column
            for child in node.children:
                if child is not None:
                    pos = self._pos(child)
                    if pos[0] is not None:
                        return pos
        return None, None

    def error(self, message: str, node) -> ParseError:
        line, column = self._pos(node)
        source_line = self.lines[line - 1] if line is not None and 0 < line <= len(self.lines) else None
        return ParseError(message, filename=self.filename, line=line, column=column, source_line=source_line)

    # -- labels -----------------------------------------------------------------------
    def _fresh_label(self, base: str) -> str:
        candidate, k = base, 2
        while candidate in self.used_labels or candidate in self.reserved_labels:
            candidate, k = f"{base}_{k}", k + 1
        self.used_labels.add(candidate)
        return candidate

    def _bind(self, scope: _Scope, name: str, value: Any, label: str | None, node) -> Any:
        """Store ``value`` under ``name``; name it ``label`` if it is a fresh expression."""
        if name in RESERVED and name not in ASSIGNABLE:
            raise self.error(f"cannot assign to the built-in name {name!r}; choose another name", node)
        if isinstance(value, core.RASPExpr):
            if label is not None and not _has_name(value):
                value = value.named(label)
            self.bound.add(value.unique_id)
        scope.vars[name] = value
        return value

    # -- program ----------------------------------------------------------------------
    def run(self, tree: Tree, counts: Counter | None = None, call_totals: Counter | None = None) -> Program:
        """Execute the statements. ``counts`` (from a first pass) says how many times each
        top-level name is bound: the last binding is labelled with the plain name;
        ``call_totals`` how many times each function is called: the labels of a function
        called more than once carry the call's number (``seen_1_s``, ``seen_2_s``)."""
        statements = list(tree.children)
        self.counts = counts
        self.call_totals = call_totals or Counter()
        self.reserved_labels = set(counts) if counts else set()
        self.seen: Counter = Counter()
        self.programs: dict[str, core.RASPExpr] = {}
        self.last_sop: str | None = None
        self.frame = _Frame(None, self._aggregate_only_names(statements), set())
        for stmt in statements:
            self._exec(stmt, self.scope)
        # blocks of one layer in the order the text creates them (see graph.build); an alias
        # (b = a;) stays the same object as what it names, and tokens/indices stay themselves
        marked: dict[int, core.RASPExpr] = {}
        self.programs = {k: marked.setdefault(id(v), v.annotate(**{core.PROGRAM_ORDER: "creation"}))
                         if isinstance(v, core.SOp) and v.children else v for k, v in self.programs.items()}
        output = self._output(self.programs, self.last_sop)
        return Program(programs=self.programs, source=self.source, filename=self.filename, output=output,
                       input_type=self._input_type(), positions=self.positions)

    def _input_type(self) -> str:
        kinds = sorted(self.input_uses)
        if len(kinds) > 1:
            uses = " and ".join(f"{self.input_uses[k]} ({k})" for k in kinds)
            raise ParseError(f"the program reads the input tokens as two types: {uses}; the compiled model has "
                             "one input type, so use one tokens_* throughout (e.g. start with 'tokens = tokens_int;')",
                             filename=self.filename)
        return kinds[0] if kinds else "str"

    def _exec(self, stmt: Tree, scope: _Scope) -> None:
        """Run one statement (assignment, expression, def or for loop) in ``scope``."""
        try:
            if stmt.data == "funcdef":
                self._define(stmt, scope)
            elif stmt.data == "forloop":
                self._for(stmt, scope)
            elif stmt.data == "assign":
                names_tree, exprs_tree = stmt.children
                self.named_by_caller.update(id(e) for e in exprs_tree.children)
                values = [self.value_of(e, scope) for e in exprs_tree.children]
                for name_tok, value in self._unpack(names_tree.children, values, stmt):
                    self._bind_statement(name_tok, value, scope)
            elif stmt.data == "exprstmt":  # as in the reference, the value is kept as `out`
                self.named_by_caller.add(id(stmt.children[0]))
                value = self.value_of(stmt.children[0], scope)
                self._bind_statement(Token("NAME", "out", line=stmt.meta.line, column=stmt.meta.column), value, scope)
            else:  # pragma: no cover - grammar and interpreter out of sync
                raise self.error(f"internal error: no rule for {stmt.data!r}", stmt)
        except RecursionError:
            raise self.error("this statement is nested too deeply to read (hundreds of operators "
                             "or calls in one chain); split it into named steps", stmt) from None

    def _unpack(self, names: list[Token], values: list[Any], node) -> list[tuple[Token, Any]]:
        """``a, b = x, y;`` and ``a, b = f(...);`` (a list or a multiple return)."""
        if len(names) == 1:
            return [(names[0], values[0] if len(values) == 1 else tuple(values))]
        if len(values) == 1:
            if not isinstance(values[0], tuple):
                raise self.error(f"{len(names)} names on the left of '=', but the right side is "
                                 f"{_describe(values[0])}, not a list of {len(names)} values", node)
            values = list(values[0])
        if len(values) != len(names):
            raise self.error(f"{len(names)} names on the left of '=', but {len(values)} values on the right", node)
        return list(zip(names, values))

    def _bind_statement(self, name_tok: Token, value: Any, scope: _Scope) -> None:
        """Bind an assigned value: at top level it becomes a program labelled by its name."""
        name = name_tok.value
        frame = self.frame
        value = self._prepare_binding(value, name in frame.aggregate_only)
        if frame.function is None and scope is self.scope:
            self.seen[name] += 1
            label = name if self.counts is not None and self.seen[name] == self.counts[name] else None
            if isinstance(value, core.RASPExpr) and not _has_name(value):
                if label is None:
                    label = self._fresh_label(name)
                else:
                    self.used_labels.add(label)
            value = self._bind(scope, name, value, label, name_tok)
            if isinstance(value, core.RASPExpr):
                self.programs[name] = value
                if isinstance(value, core.SOp):
                    self.last_sop = name
            else:
                self.programs.pop(name, None)
            return
        label = None
        if (frame.function is not None and isinstance(value, core.RASPExpr) and not _has_name(value)
                and name not in frame.returned):
            label = self._fresh_label(f"{frame.tag}_{name}")
        self._bind(scope, name, value, label, name_tok)

    def _for(self, node: Tree, scope: _Scope) -> None:
        """A for loop over a constant list or dictionary, unrolled: the body runs once per
        element in the same scope (its assignments stay visible after the loop)."""
        _for, names_tree, _in, iterable_node, *body = node.children
        iterable = self.value_of(iterable_node, scope)
        if not isinstance(iterable, (tuple, fm.Table)):
            raise self.error(f"a for loop runs over a list or dictionary, got {_describe(iterable)}", iterable_node)
        for item in iterable:
            self._set_iterators(names_tree.children, item, scope, node)
            for stmt in body:
                self._exec(stmt, scope)

    def _set_iterators(self, names: list[Token], item: Any, scope: _Scope, node) -> None:
        if len(names) == 1:
            self._bind(scope, names[0].value, item, None, names[0])
            return
        if not isinstance(item, tuple) or len(item) != len(names):
            raise self.error(f"{len(names)} loop names, but the element {_describe(item)} is not a list of "
                             f"{len(names)} values", node)
        for tok, v in zip(names, item):
            self._bind(scope, tok.value, v, None, tok)

    def _output(self, programs: dict[str, core.RASPExpr], last_sop: str | None) -> core.SOp | None:
        directive = None
        for lineno, text in enumerate(self.lines, start=1):
            m = _OUTPUT_DIRECTIVE.match(text)
            if m:
                directive = (lineno, m.start(1) + 1, m.group(1), text)
        if directive is None:
            return programs[last_sop] if last_sop is not None else None  # type: ignore[return-value]
        lineno, column, name, text = directive
        value = programs.get(name)
        if not isinstance(value, core.SOp):
            what = "is a selector" if isinstance(value, core.Selector) else "is not a top-level sequence"
            raise ParseError(f"'# output: {name}' names {name!r}, which {what}; name a sequence assigned at top level",
                             filename=self.filename, line=lineno, column=column, source_line=text)
        return value

    # -- encodings at binding time ---------------------------------------------------------
    def _aggregate_only_names(self, statements: list[Tree]) -> set[str]:
        """Names whose every use in ``statements`` is as the sequence of an ``aggregate``."""
        agg_uses: Counter = Counter()
        other_uses: Counter = Counter()

        # (node, is the sequence argument of an aggregate, is the argument of categorical(...))
        stack: list[tuple[Any, bool, bool]] = [(stmt, False, False) for stmt in statements]
        while stack:
            node, as_aggregated, under_categorical = stack.pop()
            if not isinstance(node, Tree):
                continue
            if node.data == "var":
                (agg_uses if as_aggregated else other_uses)[node.children[0].value] += 1
            elif node.data == "call":
                callee = node.children[0].value
                args = [a for a in node.children[1:] if a is not None]
                for i, arg in enumerate(args):
                    aggregated = callee == "aggregate" and i == 1 and not under_categorical
                    wrapped = callee == "categorical" and isinstance(arg, Tree) and arg.data == "call"
                    stack.append((arg, aggregated, wrapped))
            else:
                stack.extend((child, False, False) for child in node.children)
        return {n for n in agg_uses if other_uses[n] == 0}

    def _prepare_binding(self, value: Any, aggregated_only: bool) -> Any:
        """A fresh numeric-valued Map bound to a name used only in aggregates becomes numerical."""
        if (aggregated_only and isinstance(value, (core.Map, core.SequenceMap, core.Full))
                and not value.is_numerical and not fm.explicitly_categorical(value)
                and value.unique_id not in self.bound
                and fm.infer_numerical_aggregate(value, numeric_tokens=self._numeric_tokens())):
            return core.numerical(value)
        return value

    # -- functions ---------------------------------------------------------------------
    def _define(self, node: Tree, scope: _Scope) -> None:
        _def, name_tok, params_tree, body = node.children
        params: list[str] = []
        for p in params_tree.children:
            if p is None:
                continue
            if p.value in RESERVED:
                raise self.error(f"cannot use the built-in name {p.value!r} as a parameter name", p)
            if p.value in params:
                raise self.error(f"parameter {p.value!r} appears twice in the definition of {name_tok.value}", p)
            params.append(p.value)
        *statements, ret = body.children
        fn = _Function(name_tok.value, params, statements, ret.children[-1], scope, node)
        if name_tok.value in RESERVED:
            raise self.error(f"cannot define a function with the built-in name {name_tok.value!r}", name_tok)
        scope.vars[name_tok.value] = fn

    def _call_function(self, fn: _Function, args: list[Any], arg_nodes: list, node: Tree) -> Any:
        if len(args) != len(fn.params):
            expected = f"{len(fn.params)} argument{'s' if len(fn.params) != 1 else ''}"
            sig = f"{fn.name}({', '.join(fn.params)})"
            raise self.error(f"{sig} takes {expected}, got {len(args)}", node)
        if any(f is fn for f in self.active):
            raise self.error(f"{fn.name} calls itself; recursion is not supported in RASP", node)
        local = _Scope(fn.closure)
        for pname, value in zip(fn.params, args):
            self._bind(local, pname, value, None, node)
        returned = {e.children[0].value for e in fn.ret.children if e.data == "var"}
        self.calls[fn.name] += 1
        tag = f"{fn.name}_{self.calls[fn.name]}" if self.call_totals[fn.name] > 1 else fn.name
        outer = self.frame
        self.frame = _Frame(fn, self._aggregate_only_names(fn.statements + [fn.ret]), returned, tag)
        self.active.append(fn)
        try:
            for stmt in fn.statements:
                self._exec(stmt, local)
            self.named_by_caller.update(id(e) for e in fn.ret.children)  # the caller names what is returned
            values = [self.value_of(e, local) for e in fn.ret.children]
        finally:
            self.active.pop()
            self.frame = outer
        if len(values) == 1 and id(node) not in self.named_by_caller:
            value = values[0]  # used inside an expression: no assignment will name it, so the call does
            if isinstance(value, core.RASPExpr) and not _has_name(value) and value.unique_id not in self.bound:
                values[0] = value.named(self._fresh_label(tag))
        return values[0] if len(values) == 1 else tuple(values)

    # -- expressions ---------------------------------------------------------------------
    def value_of(self, node, scope: _Scope) -> Any:
        handler = getattr(self, f"_e_{node.data}", None)
        if handler is None:  # pragma: no cover - grammar and interpreter out of sync
            raise self.error(f"internal error: no rule for {node.data!r}", node)
        value = handler(node, scope)
        if node.data != "var" and isinstance(value, core.RASPExpr) and value.unique_id not in self.positions:
            line, column = self._pos(node)  # the innermost expression that made it comes first
            if line is not None:
                self.positions[value.unique_id] = (line, column)
        return value

    def _e_int_lit(self, node, scope):
        text = node.children[0].value
        if len(text) > MAX_LITERAL_DIGITS:  # Python refuses to convert such strings; say where it is
            raise self.error(f"integer literal of {len(text)} digits: at most {MAX_LITERAL_DIGITS} are "
                             "supported (a compiled model computes in float32 anyway)", node)
        return int(text)

    def _e_float_lit(self, node, scope):
        text = node.children[0].value
        if len(text) > MAX_LITERAL_DIGITS:
            raise self.error(f"number literal of {len(text)} characters: at most {MAX_LITERAL_DIGITS} are "
                             "supported (a compiled model computes in float32 anyway)", node)
        return float(text)

    def _e_true_lit(self, node, scope):
        return True

    def _e_false_lit(self, node, scope):
        return False

    def _e_string_lit(self, node, scope):
        tok = node.children[0]
        return self._unescape(tok)

    def _unescape(self, tok: Token) -> str:
        body = tok.value[1:-1]
        out, i = [], 0
        simple = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "0": "\0"}
        while i < len(body):
            ch = body[i]
            if ch != "\\":
                out.append(ch)
                i += 1
                continue
            nxt = body[i + 1]
            if nxt in simple:
                out.append(simple[nxt])
                i += 2
            elif nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", body[i + 2:i + 6] or ""):
                out.append(chr(int(body[i + 2:i + 6], 16)))
                i += 6
            else:
                err = self.error(f"unknown escape sequence '\\{nxt}' in a string "
                                 "(use \\n, \\t, \\r, \\\\, \\\", \\' or \\uXXXX)", tok)
                raise err
        return "".join(out)

    def _e_list_lit(self, node, scope):
        return tuple(self.value_of(child, scope) for child in node.children if child is not None)

    def _e_dict_lit(self, node, scope):
        table: dict[Any, Any] = {}
        for pair in node.children:
            if pair is None:
                continue
            key_node, value_node = pair.children
            table[self._dict_key(self.value_of(key_node, scope), key_node)] = self.value_of(value_node, scope)
        return fm.Table(tuple(table.items()))

    def _dict_key(self, key: Any, node) -> Any:
        if not _is_const(key):
            raise self.error(f"a dictionary key must be a constant (string, number or boolean), got {_describe(key)}",
                             node)
        return key

    def _comprehension(self, names_tree: Tree, iterable_node, scope: _Scope, body) -> list:
        iterable = self.value_of(iterable_node, scope)
        if not isinstance(iterable, (tuple, fm.Table)):
            raise self.error(f"a comprehension runs over a list or dictionary, got {_describe(iterable)}",
                             iterable_node)
        out = []
        for item in iterable:
            inner = _Scope(scope)  # the loop names do not outlive the comprehension
            self._set_iterators(names_tree.children, item, inner, names_tree)
            out.append(body(inner))
        return out

    def _e_list_comp(self, node, scope):
        value_node, _for, names_tree, _in, iterable_node = node.children
        return tuple(self._comprehension(names_tree, iterable_node, scope, lambda sc: self.value_of(value_node, sc)))

    def _e_dict_comp(self, node, scope):
        key_node, value_node, _for, names_tree, _in, iterable_node = node.children
        pairs = self._comprehension(
            names_tree, iterable_node, scope,
            lambda sc: (self._dict_key(self.value_of(key_node, sc), key_node), self.value_of(value_node, sc)))
        return fm.Table(tuple(dict(pairs).items()))

    def _e_index(self, node, scope):
        container_node, key_node = node.children
        container, key = self.value_of(container_node, scope), self.value_of(key_node, scope)
        if isinstance(container, core.SOp):
            return self._sop_at(container, key, key_node)
        if not isinstance(container, (tuple, str, fm.Table)):
            raise self.error(f"only a list, string, dictionary or sequence can be indexed, got {_describe(container)}",
                             container_node)
        if isinstance(key, core.SOp):
            # LIST[sop] / DICT[sop]: an elementwise table lookup.
            values = [v for _, v in container.items] if isinstance(container, fm.Table) else list(container)
            if not all(_is_const(v) for v in values):
                raise self.error("a list or dictionary indexed by a sequence must hold constants only", container_node)
            return self.elementwise(Op("[]", (Const(container), Arg(0))), [key])
        if not _is_const(key):
            raise self.error(f"an index must be a constant or a sequence, got {_describe(key)}", key_node)
        try:
            return fm.lookup(container, key)
        except (KeyError, IndexError, TypeError) as exc:
            raise self.error(f"cannot index {_describe(container)} by {key!r}: {exc.args[0]}", key_node) from None

    def _sop_at(self, sop: core.SOp, key: Any, key_node) -> core.SOp:
        """``sop[i]``: the value at position i (from the end when negative), at every position."""
        if isinstance(key, bool) or not isinstance(key, int):
            raise self.error(f"a sequence can only be indexed by an integer constant, got {_describe(key)}", key_node)
        where: core.SOp = core.Full(key) if key >= 0 else self.elementwise(Op("+", (Arg(0), Const(key))),
                                                                          [self.length])
        where = self._categorical_view(where)
        return self._reference_aggregate(core.Select(core.indices, where, core.Comparison.EQ), sop, _NOT_GIVEN)

    def _e_var(self, node, scope):
        tok = node.children[0]
        found, value = scope.lookup(tok.value)
        if not found:
            raise self._undefined(tok, scope)
        if tok.value in INPUT_TYPES or (tok.value == "tokens" and not self._shadowed("tokens", scope)):
            # The input as read by tokens_str/_int/...; plain `tokens` is tokens_str until reassigned.
            kind = INPUT_TYPES.get(tok.value, "str")
            self.input_uses.setdefault(kind, f"'{tok.value}' on line {tok.line}")
        return value

    def _shadowed(self, name: str, scope: _Scope) -> bool:
        s: _Scope | None = scope
        while s is not None and s is not self.globals:
            if name in s.vars:
                return True
            s = s.parent
        return False

    def _e_none_lit(self, node, scope):
        return None

    def _undefined(self, tok: Token, scope: _Scope) -> ParseError:
        close = difflib.get_close_matches(tok.value, sorted(scope.visible_names()), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return self.error(f"undefined name {tok.value!r}{hint}", tok)

    # selectors ----------------------------------------------------------------------------
    def _e_select(self, node, scope):
        _kw, keys_node, queries_node, pred_node = node.children
        keys = self._select_side(self.value_of(keys_node, scope), keys_node, "keys")
        queries = self._select_side(self.value_of(queries_node, scope), queries_node, "queries")
        predicate = _PREDICATES[pred_node.children[0].value]
        if not isinstance(keys, core.SOp) and not isinstance(queries, core.SOp):
            # Two constants: the same answer for every (query, key) pair.
            predicate = core.Comparison.TRUE if predicate(keys, queries) else core.Comparison.FALSE
            return core.Select(core.tokens, core.tokens, predicate)
        keys = self._categorical_view(keys) if isinstance(keys, core.SOp) else core.Full(keys)
        queries = self._categorical_view(queries) if isinstance(queries, core.SOp) else core.Full(queries)
        return core.Select(keys, queries, predicate)

    def _select_side(self, v: Any, node, role: str):
        if isinstance(v, core.SOp) or _is_const(v):
            return v
        raise self.error(f"select: the {role} must be a sequence or a constant, got {_describe(v)}", node)

    # operators ----------------------------------------------------------------------------
    def _e_logic(self, node, scope):
        left_node, op_tok, right_node = node.children
        left, right = self.value_of(left_node, scope), self.value_of(right_node, scope)
        op = op_tok.value
        if isinstance(left, core.Selector) or isinstance(right, core.Selector):
            if isinstance(left, core.Selector) and isinstance(right, core.Selector):
                return core.SelectorAnd(left, right) if op == "and" else core.SelectorOr(left, right)
            sel_side, other = (left, right) if isinstance(left, core.Selector) else (right, left)
            raise self.error(f"'{op}' combines two selectors or two sequences, not {_describe(sel_side)} "
                             f"and {_describe(other)}", op_tok)
        if not isinstance(left, core.SOp) and not isinstance(right, core.SOp):
            # Constants (and lists) are combined as Python does, as in the reference: 2 or 3 is 2.
            return (left and right) if op == "and" else (left or right)
        return self._apply(op, [left, right], [left_node, right_node], op_tok)

    def _e_not_op(self, node, scope):
        op_tok, operand_node = node.children
        v = self.value_of(operand_node, scope)
        if isinstance(v, core.Selector):
            return core.SelectorNot(v)
        return self._apply("not", [v], [operand_node], op_tok)

    def _e_binop(self, node, scope):
        left_node, op_tok, right_node = node.children
        left, right = self.value_of(left_node, scope), self.value_of(right_node, scope)
        return self._apply(op_tok.value, [left, right], [left_node, right_node], op_tok)

    def _e_neg(self, node, scope):
        op_tok, operand_node = node.children
        return self._apply("neg", [self.value_of(operand_node, scope)], [operand_node], op_tok)

    def _e_pos(self, node, scope):
        op_tok, operand_node = node.children
        v = self.value_of(operand_node, scope)
        self._check_operand(v, operand_node, "unary '+'")
        if isinstance(v, str):
            raise self.error(f"unary '+' needs a number or a sequence, got {_describe(v)}", op_tok)
        return v

    def _e_membership(self, node, scope):
        left_node, *ops, right_node = node.children
        op = "not in" if len(ops) == 2 else "in"
        left, right = self.value_of(left_node, scope), self.value_of(right_node, scope)
        if isinstance(right, core.SOp) and _is_const(left):
            # "a" in tokens: whether some position holds "a" (the same at every position).
            hits = self._apply("indicator", [self._apply("==", [right, left], [right_node, left_node], ops[0])],
                               [right_node], ops[0])
            everything = core.Select(core.tokens, core.tokens, core.Comparison.TRUE)
            frac = self._build_aggregate(everything, hits, _NOT_GIVEN, numerical=True)
            return self._apply("<=" if op == "not in" else ">", [frac, 0], [right_node, left_node], ops[0])
        if not isinstance(right, tuple):
            raise self.error(f"the right side of '{op}' must be a list such as [1, 2] (or a sequence, when the left "
                             f"side is a constant), got {_describe(right)}", right_node)
        if isinstance(left, core.SOp) and not all(_is_const(v) for v in right):
            raise self.error(f"'sequence {op} list' needs a list of constants", right_node)
        return self._apply(op, [left, right], [left_node, right_node], ops[0], list_ok=(1,))

    def _e_cond(self, node, scope):
        then_node, _if, cond_node, _else, else_node = node.children
        then, cond, other = (self.value_of(n, scope) for n in (then_node, cond_node, else_node))
        if _is_const(cond):
            for v, n in ((then, then_node), (other, else_node)):
                self._check_operand(v, n, "'x if c else y'")
            return then if cond else other
        return self._apply("cond", [cond, then, other], [cond_node, then_node, else_node], node)

    def _check_operand(self, v: Any, node, what: str, list_ok: bool = False) -> None:
        if isinstance(v, core.SOp) or _is_const(v) or (list_ok and isinstance(v, tuple)):
            return
        if isinstance(v, core.Selector):
            hint = " (selectors combine only with and, or, not)"
        elif isinstance(v, tuple):
            hint = " (lists are only allowed on the right of 'in')"
        else:
            hint = ""
        raise self.error(f"{what} needs sequences or constants, got {_describe(v)}{hint}", node)

    def _apply(self, op: str, values: list[Any], nodes: list, where, list_ok: tuple[int, ...] = ()) -> Any:
        """An elementwise operation on sequences and constants."""
        label = {"neg": "unary '-'", "cond": "'x if c else y'"}.get(op, f"'{op}'")
        for i, (v, n) in enumerate(zip(values, nodes)):
            self._check_operand(v, n, label, list_ok=i in list_ok)
        sops: list[core.SOp] = []
        args: list[fm.Formula] = []
        for v in values:
            if isinstance(v, core.SOp):
                args.append(Arg(len(sops)))
                sops.append(v)
            else:
                args.append(Const(v))
        f = Op(op, tuple(args))
        if not sops:
            try:
                return fm.compile_formula(f, 0)()
            except Exception as exc:
                raise self.error(f"cannot compute {label} on constants: {type(exc).__name__}: {exc}", where) from None
        return self.elementwise(f, sops)

    # -- building elementwise nodes -------------------------------------------------------------
    def elementwise(self, f: fm.Formula, sops: list[core.SOp]) -> core.SOp:
        linear = _linear(f, sops)
        if linear is not None:
            return linear
        return self._elementwise_mlp(f, sops)

    def _elementwise_mlp(self, f: fm.Formula, sops: list[core.SOp]) -> core.SOp:
        """A Map or SequenceMap computing ``f`` (fused with its inputs where possible)."""
        numerical = fm.encoding(f, [s.is_numerical for s in sops])
        leaves, f = _dedup(list(sops), f)
        leaves, f = _absorb(leaves, f)
        while len(leaves) > 2:
            leaves, f = self._pair_up(leaves, f)
        if len(leaves) == 2:
            leaves = [self._categorical_view(leaf) for leaf in leaves]
        if len(leaves) == 1:
            node = core.Map(fm.compile_formula(f, 1), leaves[0], simplify=False)
        else:
            node = core.SequenceMap(fm.compile_formula(f, 2), leaves[0], leaves[1])
        node = node.annotate(**{fm.FORMULA_KEY: f})
        return core.numerical(node) if numerical else node

    def _categorical_view(self, sop: core.SOp) -> core.SOp:
        """``sop`` itself if categorical, else a categorical identity Map of it (one per SOp).

        Select keys/queries and SequenceMap inputs must be categorical for the compiler;
        the view is the MLP that turns the numerical value into a one-hot one.
        """
        if not sop.is_numerical:
            return sop
        key = (sop.unique_id, sop.label, False)
        if key not in self.siblings:
            view_f = Op("id", (Arg(0),))
            self.siblings[key] = core.Map(fm.compile_formula(view_f, 1), sop, simplify=False).annotate(
                **{fm.FORMULA_KEY: view_f})
        return self.siblings[key]

    def _pair_up(self, leaves: list[core.SOp], f: fm.Formula) -> tuple[list[core.SOp], fm.Formula]:
        pair_f = Op("pair", (Arg(0), Arg(1)))
        first, second = self._categorical_view(leaves[0]), self._categorical_view(leaves[1])
        pair = core.SequenceMap(fm.compile_formula(pair_f, 2), first, second).annotate(**{fm.FORMULA_KEY: pair_f})

        def remap(i: int) -> fm.Formula:
            if i < 2:
                return Op("get", (Arg(0), Const(i)))
            return Arg(i - 1)
        return [pair] + leaves[2:], fm.substitute(f, remap)

    # -- calls ------------------------------------------------------------------------------------
    def _e_call(self, node, scope):
        name_tok = node.children[0]
        arg_nodes = [a for a in node.children[1:] if a is not None]
        found, fn = scope.lookup(name_tok.value)
        if not found:
            raise self._undefined(name_tok, scope)
        if isinstance(fn, _Builtin):
            if not fn.min_args <= len(arg_nodes) <= fn.max_args:
                count = (str(fn.min_args) if fn.min_args == fn.max_args else f"{fn.min_args} or {fn.max_args}")
                plural = "" if fn.max_args == 1 else "s"
                raise self.error(f"{fn.signature} takes {count} argument{plural}, got {len(arg_nodes)}", node)
            if (fn.name in ("numerical", "categorical") and isinstance(arg_nodes[0], Tree)
                    and arg_nodes[0].data == "call" and arg_nodes[0].children[0].value == "aggregate"):
                # numerical(aggregate(...)) / categorical(aggregate(...)): choose the mode.
                inner = arg_nodes[0]
                inner_args = [a for a in inner.children[1:] if a is not None]
                agg = _BUILTINS["aggregate"]
                if not agg.min_args <= len(inner_args) <= agg.max_args:
                    raise self.error(f"{agg.signature} takes 2 or 3 arguments, got {len(inner_args)}", inner)
                values = [self.value_of(a, scope) for a in inner_args]
                return self._aggregate(values, inner_args, inner, numerical=fn.name == "numerical")
            values = [self.value_of(a, scope) for a in arg_nodes]
            return getattr(self, f"_b_{fn.name}")(values, arg_nodes, node)
        if isinstance(fn, _Function):
            values = [self.value_of(a, scope) for a in arg_nodes]
            return self._call_function(fn, values, arg_nodes, node)
        raise self.error(f"{name_tok.value!r} is {_describe(fn)}, not a function", name_tok)

    def _b_aggregate(self, values, nodes, node):
        return self._aggregate(values, nodes, node, numerical=None)

    def _aggregate(self, values: list[Any], nodes: list, node, numerical: bool | None) -> core.SOp:
        sel, seq = values[0], values[1]
        if not isinstance(sel, core.Selector):
            raise self.error(f"aggregate: the first argument must be a selector (built with select), "
                             f"got {_describe(sel)}", nodes[0])
        if isinstance(seq, core.Selector):
            raise self.error(f"aggregate: the second argument must be a sequence to average or copy, "
                             f"got {_describe(seq)}; use selector_width to count selected positions", nodes[1])
        if not isinstance(seq, core.SOp) and not _is_const(seq):
            raise self.error(f"aggregate: the second argument must be a sequence, got {_describe(seq)}", nodes[1])
        default: Any = _NOT_GIVEN
        if len(values) == 3:
            default = values[2]
            if not (_is_const(default) or default is None):
                raise self.error(f"aggregate: the default must be a constant, got {_describe(default)}", nodes[2])
        if not isinstance(seq, core.SOp):
            seq = core.Full(seq)
        return self._reference_aggregate(sel, seq, default, numerical)

    def _reference_aggregate(self, sel: core.Selector, seq: core.SOp, default: Any,
                             numerical: bool | None = None) -> core.SOp:
        """The reference interpreter's aggregate: the mean of the selected values when they
        are numbers (one selected value is itself), a copy otherwise; 0 where nothing is
        selected unless a default is given."""
        if numerical is None:
            numerical = fm.infer_numerical_aggregate(seq, numeric_tokens=self._numeric_tokens(), selector=sel)
            if not numerical and default is _NOT_GIVEN and fm.copies_numbers(seq, self._numeric_tokens()):
                default = 0  # a copy of numbers: the reference's default, a number too
        return self._build_aggregate(sel, seq, default, numerical)

    def _numeric_tokens(self) -> bool:
        return any(kind in ("int", "float") for kind in self.input_uses)

    def _build_aggregate(self, sel: core.Selector, seq: core.SOp, default: Any, numerical: bool) -> core.SOp:
        implied = default is _NOT_GIVEN
        if numerical:
            agg = core.Aggregate(sel, self._numerical_operand(seq), 0 if implied else default)
            return core.numerical(agg.annotate(dsl_default_implied=implied))
        # A copy of strings where nothing is selected: the reference's 0 would make it refuse
        # the sequence (strings mixed with a number), so None (tracr's default) stands for it.
        return core.Aggregate(sel, seq, None if implied else default)

    def _numerical_operand(self, seq: core.SOp) -> core.SOp:
        """``seq`` encoded numerically for a mean, without re-encoding a node used elsewhere."""
        if seq.is_numerical:
            return seq
        if not isinstance(seq, (core.Map, core.SequenceMap, core.Full)):
            # tokens, indices, a width or a copy: its numerical version, once per node (a copy is
            # read through an identity Map: numerical(copy) would be a different aggregate).
            key = (seq.unique_id, seq.label, True)
            if key not in self.siblings:
                self.siblings[key] = (core.numerical(self.elementwise(Arg(0), [seq])) if isinstance(seq, core.Aggregate)
                                      else self._encode(seq, None, numerical=True))
            return self.siblings[key]
        if seq.unique_id not in self.bound:
            return core.numerical(seq)
        key = (seq.unique_id, seq.label, True)
        if key not in self.siblings:
            sibling = _rebuild(seq)
            if "name" in seq.annotations:
                sibling = sibling.named(self._fresh_label(f"{seq.label}_num"))
            self.siblings[key] = core.numerical(sibling)
        return self.siblings[key]

    def _b_selector_width(self, values, nodes, node):
        sel = values[0]
        if not isinstance(sel, core.Selector):
            raise self.error(f"selector_width needs a selector (built with select), got {_describe(sel)}", nodes[0])
        return core.SelectorWidth(sel)

    def _b_numerical(self, values, nodes, node):
        return self._encode(values[0], nodes[0], numerical=True)

    def _b_categorical(self, values, nodes, node):
        return self._encode(values[0], nodes[0], numerical=False)

    def _encode(self, v: Any, node, numerical: bool) -> core.SOp:
        fname = "numerical" if numerical else "categorical"
        target = core.Encoding.NUMERICAL if numerical else core.Encoding.CATEGORICAL
        if _is_const(v):
            return core.Full(v).annotate(encoding=target)
        if not isinstance(v, core.SOp):
            raise self.error(f"{fname} needs a sequence, got {_describe(v)}", node)
        if isinstance(v, core.Aggregate) and v.is_numerical != numerical:
            implied = v.annotations.get("dsl_default_implied", False)
            default = _NOT_GIVEN if implied else v.default
            sop = v.sop
            agg = self._build_aggregate(v.selector, sop, default, numerical)
            return agg if numerical else agg.annotate(encoding=target)
        if v.encoding is target:
            return v if numerical else v.annotate(encoding=target)
        if isinstance(v, (core.TokensType, core.IndicesType)):
            # The inputs are shared by every program: read them through a new identity Map.
            return self.elementwise(Arg(0), [v]).annotate(encoding=target)
        if (not numerical and type(v) is core.LinearSequenceMap
                and (v.fst.is_numerical or v.snd.is_numerical)):
            # A categorical LinearSequenceMap would be an MLP over numerical inputs, which the
            # compiler refuses: keep the (free) numerical sum and read it through one identity Map.
            same = core.Map(fm.compile_formula(Arg(0), 1), v, simplify=False).annotate(**{fm.FORMULA_KEY: Arg(0)})
            return same.annotate(encoding=target)
        if v.unique_id not in self.bound:
            return v.annotate(encoding=target)
        return _rebuild(v).annotate(encoding=target)

    def _unary_builtin(self, op: str, values, nodes, node):
        return self._apply(op, values, nodes, node)

    def _b_indicator(self, values, nodes, node):
        return self._unary_builtin("indicator", values, nodes, node)

    def _b_round(self, values, nodes, node):
        return self._unary_builtin("round", values, nodes, node)

    def _b_abs(self, values, nodes, node):
        return self._unary_builtin("abs", values, nodes, node)

    def _b_full(self, values, nodes, node):
        v = values[0]
        if not (_is_const(v) or isinstance(v, tuple)):
            raise self.error(f"full needs a constant, got {_describe(v)}", nodes[0])
        return core.Full(v)

    def _b_constant(self, values, nodes, node):
        v = values[0]
        if not isinstance(v, tuple):
            raise self.error(f"constant needs a list of values such as [1, 2, 3], got {_describe(v)}", nodes[0])
        return core.ConstantSOp(v)

    def _b_range(self, values, nodes, node):
        for v, n in zip(values, nodes):
            if isinstance(v, bool) or not isinstance(v, int):
                raise self.error(f"range needs integer constants, got {_describe(v)}", n)
        try:
            return tuple(range(*values))
        except ValueError as exc:
            raise self.error(f"range: {exc}", node) from None

    def _b_zip(self, values, nodes, node):
        for v, n in zip(values, nodes):
            if not isinstance(v, tuple):
                raise self.error(f"zip needs lists, got {_describe(v)}", n)
        if len({len(v) for v in values}) > 1:
            raise self.error(f"zip needs lists of the same length, got lengths {[len(v) for v in values]}", node)
        return tuple(tuple(items) for items in zip(*values))

    def _b_len(self, values, nodes, node):
        if not isinstance(values[0], tuple):
            raise self.error(f"len needs a list, got {_describe(values[0])}", nodes[0])
        return len(values[0])


# --------------------------------------------------------------------------- the library
@functools.cache
def _prelude_tree() -> Tree:
    text = resources.files("rasp_compiler.dsl").joinpath("prelude.rasp").read_text(encoding="utf-8")
    return _lark().parse(text)


def _load_prelude(interp: "_Interpreter") -> None:
    """Define the reference interpreter's library functions (``full_s``, ``count``, ``sort``,
    ...; see prelude.rasp) in the global scope, where a program may redefine them."""
    for stmt in _prelude_tree().children:
        if stmt.data == "funcdef":
            interp._define(stmt, interp.globals)
        else:
            names_tree, exprs_tree = stmt.children
            (name_tok,), (expr,) = names_tree.children, exprs_tree.children
            value = interp.value_of(expr, interp.globals).named(name_tok.value)
            interp.globals.vars[name_tok.value] = value
            interp.bound.add(value.unique_id)


# --------------------------------------------------------------------------- fusion helpers
def _dedup(leaves: list[core.SOp], f: fm.Formula) -> tuple[list[core.SOp], fm.Formula]:
    """Merge inputs that are the same node (by unique_id)."""
    out: list[core.SOp] = []
    index: dict[int, int] = {}
    mapping: dict[int, int] = {}
    for i, leaf in enumerate(leaves):
        if leaf.unique_id not in index:
            index[leaf.unique_id] = len(out)
            out.append(leaf)
        mapping[i] = index[leaf.unique_id]
    return out, fm.substitute(f, lambda i: Arg(mapping[i]))


def _absorbable(node: core.SOp) -> bool:
    f = node.annotations.get(fm.FORMULA_KEY)
    return (type(node) in (core.Map, core.SequenceMap) and f is not None
            and not (isinstance(f, Op) and f.op == "pair"))


def _absorb(leaves: list[core.SOp], f: fm.Formula) -> tuple[list[core.SOp], fm.Formula]:
    """Inline elementwise inputs into ``f`` while the result still reads at most two sequences.

    An input is not inlined if that would make a two-input node read a numerical
    sequence it did not read before (the compiler needs categorical SequenceMap inputs).
    """
    changed = True
    while changed:
        changed = False
        for i, leaf in enumerate(leaves):
            if not _absorbable(leaf):
                continue
            new_leaves = leaves[:i] + leaves[i + 1:]
            added: list[core.SOp] = []
            inner_map: dict[int, int] = {}
            for j, child in enumerate(leaf.children):
                pos = next((k for k, x in enumerate(new_leaves) if x.unique_id == child.unique_id), None)
                if pos is None:
                    new_leaves.append(child)
                    added.append(child)
                    pos = len(new_leaves) - 1
                inner_map[j] = pos
            if len(new_leaves) > 2 or (len(new_leaves) == 2 and any(c.is_numerical for c in added)):
                continue
            inner = fm.substitute(fm.formula_of(leaf), lambda j: Arg(inner_map[j]))
            fused = fm.substitute(f, lambda m, i=i, inner=inner: inner if m == i else Arg(m if m < i else m - 1))
            if fm.depth(fused) > fm.MAX_FUSED_DEPTH:
                continue
            f, leaves = fused, new_leaves
            changed = True
            break
    return leaves, f


def _scaled(sop: core.SOp) -> tuple[float, core.SOp]:
    """``(c, x)`` when ``sop`` is an elementwise node built from text computing ``c * x``
    (``c * x``, ``x * c`` or ``-x``, ``c`` a finite number), else ``(1, sop)``."""
    f = sop.annotations.get(fm.FORMULA_KEY)
    if type(sop) is core.Map and isinstance(f, Op):
        if f.op == "neg" and f.args == (Arg(0),):
            return -1, sop.inner
        if f.op == "*" and Arg(0) in f.args:
            (c,) = [x for x in f.args if x != Arg(0)] or [None]
            if (isinstance(c, Const) and isinstance(c.value, (int, float)) and not isinstance(c.value, bool)
                    and math.isfinite(c.value)):
                return c.value, sop.inner
    return 1, sop


def _linear(f: fm.Formula, sops: list[core.SOp]) -> core.SOp | None:
    """``a + b`` / ``a - b`` as a numerical LinearSequenceMap ``fa * x + fb * y``, or None.

    Applies when one side is numerical and the other holds numbers (numerical, or
    numeric-valued by construction, or integers such as indices): the compiler reads a
    categorical number-valued SOp linearly, so the sum costs no MLP, where a SequenceMap
    would need a categorical view of the numerical side (one MLP row per pair of values).
    A side that is a constant multiple of an SOp (``2 * x``, ``x * 0.5``, ``-x``) is
    folded into the factor. ``x * 1 + y * 1`` computes exactly ``x + y`` (and
    ``(-1) * y`` exactly ``-y``), so the values are those of the formula as written.
    """
    if not (isinstance(f, Op) and f.op in ("+", "-") and len(sops) == 2 and f.args == (Arg(0), Arg(1))):
        return None
    sign = 1 if f.op == "+" else -1
    for (fa, a), (fb, b) in ((_scaled(sops[0]), _scaled(sops[1])), ((1, sops[0]), (1, sops[1]))):
        if (a.unique_id != b.unique_id and (a.is_numerical or b.is_numerical)
                and fm.holds_numbers(a) and fm.holds_numbers(b)):
            fb = sign * fb
            node = core.LinearSequenceMap(a, b, fa, fb).annotate(**{fm.FORMULA_KEY: fm.linear_formula(fa, fb)})
            return core.numerical(node)
    return None


def _rebuild(v: core.SOp) -> core.SOp:
    """A new node (new unique_id) computing the same values as ``v``, without its name/encoding."""
    if type(v) is core.Map:
        new: core.SOp = core.Map(v.f, v.inner, simplify=False)
    elif type(v) is core.LinearSequenceMap:
        new = core.LinearSequenceMap(v.fst, v.snd, v.fst_fac, v.snd_fac)
    elif isinstance(v, core.SequenceMap):
        new = core.SequenceMap(v.f, v.fst, v.snd)
    elif isinstance(v, core.Full):
        new = core.Full(v.fill)
    elif isinstance(v, core.ConstantSOp):
        new = core.ConstantSOp(v.value, v.check_length)
    elif isinstance(v, core.SelectorWidth):
        new = core.SelectorWidth(v.selector)
    elif isinstance(v, core.Aggregate):
        new = core.Aggregate(v.selector, v.sop, v.default)
    else:  # tokens / indices: cannot be duplicated
        return v
    keep = {k: x for k, x in v.annotations.items() if k not in ("name", "encoding")}
    return new.annotate(**keep) if keep else new
