"""rasp_compiler: compile RASP programs into exact, fully labelled transformer weights."""

from rasp_compiler import errors, rasp
from rasp_compiler.errors import BlendedValueError, UnprovenAggregateWarning

__all__ = ["rasp", "errors", "compile_rasp_to_model", "load_model", "save_model", "BlendedValueError",
           "UnprovenAggregateWarning"]
__version__ = "0.1.0"


def __getattr__(name):  # keep `import rasp_compiler` light: JAX loads only when a model is built
    if name == "compile_rasp_to_model":
        from rasp_compiler.compiler import compile_rasp_to_model
        return compile_rasp_to_model
    if name == "load_model":
        from rasp_compiler.export import load_model
        return load_model
    if name == "save_model":
        from rasp_compiler.export import save_model
        return save_model
    raise AttributeError(name)
