"""Compress a compiled model's residual stream into fewer dimensions (tracr, section 5).

A learned matrix ``W`` of shape ``(d', d_model)`` maps the residual stream into
``R^{d'}``: the embeddings are written through ``W``, every attention head and MLP
reads the residual through ``W^T`` and writes its output back through ``W``, and the
unembedding reads through ``W^T``. Every other weight stays as compiled. Folding ``W``
into the weights gives an ordinary parameter dict of width ``d'``
(:func:`compress_params`), so the unmodified forward pass, its hooks and the model's
decoding all work on the compressed model, and the residual stream really lives in
``R^{d'}``. Labelled direction ``e_i`` of the original model becomes ``W e_i`` (column
``i`` of ``W``): the ground truth for how features share dimensions.

``W`` is trained with Adam on the program's own inputs (random sequences from the
vocabulary) to minimise

* an output loss: cross-entropy of the (scaled) logits against the evaluator's answer
  plus a squared error to the one-hot target (which keeps the compiled model's
  "max logit > 0.5" decoding threshold meaningful, and pushes logits to 0 where the
  answer is None); squared error for a numerical output; and
* a reconstruction loss ``||W^T W h - h||^2`` of the original model's residual vector
  ``h`` at every layer (resid_pre of each layer and the final resid_post), at every
  real position, with a weight that decays geometrically (1 -> 1e-3 by default) so the
  reconstruction shapes ``W`` early and the output decides the end.

The compiled model is very sharp (attention scores scaled by hundreds, steep MLPs), so
the training is built to not lose what it has: ``W`` starts from the principal
directions of what the weights read (``init="read_pca"``, exact whenever d' is at least
the active read rank, see :func:`active_read_rank`), several learning rates are trained
side by side in one vmapped, jitted loop (several d' too: :func:`train_compressions`),
and the checkpoint (initialisation included) most accurate on training inputs is kept.
Accuracy is then measured on every input of the model (``data.eval_data``).

Example::

    from rasp_compiler.interp.superposition import train_compression
    result = train_compression(model, program, d_compressed=8, steps=1000, seed=0)
    result.accuracy            # exact-match rate on every input (or a held-out sample)
    result.model.apply(["BOS", "a", "b"]).decoded   # the compressed model runs as any other
    result.feature_direction("tokens:a")            # W e_i
"""

from __future__ import annotations

import dataclasses
import functools
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from rasp_compiler.interp.superposition.data import (
    ProgramData, accuracy, eval_data as make_eval_data, random_data, residual_sites,
)
from rasp_compiler.model.compiled import CompiledModel
from rasp_compiler.model.config import ModelLabels
from rasp_compiler.model.transformer import forward

Log = Callable[[str], None]


# ----------------------------------------------------------------------------- the compressed model
def compress_params(params: Mapping[str, Any], W, xp=np) -> dict[str, Any]:
    """The weights of the model whose residual stream is ``W h`` (``W``: (d', d_model)).

    Works with numpy or jax.numpy (differentiable in ``W``). With ``W`` orthogonal and
    square this is an exact change of basis of the residual stream.
    """
    out: dict[str, Any] = {}
    for name, value in params.items():
        if name in ("embed.W_E", "pos_embed.W_pos") or name.endswith(("mlp.W_out", "mlp.b_out")):
            out[name] = value @ W.T  # writes into the residual
        elif name.endswith(("attn.W_Q", "attn.W_K", "attn.W_V")):
            out[name] = xp.einsum("cd,hde->hce", W, value)  # reads the residual
        elif name.endswith("attn.W_O"):
            out[name] = xp.einsum("hed,cd->hec", value, W)  # writes
        elif name.endswith("mlp.W_in") or name == "unembed.W_U":
            out[name] = W @ value  # reads
        else:
            out[name] = value
    return out


def compressed_model(model: CompiledModel, W: np.ndarray, prefix: str = "compressed") -> CompiledModel:
    """A runnable :class:`CompiledModel` with residual stream ``W h`` (labels ``prefix:j``)."""
    W = np.asarray(W, np.float32)
    params = {k: np.asarray(v, np.float32) for k, v in compress_params(model.params, W).items()}
    config = dataclasses.replace(model.config, d_model=int(W.shape[0]))
    labels = ModelLabels(tuple(f"{prefix}:{j}" for j in range(W.shape[0])), model.labels.heads,
                         model.labels.mlps, model.labels.neurons)
    return CompiledModel(config, params, labels, compilation=None, source=model.source)


