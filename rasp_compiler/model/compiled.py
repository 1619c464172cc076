"""A compiled model: weights, labels and a forward pass, with or without its program.

``apply`` takes one token list starting with BOS (tracr's convention), optionally
padded at the end with PAD (as tracr users pad batches), and returns a result whose
``decoded`` has the BOS position first (and None at PAD positions). ``apply_batch`` runs many
sequences at once. JAX compiles the forward pass lazily, once per (batch, length)
shape; inputs are padded to the full context so one shape serves every length.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from rasp_compiler.blas import one_blas_thread
from rasp_compiler.errors import InputError
from rasp_compiler.model.config import ModelConfig, ModelLabels
from rasp_compiler.model.guard import OneHotGuard
from rasp_compiler.model.tracr_view import CategoricalEncoder, NumericalEncoder, TracrModel, TransformerConfig
from rasp_compiler.model.transformer import Hooks, Widths, forward
from rasp_compiler.rasp.exact import ExactDict


@dataclass(frozen=True)
class RunResult:
    decoded: list  # BOS position first, as tracr
    output: np.ndarray  # (positions, outputs): logits, or the number for a numerical output
    cache: dict[str, np.ndarray] = field(default_factory=dict)  # activations, when asked for


class CompiledModel:
    def __init__(self, config: ModelConfig, params: dict[str, np.ndarray], labels: ModelLabels,
                 compilation: Any = None, source: str | None = None, *, metadata: dict | None = None,
                 widths: Sequence[Widths] | None = None, one_hot: OneHotGuard | None = None):
        self.config = config
        # The categorical subspaces the run-time guard checks; None for a model not in its
        # compiled basis (variants), which is then not guarded.
        self.one_hot = one_hot
        self.params = params
        # Widths in use per layer (from assembly): the numpy forward skips the zero padding
        # beyond them, for as long as the weights are these very arrays, made read-only.
        self._widths = tuple(widths) if widths is not None else None
        self._padded = dict(params) if widths is not None else {}
        for w in self._padded.values():
            w.flags.writeable = False
        self.labels = labels
        self.compilation = compilation  # graph, value sets, schedule, layout, blocks (None when loaded)
        self.source = source  # text of the program, when it came from a .rasp file
        self.metadata = metadata  # descriptive metadata of the weight file it was loaded from (graph, program)
        self._ids = {tok: i for i, tok in enumerate(config.input_tokens)}
        self._jax_params = None
        self._jitted = {}  # the jitted forward pass (with and without the residual), built on first use

    # sizes and labels ---------------------------------------------------------
    @property
    def residual_labels(self) -> list[str]:
        return list(self.labels.residual)

    # tracr's names -------------------------------------------------------------
    @functools.cached_property
    def input_encoder(self) -> CategoricalEncoder:
        """Token -> embedding row (BOS, PAD, then the vocabulary), as tracr's."""
        c = self.config
        return CategoricalEncoder(self._ids, enforce_bos=True, bos_token=c.bos, pad_token=c.pad,
                                  max_seq_len=c.n_ctx)

    @functools.cached_property
    def output_encoder(self) -> CategoricalEncoder | NumericalEncoder:
        """Output value <-> logit index (categorical) or the number itself (numerical)."""
        c = self.config
        if c.output_numerical:
            return NumericalEncoder()
        return CategoricalEncoder(ExactDict((v, i) for i, v in enumerate(c.output_values)))

    @property
    def model_config(self) -> TransformerConfig:
        """Sizes under tracr's field names."""
        c = self.config
        return TransformerConfig(num_heads=c.n_heads, num_layers=c.n_layers, key_size=c.d_head,
                                 mlp_hidden_size=c.d_mlp, causal=c.causal)

    @property
    def haiku_params(self) -> dict[str, dict[str, np.ndarray]]:
        """The weights in tracr's nested haiku layout (a copy; see model/tracr_params.py)."""
        from rasp_compiler.model.tracr_params import to_haiku
        return to_haiku(self.params, self.config)

    def as_tracr(self) -> TracrModel:
        """This model under tracr's AssembledTransformerModel names: ``params`` (the haiku tree),
        ``forward`` (haiku, with dm-haiku installed), ``apply``, encoders, config."""
        return TracrModel(self)

    @property
    def n_params(self) -> int:
        return int(sum(v.size for v in self.params.values()))

    def sizes(self) -> dict[str, int]:
        c = self.config
        return {"layers": c.n_layers, "heads": c.n_heads, "d_model": c.d_model, "d_head": c.d_head,
                "d_mlp": c.d_mlp, "params": self.n_params}

    def __repr__(self) -> str:
        s = self.sizes()
        return (f"CompiledModel({self.config.output}: {s['layers']} layers, {s['heads']} heads, "
                f"d_model={s['d_model']}, d_mlp={s['d_mlp']}, {s['params']} params)")

    # running -------------------------------------------------------------------
    def encode(self, tokens: Sequence[Any]) -> np.ndarray:
        """Token ids for one sequence that starts with BOS, padded to the full context.

        The sequence may end with PAD tokens (tracr's batch padding): they are masked out
        as keys, so the real positions compute what they would without them.
        """
        c = self.config
        if isinstance(tokens, np.ndarray) and tokens.ndim == 1:
            tokens = tokens.tolist()  # numpy scalars become the plain str/int/float tokens they stand for
        if isinstance(tokens, (str, bytes)) or not isinstance(tokens, Sequence):
            raise InputError(f"input must be a list of tokens starting with {c.bos!r}, got {tokens!r}")
        if not tokens or tokens[0] != c.bos:
            raise InputError(f"input must start with the BOS token {c.bos!r} (as in tracr), got {list(tokens)[:3]!r}...")
        if len(tokens) - 1 > c.max_seq_len:
            raise InputError(f"input has {len(tokens) - 1} tokens after BOS, more than max_seq_len={c.max_seq_len}")
        ids = np.full(c.n_ctx, self._ids[c.pad], np.int32)
        first_pad = None
        for i, tok in enumerate(tokens):
            try:
                known = tok in self._ids
            except TypeError:  # unhashable: cannot be a token
                known = False
            if i and first_pad is None and known and tok == c.pad:
                first_pad = i
            if first_pad is not None and i >= first_pad:
                if not (known and tok == c.pad):
                    raise InputError(
                        f"token {tok!r} at position {i} follows the PAD token {c.pad!r} at position {first_pad}; "
                        "PAD may only fill the end of a sequence")
                continue
            if i and (tok == c.bos or not known):
                raise InputError(
                    f"token {tok!r} at position {i} is not in the vocabulary {list(c.vocab)}")
            ids[i] = self._ids[tok]
        return ids

    def _n_real(self, tokens: Sequence[Any]) -> int:
        """Positions before the first trailing PAD (BOS included)."""
        pad = self.config.pad
        for i in range(1, len(tokens)):
            if tokens[i] == pad:
                return i
        return len(tokens)

    def apply(self, tokens: Sequence[Any], backend: str = "numpy", guard: bool = True) -> RunResult:
        """Run one sequence. The default numpy backend runs the same forward pass with no
        compile wait; ``backend="jax"`` uses the jitted JAX model (compiled on first use).
        ``guard`` checks that every categorical SOp holds one value at every position
        (:mod:`rasp_compiler.model.guard`), raising :class:`BlendedValueError` if not."""
        out = self._run(self.encode(tokens)[None], backend, [tokens], guard)[0]
        return RunResult(self._decode(out[: len(tokens)], self._n_real(tokens)), out[: len(tokens)])

    def apply_batch(self, batch: Sequence[Sequence[Any]], backend: str = "jax", guard: bool = True) -> list[list]:
        """Decoded outputs of many sequences (each starting with BOS) in one forward pass;
        ``guard`` as in :meth:`apply`."""
        batch = _token_lists(batch, self.config.bos)
        if not batch:
            return []
        ids = np.stack([self.encode(t) for t in batch])
        size = 1 << (len(ids) - 1).bit_length()  # pad the batch to a power of two: few shapes to compile
        ids = np.concatenate([ids, np.repeat(ids[:1], size - len(ids), axis=0)])
        out = self._run(ids, backend, batch, guard)
        return [self._decode(out[i, : len(t)], self._n_real(t)) for i, t in enumerate(batch)]

    def run_with_cache(self, tokens: Sequence[Any], hooks: Hooks | None = None,
                       backend: str = "numpy") -> RunResult:
        """One run with every activation kept (numpy arrays without the batch axis)."""
        _check_backend(backend)
        ids = self.encode(tokens)[None]
        cache: dict = {}
        out = self._forward_numpy(ids, hooks=hooks, cache=cache) if backend == "numpy" else \
            np.asarray(self._forward_jax(ids, hooks=hooks, cache=cache))
        n = len(tokens)
        trimmed = {k: _trim(k, np.asarray(v)[0], n) for k, v in cache.items()}
        out = np.asarray(out)[0, :n]
        return RunResult(self._decode(out, self._n_real(tokens)), out, trimmed)

    def _run(self, ids: np.ndarray, backend: str, batch: Sequence[Sequence[Any]] = (), guard: bool = False
             ) -> np.ndarray:
        _check_backend(backend)
        guard = guard and self.one_hot is not None and bool(self.one_hot.groups) and bool(batch)
        if backend == "numpy":
            out = self._forward_numpy(ids, with_residual=guard)
            if guard:
                out, resid = out
                bad = self.one_hot.violations(resid)
        else:
            out = self._jitted_forward(guard)(self.jax_params, ids)
            if guard:
                out, bad = out
                resid = None
        if guard:
            def residual_of(b: int) -> np.ndarray:  # only for the message: recomputed for one sequence
                return resid[b] if resid is not None else self._forward_numpy(ids[b:b + 1], with_residual=True)[1][0]
            self.one_hot.raise_first(bad, [self._n_real(t) for t in batch], batch, residual_of,
                                     self.labels.residual, self.config.unproven_aggregates)
        return np.asarray(out)

    def _forward_numpy(self, ids, hooks=None, cache=None, with_residual: bool = False):
        widths = None if hooks or cache is not None or not self._weights_as_assembled() else self._widths
        with np.errstate(over="ignore", invalid="ignore"), one_blas_thread():
            return forward(self.params, ids, xp=np, n_layers=self.config.n_layers, causal=self.config.causal,
                           hooks=hooks, cache=cache, widths=widths, with_residual=with_residual)

    def _weights_as_assembled(self) -> bool:
        """Whether ``params`` still holds the (read-only) arrays assembly made."""
        return bool(self._padded) and self.params.keys() == self._padded.keys() and all(
            self.params[k] is w for k, w in self._padded.items())

    def _forward_jax(self, ids, hooks=None, cache=None):
        import jax.numpy as jnp
        return forward(self.jax_params, jnp.asarray(ids), xp=jnp, n_layers=self.config.n_layers,
                       causal=self.config.causal, hooks=hooks, cache=cache)

    @property
    def jax_params(self):
        if self._jax_params is None:
            import jax.numpy as jnp
            self._jax_params = {k: jnp.asarray(v) for k, v in self.params.items()}
        return self._jax_params

    def _jitted_forward(self, guard: bool = False):
        """The jitted forward pass; with ``guard``, it returns (logits, the guard's violation mask)."""
        if guard not in self._jitted:
            import jax
            import jax.numpy as jnp
            run = functools.partial(forward, xp=jnp, n_layers=self.config.n_layers, causal=self.config.causal)
            if guard:
                one_hot = self.one_hot

                def run(params, ids, plain=run):
                    logits, resid = plain(params, ids, with_residual=True)
                    return logits, one_hot.violations(resid, jnp)
            self._jitted[guard] = jax.jit(run)
        return self._jitted[guard]

    # decoding --------------------------------------------------------------------
    def _decode(self, out: np.ndarray, n_real: int | None = None) -> list:
        c = self.config
        n_real = len(out) if n_real is None else n_real
        decoded: list = [c.bos]
        for row in out[1:n_real]:
            decoded.append(self._decode_one(row))
        return decoded + [None] * (len(out) - max(n_real, 1))

    def _decode_one(self, row: np.ndarray):
        c = self.config
        if c.output_numerical:
            x = float(row[0])
            return _snap(x, self._numeric_outputs) if c.output_values else x
        if not len(row):
            return None
        j = int(np.argmax(row))
        return c.output_values[j] if row[j] > 0.5 else None

    @functools.cached_property
    def _numeric_outputs(self) -> np.ndarray:
        return np.asarray(sorted(float(v) for v in self.config.output_values))


