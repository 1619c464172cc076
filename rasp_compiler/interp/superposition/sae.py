"""Sparse autoencoders on residual activations: ReLU (L1), Gated, and JumpReLU.

All three share a decoder ``x_hat = f @ W_dec + b_dec`` whose rows (the latents'
directions) are kept at unit norm after every step, so a decoder row is directly
comparable with a ground-truth feature direction. They differ in the encoder and the
sparsity penalty:

* ``"relu"``: ``f = ReLU((x - b_dec) W_enc + b_enc)``, loss = reconstruction
  + ``lambda * sum(f)`` (L1; with unit-norm decoder rows this is the norm-weighted L1).
* ``"gated"`` (Rajamanoharan et al. 2024, "Improving Dictionary Learning with Gated
  Sparse Autoencoders"): a gate path ``pi_gate = (x - b_dec) W_gate + b_gate`` decides
  which latents are on (Heaviside), a magnitude path with the same weights rescaled
  per latent, ``W_mag = exp(r_mag) * W_gate``, says how much:
  ``f = 1[pi_gate > 0] * ReLU((x - b_dec) W_mag + b_mag)``. Loss = reconstruction
  + ``lambda * sum(ReLU(pi_gate))`` + an auxiliary reconstruction of ``x`` from
  ``ReLU(pi_gate)`` through a frozen (stop-gradient) copy of the decoder, which is what
  trains the gate path (the Heaviside passes no gradient).
* ``"jumprelu"`` (Rajamanoharan et al. 2024, "Jumping Ahead: Improving Reconstruction
  Fidelity with JumpReLU Sparse Autoencoders"; the Gemma Scope recipe):
  ``f = z * 1[z > theta]`` with ``z = x W_enc + b_enc`` and a learnable threshold
  ``theta = exp(log_theta)`` per latent. Loss = reconstruction + ``lambda * L0``. The
  step functions have zero derivative almost everywhere, so the thresholds are trained
  with straight-through pseudo-derivatives using a rectangle kernel of width ``eps``
  (``bandwidth``): ``d/dtheta JumpReLU = -(theta/eps) K((z-theta)/eps)`` and
  ``d/dtheta H(z-theta) = -(1/eps) K((z-theta)/eps)``, ``K(u) = 1[|u| < 1/2]``; the
  L0 term passes no gradient to ``z``.

Inputs are scaled by one constant so that ``E||x||^2 = d`` (the Gemma Scope
normalisation), which makes ``lambda`` mean roughly the same thing on every model;
``SAE.encode``/``decode`` take and return activations in the original units.

Training is vectorised over several sparsity coefficients at once
(:func:`train_saes`): the SAEs have the same shapes, so one jitted step trains them
all, which is how the L0 sweeps are run.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

SAE_KINDS = ("relu", "gated", "jumprelu")
DEFAULT_SPARSITY = {"relu": 0.3, "gated": 1.0, "jumprelu": 0.3}

Log = Callable[[str], None]


@dataclass(frozen=True)
class SAEConfig:
    kind: str = "relu"
    n_latents: int = 64
    sparsity: float | None = None  # lambda (L1 for relu/gated, L0 for jumprelu); None: DEFAULT_SPARSITY
    steps: int = 1500
    batch_size: int = 256
    lr: float = 3e-3
    seed: int = 0
    sparsity_warmup: float = 0.2  # fraction of the steps over which lambda ramps up from 0
    bandwidth: float = 1.0  # JumpReLU kernel width eps (normalised units; wide: the activations are discrete)
    init_threshold: float = 0.5  # JumpReLU theta at the start
    normalize: bool = True  # scale inputs so that E||x||^2 = d
    decoder_bias: bool = True  # False: b_dec is held at 0 (an ablation; see docs/superposition.md)

    def __post_init__(self):
        if self.kind not in SAE_KINDS:
            raise ValueError(f"SAE kind must be one of {SAE_KINDS}, got {self.kind!r}")

    @property
    def lam(self) -> float:
        return DEFAULT_SPARSITY[self.kind] if self.sparsity is None else float(self.sparsity)


# ----------------------------------------------------------------------------- the model (numpy or jax)
def _pre(params, x, kind, xp):
    """Encoder pre-activations: relu/jumprelu: one array; gated: (pi_gate, pi_mag)."""
    if kind == "gated":
        xc = x - params["b_dec"]
        pi_gate = xc @ params["W_enc"] + params["b_gate"]
        pi_mag = xc @ (params["W_enc"] * xp.exp(params["r_mag"])) + params["b_mag"]
        return pi_gate, pi_mag
    if kind == "relu":
        return (x - params["b_dec"]) @ params["W_enc"] + params["b_enc"]
    return x @ params["W_enc"] + params["b_enc"]


def encode_latents(params, x, kind: str, xp=np):
    """Latent activations f (normalised input units) without training-time tricks."""
    if kind == "gated":
        pi_gate, pi_mag = _pre(params, x, kind, xp)
        return (pi_gate > 0) * xp.maximum(pi_mag, 0)
    z = _pre(params, x, kind, xp)
    if kind == "relu":
        return xp.maximum(z, 0)
    return z * (z > xp.exp(params["log_theta"]))


def decode_latents(params, f):
    return f @ params["W_dec"] + params["b_dec"]


@dataclass
class SAE:
    """A trained sparse autoencoder; works on numpy arrays in the activations' own units."""

    kind: str
    params: dict[str, np.ndarray]
    scale: float  # activations are multiplied by this before encoding
    config: SAEConfig
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def n_latents(self) -> int:
        return int(self.params["W_dec"].shape[0])

    @property
    def sparsity(self) -> float:
        return self.config.lam

    @property
    def decoder(self) -> np.ndarray:
        """(n_latents, d): unit-norm direction of each latent."""
        return self.params["W_dec"]

    def encode(self, x: np.ndarray) -> np.ndarray:
        return encode_latents(self.params, np.asarray(x, np.float32) * self.scale, self.kind)

    def decode(self, f: np.ndarray) -> np.ndarray:
        return decode_latents(self.params, f) / self.scale

    def reconstruct(self, x: np.ndarray) -> np.ndarray:
        return self.decode(self.encode(x)).astype(np.float32)

    @classmethod
    def from_decoder(cls, decoder: np.ndarray, kind: str = "relu", b_dec: np.ndarray | None = None) -> "SAE":
        """A hand-made SAE with the given decoder rows (normalised), encoder = decoder^T, zero biases."""
        dec = np.asarray(decoder, np.float32)
        dec = dec / np.maximum(np.linalg.norm(dec, axis=1, keepdims=True), 1e-12)
        m, d = dec.shape
        params = {"W_enc": dec.T.copy(), "W_dec": dec, "b_dec": np.zeros(d, np.float32) if b_dec is None
                  else np.asarray(b_dec, np.float32), "b_enc": np.zeros(m, np.float32)}
        if kind == "gated":
            params.update(b_gate=np.zeros(m, np.float32), b_mag=np.zeros(m, np.float32),
                          r_mag=np.zeros(m, np.float32))
            del params["b_enc"]
        if kind == "jumprelu":
            params["log_theta"] = np.full(m, np.log(1e-3), np.float32)
        return cls(kind, params, 1.0, SAEConfig(kind=kind, n_latents=m))


