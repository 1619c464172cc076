"""Superposition and sparse-autoencoder evaluation on compiled models.

For each program: compile it, sweep the compressed residual width d' (accuracy of the
compressed model against the evaluator on every input), then train ReLU, Gated and
JumpReLU SAEs on the residual stream in three settings (plain, randomly rotated,
compressed to the smallest exact d') over a grid of sparsity coefficients, and score
them against the compiler's labelled features. Writes docs/superposition.md and
docs/figures/superposition_*.png.

    .venv/bin/python benchmarks/sae_eval.py            # full run (about 10 minutes on 2 cores)
    .venv/bin/python benchmarks/sae_eval.py --quick    # a smoke run, prints only
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rasp_compiler import compile_rasp_to_model  # noqa: E402
from rasp_compiler.interp import superposition as sp  # noqa: E402
from rasp_compiler.lib import LIBRARY  # noqa: E402

PROGRAMS = ["frac_prevs", "hist", "reverse", "sort", "pair_balance", "shift_by"]
LAMBDAS = {"relu": [0.03, 0.1, 0.3, 1.0, 3.0], "gated": [0.1, 0.3, 1.0, 2.0, 4.0],
           "jumprelu": [0.03, 0.1, 0.3, 1.0, 3.0]}
QUICK_LAMBDAS = {k: v[1:4] for k, v in LAMBDAS.items()}
SETTINGS = ("plain", "rotated", "compressed")
FRACTIONS = (0.2, 0.3, 0.5, 0.7, 1.0)  # plus the active read rank r and r-1, r-2

T0 = time.perf_counter()


def say(msg: str) -> None:
    print(f"[{time.perf_counter() - T0:6.1f}s] {msg}", flush=True)


def compression_dims(d_model: int, active_rank: int, quick: bool) -> list[int]:
    fracs = (0.4, 0.7, 1.0) if quick else FRACTIONS
    near = (active_rank,) if quick else (active_rank - 2, active_rank - 1, active_rank)
    return sorted({max(2, min(d_model, int(round(f * d_model)))) for f in fracs}
                  | {d for d in near if 2 <= d <= d_model})


def choose_compressed(sweep: sp.SweepResult) -> sp.CompressionResult:
    """The smallest exact d' below d_model; failing that, the most accurate d' below d_model."""
    below = [r for r in sweep.results if r.config.d_compressed < sweep.d_model] or sweep.results
    exact = [r for r in below if r.exact]
    if exact:
        return min(exact, key=lambda r: r.config.d_compressed)
    return max(below, key=lambda r: (r.accuracy, -r.config.d_compressed))


def run(args) -> dict:
    quick = args.quick
    comp_steps = args.compress_steps or (200 if quick else 1000)
    sae_steps = args.sae_steps or (300 if quick else 1000)
    lambdas = QUICK_LAMBDAS if quick else LAMBDAS
    programs = args.programs.split(",") if args.programs else (PROGRAMS[:3] if quick else PROGRAMS)
    out: dict = {"config": {"quick": quick, "seed": args.seed, "compress_steps": comp_steps,
                            "sae_steps": sae_steps, "lambdas": lambdas, "sites": args.sites,
                            "n_train": args.n_train, "programs": programs,
                            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs"},
                 "programs": {}}
    for name in programs:
        entry = LIBRARY[name]
        program = entry.build()
        model = compile_rasp_to_model(program, set(entry.vocab), entry.max_seq_len)
        D = model.config.d_model
        feats = sp.feature_indices(model.labels.residual)
        read_rank = sp.read_basis(model.params).shape[1]
        train = sp.random_data(model, program, args.n_train, seed=args.seed)
        test = sp.eval_data(model, program)
        active_rank = sp.active_read_rank(model, train)
        say(f"{name}: d_model={D}, {len(feats)} labelled features, read-space rank {read_rank} "
            f"(active {active_rank}), {model.config.n_layers} layers")

        # 1. compression sweep ------------------------------------------------------------
        dims = compression_dims(D, active_rank, quick)
        sweep = sp.compression_sweep(model, program, dims, steps=comp_steps, seed=args.seed, train_data=train,
                                     eval_data=test, log=say)
        chosen = choose_compressed(sweep)
        say(f"{name}: smallest exact d' = {sweep.smallest_exact}; SAEs use d'={chosen.config.d_compressed} "
            f"(accuracy {chosen.accuracy:.3f})")
        rec = {"d_model": D, "n_features": len(feats), "read_rank": read_rank, "active_read_rank": active_rank,
               "n_layers": model.config.n_layers,
               "n_eval": len(test), "compression": {str(r.config.d_compressed): r.accuracy for r in sweep.results},
               "smallest_exact": sweep.smallest_exact, "sae_d": chosen.config.d_compressed,
               "sae_d_accuracy": chosen.accuracy, "sae": []}

        # 2. SAEs ------------------------------------------------------------------------
        settings = {"plain": sp.plain_setting(model), "rotated": sp.rotated_setting(model, seed=args.seed),
                    "compressed": sp.compressed_setting(chosen)}
        sites = sp.residual_sites(model) if args.sites == "all" else sp.residual_sites(model)[-1:]
        final_feats = sp.site_features(model, test, sp.residual_sites(model)[-1])
        rec["random_cos"] = {sname: random_dictionary_cos(settings[sname], final_feats, D, args.seed)
                             for sname in SETTINGS}
        for site in sites:
            for sname in SETTINGS:
                setting = settings[sname]
                for kind in sp.SAE_KINDS:
                    cfg = sp.SAEConfig(kind=kind, n_latents=D, steps=sae_steps, seed=args.seed)
                    results = sp.sae_experiment(setting, site, train, test, cfg, lambdas[kind])
                    for sae, s in results:
                        rec["sae"].append({**s.row(), "default": s.sparsity == sp.DEFAULT_SPARSITY[kind],
                                           "per_feature": s.per_feature, "per_feature_corr": s.per_feature_corr})
                    best = next((s for _, s in results if s.sparsity == sp.DEFAULT_SPARSITY[kind]), results[0][1])
                    say(f"  {name} {sname:10s} {site} {kind:8s} lambda={best.sparsity:g}: cos {best.mean_max_cos:.3f} "
                        f"rec {best.recovered:.2f} corr {best.mean_max_corr:.3f} L0 {best.l0:.2f} "
                        f"nmse {best.nmse:.4f} spliced acc {best.spliced_accuracy:.3f}")
        out["programs"][name] = rec
    out["seconds"] = time.perf_counter() - T0
    return out


def random_dictionary_cos(setting: sp.Setting, features: list[int], n_latents: int, seed: int,
                          draws: int = 50) -> float:
    """Mean max cosine that a dictionary of random Gaussian directions gets (chance level)."""
    rng = np.random.default_rng(seed)
    F = setting.feature_directions(features)
    return float(np.mean([sp.max_cosines(rng.standard_normal((n_latents, F.shape[1])), F).mean()
                          for _ in range(draws)]))


# ----------------------------------------------------------------------------- report
def _f(x, nd=3):
    return "n/a" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.{nd}f}"


def compression_table(res: dict) -> str:
    lines = ["| program | d_model | features | read rank | active read rank | accuracy by d' | smallest exact d' |",
             "|---|---|---|---|---|---|---|"]
    for name, r in res["programs"].items():
        accs = ", ".join(f"{d}: {a:.3f}" for d, a in sorted(r["compression"].items(), key=lambda kv: int(kv[0])))
        lines.append(f"| {name} | {r['d_model']} | {r['n_features']} | {r['read_rank']} | "
                     f"{r.get('active_read_rank', 'n/a')} | {accs} | "
                     f"{r['smallest_exact'] if r['smallest_exact'] is not None else 'none'} |")
    return "\n".join(lines)


def sae_table(res: dict, setting: str, site_filter=None) -> str:
    lines = ["| program | site | d | kind | lambda | mean max cos | recovered (cos>=0.9) | mean max corr | "
             "recovered (corr>=0.9) | dead | dense | NMSE | L0 | spliced acc (baseline) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in res["programs"].items():
        d = r["sae_d"] if setting == "compressed" else r["d_model"]
        for row in r["sae"]:
            if row["setting"] != setting or not row["default"] or (site_filter and not site_filter(row["site"])):
                continue
            layer, hook = row["site"].removeprefix("blocks.").split(".hook_")
            site = f"{hook} (layer {layer})"
            lines.append(
                f"| {name} | {site} | {d} | {row['kind']} | {row['sparsity']:g} | {_f(row['mean_max_cos'])} | "
                f"{_f(row['recovered'], 2)} | {_f(row['mean_max_corr'])} | {_f(row['recovered_corr'], 2)} | "
                f"{_f(row['dead'], 2)} | {_f(row['dense'], 2)} | {_f(row['nmse'], 4)} | {_f(row['l0'], 2)} | "
                f"{_f(row['spliced_accuracy'])} ({_f(row['baseline_accuracy'])}) |")
    return "\n".join(lines)


def summary_table(res: dict) -> str:
    """Mean over programs (final site, default lambda) per setting and kind."""
    lines = ["| setting | kind | mean max cos (random dictionary) | recovered (cos) | mean max corr | "
             "recovered (corr) | dead | dense | NMSE | L0 | spliced acc |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for setting in SETTINGS:
        for kind in sp.SAE_KINDS:
            rows = [row for r in res["programs"].values() for row in r["sae"]
                    if row["setting"] == setting and row["kind"] == kind and row["default"]
                    and row["site"] == r_final(r)]
            if not rows:
                continue
            m = {k: float(np.nanmean([row[k] for row in rows])) for k in
                 ("mean_max_cos", "recovered", "mean_max_corr", "recovered_corr", "dead", "dense", "nmse", "l0",
                  "spliced_accuracy")}
            chance = float(np.mean([r.get("random_cos", {}).get(setting, np.nan) for r in res["programs"].values()]))
            lines.append(f"| {setting} | {kind} | {m['mean_max_cos']:.3f} ({chance:.3f}) | {m['recovered']:.2f} | "
                         f"{m['mean_max_corr']:.3f} | {m['recovered_corr']:.2f} | {m['dead']:.2f} | "
                         f"{m['dense']:.2f} | {m['nmse']:.4f} | {m['l0']:.2f} | {m['spliced_accuracy']:.3f} |")
    return "\n".join(lines)


def r_final(r: dict) -> str:
    return f"blocks.{r['n_layers'] - 1}.hook_resid_post"


def plot_compression(res: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(res["programs"])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for name in names:
        r = res["programs"][name]
        ds = sorted(int(d) for d in r["compression"])
        accs = [r["compression"][str(d)] for d in ds]
        axes[0].plot(ds, accs, marker="o", label=f"{name} (d_model {r['d_model']})")
        axes[1].plot([d / r["d_model"] for d in ds], accs, marker="o", label=name)
        axes[1].axvline(r.get("active_read_rank", r["read_rank"]) / r["d_model"],
                        color=axes[1].lines[-1].get_color(), ls=":", lw=1)
    axes[0].set_xlabel("compressed width d'")
    axes[1].set_xlabel("d' / d_model (dotted: active read rank / d_model)")
    for ax in axes:
        ax.set_ylabel("exact-match accuracy (all inputs)")
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="lower right")
    fig.suptitle("Compressed residual stream: output accuracy vs width")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_l0(res: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"relu": "tab:blue", "gated": "tab:orange", "jumprelu": "tab:green"}
    metrics = [("recovered", "features recovered (max cos >= 0.9)"),
               ("recovered_corr", "features recovered (max corr >= 0.9)"),
               ("nmse", "NMSE (log scale)")]
    fig, axes = plt.subplots(len(metrics), 3, figsize=(13, 10), sharex=True)
    for col, setting in enumerate(SETTINGS):
        for kind in sp.SAE_KINDS:
            rows = [(row, r) for r in res["programs"].values() for row in r["sae"]
                    if row["setting"] == setting and row["kind"] == kind and row["site"] == r_final(r)]
            lams = sorted({row["sparsity"] for row, _ in rows})
            for i, (metric, label) in enumerate(metrics):
                ax = axes[i, col]
                xs = [np.mean([row["l0"] for row, _ in rows if row["sparsity"] == lam]) for lam in lams]
                ys = [np.mean([row[metric] for row, _ in rows if row["sparsity"] == lam]) for lam in lams]
                ax.scatter([row["l0"] for row, _ in rows], [row[metric] for row, _ in rows], s=8, alpha=0.25,
                           color=colors[kind])
                ax.plot(xs, ys, marker="o", color=colors[kind], label=kind)
                if metric == "nmse":
                    ax.set_yscale("log")
                    ax.set_ylim(1e-5, 2)
                else:
                    ax.set_ylim(-0.03, 1.03)
                if col == 0:
                    ax.set_ylabel(label)
                ax.grid(alpha=0.3)
        axes[0, col].set_title(f"{setting}")
        axes[-1, col].set_xlabel("mean L0 (active latents per token)")
        axes[-1, col].set_xscale("log")
        axes[-1, col].set_xlim(0.3, 30)
    axes[0, 0].legend()
    fig.suptitle("SAEs on the final residual stream, sweeping the sparsity coefficient\n"
                 "(line: mean over programs per coefficient; dots: single programs; L0 < 0.3 and NMSE < 1e-5 clipped)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def per_feature_table(res: dict, name: str, setting: str, kind: str) -> str:
    r = res["programs"][name]
    row = next(row for row in r["sae"] if row["setting"] == setting and row["kind"] == kind and row["default"]
               and row["site"] == r_final(r))
    lines = ["| feature | max cos | max corr |", "|---|---|---|"]
    for label, c in row["per_feature"].items():
        lines.append(f"| `{label}` | {c:.3f} | {row['per_feature_corr'][label]:.3f} |")
    return "\n".join(lines)


def write_markdown(res: dict, md: Path, figdir: Path) -> None:
    rel = os.path.relpath(figdir, md.parent)
    cfg = res["config"]
    first = next(iter(res["programs"]))
    text = MD_TEMPLATE.format(
        seconds=res["seconds"], machine=cfg["machine"], seed=cfg["seed"], compress_steps=cfg["compress_steps"],
        sae_steps=cfg["sae_steps"], n_train=cfg["n_train"],
        lambdas=", ".join(f"{k}: {v}" for k, v in cfg["lambdas"].items()),
        defaults=", ".join(f"{k} {v:g}" for k, v in sp.DEFAULT_SPARSITY.items()),
        compression_table=compression_table(res), fig_compression=f"{rel}/superposition_compression.png",
        fig_l0=f"{rel}/superposition_l0.png", summary_table=summary_table(res),
        plain_table=sae_table(res, "plain"), rotated_table=sae_table(res, "rotated"),
        compressed_table=sae_table(res, "compressed"),
        per_feature_name=first, per_feature=per_feature_table(res, first, "rotated", "gated"),
        quick=" (QUICK RUN: few steps, not the reference numbers)" if cfg["quick"] else "",
        key_numbers=key_numbers(res), compression_text=compression_text(res), sae_text=sae_text(res))
    md.parent.mkdir(parents=True, exist_ok=True)
    md.write_text(text)


def key_numbers(res: dict) -> str:
    """Bullet points computed from the run, so the prose never disagrees with the tables."""
    progs = res["programs"]
    lines = []
    for name, r in progs.items():
        se = r["smallest_exact"]
        lines.append(f"- `{name}`: d_model {r['d_model']}, active read rank {r.get('active_read_rank', 'n/a')}, "
                     f"smallest exact d' "
                     f"{se if se is not None else 'none'}"
                     + (f" ({se / r['d_model']:.0%} of d_model)" if se is not None else ""))
    rows = [row for r in progs.values() for row in r["sae"] if row["site"] == r_final(r)]
    default = [row for row in rows if row["default"]]

    def stat(rs, key, fn=np.nanmean):
        return float(fn([row[key] for row in rs])) if rs else float("nan")

    lines.append(f"- Over all {len(rows)} SAEs (every program, setting, kind and sparsity coefficient), the "
                 f"largest fraction of features recovered by direction (max cos >= 0.9) is "
                 f"{stat(rows, 'recovered', np.nanmax):.2f}; the mean is {stat(rows, 'recovered'):.3f}.")
    lines.append(f"- By activation (max correlation >= 0.9) the same SAEs recover {stat(rows, 'recovered_corr'):.2f} "
                 f"of the features on average (largest {stat(rows, 'recovered_corr', np.nanmax):.2f}).")
    for setting in SETTINGS:
        d = [row for row in default if row["setting"] == setting]
        lines.append(f"- {setting}, default coefficients: median NMSE {stat(d, 'nmse', np.nanmedian):.4f}, mean L0 "
                     f"{stat(d, 'l0'):.2f}, mean spliced accuracy {stat(d, 'spliced_accuracy'):.3f} "
                     f"(baseline {stat(d, 'baseline_accuracy'):.3f}).")
    return "\n".join(lines)


MD_TEMPLATE = """# Superposition and sparse autoencoders on compiled models{quick}

