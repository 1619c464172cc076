"""Running a compiled model with interventions: caches, replacements, ablations.

Everything here builds ``hooks`` for the model's own forward pass
(``model.run_with_cache(tokens, hooks=..., backend="numpy"|"jax")``): a dict from an
activation name (TransformerLens names, see :mod:`rasp_compiler.model.transformer`) to
a function that returns the replacement. Hook functions see the batch axis and the
full padded context (batch, n_ctx, ...); the values you give them are per position for
the real tokens (n, ...) as in a run's cache, and are broadcast over the batch. They
work on numpy and JAX arrays alike (JAX arrays are updated with ``.at[].set``).

A component's output is the vector it adds to the residual stream:

* a head ``L{l}.H{h}``: ``hook_z[:, :, h] @ W_O[h]``, so a head is replaced through its
  slice of ``blocks.{l}.attn.hook_z`` (the other heads are untouched);
* an MLP block ``L{l}.MLP:{node}``: its neurons' slice of ``blocks.{l}.mlp.hook_post``
  (``@ W_out``; ``b_out`` is zero);
* ``embed``: ``hook_embed`` (+ ``hook_pos_embed``);
* the per-layer views ``L{l}.attn`` / ``L{l}.mlp``: ``hook_attn_out`` / ``hook_mlp_out``.

:func:`replace`, :func:`patch_from` and :func:`ablate` take a component name and work
in that component's native activation (z of the head, post of the neurons, ...).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from rasp_compiler.interp.ground_truth import Component, components, residual_basis

Hooks = dict[str, Callable[[Any], Any]]


# --------------------------------------------------------------------------- array helpers
def _set(a, index, value):
    """a with a[index] = value, for numpy (copy) and JAX (functional update) arrays."""
    if isinstance(a, np.ndarray):
        a = a.copy()
        a[index] = value
        return a
    return a.at[index].set(value)


def compose(*hook_sets: Mapping[str, Callable]) -> Hooks:
    """One hooks dict applying several in order (same activation name: chained)."""
    out: Hooks = {}
    for hooks in hook_sets:
        for name, fn in hooks.items():
            if name in out:
                first = out[name]
                out[name] = (lambda f, g: (lambda a: g(f(a))))(first, fn)
            else:
                out[name] = fn
    return out


def component(model, name: str) -> Component:
    for g in ("node", "layer"):
        for c in components(model, g):
            if c.name == name:
                return c
    names = [c.name for c in components(model)] + [c.name for c in components(model, "layer")]
    raise KeyError(f"no component {name!r}; components: {sorted(set(names))}")


# --------------------------------------------------------------------------- caches
def run_batch_with_cache(model, batch: Sequence[Sequence[Any]], hooks: Mapping | None = None,
                         backend: str = "numpy") -> dict[str, np.ndarray]:
    """Activations of many inputs (each starting with BOS) in one pass, batch axis first,
    padded to the full context (PAD positions are masked as keys, as in the model)."""
    ids = np.stack([model.encode(t) for t in batch])
    cache: dict = {}
    if backend == "numpy":
        model._forward_numpy(ids, hooks=hooks, cache=cache)
    else:
        model._forward_jax(ids, hooks=hooks, cache=cache)
    return {k: np.asarray(v) for k, v in cache.items()}


def head_result(model, cache: Mapping[str, np.ndarray], layer: int, head: int) -> np.ndarray:
    """What head (layer, head) adds to the residual: (..., positions, d_model)."""
    z = np.asarray(cache[f"blocks.{layer}.attn.hook_z"])[..., head, :]
    return z @ model.params[f"blocks.{layer}.attn.W_O"][head]


def component_output(model, cache: Mapping[str, np.ndarray], name: str) -> np.ndarray:
    """What a component adds to the residual stream, from a run's cache."""
    c = component(model, name)
    p = model.params
    if c.kind == "embed":
        return np.asarray(cache["hook_embed"]) + np.asarray(cache["hook_pos_embed"])
    if c.kind == "head":
        return head_result(model, cache, c.layer, c.head)
    if c.kind == "attn":
        return np.asarray(cache[f"blocks.{c.layer}.hook_attn_out"])
    post = np.asarray(cache[f"blocks.{c.layer}.mlp.hook_post"])[..., c.lo:c.hi]
    out = post @ p[f"blocks.{c.layer}.mlp.W_out"][c.lo:c.hi]
    if c.kind == "mlp_layer":
        out = out + p[f"blocks.{c.layer}.mlp.b_out"]
    if c.kind == "unembed":
        raise ValueError("unembed writes no residual output")
    return out