# ----------------------------------------------------------------------------- training
def _init_params(cfg: SAEConfig, d: int, mean: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    m = cfg.n_latents
    dec = rng.standard_normal((m, d)).astype(np.float32)
    dec /= np.linalg.norm(dec, axis=1, keepdims=True)
    p = {"W_enc": dec.T.copy(), "W_dec": dec, "b_dec": mean.astype(np.float32)}
    if cfg.kind == "gated":
        p.update(b_gate=np.zeros(m, np.float32), b_mag=np.zeros(m, np.float32), r_mag=np.zeros(m, np.float32))
    else:
        p["b_enc"] = np.zeros(m, np.float32)
    if cfg.kind == "jumprelu":
        p["log_theta"] = np.full(m, np.log(cfg.init_threshold), np.float32)
        p["b_dec"] = np.zeros(d, np.float32)  # Gemma Scope: no pre-encoder bias; b_dec starts at 0
    return p


@functools.lru_cache(maxsize=None)
def _jump_fns(bandwidth: float):
    """JumpReLU and Heaviside with rectangle-kernel pseudo-derivatives for the threshold."""
    import jax
    import jax.numpy as jnp

    def rect(u):
        return (jnp.abs(u) < 0.5).astype(u.dtype)

    def batch_sum(g):
        return g.reshape(-1, g.shape[-1]).sum(0)

    @jax.custom_vjp
    def jumprelu(z, theta):
        return z * (z > theta)

    def jumprelu_fwd(z, theta):
        return jumprelu(z, theta), (z, theta)

    def jumprelu_bwd(res, g):
        z, theta = res
        return g * (z > theta), batch_sum(-(theta / bandwidth) * rect((z - theta) / bandwidth) * g)

    jumprelu.defvjp(jumprelu_fwd, jumprelu_bwd)

    @jax.custom_vjp
    def step(z, theta):
        return (z > theta).astype(z.dtype)

    def step_fwd(z, theta):
        return step(z, theta), (z, theta)

    def step_bwd(res, g):
        z, theta = res
        return jnp.zeros_like(z), batch_sum(-(1.0 / bandwidth) * rect((z - theta) / bandwidth) * g)

    step.defvjp(step_fwd, step_bwd)
    return jumprelu, step


def make_sae_loss(cfg: SAEConfig):
    """loss(params, x, lam) -> (total, (reconstruction, sparsity, l0)), x normalised."""
    import jax
    import jax.numpy as jnp

    kind = cfg.kind
    jumprelu, step = _jump_fns(float(cfg.bandwidth))

    def loss(p, x, lam):
        if kind == "gated":
            pi_gate, pi_mag = _pre(p, x, kind, jnp)
            f = (pi_gate > 0) * jax.nn.relu(pi_mag)
            gate = jax.nn.relu(pi_gate)
            sparsity = gate.sum(-1).mean()
            aux_hat = gate @ jax.lax.stop_gradient(p["W_dec"]) + jax.lax.stop_gradient(p["b_dec"])
            aux = ((x - aux_hat) ** 2).sum(-1).mean()
        elif kind == "relu":
            f = jax.nn.relu(_pre(p, x, kind, jnp))
            sparsity = f.sum(-1).mean()
            aux = 0.0
        else:
            z = _pre(p, x, kind, jnp)
            theta = jnp.exp(p["log_theta"])
            f = jumprelu(z, theta)
            sparsity = step(z, theta).sum(-1).mean()
            aux = 0.0
        x_hat = f @ p["W_dec"] + p["b_dec"]
        recon = ((x - x_hat) ** 2).sum(-1).mean()
        l0 = (f > 0).sum(-1).mean()
        return recon + lam * sparsity + aux, (recon, sparsity, l0)

    return loss


def _normalise_decoder(p):
    import jax.numpy as jnp
    W = p["W_dec"]
    return {**p, "W_dec": W / jnp.maximum(jnp.linalg.norm(W, axis=-1, keepdims=True), 1e-8)}


@functools.lru_cache(maxsize=None)
def _train_step(kind: str, lr: float, bandwidth: float, decoder_bias: bool):
    """(optimizer, jitted step) for SAEs of one kind; cached so equal shapes compile once."""
    import jax
    import jax.numpy as jnp
    import optax

    loss = make_sae_loss(SAEConfig(kind=kind, bandwidth=bandwidth))
    opt = optax.adam(lr)

    def total(ps, x, lam_vec):
        totals, parts = jax.vmap(loss, in_axes=(0, None, 0))(ps, x, lam_vec)
        return totals.sum(), (totals, parts)

    @jax.jit
    def train_step(ps, opt_state, x, lam_vec):
        (_, (totals, parts)), grads = jax.value_and_grad(total, has_aux=True)(ps, x, lam_vec)
        updates, opt_state = opt.update(grads, opt_state, ps)
        ps = _normalise_decoder(optax.apply_updates(ps, updates))
        if not decoder_bias:
            ps = {**ps, "b_dec": jnp.zeros_like(ps["b_dec"])}
        return ps, opt_state, totals, parts

    return opt, train_step


def train_saes(acts: np.ndarray, config: SAEConfig, sparsities: Sequence[float] | None = None,
               log: Log | None = None, log_every: int = 1000, tag: str = "") -> list[SAE]:
    """Train one SAE per sparsity coefficient on ``acts`` (tokens, d), all in one jitted loop.

    Every SAE starts from the same initialisation and sees the same batches (seeded by
    ``config.seed``), so the only difference between them is lambda.
    """
    import jax.numpy as jnp

    cfg = config
    lams = [cfg.lam] if sparsities is None else [float(s) for s in sparsities]
    start = time.perf_counter()
    acts = np.asarray(acts, np.float32)
    n, d = acts.shape
    scale = float(np.sqrt(d / max(np.mean((acts ** 2).sum(-1)), 1e-12))) if cfg.normalize else 1.0
    x_all = acts * scale
    rng = np.random.default_rng(cfg.seed)
    p0 = _init_params(cfg, d, x_all.mean(0) if cfg.decoder_bias else np.zeros(d, np.float32), rng)
    k = len(lams)
    params = {name: jnp.asarray(np.broadcast_to(v, (k, *v.shape)).copy()) for name, v in p0.items()}
    opt, train_step = _train_step(cfg.kind, float(cfg.lr), float(cfg.bandwidth), bool(cfg.decoder_bias))
    warm = max(int(cfg.sparsity_warmup * cfg.steps), 1)

    opt_state = opt.init(params)
    lam_arr = np.asarray(lams, np.float32)
    history = []
    for it in range(cfg.steps):
        x = jnp.asarray(x_all[rng.integers(0, n, size=min(cfg.batch_size, n))])
        ramp = min(1.0, (it + 1) / warm)
        params, opt_state, totals, (recon, sp, l0) = train_step(params, opt_state, x, lam_arr * ramp)
        history.append(np.asarray(totals))
        if log and ((it + 1) % log_every == 0 or it + 1 == cfg.steps):
            log(f"  sae {tag}{cfg.kind} step {it + 1}/{cfg.steps} (elapsed {time.perf_counter() - start:.0f} s) "
                f"recon {float(recon[0]):.4g} L0 {float(l0[0]):.3g}"
                + (f" (first of {k} lambdas)" if k > 1 else ""))
    losses = np.stack(history) if history else np.zeros((0, k))
    host = {name: np.asarray(v) for name, v in params.items()}
    seconds = time.perf_counter() - start
    return [SAE(cfg.kind, {name: v[j].copy() for name, v in host.items()}, scale,
                dataclasses.replace(cfg, sparsity=lams[j]), [float(t) for t in losses[:, j]], seconds)
            for j in range(k)]


def train_sae(acts: np.ndarray, config: SAEConfig | None = None, log: Log | None = None, **overrides) -> SAE:
    """Train one SAE (see :class:`SAEConfig` for the knobs, passable as keywords)."""
    cfg = dataclasses.replace(config or SAEConfig(), **overrides)
    return train_saes(acts, cfg, log=log)[0]
