"""One exception type per kind of failure, raised where the cause is known.

Every message names the program part (SOp label, token, file position) and, where
there is one, says what to write instead.
"""


class RaspCompilerError(Exception):
    """Base class of every error this package raises on purpose."""


class RaspTypeError(RaspCompilerError, TypeError):
    """A RASP expression was built from the wrong kind of parts (e.g. Select over a selector)."""


class EvaluationError(RaspCompilerError, ValueError):
    """`rasp.evaluate` could not evaluate a program on an input (names the SOp involved)."""


class AggregateError(EvaluationError):
    """A categorical Aggregate selected positions holding different values."""


class BlendedValueError(RaspCompilerError, ValueError):
    """At run time a categorical SOp held no single value (e.g. an unproven Aggregate averaged
    two different values); raised by the one-hot guard of ``apply``, naming SOp, position and input."""

    def __init__(self, message: str, *, sop: str = "", position: int = -1, input: list | None = None):
        self.sop, self.position, self.input = sop, position, input
        super().__init__(message)


class UnprovenAggregateWarning(UserWarning):
    """A categorical Aggregate compiled without a proof that it copies one value: no rule proves
    it and there are too many inputs to try them all. It is recorded in the model's
    ``config.unproven_aggregates`` and guarded at run time; ``strict=True`` refuses it instead."""

    def __init__(self, message: str, *, label: str = ""):
        self.label = label
        super().__init__(message)


class InputError(RaspCompilerError, ValueError):
    """An input sequence is not valid for a program or model (token, length, BOS)."""


class UnsupportedProgramError(RaspCompilerError, NotImplementedError):
    """A program cannot be compiled; raised before any weight is built."""


class CausalityError(UnsupportedProgramError):
    """With causal=True, an output at some position depends on later positions."""


class ValueSetError(UnsupportedProgramError):
    """The finite set of values of a node cannot be computed or is too large."""


class ResourceLimitError(UnsupportedProgramError):
    """A compilation would exceed a resource limit (rasp_compiler.limits.Limits): refused before allocating."""


class CompilationCheckError(RaspCompilerError):
    """A built block gave a wrong value on its own finite input set (a compiler bug)."""


class ModelFileError(RaspCompilerError):
    """A weight file is corrupt, truncated, of an unknown format version or misshapen."""


class ParseError(RaspCompilerError):
    """A text RASP program is malformed; carries file, line, column and the marked text."""

    def __init__(self, message: str, *, filename: str = "<text>", line: int | None = None,
                 column: int | None = None, source_line: str | None = None):
        self.filename, self.line, self.column, self.source_line = filename, line, column, source_line
        where = filename if line is None else f"{filename}:{line}:{column}"
        text = f"{where}: {message}"
        if source_line is not None and column is not None:
            text += f"\n    {source_line}\n    {' ' * (column - 1)}^"
        super().__init__(text)


class VariantError(RaspCompilerError, ValueError):
    """A testbed variant cannot be built for this model (names the model part and an alternative)."""
