"""Hard negatives and hard positives: distractor components and redundant backups.

**distractors** (:func:`make_distractors`). In a compiled model every component outside
the circuit is silent, so a method scores all negatives exactly 0 and ROC AUC measures
recall only. A trained model is full of components that are active on real inputs and
move the logits a little, yet do not matter. This variant adds such components to every
layer, in cancelling pairs:

* a pair of heads with the same random query/key/value weights over real task features
  available at that layer (so each attends and carries information on real inputs), one
  writing ``+M z`` and the other ``-M z`` into the *output's* residual directions;
* a pair of MLP blocks with the same random input weights over task features, writing
  ``+`` and ``-`` the same random vector into the output directions. Each neuron's bias
  puts its threshold in the middle of a gap between the pre-activations it can take (on
  the checked inputs, and for every combination of values of the features it reads), the
  widest gap that leaves it firing on 25-75% of the real positions: it fires on about half
  of them and **no pre-activation is ever 0** (each is at least ``TIE_MARGIN`` of the
  neuron's largest |pre-activation| from 0), so a gradient method gets the same score
  whatever derivative its ReLU has at 0 (JAX's ``maximum`` takes 1/2, torch 0).

Each member alone moves the logits (so patching, attribution and every gradient method
see a non-zero effect, on the node and on its edge into ``unembed``); the pair together
adds exactly nothing. The amplitude of each member is calibrated on the checked inputs to
a random share (30-100%) of ``strength`` x the decoding margin (0.5 of a logit for a
categorical output, half the smallest gap between output values for a numerical one), so
ablating any single member never changes a decoded output. A numerical output is decoded
to the nearest value it can take (within half the smallest gap; the model's own decoding):
a single member moves the raw number by at most ``strength`` x half that gap, the decoded
value never. Truth: each pair is a *cancelling group* (heads and blocks labelled
``distractor:<nodes it reads>#k``): its edges are in the structural graph as the weights
imply, and no functional circuit uses them
(:func:`rasp_compiler.interp.ground_truth.cancelling_groups`).

**backups** (:func:`make_backups`). Each component writing the output's directions gets
a second, identical copy in the same layer (labelled ``backup:<node>``). The output logits
double, so the argmax decoding gives the same answer, and with either copy ablated the
other alone still gives it: only ablating both changes the output. Truth: both in the
circuit. Methods that patch one component at a time see each copy's logit-difference
effect halved relative to the pair, and no change of the decoded output at all. A
numerical output has no such slack (doubling it changes the value), so programs with a
numerical output are refused with a :class:`~rasp_compiler.errors.VariantError`.
"""

from __future__ import annotations

import numpy as np

from rasp_compiler.errors import VariantError
from rasp_compiler.interp.ground_truth import EMBED, UNEMBED, ground_truth, residual_basis
from rasp_compiler.interp.hooks import component_output, run_batch_with_cache
from rasp_compiler.interp.variants.base import Variant, check_inputs, measure_exactness
from rasp_compiler.interp.variants.widen import NewBlock, NewHead, widen

DISTRACTOR, BACKUP = "distractor:", "backup:"
TIE_MARGIN = 1e-3  # least |pre-activation| of a distractor neuron, relative to its largest


def decoding_margin(model) -> float:
    """How far a logit can move without changing any decoded output (see module docstring)."""
    c = model.config
    if not c.output_numerical:
        return 0.5
    vals = np.sort(np.asarray([float(v) for v in c.output_values]))
    gaps = np.diff(vals)
    gaps = gaps[gaps > 0]
    return float(gaps.min() / 2) if len(gaps) else 0.5


def _task_features(gt, order: int, exclude_node: str) -> dict[str, list[int]]:
    """node -> residual indices of its categorical (else numerical) directions written
    before forward position ``order``."""
    out: dict[str, list[int]] = {}
    for kind in ("categorical", "numerical"):
        for f in gt.features.features:
            if f.kind != kind or f.node == exclude_node or not f.written_by:
                continue
            if min(gt.components[w].order for w in f.written_by) < order:
                out.setdefault(f.node, []).append(f.index)
        if out:
            return out
    return out


def _pick(rng, feats: dict[str, list[int]]) -> tuple[list[int], str, list[str]]:
    nodes = sorted(feats)
    chosen = sorted(rng.choice(nodes, size=min(len(nodes), int(rng.integers(1, 3))), replace=False))
    return [i for n in chosen for i in feats[n]], "+".join(chosen), list(chosen)