def component_outputs(model, cache: Mapping[str, np.ndarray], granularity: str = "node") -> dict[str, np.ndarray]:
    return {c.name: component_output(model, cache, c.name) for c in components(model, granularity)
            if c.kind != "unembed"}


def native_activation(model, cache: Mapping[str, np.ndarray], name: str) -> dict[str, np.ndarray]:
    """The activation(s) a component is replaced through: {hook name: value}."""
    c = component(model, name)
    if c.kind == "embed":
        return {"hook_embed": np.asarray(cache["hook_embed"]), "hook_pos_embed": np.asarray(cache["hook_pos_embed"])}
    if c.kind == "head":
        return {f"blocks.{c.layer}.attn.hook_z": np.asarray(cache[f"blocks.{c.layer}.attn.hook_z"])[..., c.head, :]}
    if c.kind == "attn":
        return {f"blocks.{c.layer}.hook_attn_out": np.asarray(cache[f"blocks.{c.layer}.hook_attn_out"])}
    if c.kind == "mlp_layer":
        return {f"blocks.{c.layer}.hook_mlp_out": np.asarray(cache[f"blocks.{c.layer}.hook_mlp_out"])}
    return {f"blocks.{c.layer}.mlp.hook_post": np.asarray(cache[f"blocks.{c.layer}.mlp.hook_post"])[..., c.lo:c.hi]}


# --------------------------------------------------------------------------- replacement hooks
def replace(model, name: str, value) -> Hooks:
    """Hooks setting a component's native activation (see :func:`native_activation`) to
    ``value`` ((n, ...) per position, or (batch, n, ...)); for ``embed`` give
    {"hook_embed": ..., "hook_pos_embed": ...} or one array for the token embedding."""
    c = component(model, name)
    if c.kind == "embed":
        values = value if isinstance(value, Mapping) else {"hook_embed": value}
        return {k: _whole(v) for k, v in values.items()}
    if c.kind == "head":
        return {f"blocks.{c.layer}.attn.hook_z": _slice_setter(value, (c.head, slice(None)))}
    if c.kind == "attn":
        return {f"blocks.{c.layer}.hook_attn_out": _whole(value)}
    if c.kind == "mlp_layer":
        return {f"blocks.{c.layer}.hook_mlp_out": _whole(value)}
    if c.kind == "mlp":
        return {f"blocks.{c.layer}.mlp.hook_post": _slice_setter(value, (slice(c.lo, c.hi),))}
    raise ValueError(f"{name} has no output to replace")


def _whole(value):
    return _slice_setter(value, ())


def _slice_setter(value, trailing: tuple):
    """Set a[:, :n, *trailing] = value, n = value.shape[-2] (the last axis is the feature axis)."""
    value = value if hasattr(value, "shape") else np.asarray(value)

    def fn(a):
        return _set(a, (slice(None), slice(0, value.shape[-2]), *trailing), value)
    return fn


def patch_from(model, name: str, source_cache: Mapping[str, np.ndarray]) -> Hooks:
    """Hooks replacing a component's activation with its value in another run (activation
    patching: pass the corrupted run's cache to a clean run, or the other way round)."""
    native = native_activation(model, source_cache, name)
    if component(model, name).kind == "embed":
        return replace(model, name, native)
    (value,) = native.values()
    return replace(model, name, value)


