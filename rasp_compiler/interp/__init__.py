"""Interpretability testbed: ground-truth circuits, interventions, methods and their scores.

* :mod:`.ground_truth` — the component graph read off the weights, circuits, feature dictionary;
* :mod:`.forward` — the forward pass as a sum of component outputs (patching, attribution);
* :mod:`.hooks` — caches, replacements, zero/mean/resample ablation on the model's own forward;
* :mod:`.pairs` — clean/corrupted pairs and the metric, for the output or any SOp;
* :mod:`.methods` — one module per method, registry ``METHODS`` (patching, AtP/AtP*, EAP-IG, ACDC, ...);
* :mod:`.scoring` — ROC AUC, TPR/FPR at the true circuit size;
* :mod:`.testbed` — everything above on every target of a model;
* :mod:`.rotate` — random orthogonal change of residual basis (plus optional noise);
* :mod:`.transformer_lens` — export to a TransformerLens HookedTransformer (optional extra);
* :mod:`.plots` — scores next to the true circuit.

See docs/testbed.md.
"""

from rasp_compiler.interp.ground_truth import (Circuit, Component, Feature, FeatureDictionary, GroundTruth,
                                               components, feature_dictionary, ground_truth)
from rasp_compiler.interp.rotate import rotate_residual

__all__ = ["Circuit", "Component", "Feature", "FeatureDictionary", "GroundTruth", "components",
           "feature_dictionary", "ground_truth", "rotate_residual", "evaluate", "plot_target", "Decomposed",
           "make_pairs", "run_all"]


def __getattr__(name):  # the method stack imports JAX lazily
    if name == "evaluate":
        from rasp_compiler.interp.testbed import evaluate
        return evaluate
    if name == "plot_target":
        from rasp_compiler.interp.plots import plot_target
        return plot_target
    if name == "Decomposed":
        from rasp_compiler.interp.forward import Decomposed
        return Decomposed
    if name == "make_pairs":
        from rasp_compiler.interp.pairs import make_pairs
        return make_pairs
    if name == "run_all":
        from rasp_compiler.interp.methods import run_all
        return run_all
    raise AttributeError(name)
