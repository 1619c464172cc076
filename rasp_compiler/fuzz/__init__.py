"""Random RASP programs: differential fuzzing of the compiler and datasets of compiled models.

    from rasp_compiler.fuzz import generate_program, check_seed, write_dataset
    gen = generate_program(seed=3, depth=3)      # a random, well-typed, compilable program
    gen.program, gen.text                        # rasp objects, and text RASP when printable
    check_seed(3).failed                         # compile + compare with rasp.evaluate + text round trip
    write_dataset(100, "dataset/")               # weight files with ground-truth labels + index.json

See docs/reliability.md.
"""

from rasp_compiler.fuzz.dataset import DatasetError, write_dataset
from rasp_compiler.fuzz.differential import SeedResult, check_seed, fuzz_inputs, round_trip
from rasp_compiler.fuzz.generator import (
    CompiledProgram, GeneratedProgram, GenerationError, Mix, Rejection, compile_generated, describe_ops,
    generate_program,
)

__all__ = ["write_dataset", "DatasetError", "generate_program", "compile_generated", "GeneratedProgram",
           "CompiledProgram", "GenerationError", "Mix", "Rejection", "describe_ops", "check_seed",
           "SeedResult", "fuzz_inputs", "round_trip"]