def ablate(model, name: str, how: str = "zero", reference: Sequence[Sequence[Any]] | None = None,
           source: Sequence[Any] | None = None, seed: int = 0) -> Hooks:
    """Zero, mean or resample ablation of one component.

    * ``zero``: the activation is set to 0 (for heads: z = 0, so the head adds nothing);
    * ``mean``: its mean over ``reference`` inputs (each starting with BOS), per position
      (positions a reference input lacks are left out of that position's mean);
    * ``resample``: its value on ``source`` (an input), or on a random one of ``reference``.
    """
    if how == "zero":
        c = component(model, name)
        if c.kind == "head":
            return {f"blocks.{c.layer}.attn.hook_z": lambda a, h=c.head: _set(a, (Ellipsis, h, slice(None)), 0.0)}
        if c.kind == "mlp":
            return {f"blocks.{c.layer}.mlp.hook_post": lambda a, s=slice(c.lo, c.hi): _set(a, (Ellipsis, s), 0.0)}
        names = {"embed": ("hook_embed", "hook_pos_embed"), "attn": (f"blocks.{c.layer}.hook_attn_out",),
                 "mlp_layer": (f"blocks.{c.layer}.hook_mlp_out",)}[c.kind]
        return {k: (lambda a: a * 0) for k in names}
    if how == "mean":
        if not reference:
            raise ValueError("mean ablation needs reference inputs")
        full = run_batch_with_cache(model, reference)
        lengths = np.asarray([len(t) for t in reference])
        mask = np.arange(model.config.n_ctx)[None, :] < lengths[:, None]
        native = native_activation(model, full, name)
        means = {}
        for k, v in native.items():
            m = mask.reshape(mask.shape + (1,) * (v.ndim - 2))
            means[k] = (v * m).sum(0) / np.maximum(m.sum(0), 1)
        if component(model, name).kind == "embed":
            return replace(model, name, means)
        (value,) = means.values()
        return replace(model, name, value)
    if how == "resample":
        if source is None:
            if not reference:
                raise ValueError("resample ablation needs a source input or reference inputs")
            source = reference[np.random.default_rng(seed).integers(len(reference))]
        return patch_from(model, name, model.run_with_cache(list(source)).cache)
    raise ValueError(f"how must be 'zero', 'mean' or 'resample', got {how!r}")


def replace_pattern(layer: int, head: int, pattern) -> Hooks:
    """Set one head's attention pattern ((q, k) for the real positions, or (batch, q, k))."""
    pattern = pattern if hasattr(pattern, "shape") else np.asarray(pattern, np.float32)
    n = pattern.shape[-1]

    def fn(a):
        return _set(a, (slice(None), head, slice(0, n), slice(0, n)), pattern)
    return {f"blocks.{layer}.attn.hook_pattern": fn}


def feature_subspace(model, labels: Iterable[str]) -> np.ndarray:
    """(k, d_model) orthonormal rows: the residual directions of the named features
    (the standard basis vectors, or the rotated ones for a rotated model)."""
    basis = residual_basis(model)
    index = {lab: i for i, lab in enumerate(model.labels.residual)}
    missing = [lab for lab in labels if lab not in index]
    if missing:
        raise KeyError(f"unknown residual labels {missing}")
    return basis[[index[lab] for lab in labels]]


def patch_residual(hook_name: str, directions: np.ndarray, coords=None, source=None) -> Hooks:
    """Replace the part of a residual activation (e.g. ``blocks.1.hook_resid_pre``) that lies
    in the span of ``directions`` ((k, d) orthonormal rows): with ``coords`` ((n, k) values
    along the directions) or with the projection of ``source`` (a residual (n, d) from
    another run's cache). Everything orthogonal to the subspace is kept."""
    D = np.asarray(directions, np.float32)
    if (coords is None) == (source is None):
        raise ValueError("give exactly one of coords (n, k) or source (n, d_model)")
    c = np.asarray(coords if coords is not None else np.asarray(source, np.float32) @ D.T, np.float32)

    def fn(a):
        n = c.shape[-2]
        cur = a[:, :n]
        return _set(a, (slice(None), slice(0, n)), cur - (cur @ D.T) @ D + c @ D)
    return {hook_name: fn}


def zero_residual(hook_name: str, directions: np.ndarray) -> Hooks:
    """Project the residual at ``hook_name`` off a subspace (subspace zero-ablation)."""
    D = np.asarray(directions, np.float32)

    def fn(a):
        return a - (a @ D.T) @ D
    return {hook_name: fn}
