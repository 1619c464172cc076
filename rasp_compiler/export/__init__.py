"""export stage: weight files that load back into runnable models.

    from rasp_compiler.export import save_model, load_model
    save_model(model, "reverse.safetensors")
    model = load_model("reverse.safetensors")   # runs without the program

One safetensors file: the parameters plus JSON metadata (config, labels, program
graph, source text). See docs/weight_files.md for the format.
"""

from rasp_compiler.export.safetensors_file import (
    FORMAT, FORMAT_VERSION, SUPPORTED_VERSIONS, load_model, model_metadata, params_checksum, save_model,
)

__all__ = ["FORMAT", "FORMAT_VERSION", "SUPPORTED_VERSIONS", "load_model", "model_metadata",
           "params_checksum", "save_model"]