def _feature_states(model, gt, feats: dict[str, list[int]], nodes: list[str]) -> np.ndarray:
    """(k, d_model) in feature coordinates: every combination of one state per read node (a
    categorical node: one of its directions or none; a numerical one: each value of its value
    set, when the compilation is known, or 0)."""
    value_sets = getattr(getattr(model, "compilation", None), "value_sets", {}) or {}
    options = []
    for node in nodes:
        opts = [[]]
        for i in feats[node]:
            f = gt.features.features[i]
            if f.kind == "categorical":
                opts.append([(i, 1.0)])
            else:
                vals = [v for v in value_sets.get(node, ()) if isinstance(v, (int, float)) and v is not None]
                opts += [[(i, float(v))] for v in vals]
        options.append(opts)
    combos = [[]]
    for opts in options:
        combos = [a + b for a in combos for b in opts][:20_000]
    out = np.zeros((len(combos), model.config.d_model))
    for k, combo in enumerate(combos):
        for i, v in combo:
            out[k, i] = v
    return out


def tie_free_threshold(observed: np.ndarray, possible: np.ndarray) -> tuple[float, float]:
    """(threshold, margin) for one neuron: the middle of the widest gap between the values its
    pre-activation can take (``possible``, ``observed`` included) that leaves it above the
    threshold on 25-75% of ``observed`` (else the gap nearest half), and half that gap."""
    vals = np.sort(np.concatenate([observed, possible]))
    scale = max(float(np.abs(vals).max()), 1e-12)
    uniq = vals[np.r_[True, np.diff(vals) > 1e-6 * scale]]
    if len(uniq) == 1:  # a constant pre-activation: let it pass, well clear of 0
        return float(uniq[0]) - scale, scale
    mid, half = (uniq[:-1] + uniq[1:]) / 2, (uniq[1:] - uniq[:-1]) / 2
    share = (observed[None, :] > mid[:, None]).mean(1)
    central = (share >= 0.25) & (share <= 0.75)
    k = int(np.argmax(np.where(central, half, -1.0))) if central.any() else int(np.argmin(np.abs(share - 0.5)))
    return float(mid[k]), float(half[k])


