"""The ``rasp-compiler`` command line: compile, run, evaluate, inspect and verify models.

    rasp-compiler compile examples/reverse.rasp --vocab a,b,c --max-seq-len 5 -o reverse.safetensors
    rasp-compiler run reverse.safetensors --input "a b c"
    rasp-compiler verify reverse.safetensors --exhaustive
    rasp-compiler inspect reverse.safetensors --plot reverse.png
    rasp-compiler testbed export tasks/ && rasp-compiler testbed score --method eap tasks/lib-sort__rotated__s0

A PROGRAM is a ``.rasp`` file or ``lib:NAME`` (a program of the standard library, see
``rasp-compiler list``); a MODEL is a weight file written by ``compile``. Commands that
take MODEL_OR_PROGRAM compile a program first.

Exit status: 0 success, 1 failure (a mismatch, an uncompilable program, a corrupt
file), 2 bad usage (a missing option, an unknown file). Errors are one red line on
stderr, never a traceback. Heavy libraries load only in the commands that need them
(matplotlib for ``--plot``, JAX only with ``--backend jax``).
"""


# Registration order is the order of `rasp-compiler --help`.
from rasp_compiler.cli import model_commands  # noqa: F401, I001
from rasp_compiler.cli import inspect  # noqa: F401, I001
from rasp_compiler.cli import misc  # noqa: F401, I001
from rasp_compiler.cli import testbed  # noqa: F401, I001
from rasp_compiler.cli.common import app

__all__ = ["app", "main"]


def main() -> None:  # python -m rasp_compiler.cli
    app()