def _token_lists(batch: Any, bos: Any) -> list:
    """``apply_batch``'s argument as a list of token sequences (a 2-D numpy array is fine);
    a single sequence or a string is refused with what to write instead."""
    if isinstance(batch, np.ndarray):
        if batch.ndim != 2:
            raise InputError(f"apply_batch needs a 2-D array (one row per sequence), got shape {batch.shape}; "
                             f"for one sequence use apply([{bos!r}, ...])")
        return batch.tolist()
    if isinstance(batch, (str, bytes)) or not isinstance(batch, Sequence):
        raise InputError(f"apply_batch needs a list of token lists, each starting with {bos!r}, got "
                         f"{type(batch).__name__} {str(batch)[:40]!r}")
    for i, row in enumerate(batch):
        if not isinstance(row, np.ndarray) and (isinstance(row, (str, bytes)) or not isinstance(row, Sequence)):
            raise InputError(f"apply_batch needs a list of token lists; item {i} is {row!r}, a single token: "
                             f"for one sequence write apply_batch([[{bos!r}, ...]]) or apply([{bos!r}, ...])")
    return list(batch)


def _check_backend(backend: str) -> None:
    if backend not in ("numpy", "jax"):
        raise ValueError(f"backend must be 'numpy' or 'jax', got {backend!r}")


def _snap(x: float, values: np.ndarray) -> float:
    """The closest value the output can take, when x is within a quarter of a gap of it."""
    i = int(np.clip(np.searchsorted(values, x), 1, len(values) - 1)) if len(values) > 1 else 0
    best = min((abs(values[j] - x), j) for j in {max(i - 1, 0), i})[1]
    neighbours = [abs(values[best] - values[j]) for j in (best - 1, best + 1) if 0 <= j < len(values)]
    half_gap = min(neighbours) / 2 if neighbours else abs(values[best]) * 1e-3 + 1e-3
    return float(values[best]) if abs(values[best] - x) <= half_gap else x


def _trim(name: str, a: np.ndarray, n: int) -> np.ndarray:
    """Drop padded positions (attention patterns are (heads, query, key); the rest position-first)."""
    return a[:, :n, :n] if name.endswith("hook_pattern") else a[:n]