def random_orthogonal(n: int, m: int, seed: int) -> np.ndarray:
    """(n, m) with orthonormal rows (n <= m) or columns (n >= m), Haar-distributed."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((max(n, m), min(n, m)))
    q, r = np.linalg.qr(a)
    q = q * np.sign(np.diag(r))[None]  # the sign fix makes the distribution uniform
    return (q.T if n < m else q).astype(np.float32)


# ----------------------------------------------------------------------------- training
@dataclass(frozen=True)
class CompressionConfig:
    d_compressed: int
    steps: int = 1000
    batch_size: int = 32
    lr: float | tuple[float, ...] = (1e-3, 3e-3, 1e-2)  # several: each d' is trained with each, best kept
    output_weight: float = 1.0
    recon_weight: float = 1.0  # at the start; decays geometrically to recon_weight_final
    recon_weight_final: float = 1e-3
    logit_scale: float = 10.0  # cross-entropy on logit_scale * logits (compiled logits are 0/1)
    init: str = "read_pca"  # "random" (orthonormal rows), "pca" (top principal directions of h),
    #                         "read_pca" (same, of h projected onto the directions the weights read)
    seed: int = 0
    n_train: int = 2048  # random training inputs (batches are drawn from them)
    adam_eps: float = 1e-8  # raise it (e.g. 1e-4) to damp Adam's unit-size steps where gradients vanish
    warmup: float = 0.1  # fraction of the steps with a linear learning-rate warm-up
    checkpoints: int = 4  # W is kept at the init and this many points; the best on training inputs wins
    n_select: int = 512  # training inputs used to pick the best checkpoint


@dataclass
class CompressionResult:
    config: CompressionConfig
    W: np.ndarray  # (d', d_model)
    model: CompiledModel  # the compressed model, runnable
    original: CompiledModel
    accuracy: float  # exact-match rate per sequence on the evaluation data
    n_eval: int
    losses: list[float] = field(default_factory=list)  # total loss, every step
    seconds: float = 0.0

    @property
    def exact(self) -> bool:
        return self.accuracy == 1.0

    def feature_direction(self, label: str) -> np.ndarray:
        """``W e_i`` for the original residual dimension labelled ``label``."""
        return self.W[:, self.original.labels.residual.index(label)]

    @property
    def feature_directions(self) -> np.ndarray:
        """(d_model, d'): row i is ``W e_i``."""
        return self.W.T


def _targets(model: CompiledModel, data: ProgramData):
    """Output targets per position: (values, mask); categorical values are class indices (-1: None)."""
    c = model.config
    n, t = data.ids.shape
    mask = np.zeros((n, t), bool)
    if c.output_numerical:
        values = np.zeros((n, t), np.float32)
    else:
        values = np.full((n, t), -1, np.int32)
        index = {v: j for j, v in enumerate(c.output_values)}
    for i, want in enumerate(data.expected):
        for j, w in enumerate(want, start=1):
            if c.output_numerical:
                if w is None:
                    continue
                values[i, j] = float(w)
            else:
                values[i, j] = -1 if w is None else index[w]
            mask[i, j] = True
    return values, mask


def _residuals(model: CompiledModel, data: ProgramData) -> np.ndarray:
    """(sites, n, n_ctx, d_model) residual vectors of the original model."""
    cache: dict = {}
    model._forward_numpy(data.ids, cache=cache)
    return np.stack([np.asarray(cache[s], np.float32) for s in residual_sites(model)])


def read_basis(params: Mapping[str, Any], tol: float = 1e-6) -> np.ndarray:
    """(d_model, r) orthonormal basis of the residual directions that some weight reads.

    The spans of what each head's QK circuit ``W_Q W_K^T`` reads on the query and on the
    key side, of what its OV circuit ``W_V W_O`` reads, and of every MLP's ``W_in`` and
    the unembedding: a residual direction outside it (a token no head or MLP looks at, a
    value nobody uses) never changes the output.
    """
    reads = []
    for name, value in params.items():
        v = np.asarray(value, np.float64)
        if name.endswith("attn.W_Q"):
            prefix = name[: -len("W_Q")]
            k = np.asarray(params[prefix + "W_K"], np.float64)
            vv = np.asarray(params[prefix + "W_V"], np.float64)
            o = np.asarray(params[prefix + "W_O"], np.float64)
            for h in range(v.shape[0]):
                qk = v[h] @ k[h].T
                reads.extend([qk, qk.T, vv[h] @ o[h]])
        elif name.endswith("mlp.W_in") or name == "unembed.W_U":
            reads.append(v)
    A = np.concatenate(reads, axis=1)
    u, sv, _ = np.linalg.svd(A, full_matrices=False)
    return u[:, sv > tol * max(sv.max(), 1.0)]


def active_read_rank(model: CompiledModel, data: ProgramData, tol: float = 1e-6) -> int:
    """Dimension of the span of what the weights read from the residual on ``data``.

    The residual at every site and real position, projected onto :func:`read_basis`: a
    compression that keeps this span exactly (the ``read_pca`` initialisation at this
    width) is exact, so exact widths below it need features to share directions.
    """
    resid = _residuals(model, data)[:, data.token_mask].reshape(-1, model.config.d_model).astype(np.float64)
    coords = resid @ read_basis(model.params)
    sv = np.linalg.svd(coords, compute_uv=False)
    return int((sv > tol * max(sv.max(initial=0.0), 1.0) * np.sqrt(len(coords))).sum())


def _principal_directions(h: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """Rows: orthonormal directions spanning ``basis``'s columns, by decreasing E[(v.h)^2]."""
    if basis.shape[1] == 0:
        return np.zeros((0, basis.shape[0]))
    coords = h @ basis
    vals, vecs = np.linalg.eigh(coords.T @ coords / max(len(h), 1))
    return (basis @ vecs[:, np.argsort(vals)[::-1]]).T


def _init_W(model: CompiledModel, resid: np.ndarray, tokens: np.ndarray, d: int, init: str, seed: int):
    D = model.config.d_model
    if init == "random":
        return random_orthogonal(d, D, seed)
    h = resid[:, tokens].reshape(-1, D).astype(np.float64)  # every site, every real position
    if init == "pca":
        return _principal_directions(h, np.eye(D))[:d].astype(np.float32)
    if init == "read_pca":
        # principal directions of the part of h the weights read, then the read directions that
        # are never active, then principal directions of the unread rest: never a direction that
        # mixes read and unread space (it would leak unread activity into what the model reads)
        B = read_basis(model.params)
        u, _, _ = np.linalg.svd(B, full_matrices=True)
        C = u[:, B.shape[1]:]  # orthonormal complement of the read space
        dirs = np.concatenate([_principal_directions(h, B), _principal_directions(h, C)])
        return dirs[:d].astype(np.float32)
    raise ValueError(f"init must be 'random', 'pca' or 'read_pca', got {init!r}")


def make_loss(model: CompiledModel, cfg: CompressionConfig):
    """loss(W, ids, targets, out_mask, resid, tok_mask, recon_weight) -> (total, (output, recon))."""
    loss = _loss_fn(*_loss_key(model, cfg))
    params = model.jax_params
    return lambda W, *args: loss(params, W, *args)


def _loss_key(model: CompiledModel, cfg: CompressionConfig) -> tuple:
    c = model.config
    target_var = float(np.var(np.asarray(c.output_values, np.float64))) if c.output_numerical else 1.0
    return (c.n_layers, bool(c.causal), bool(c.output_numerical), len(c.output_values), max(target_var, 1e-6),
            float(cfg.logit_scale), float(cfg.output_weight))


@functools.lru_cache(maxsize=None)
def _loss_fn(n_layers, causal, numerical, n_out, target_var, logit_scale, output_weight):
    """loss(params, W, ...): the weights are an argument, so one compiled step serves every model
    of the same shapes (and a second training run of the same model compiles nothing)."""
    import jax
    import jax.numpy as jnp

    def loss(params, W, ids, targets, out_mask, resid, tok_mask, recon_weight):
        cp = compress_params(params, W, jnp)
        logits = forward(cp, ids, xp=jnp, n_layers=n_layers, causal=causal)
        m = out_mask.astype(jnp.float32)
        denom = jnp.maximum(m.sum(), 1.0)
        if numerical:  # squared error over the target variance: 1.0 = predicting the mean
            out_loss = (m * (logits[..., 0] - targets) ** 2).sum() / denom / target_var
        else:
            valid = m * (targets >= 0)
            logp = jax.nn.log_softmax(logit_scale * logits, axis=-1)
            ce = -jnp.take_along_axis(logp, jnp.maximum(targets, 0)[..., None], axis=-1)[..., 0]
            onehot = jax.nn.one_hot(targets, n_out)  # all zeros for -1 (None)
            sq = ((logits - onehot) ** 2).sum(-1)
            out_loss = (valid * ce).sum() / jnp.maximum(valid.sum(), 1.0) + (m * sq).sum() / denom
        P = W.T @ W
        err = ((resid @ P - resid) ** 2).sum(-1)  # (sites, batch, positions)
        tm = tok_mask.astype(jnp.float32)[None]
        recon = (tm * err).sum() / (tm.sum() * resid.shape[0])
        total = output_weight * out_loss + recon_weight * recon
        return total, (out_loss, recon)

    return loss


@functools.lru_cache(maxsize=None)
def _train_step(loss_key: tuple, adam_eps: float):
    """(optimizer, jitted step) training a stack of W's; the step size per run is an argument."""
    import jax
    import optax

    loss = _loss_fn(*loss_key)

    def total_loss(Ws, params, ms, ids, tg, om, rs, tm, rw):
        totals, parts = jax.vmap(loss, in_axes=(None, 0, None, None, None, None, None, None))(
            params, Ws * ms, ids, tg, om, rs, tm, rw)
        return totals.sum(), (totals, parts)

    opt = optax.scale_by_adam(eps=adam_eps)

    @jax.jit
    def step(Ws, opt_state, params, ms, ids, tg, om, rs, tm, rw, step_size):
        (_, (totals, parts)), grad = jax.value_and_grad(total_loss, has_aux=True)(
            Ws, params, ms, ids, tg, om, rs, tm, rw)
        direction, opt_state = opt.update(grad, opt_state, Ws)
        return Ws - step_size * direction, opt_state, totals, parts

    return opt, step


def train_compression(model: CompiledModel, program, d_compressed: int | None = None, *,
                      config: CompressionConfig | None = None, train_data: ProgramData | None = None,
                      eval_data: ProgramData | None = None, log: Log | None = None,
                      log_every: int = 500, **overrides) -> CompressionResult:
    """Learn ``W`` (d' x d_model) so the model runs on a d'-dimensional residual stream.

    ``config`` or ``d_compressed`` plus keyword overrides of :class:`CompressionConfig`.
    ``eval_data`` defaults to every input of the model (or 4096 random ones when there
    are more); ``log`` receives a progress line every ``log_every`` steps.
    """
    if config is None:
        if d_compressed is None:
            raise ValueError("give d_compressed or config")
        config = CompressionConfig(d_compressed=d_compressed, **overrides)
    elif overrides or d_compressed is not None:
        config = dataclasses.replace(config, **overrides, **(
            {"d_compressed": d_compressed} if d_compressed is not None else {}))
    return train_compressions(model, program, [config.d_compressed], config=config, train_data=train_data,
                              eval_data=eval_data, log=log, log_every=log_every)[0]


def train_compressions(model: CompiledModel, program, dims: Sequence[int], *,
                       config: CompressionConfig | None = None, restarts: int = 1,
                       train_data: ProgramData | None = None, eval_data: ProgramData | None = None,
                       log: Log | None = None, log_every: int = 500, **overrides) -> list[CompressionResult]:
    """Train one ``W`` per d' in ``dims`` (each ``restarts`` times) in a single jitted loop.

    Every ``W`` is stored as a (d_model, d_model) matrix whose rows past d' are held at
    zero, so all sizes share one compiled step; the summed loss gives each ``W`` exactly
    its own gradient and Adam is elementwise, so this equals training them one by one on
    the same batches. With ``restarts > 1`` each d' is trained from several random
    initialisations. ``W`` is also checkpointed ``config.checkpoints`` times (the
    initialisation included); of all checkpoints of all restarts of a d', the one most
    accurate on (a subset of) the *training* inputs is kept (ties: the later one, then
    the lower loss), so training never ends worse than it started; accuracy is then
    measured on ``eval_data``.
    """
    import jax
    import jax.numpy as jnp
    import optax

    cfg = config or CompressionConfig(d_compressed=max(dims))
    if overrides:
        cfg = dataclasses.replace(cfg, **overrides)
    start = time.perf_counter()
    if train_data is None:
        train_data = random_data(model, program, cfg.n_train, seed=cfg.seed)
    if eval_data is None:
        eval_data = make_eval_data(model, program)
    D = model.config.d_model
    dims = [int(d) for d in dims]
    if any(not 1 <= d <= D for d in dims):
        raise ValueError(f"every d' must be in 1..d_model={D}, got {dims}")
    targets, out_mask = _targets(model, train_data)
    tok_mask = train_data.token_mask
    resid = _residuals(model, train_data)

    lrs = tuple(cfg.lr) if isinstance(cfg.lr, (tuple, list)) else (float(cfg.lr),)
    runs = [(d, r) for d in dims for r in range(restarts * len(lrs))]  # r // len(lrs): restart, r % len(lrs): lr
    W0 = np.zeros((len(runs), D, D), np.float32)
    masks = np.zeros((len(runs), D, 1), np.float32)
    for j, (d, r) in enumerate(runs):
        W0[j, :d] = _init_W(model, resid, tok_mask, d, cfg.init, cfg.seed + 1000 * (r // len(lrs)) + d)
        masks[j, :d] = 1.0

    warm = max(int(cfg.warmup * cfg.steps), 1)
    schedule = optax.warmup_cosine_decay_schedule(0.0, 1.0, warm, max(cfg.steps, warm + 1), end_value=0.05)
    run_lr = np.asarray([lrs[r % len(lrs)] for _, r in runs], np.float32)[:, None, None]
    opt, step = _train_step(_loss_key(model, cfg), float(cfg.adam_eps))  # Adam, one learning rate per run
    params = model.jax_params

    Ws = jnp.asarray(W0)
    ms = jnp.asarray(masks)
    opt_state = opt.init(Ws)
    rng = np.random.default_rng(cfg.seed + 1)
    history = []
    n = len(train_data)
    marks = set(np.linspace(0, cfg.steps, cfg.checkpoints + 1).round().astype(int)[1:].tolist()) \
        if cfg.checkpoints else {cfg.steps}
    snapshots = [(0, np.asarray(W0))]  # (step, Ws)
    for it in range(cfg.steps):
        idx = rng.integers(0, n, size=min(cfg.batch_size, n))
        frac = it / max(cfg.steps - 1, 1)
        rw = cfg.recon_weight * (cfg.recon_weight_final / cfg.recon_weight) ** frac if cfg.recon_weight else 0.0
        Ws, opt_state, totals, (out_l, rec_l) = step(
            Ws, opt_state, params, ms, train_data.ids[idx], targets[idx], out_mask[idx], resid[:, idx],
            tok_mask[idx], np.float32(rw), run_lr * np.float32(schedule(it)))
        history.append(np.asarray(totals))
        if it + 1 in marks:
            snapshots.append((it + 1, np.asarray(Ws * ms, np.float32)))
        if log and ((it + 1) % log_every == 0 or it + 1 == cfg.steps):
            per = ", ".join(f"{d}:{float(t):.3g}" for (d, r), t in zip(runs, np.asarray(totals)) if r == 0)
            log(f"  compress {model.config.output} step {it + 1}/{cfg.steps} "
                f"(elapsed {time.perf_counter() - start:.0f} s) loss by d' {per}")
    losses = np.stack(history) if history else np.zeros((0, len(runs)))
    select = train_data.subset(np.sort(np.random.default_rng(cfg.seed + 2).permutation(len(train_data))[:cfg.n_select]))

    results = []
    for d in dims:
        js = [j for j, (dd, _) in enumerate(runs) if dd == d]
        candidates = []  # ((train accuracy, step, -loss), run, W)
        for step_no, Ws_snap in snapshots:
            for j in js:
                W = Ws_snap[j, :d]
                loss_here = float(losses[step_no - 1, j]) if step_no else float("inf")
                candidates.append(((accuracy(compressed_model(model, W), select), step_no, -loss_here), j, W))
        _, j, W = max(candidates, key=lambda c: c[0])
        W = np.array(W, np.float32)
        cmodel = compressed_model(model, W)
        results.append(CompressionResult(dataclasses.replace(cfg, d_compressed=d), W, cmodel, model,
                                         accuracy(cmodel, eval_data), len(eval_data),
                                         [float(x) for x in losses[:, j]], time.perf_counter() - start))
    return results


# ----------------------------------------------------------------------------- sweeps
@dataclass
class SweepResult:
    program: str
    d_model: int
    results: list[CompressionResult]

    @property
    def accuracies(self) -> dict[int, float]:
        return {r.config.d_compressed: r.accuracy for r in self.results}

    @property
    def smallest_exact(self) -> int | None:
        """Smallest d' whose compressed model is exact on the evaluation data (None: none was)."""
        exact = [r.config.d_compressed for r in self.results if r.exact]
        return min(exact) if exact else None

    def result(self, d: int) -> CompressionResult:
        return next(r for r in self.results if r.config.d_compressed == d)


def compression_sweep(model: CompiledModel, program, dims: Sequence[int], *, log: Log | None = None,
                      eval_data: ProgramData | None = None, train_data: ProgramData | None = None,
                      restarts: int = 1, **overrides) -> SweepResult:
    """Accuracy of the compressed model for every d' in ``dims`` (trained together, shared data)."""
    results = train_compressions(model, program, sorted(set(dims)), restarts=restarts, train_data=train_data,
                                 eval_data=eval_data, log=log, **overrides)
    if log:
        log(f"  compress {model.config.output}: " + ", ".join(
            f"d'={r.config.d_compressed}: {r.accuracy:.3f}" for r in results))
    return SweepResult(model.config.output, model.config.d_model, results)