A compiled model knows what every residual dimension means (`tokens:a`, `indices:2`,
`hist:3`, `frac_prevs`, ...), so it is a ground truth for methods that try to find
features in activations. This page measures two things with it:

1. **Compression** (the superposition experiment of the tracr paper, section 5): how far
   the residual stream can be squeezed by a learned projection before the model stops
   being exact, and where the labelled features go when it is squeezed.
2. **Sparse autoencoders** (ReLU, Gated, JumpReLU) trained on residual activations in
   three settings: the plain model (features are basis vectors), a randomly rotated
   residual stream (features `Q e_i`, same geometry, no privileged basis) and the
   compressed model (features `W e_i`, now sharing dimensions). Do the SAEs' latents
   point along the compiler's features?

Code: `rasp_compiler/interp/superposition/` (`compress.py`, `sae.py`, `evaluate.py`,
`data.py`); this report is written by `benchmarks/sae_eval.py` (seed {seed},
{seconds:.0f} s on {machine}). Every number below comes from that run.

## Method

**Compressed model.** A matrix `W` of shape `(d', d_model)` is folded into the compiled
weights: `W_E W^T`, `W_pos W^T` (writes), `W W_Q`, `W W_K`, `W W_V`, `W W_in`, `W W_U`
(reads), `W_O W^T`, `W_out W^T`, `b_out W^T` (writes); everything else is unchanged.
The result is an ordinary `CompiledModel` of width `d'` (its residual really lives in
`R^d'`; every read sees `W^T W h`), so the usual forward pass, hooks and decoding apply.
`W` is trained with Adam ({compress_steps} steps, batches of 32 of {n_train} random
inputs, three learning rates 1e-3/3e-3/1e-2 trained side by side, warm-up then cosine
decay) on

