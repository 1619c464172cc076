"""The text RASP language: ``parse`` / ``load`` text into rasp objects, ``to_text`` back.

    from rasp_compiler import dsl, rasp
    prog = dsl.parse('prevs = select(indices, indices, <=); frac = aggregate(prevs, tokens == "x");')
    rasp.evaluate(prog.output, ["x", "y", "x"])   # [1.0, 0.5, 0.666...]

See docs/language.md for the language.
"""

from rasp_compiler.dsl.parser import Program, load, parse
from rasp_compiler.dsl.printer import to_text

__all__ = ["Program", "load", "parse", "to_text"]
