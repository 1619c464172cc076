"""Strict interchange-intervention training (SIIT) of a transformer to a compiled program.

InterpBench (Gupta et al. 2024) trains a transformer from random weights so that a
*known* high-level causal model runs inside it: every high-level node is assigned a
component of the trained (low-level) model, and training makes the low-level model
behave like the high-level one not only on inputs but under interchange interventions
(the component's output taken from another input). A strictness loss makes every
component outside the mapping causally irrelevant, so the mapped components are the
circuit. Here the high-level model is a compiled model: it is exact, and the same
intervention (swap a head's or an MLP block's output) is run on both models.

* :mod:`.mapping`: the trained model's shape and which of its components stands for
  which compiled component; its labels and its ground truth (from the mapping and the
  compiled model's graph, not from the trained weights).
* :mod:`.intervene`: one JAX forward pass of a model whose chosen heads/neurons take
  their values from a source input (the project's forward pass, with hooks).
* :mod:`.train`: initialisation, batches, the three losses and the optax loop.
* :mod:`.measure`: task accuracy, interchange-intervention accuracy (IIA) and strict IIA.
"""

from rasp_compiler.interp.siit.mapping import Mapping, make_mapping
from rasp_compiler.interp.siit.measure import SiitScores, measure
from rasp_compiler.interp.siit.train import TrainResult, train

__all__ = ["Mapping", "make_mapping", "SiitScores", "measure", "TrainResult", "train"]