* the output loss: cross-entropy of `10 * logits` against the evaluator's answer plus
  the squared error to the one-hot target (logits 0 where the answer is None), or the
  squared error over the target variance for a numerical output; plus
* the residual reconstruction loss `||W^T W h - h||^2` of the original model's residual
  at every layer (each layer's resid_pre and the final resid_post), every real position;
  its weight decays geometrically from 1 to 0.001 over training, so the reconstruction
  shapes `W` early and the output decides the end.

`W` starts from the principal directions of the part of the residual that the weights
read (the span of every QK and OV circuit, `W_in` and `W_U`), followed by read
directions that are never active and then the unread rest: a direction mixing read and
unread space would leak unread activity into what the model reads. Checkpoints (the
initialisation included) are compared on 512 training inputs and the most accurate one
is kept, so training never ends worse than it started. **Accuracy** is exact match per
sequence (`verify.same_value` against `rasp.evaluate`) on *every* input of length
1..max_seq_len (363 inputs for 3-token vocabularies, 1364 for `sort`).

**SAEs.** All three share a decoder `x_hat = f W_dec + b_dec` with unit-norm rows and
are trained with Adam (lr 3e-3, {sae_steps} steps, batches of 256 tokens) on the
residual at every non-BOS, non-PAD position of {n_train} random inputs, scaled so that
`E||x||^2 = d`; they are scored on every input. The dictionary has `d_model` latents
(as many as the model has labelled dimensions; in the compressed setting that is
`d_model / d'` times the width).

* ReLU: `f = ReLU((x - b_dec) W_enc + b_enc)`, penalty `lambda * sum f` (L1).
* Gated (Rajamanoharan et al. 2024): gate `pi = (x - b_dec) W_gate + b_gate`, magnitude
  path with the same weights rescaled per latent (`exp(r_mag) * W_gate`, own bias),
  `f = 1[pi > 0] * ReLU(magnitude)`; penalty `lambda * sum ReLU(pi)` plus an auxiliary
  reconstruction from `ReLU(pi)` through a stop-gradient copy of the decoder.
* JumpReLU (Rajamanoharan et al. 2024; Gemma Scope): `f = z * 1[z > theta]` with a
  learnable threshold per latent, penalty `lambda * L0`, trained with straight-through
  pseudo-derivatives for `theta` using a rectangle kernel (width 1.0 here: the
  activations of a compiled model are discrete, and with the usual narrow kernel
  almost no pre-activation ever falls near a threshold, so the thresholds never move).

Sparsity coefficients swept: {lambdas}; the tables use {defaults}.

**Scores** (features = labelled dimensions except `one` and `bos` that are non-zero at
the site): *mean max cos* = mean over features of the best cosine between the feature
direction and any decoder row; *recovered (cos)* = fraction with best cosine >= 0.9;
*mean max corr* / *recovered (corr)* = the same with the Pearson correlation between a
latent's activation and the feature's value over the tokens; *dead* = latents never
active on the evaluation tokens; *dense* = latents active on more than half of them;
*NMSE* = reconstruction MSE / total variance; *L0* = mean active latents per token;
*spliced acc* = exact-match rate of the model with the SAE's reconstruction replacing
the residual at the site (all positions but BOS), next to the model's own accuracy.

## Compression: accuracy against width

{compression_table}

"Features" counts the labelled dimensions other than `one` and `bos`; "read rank" is the
dimension of the space the weights read (QK and OV circuits, `W_in`, `W_U`); "active read
rank" is the dimension of the span of the residual vectors projected onto that space
(smaller: some read directions are never active, and categorical groups are linearly
dependent, e.g. the `tokens:*` dimensions sum to `one - bos`). Keeping that span exactly
is enough for exactness (the initialisation alone achieves it), so an exact width below
the active read rank means features genuinely share directions. The widths tried are a
grid over d_model plus the active read rank r, r-1 and r-2.

![accuracy vs d']({fig_compression})

## SAEs on the final residual stream

Mean over programs at the default coefficients:

{summary_table}

![features recovered vs L0]({fig_l0})

### Rotated residual stream (features `Q e_i`)

{rotated_table}

### Compressed residual stream (features `W e_i`, d' = smallest exact width)

{compressed_table}

### Plain residual stream (features `e_i`, sanity baseline)

{plain_table}

### Feature by feature: `{per_feature_name}`, rotated, Gated SAE

{per_feature}

The two scores can disagree in both directions: a latent can fire exactly when a
categorical value is present (correlation near 1) while its direction also carries a
vector shared with other features (cosine well below 0.9), and a numerical feature can
have a latent pointing along it whose activation, gated or thresholded, does not follow
its value linearly.

## What the numbers say

{key_numbers}

**Compression.** {compression_text}

**SAEs reconstruct well but do not find the compiler's directions.** {sae_text}

Why the directions are not recoverable, even in the plain setting:

* *Groups that are always on.* At every position exactly one `tokens:*` value, one
  `indices:*` value, one `length:*` value ... is 1. For two such groups `A` and `B`,
  `x = a_i + b_j` is equally well written as `(a_i + v) + (b_j - v)` for any vector `v`,
  with the same number of active latents; with unit-norm decoder rows an L1 penalty
  even prefers a `v` that shrinks the codes. And with a decoder bias, one member of
  each group (and the constant `one`) can be folded into `b_dec`, leaving latents
  `a_i - a_k` at cosine 0.71 with `a_i`. The compiler's basis is one of many equally
  sparse decompositions of these activations, so no sparsity objective can single it
  out. The correlation score is blind to these shifts (a latent that fires exactly
  when `tokens:a` is present correlates 1.0 with it whatever its direction), and it is
  indeed much higher.
* *Values that are functions of other values.* `opp_idx = length - indices - 1`, the
  sorted target position depends on the tokens, `hist` on the token and the input: the
  residual has far fewer distinct vectors than the product of its features' values, and
  a latent per frequent *combination* costs less L0 than one latent per feature
  (feature absorption). With enough latents an SAE becomes a codebook (L0 near 1).
* *Compressed settings add interference*: feature directions `W e_i` are no longer
  orthogonal, and in few dimensions even random directions have high cosines, so the
  cosine scores of the compressed setting are not comparable with the others
  (correlation scores are).

Splicing is a harsher test than NMSE: attention scores in compiled models are scaled by
up to a few hundred and MLPs have steep slopes, so a reconstruction error of a percent
of the variance can flip an attention pattern or an MLP bucket. Numerical outputs
(`frac_prevs`, `pair_balance`) must land within half a gap of the right value and are the
first to break.

## Reproduce

```
.venv/bin/python benchmarks/sae_eval.py                 # this page (about 10 minutes on 2 cores)
.venv/bin/python benchmarks/sae_eval.py --quick         # smoke run, prints tables only
.venv/bin/python benchmarks/sae_eval.py --sites all     # every layer's resid_pre too (slower)
.venv/bin/python benchmarks/sae_eval.py --json run.json # keep every number, per feature too
.venv/bin/python benchmarks/sae_eval.py --from-json run.json  # rewrite this page from a saved run
```

```python
from rasp_compiler.interp import superposition as sp
sweep = sp.compression_sweep(model, program, dims=[12, 16, 20], log=print)
result = sweep.result(sweep.smallest_exact)          # .W, .model (runnable), .accuracy
setting = sp.compressed_setting(result)              # or sp.rotated_setting(model), sp.plain_setting(model)
train, test = sp.random_data(model, program, 2048, seed=1), sp.eval_data(model, program)
site = sp.residual_sites(model)[-1]
for sae, scores in sp.sae_experiment(setting, site, train, test, sp.SAEConfig(kind="jumprelu", n_latents=30),
                                     sparsities=[0.1, 0.3, 1.0]):
    print(scores.row())
```

## Limits

* One seed, one site per program (the final residual) and small dictionaries; the
  `--sites all` option covers every layer but is not part of the timed run.
* Compression training is short and its loss landscape is very sharp (attention scales
  in the hundreds): accuracy against d' is not monotone, and widths below the reported
  smallest exact one may well admit exact solutions that this training does not find.
* The SAE scores use the compiler's basis as the truth; the discussion above explains
  why that basis is not identifiable from activations for categorical features, so low
  cosine scores say as much about the benchmark as about the SAEs.
"""


def compression_text(res: dict) -> str:
    progs = res["programs"]
    names = lambda ns: ", ".join(f"`{n}`" for n in ns) or "none"  # noqa: E731
    below = [n for n, r in progs.items() if r["smallest_exact"] is not None and r["smallest_exact"] < r["d_model"]]
    rank = {n: r.get("active_read_rank", r["read_rank"]) for n, r in progs.items()}
    under = [n for n, r in progs.items() if r["smallest_exact"] is not None and r["smallest_exact"] < rank[n]]
    at = [n for n, r in progs.items() if r["smallest_exact"] is not None and r["smallest_exact"] == rank[n]]
    floor = [n for n in under if progs[n]["smallest_exact"] == min(int(d) for d in progs[n]["compression"])]
    text = (f"{len(below)} of {len(progs)} programs stay exact below their full width ({names(below)}): "
            "dimensions that nothing reads, that are never active, or that are linear combinations of others "
            "(the active read rank) come for free. ")
    if at:
        text += f"For {names(at)} the smallest exact width found is exactly the active read rank. "
    if under:
        text += (f"{names(under)} stayed exact below it: there training found genuinely superposed "
                 "solutions, read features sharing directions without changing any output")
        if floor:
            text += f" ({names(floor)} down to the smallest width tried, so the true limit may be lower)"
        text += ". "
    rest = [n for n in progs if n not in under and n not in at]
    if rest:
        text += f"For {names(rest)} the smallest exact width is above the active read rank (see the table). "
    text += ("Below the smallest exact width accuracy drops steeply rather than degrading gently, and it is "
             "not monotone in d': the compiled attention and MLPs separate values with large gains, so "
             "interference between read features is amplified into wrong attention patterns or MLP buckets, "
             "and the short training from one initialisation finds a solution at one width and misses it at "
             "the next.")
    return text


def sae_text(res: dict) -> str:
    rows = [row for r in res["programs"].values() for row in r["sae"] if row["default"] and row["site"] == r_final(r)]
    nmse = float(np.nanmedian([row["nmse"] for row in rows]))
    chance = float(np.nanmean([v for r in res["programs"].values() for v in r.get("random_cos", {}).values()]))
    cos = float(np.nanmean([row["mean_max_cos"] for row in rows]))
    corr = float(np.nanmean([row["mean_max_corr"] for row in rows]))
    return (f"At the default coefficients the median NMSE is {nmse:.4f}, yet the best cosine between a "
            f"feature and any decoder row averages only {cos:.2f} (a dictionary of as many random directions "
            f"scores {chance:.2f} on average), while the best activation correlation averages {corr:.2f}. "
            "No architecture escapes this; they differ mostly in the L0 they need for a given error and in "
            "dead latents (mean dead fraction at the default coefficients: "
            + ", ".join(f"{k} {np.nanmean([row['dead'] for row in rows if row['kind'] == k]):.2f}"
                        for k in sp.SAE_KINDS) + ").")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="few programs and steps; prints only unless --md is given")
    ap.add_argument("--programs", help=f"comma-separated LIBRARY names (default {','.join(PROGRAMS)})")
    ap.add_argument("--sites", choices=("final", "all"), default="final",
                    help="final residual only, or resid_pre of every layer plus the final residual")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-train", type=int, default=2048, help="random training inputs per program")
    ap.add_argument("--compress-steps", type=int)
    ap.add_argument("--sae-steps", type=int)
    ap.add_argument("--md", type=Path, help="markdown report (default docs/superposition.md unless --quick)")
    ap.add_argument("--figdir", type=Path, default=ROOT / "docs" / "figures")
    ap.add_argument("--json", type=Path, help="also dump every number as JSON")
    ap.add_argument("--from-json", type=Path, help="rewrite the report from a saved --json run, training nothing")
    args = ap.parse_args(argv)
    if args.from_json:
        res = json.loads(args.from_json.read_text())
        args.quick = res["config"]["quick"]
    else:
        res = run(args)
        say(f"done in {res['seconds']:.0f} s")
    print()
    print(compression_table(res))
    print()
    print(summary_table(res))
    for setting in SETTINGS:
        print(f"\n{setting}:")
        print(sae_table(res, setting))
    if args.json:
        args.json.write_text(json.dumps(res, indent=1, default=float))
    md = args.md or (None if args.quick else ROOT / "docs" / "superposition.md")
    if md is not None:
        args.figdir.mkdir(parents=True, exist_ok=True)
        plot_compression(res, args.figdir / "superposition_compression.png")
        plot_l0(res, args.figdir / "superposition_l0.png")
        write_markdown(res, md, args.figdir)
        say(f"wrote {md} and figures in {args.figdir}")


if __name__ == "__main__":
    main()
