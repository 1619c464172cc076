"""Score SAE-Lens SAEs with our scorer (optional extra ``sae``: torch + sae-lens).

SAE-Lens is the field's maintained SAE library; its SAEs hold ``W_dec`` (d_sae, d_in)
and map torch tensors with ``encode`` / ``decode``. :class:`SAELensDictionary` gives
one the interface :func:`~.evaluate.score_sae`, :func:`~.groups.score_groups` and
:func:`~.evaluate.splice_hooks` read (``decoder``, ``encode``, ``reconstruct``,
``kind``, ``n_latents``, ``sparsity``) on numpy arrays, so an SAE trained with SAE-Lens
on activations of a compiled model is scored against the same truth as ours.
torch is imported only when a dictionary is used.
"""

from __future__ import annotations

import importlib.metadata

import numpy as np


def status() -> str:
    """One sentence for the docs: is SAE-Lens installed here, which version."""
    try:
        version = importlib.metadata.version("sae-lens")
    except importlib.metadata.PackageNotFoundError:
        return "SAE-Lens was not installed when this page was generated, so no SAE-Lens SAE was scored in this run."
    return (f"SAE-Lens {version} was installed when this page was generated; the test suite checks that an SAE-Lens "
            "`StandardSAE` carrying a trained SAE's weights gets the same scores through the adapter as the SAE "
            "itself (`tests/test_superposition.py::test_saelens_sae_scores_like_ours`).")


class SAELensDictionary:
    """An SAE-Lens SAE seen as a dictionary our scorer understands."""

    def __init__(self, sae, sparsity: float = float("nan")):
        self.sae = sae
        self.sparsity = float(sparsity)  # the coefficient it was trained with, if known (reported only)

    @property
    def kind(self) -> str:
        cfg = getattr(self.sae, "cfg", None)
        arch = getattr(cfg, "architecture", None)
        return f"sae-lens {arch() if callable(arch) else arch or type(self.sae).__name__}"

    @property
    def n_latents(self) -> int:
        return int(self.sae.W_dec.shape[0])

    @property
    def decoder(self) -> np.ndarray:
        """(d_sae, d_in) latent directions (not necessarily unit norm: scores normalise)."""
        return self.sae.W_dec.detach().cpu().numpy().astype(np.float64)

    def _tensor(self, x: np.ndarray):
        import torch

        w = self.sae.W_dec
        return torch.as_tensor(np.asarray(x), dtype=w.dtype, device=w.device)

    def encode(self, x: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            return self.sae.encode(self._tensor(x)).cpu().numpy().astype(np.float32)

    def decode(self, f: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            return self.sae.decode(self._tensor(f)).cpu().numpy().astype(np.float32)

    def reconstruct(self, x: np.ndarray) -> np.ndarray:
        return self.decode(self.encode(x))