def make_distractors(model, seed: int = 0, heads: int = 1, blocks: int = 1, neurons: int = 2,
                     strength: float = 0.5) -> Variant:
    """Add ``heads`` cancelling head pairs and ``blocks`` cancelling MLP-block pairs (of
    ``neurons`` neurons each) to every layer (see the module docstring)."""
    if not 0 < strength < 1:
        raise VariantError(f"distractor strength must be in (0, 1) of the decoding margin, got {strength}")
    rng = np.random.default_rng(seed)
    gt = ground_truth(model)
    c = model.config
    d = c.d_model
    out_dims = [i for i, lab in enumerate(model.residual_labels) if lab in gt.graph.nodes[UNEMBED]["reads"]]
    if not out_dims:
        raise VariantError(f"the output {c.output!r} is read from no residual direction; nothing to distract")
    to_resid = np.linalg.pinv(residual_basis(model))  # feature coordinates -> residual (identity unless rotated)
    inputs, how = check_inputs(model)
    batch = [[c.bos, *x] for x in inputs]
    cache = run_batch_with_cache(model, batch)
    real = np.zeros((len(batch), c.n_ctx), bool)  # BOS and the input's tokens, not PAD
    for i, x in enumerate(batch):
        real[i, :len(x)] = True
    d_h = min(4, c.d_head) or 4

    def writer(k: int) -> np.ndarray:  # (k, d_model): random writes into the output directions
        w = np.zeros((k, d))
        w[:, out_dims] = rng.standard_normal((k, len(out_dims)))
        return w

    new_heads, new_blocks, count = [], [], 0
    head_index = []  # model head index of each new head
    for l in range(c.n_layers):
        n_new = 0
        for _ in range(heads):
            feats = _task_features(gt, 2 * l + 1, c.output)
            if not feats:
                continue
            idx, reads, _ = _pick(rng, feats)
            w = {}
            for name, s in (("W_Q", 1.5), ("W_K", 1.5), ("W_V", 1.0)):
                m = np.zeros((d, d_h))
                m[idx] = rng.standard_normal((len(idx), d_h)) * s
                w[name] = to_resid @ m
            wo = writer(d_h) @ to_resid.T
            label = f"{DISTRACTOR}{reads}#{count}"
            count += 1
            new_heads += [NewHead(l, label, w["W_Q"], w["W_K"], w["W_V"], wo),
                          NewHead(l, label, w["W_Q"], w["W_K"], w["W_V"], -wo)]
            head_index += [c.n_heads + n_new, c.n_heads + n_new + 1]
            n_new += 2
        for _ in range(blocks):
            feats = _task_features(gt, 2 * l + 2, c.output)
            if not feats:
                continue
            idx, reads, nodes = _pick(rng, feats)
            states = _feature_states(model, gt, feats, nodes)
            resid = cache[f"blocks.{l}.hook_resid_mid"][real]  # every real position, BOS included
            for _attempt in range(20):  # redraw the rare block with a neuron that cannot clear 0
                m = np.zeros((d, neurons))
                m[idx] = rng.standard_normal((len(idx), neurons))
                w_in = to_resid @ m
                pre, possible = resid @ w_in, states @ m
                cut = [tie_free_threshold(pre[:, j], possible[:, j]) for j in range(neurons)]
                b_in = -np.asarray([t for t, _ in cut])
                reach = np.abs(np.concatenate([pre, possible]) + b_in).max(0)
                if all(margin >= 2 * TIE_MARGIN * r for (_, margin), r in zip(cut, reach)):
                    break
            wo = writer(neurons) @ to_resid.T
            label = f"{DISTRACTOR}{reads}#{count}"
            count += 1
            new_blocks += [NewBlock(l, label + "+", w_in, b_in, wo), NewBlock(l, label + "-", w_in, b_in, -wo)]
    if not new_heads and not new_blocks:
        raise VariantError(f"{c.output!r}: no task feature is available to any layer; nothing to distract")
    # calibrate: each member's largest logit move on the checked inputs -> its amplitude
    raw = widen(model, new_heads, new_blocks)
    raw_cache = run_batch_with_cache(raw, batch)
    W_U = np.asarray(model.params["unembed.W_U"], np.float64)
    margin = decoding_margin(model) * strength
    scaled_heads, scaled_blocks = [], []
    for i in range(0, len(new_heads), 2):
        move = np.abs(component_output(raw, raw_cache, f"L{new_heads[i].layer}.H{head_index[i]}") @ W_U).max()
        f = margin * rng.uniform(0.3, 1.0) / max(move, 1e-9)
        scaled_heads += [NewHead(x.layer, x.label, x.W_Q, x.W_K, x.W_V, x.W_O * f) for x in new_heads[i:i + 2]]
    for i in range(0, len(new_blocks), 2):
        b = new_blocks[i]
        move = np.abs(component_output(raw, raw_cache, f"L{b.layer}.MLP:{b.label}") @ W_U).max()
        f = margin * rng.uniform(0.3, 1.0) / max(move, 1e-9)
        scaled_blocks += [NewBlock(x.layer, x.label, x.W_in, x.b_in, x.W_out * f) for x in new_blocks[i:i + 2]]
    variant = widen(model, scaled_heads, scaled_blocks)
    return Variant("distractors", variant, ground_truth(variant), measure_exactness(variant, model, inputs, how),
                   {"seed": seed, "heads": heads, "blocks": blocks, "neurons": neurons, "strength": strength})


def make_backups(model, seed: int = 0) -> Variant:
    """A second copy of every component that writes the output (see the module docstring)."""
    c = model.config
    if c.output_numerical:
        raise VariantError(f"backups need a categorical output decoded by argmax; {c.output!r} is numerical "
                           "(doubling its value would change it): use the distractors variant instead")
    gt = ground_truth(model)
    p = model.params
    writers = [a for a in gt.graph.predecessors(UNEMBED) if a != EMBED]
    if not writers:
        raise VariantError(f"no head or MLP block writes the output {c.output!r}; nothing to back up")
    heads, blocks = [], []
    for name in writers:
        comp = gt.components[name]
        pre = f"blocks.{comp.layer}."
        if comp.kind == "head":
            h = comp.head
            heads.append(NewHead(comp.layer, BACKUP + comp.node, *(p[pre + "attn." + w][h] for w in
                                                                   ("W_Q", "W_K", "W_V", "W_O"))))
        else:
            sl = slice(comp.lo, comp.hi)
            blocks.append(NewBlock(comp.layer, BACKUP + comp.node, p[pre + "mlp.W_in"][:, sl],
                                   p[pre + "mlp.b_in"][sl], p[pre + "mlp.W_out"][sl],
                                   tuple(BACKUP + n for n in model.labels.neurons[comp.layer][sl])))
    variant = widen(model, heads, blocks)
    return Variant("backups", variant, ground_truth(variant), measure_exactness(variant, model),
                   {"seed": seed, "copied": tuple(writers)})
