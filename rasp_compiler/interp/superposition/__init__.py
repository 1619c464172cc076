"""Superposition testbed: compressed residual streams and sparse autoencoders.

Compiled models know what every residual dimension means, so they are ground truth
for dictionary learning. This package

* compresses a model's residual stream to d' < d_model dimensions with a learned
  projection ``W`` (tracr's superposition experiment): :func:`train_compression`,
  :func:`compression_sweep`; the compressed model is an ordinary runnable
  :class:`~rasp_compiler.model.compiled.CompiledModel` and feature ``i`` is ``W e_i``;
* trains ReLU, Gated and JumpReLU sparse autoencoders on residual activations:
  :func:`train_sae`, :func:`train_saes` (several sparsity coefficients in one run);
* derives the truth an SAE can be asked to find from the program graph: feature groups
  (a categorical SOp's one-hot dimensions span one subspace), split into independent
  features (inputs, attention outputs) and values that are functions of others at the
  same position: :func:`feature_truth`; planted features for sanity checks:
  :func:`planted_features`;
* scores SAEs against single one-hot directions and against the groups (a latent in a
  group's span firing for one value; the share of a group's subspace its latents span)
  in a plain, a randomly rotated and a compressed residual basis:
  :func:`sae_experiment`, :func:`score_sae`, :func:`score_groups`;
* prices truth dictionaries under the SAE loss (``truth_loss``) and scores SAE-Lens SAEs
  through an adapter (``saelens``, optional extra ``sae``).

Example::

    from rasp_compiler import compile_rasp_to_model
    from rasp_compiler.lib import LIBRARY
    from rasp_compiler.interp import superposition as sp

    entry = LIBRARY["reverse"]
    program = entry.build()
    model = compile_rasp_to_model(program, set(entry.vocab), entry.max_seq_len)
    sweep = sp.compression_sweep(model, program, dims=[12, 16, 20], steps=1000, log=print)
    setting = sp.compressed_setting(sweep.result(sweep.smallest_exact))
    train, test = sp.random_data(model, program, 2048, seed=1), sp.eval_data(model, program)
    site = sp.residual_sites(model)[-1]
    (sae, scores), = sp.sae_experiment(setting, site, train, test, sp.SAEConfig(kind="gated", n_latents=30))
    print(scores.row())

See docs/superposition.md for the method and results.
"""

from rasp_compiler.interp.superposition.compress import (
    CompressionConfig, CompressionResult, SweepResult, active_read_rank, compress_params, compressed_model, compression_sweep,
    random_orthogonal, read_basis, train_compression, train_compressions,
)
from rasp_compiler.interp.superposition.data import (
    NON_FEATURES, ProgramData, accuracy, eval_data, feature_indices, make_data, random_data, residual_sites,
    run_outputs, site_activations,
)
from rasp_compiler.interp.superposition.evaluate import (
    SAEScores, Setting, compressed_setting, feature_recovery, max_correlations, max_cosines, plain_setting,
    rotated_setting, sae_experiment, score_sae, site_features, splice_hooks,
)
from rasp_compiler.interp.superposition.groups import GroupScore, GroupScores, UnitScore, score_groups
from rasp_compiler.interp.superposition.truth import (
    FeatureGroup, FeatureTruth, feature_truth, functional_violations, planted_features, planted_truth,
)
from rasp_compiler.interp.superposition.sae import (
    DEFAULT_SPARSITY, SAE, SAE_KINDS, SAEConfig, decode_latents, encode_latents, train_sae, train_saes,
)

__all__ = [
    "CompressionConfig", "CompressionResult", "SweepResult", "active_read_rank", "compress_params", "compressed_model",
    "compression_sweep", "random_orthogonal", "read_basis", "train_compression", "train_compressions",
    "NON_FEATURES", "ProgramData", "accuracy", "eval_data", "feature_indices", "make_data", "random_data",
    "residual_sites", "run_outputs", "site_activations",
    "SAEScores", "Setting", "compressed_setting", "feature_recovery", "max_correlations", "max_cosines",
    "plain_setting", "rotated_setting", "sae_experiment", "score_sae", "site_features", "splice_hooks",
    "DEFAULT_SPARSITY", "SAE", "SAE_KINDS", "SAEConfig", "decode_latents", "encode_latents", "train_sae",
    "train_saes",
    "GroupScore", "GroupScores", "UnitScore", "score_groups",
    "FeatureGroup", "FeatureTruth", "feature_truth", "functional_violations", "planted_features", "planted_truth",
]
