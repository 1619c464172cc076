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
from rasp_compiler.interp.superposition import truth_loss  # noqa: E402
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
    programs = ([] if args.programs == "none" else args.programs.split(",")) if args.programs \
        else (PROGRAMS[:3] if quick else PROGRAMS)
    seeds = [int(x) for x in args.seeds.split(",")]
    out: dict = {"config": {"quick": quick, "seeds": seeds, "base_seed": args.base_seed, "compress_steps": comp_steps,
                            "sae_steps": sae_steps, "lambdas": lambdas, "sites": args.sites,
                            "n_train": args.n_train, "programs": programs,
                            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs"},
                 "planted": [] if args.no_planted else planted_experiment(seeds, sae_steps, quick), "programs": {}}
    for name in programs:
        entry = LIBRARY[name]
        program = entry.build()
        model = compile_rasp_to_model(program, set(entry.vocab), entry.max_seq_len)
        D = model.config.d_model
        feats = sp.feature_indices(model.labels.residual)
        read_rank = sp.read_basis(model.params).shape[1]
        train = sp.random_data(model, program, args.n_train, seed=args.base_seed)
        test = sp.eval_data(model, program)
        active_rank = sp.active_read_rank(model, train)
        say(f"{name}: d_model={D}, {len(feats)} labelled features, read-space rank {read_rank} "
            f"(active {active_rank}), {model.config.n_layers} layers")

        # 1. compression sweep (base seed only) ------------------------------------------
        dims = compression_dims(D, active_rank, quick)
        sweep = sp.compression_sweep(model, program, dims, steps=comp_steps, seed=args.base_seed, train_data=train,
                                     eval_data=test, log=say)
        chosen = choose_compressed(sweep)
        say(f"{name}: smallest exact d' = {sweep.smallest_exact}; SAEs use d'={chosen.config.d_compressed} "
            f"(accuracy {chosen.accuracy:.3f})")
        rec = {"d_model": D, "n_features": len(feats), "read_rank": read_rank, "active_read_rank": active_rank,
               "n_layers": model.config.n_layers,
               "n_eval": len(test), "compression": {str(r.config.d_compressed): r.accuracy for r in sweep.results},
               "smallest_exact": sweep.smallest_exact, "sae_d": chosen.config.d_compressed,
               "sae_d_accuracy": chosen.accuracy, "sae": [], "chance": []}

        # 2. the truth at the final site -------------------------------------------------
        final = sp.residual_sites(model)[-1]
        final_feats = sp.site_features(model, test, final)
        truth = sp.feature_truth(model, final_feats)
        h_final = sp.site_activations(model, test, final)
        rec["truth"] = {"groups": [{"name": g.name, "role": g.role, "sources": list(g.sources),
                                    "n_dims": len(g.dims), "n_units": len(g.units()), "merged": list(g.merged)}
                                   for g in truth.groups],
                        "violations": sp.functional_violations(truth, h_final)}

        # 3. SAEs, every seed ---------------------------------------------------------------
        sites = sp.residual_sites(model) if args.sites == "all" else [final]
        one = model.labels.residual.index("one")
        for seed in seeds:
            settings = {"plain": sp.plain_setting(model), "rotated": sp.rotated_setting(model, seed=seed),
                        "compressed": sp.compressed_setting(chosen)}
            for sname in SETTINGS:
                rec["chance"].append({"setting": sname, "seed": seed,
                                      **random_dictionary_scores(settings[sname], test, final, truth, D, seed)})
            for site in sites:
                site_feats = sp.site_features(model, test, site)
                site_truth = sp.feature_truth(model, site_feats)
                h = sp.site_activations(model, test, site)
                for sname in SETTINGS:
                    setting = settings[sname]
                    acts = sp.site_activations(setting.model, test, site)
                    onehot = truth_loss.onehot_dictionary(setting.W, h, site_feats, one)
                    grouped = truth_loss.group_dictionary(setting.W, h, site_truth, one)
                    for kind in sp.SAE_KINDS:
                        cfg = sp.SAEConfig(kind=kind, n_latents=D, steps=sae_steps, seed=seed)
                        results = sp.sae_experiment(setting, site, train, test, cfg, lambdas[kind])
                        for sae, s in results:
                            row = {**s.row(), "seed": seed, "default": s.sparsity == sp.DEFAULT_SPARSITY[kind],
                                   "per_feature": s.per_feature, "per_feature_corr": s.per_feature_corr,
                                   "per_unit": s.per_unit, "per_group": s.per_group}
                            if row["default"]:
                                row["loss"] = {"trained": truth_loss.sae_objective(sae, acts)}
                                for dic in (onehot, grouped):
                                    row["loss"][dic.name] = truth_loss.truth_objective(dic, acts, kind, sae.sparsity,
                                                                                        sae.scale)
                                    row["loss"][dic.name + " best"] = truth_loss.best_codes_objective(
                                        dic, acts, kind, sae.sparsity, sae.scale)
                            rec["sae"].append(row)
                        best = next((s for _, s in results if s.sparsity == sp.DEFAULT_SPARSITY[kind]),
                                    results[0][1])
                        say(f"  {name} seed {seed} {sname:10s} {site} {kind:8s} lambda={best.sparsity:g}: "
                            f"cos {best.mean_max_cos:.3f} units {best.units_recovered:.2f} "
                            f"capture {best.group_capture:.2f} corr {best.mean_max_corr:.3f} L0 {best.l0:.2f} "
                            f"nmse {best.nmse:.4f} spliced acc {best.spliced_accuracy:.3f}")
        out["programs"][name] = rec
    out["seconds"] = time.perf_counter() - T0
    return out


PLANTED = {"n": 4000, "d": 16, "k": 12, "p": 0.1, "n_latents": 24}


def planted_experiment(seeds: list[int], steps: int, quick: bool) -> list[dict]:
    """Planted independent sparse features (known directions): every kind over its coefficient
    sweep, every seed, with the truth dictionary's loss beside the trained SAE's."""
    rows = []
    lams = {"relu": [0.3, 1.0, 3.0], "gated": [1.0, 4.0, 10.0], "jumprelu": [0.3, 1.0, 3.0]}
    c = PLANTED
    truth = sp.planted_truth(c["k"])
    for seed in seeds:
        x, W, codes = sp.planted_features(c["n"], c["d"], c["k"], c["p"], seed=seed)
        dic = truth_loss.TruthDictionary("planted", W.T.astype(np.float64), codes.astype(np.float64),
                                         np.zeros(c["d"]))
        for kind in sp.SAE_KINDS:
            cfg = sp.SAEConfig(kind=kind, n_latents=c["n_latents"], steps=max(steps, 1000), seed=seed)
            for sae in sp.train_saes(x, cfg, lams[kind]):
                f = sae.encode(x)
                g = sp.score_groups(sae.decoder, f, W, codes, truth).summary()
                cos = sp.max_cosines(sae.decoder, W.T)
                rows.append({"seed": seed, "kind": kind, "sparsity": sae.sparsity, "mean_max_cos": float(cos.mean()),
                             "recovered": float((cos >= 0.9).mean()), **g, "l0": float((f > 0).sum(1).mean()),
                             "loss_trained": truth_loss.sae_objective(sae, x)["total"],
                             "loss_truth": truth_loss.truth_objective(dic, x, kind, sae.sparsity, sae.scale)["total"],
                             "loss_truth_best": truth_loss.best_codes_objective(dic, x, kind, sae.sparsity,
                                                                                sae.scale)["total"]})
        say(f"planted seed {seed}: " + ", ".join(f"{r['kind']} {r['sparsity']:g}: units {r['units_recovered']:.2f}"
                                                 for r in rows if r["seed"] == seed))
    return rows


def random_dictionary_scores(setting: sp.Setting, data, site: str, truth, n_latents: int, seed: int) -> dict:
    """Chance level: a dictionary of random directions with encoder = decoder^T (ReLU)."""
    rng = np.random.default_rng(1000 + seed)
    d = setting.W.shape[0]
    rand = sp.SAE.from_decoder(rng.standard_normal((n_latents, d)))
    acts = sp.site_activations(setting.model, data, site)
    h = sp.site_activations(setting.original, data, site)
    feats = sp.site_features(setting.original, data, site)
    g = sp.score_groups(rand.decoder, rand.encode(acts), setting.W, h, truth)
    return {"mean_max_cos": float(sp.max_cosines(rand.decoder, setting.feature_directions(feats)).mean()),
            **g.summary()}


# ----------------------------------------------------------------------------- report helpers
def _f(x, nd=3):
    return "n/a" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.{nd}f}"


def _ms(values, nd=2) -> str:
    """mean ± std (over seeds) of a list of numbers, NaNs dropped."""
    v = np.asarray([x for x in values if x is not None and not np.isnan(x)], float)
    if not len(v):
        return "n/a"
    return f"{v.mean():.{nd}f} ± {v.std():.{nd}f}" if len(v) > 1 else f"{v.mean():.{nd}f}"


def r_final(r: dict) -> str:
    return f"blocks.{r['n_layers'] - 1}.hook_resid_post"


def final_rows(res: dict, setting=None, kind=None, default=True, program=None) -> list[dict]:
    """SAE rows at each program's final site, filtered."""
    return [row for name, r in res["programs"].items() for row in r["sae"]
            if row["site"] == r_final(r) and (program is None or name == program)
            and (setting is None or row["setting"] == setting) and (kind is None or row["kind"] == kind)
            and (not default or row["default"])]


def seed_stat(rows: list[dict], key, nd=2) -> str:
    """Mean over the rows of each seed (programs, ...), then mean ± std over seeds."""
    get = key if callable(key) else (lambda row: row[key])
    seeds = sorted({row["seed"] for row in rows})
    return _ms([np.nanmean([get(row) for row in rows if row["seed"] == s]) for s in seeds], nd)


SCORE_COLUMNS = [("mean_max_cos", "mean max cos", 3), ("recovered", "recovered (cos)", 2),
                 ("units_recovered", "units recovered (independent)", 2), ("group_capture", "group capture", 2),
                 ("groups_captured", "groups captured", 2), ("interaction_recovered", "interaction units", 2),
                 ("mean_max_corr", "mean max corr", 3), ("dead", "dead", 2), ("nmse", "NMSE", 4), ("l0", "L0", 2),
                 ("spliced_accuracy", "spliced acc", 3)]


def compression_table(res: dict) -> str:
    lines = ["| program | d_model | features | read rank | active read rank | accuracy by d' | smallest exact d' |",
             "|---|---|---|---|---|---|---|"]
    for name, r in res["programs"].items():
        accs = ", ".join(f"{d}: {a:.3f}" for d, a in sorted(r["compression"].items(), key=lambda kv: int(kv[0])))
        lines.append(f"| {name} | {r['d_model']} | {r['n_features']} | {r['read_rank']} | "
                     f"{r.get('active_read_rank', 'n/a')} | {accs} | "
                     f"{r['smallest_exact'] if r['smallest_exact'] is not None else 'none'} |")
    return "\n".join(lines)


def truth_table(res: dict) -> str:
    lines = ["| program | independent groups (units) | interaction groups (sources) | derived, merged into | "
             "derived values that are not a function of their sources |", "|---|---|---|---|---|"]
    for name, r in res["programs"].items():
        gs = r["truth"]["groups"]
        ind = ", ".join(f"`{g['name']}` ({g['n_units']})" for g in gs if g["role"] == "independent")
        inter = ", ".join(f"`{g['name']}` ({'+'.join(g['sources'])})" for g in gs if g["role"] == "interaction")
        der = ", ".join(f"`{g['name']}` -> `{g['sources'][0]}`" for g in gs if g["role"] == "derived")
        viol = r["truth"]["violations"]
        lines.append(f"| {name} | {ind} | {inter or '-'} | {der or '-'} | "
                     f"{sum(viol.values()) if viol else '-'} |")
    return "\n".join(lines)


def summary_table(res: dict) -> str:
    """Mean over programs (final site, default lambda) per setting and kind; mean ± std over seeds."""
    cols = SCORE_COLUMNS
    lines = ["| setting | kind | " + " | ".join(c[1] for c in cols) + " |", "|---|---|" + "---|" * len(cols)]
    for setting in SETTINGS:
        chance = [c for r in res["programs"].values() for c in r["chance"] if c["setting"] == setting]
        lines.append(f"| {setting} | *random dictionary* | " + " | ".join(
            seed_stat(chance, k, nd) if k in ("mean_max_cos", "units_recovered", "group_capture", "groups_captured")
            else "" for k, _, nd in cols) + " |")
        for kind in sp.SAE_KINDS:
            rows = final_rows(res, setting, kind)
            if rows:
                lines.append(f"| {setting} | {kind} | " + " | ".join(seed_stat(rows, k, nd) for k, _, nd in cols)
                             + " |")
    return "\n".join(lines)


def sae_table(res: dict, setting: str) -> str:
    cols = [c for c in SCORE_COLUMNS if c[0] not in ("groups_captured",)]
    lines = ["| program | d | kind | lambda | " + " | ".join(c[1] for c in cols) + " | baseline acc |",
             "|---|---|---|---|" + "---|" * (len(cols) + 1)]
    for name, r in res["programs"].items():
        d = r["sae_d"] if setting == "compressed" else r["d_model"]
        for kind in sp.SAE_KINDS:
            rows = final_rows(res, setting, kind, program=name)
            if rows:
                lines.append(f"| {name} | {d} | {kind} | {rows[0]['sparsity']:g} | "
                             + " | ".join(seed_stat(rows, k, nd) for k, _, nd in cols)
                             + f" | {_f(rows[0]['baseline_accuracy'])} |")
    return "\n".join(lines)


def loss_counts(rows: list[dict], truth: str) -> tuple[int, int]:
    rows = [row for row in rows if "loss" in row]
    return sum(row["loss"][truth]["total"] > row["loss"]["trained"]["total"] for row in rows), len(rows)


def loss_table(res: dict) -> str:
    """The anomaly: truth dictionaries' SAE loss against the trained SAE's, per setting and kind."""
    truths = [("one-hot", "one-hot, exact codes"), ("one-hot best", "one-hot, best codes"),
              ("groups", "groups, exact codes"), ("groups best", "groups, best codes")]
    lines = ["| setting | kind | " + " | ".join(f"{label}: loss > trained" for _, label in truths)
             + " | loss: trained | one-hot best | groups best | L0: trained | one-hot | groups | "
             "penalty (L1 or L0): trained | groups best | trained NMSE |",
             "|---|---|" + "---|" * (len(truths) + 9)]
    for setting in SETTINGS:
        for kind in sp.SAE_KINDS:
            rows = [row for row in final_rows(res, setting, kind) if "loss" in row]
            if not rows:
                continue
            cells = ["{}/{}".format(*loss_counts(rows, t)) for t, _ in truths]
            cells += [seed_stat(rows, lambda row, t=t: row["loss"][t]["total"], 2)
                      for t in ("trained", "one-hot best", "groups best")]
            cells += [seed_stat(rows, lambda row, t=t: row["loss"][t]["l0"], 2)
                      for t in ("trained", "one-hot", "groups")]
            cells += [seed_stat(rows, lambda row, t=t: row["loss"][t]["sparsity"], 2)
                      for t in ("trained", "groups best")]
            cells.append(seed_stat(rows, "nmse", 4))
            lines.append(f"| {setting} | {kind} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def planted_table(res: dict) -> str:
    rows = res["planted"]
    lines = ["| kind | lambda | mean max cos | recovered (cos) | units recovered | group capture | L0 (truth: "
             f"{PLANTED['k'] * PLANTED['p']:.1f}) | truth loss > trained: exact codes | best codes |",
             "|---|---|---|---|---|---|---|---|---|"]
    for kind in sp.SAE_KINDS:
        for lam in sorted({r["sparsity"] for r in rows if r["kind"] == kind}):
            rs = [r for r in rows if r["kind"] == kind and r["sparsity"] == lam]
            worse = sum(r["loss_truth"] > r["loss_trained"] for r in rs)
            worse_best = sum(r["loss_truth_best"] > r["loss_trained"] for r in rs)
            lines.append(f"| {kind} | {lam:g} | " + " | ".join(
                _ms([r[k] for r in rs], 3 if k == "mean_max_cos" else 2)
                for k in ("mean_max_cos", "recovered", "units_recovered", "group_capture", "l0"))
                         + f" | {worse}/{len(rs)} | {worse_best}/{len(rs)} |")
    return "\n".join(lines)


def per_unit_table(res: dict, name: str, setting: str, kind: str) -> str:
    r = res["programs"][name]
    rows = final_rows(res, setting, kind, program=name)
    roles = {g["name"]: g["role"] for g in r["truth"]["groups"]}
    units = list(rows[0]["per_unit"])
    lines = ["| unit | group (role) | best F1 / corr of a latent in the group's span | group capture |",
             "|---|---|---|---|"]
    for u in units:
        group = next(g for g in roles if u == g or u.startswith(g + ":"))
        lines.append(f"| `{u}` | `{group}` ({roles[group]}) | {_ms([row['per_unit'][u] for row in rows])} | "
                     f"{_ms([row['per_group'][group] for row in rows])} |")
    return "\n".join(lines)


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
    metrics = [("recovered", "single directions recovered\n(max cos >= 0.9)"),
               ("units_recovered", "independent units recovered\n(in group span, F1/corr >= 0.9)"),
               ("group_capture", "independent group capture"),
               ("nmse", "NMSE (log scale)")]
    fig, axes = plt.subplots(len(metrics), 3, figsize=(13, 12), sharex=True)
    for col, setting in enumerate(SETTINGS):
        for kind in sp.SAE_KINDS:
            rows = final_rows(res, setting, kind, default=False)
            lams = sorted({row["sparsity"] for row in rows})
            for i, (metric, label) in enumerate(metrics):
                ax = axes[i, col]
                xs = [np.mean([row["l0"] for row in rows if row["sparsity"] == lam]) for lam in lams]
                ys = [np.nanmean([row[metric] for row in rows if row["sparsity"] == lam]) for lam in lams]
                ax.scatter([row["l0"] for row in rows], [row[metric] for row in rows], s=6, alpha=0.2,
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
                 "(line: mean over programs and seeds per coefficient; dots: single program and seed; "
                 "L0 < 0.3 and NMSE < 1e-5 clipped)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_markdown(res: dict, md: Path, figdir: Path) -> None:
    rel = os.path.relpath(figdir, md.parent)
    cfg = res["config"]
    first = "reverse" if "reverse" in res["programs"] else next(iter(res["programs"]))
    text = MD_TEMPLATE.format(
        seconds=res["seconds"], machine=cfg["machine"], seeds=", ".join(map(str, cfg["seeds"])),
        base_seed=cfg.get("base_seed", 0), programs_note=programs_note(res),
        n_seeds=len(cfg["seeds"]), compress_steps=cfg["compress_steps"],
        sae_steps=cfg["sae_steps"], n_train=cfg["n_train"],
        lambdas=", ".join(f"{k}: {v}" for k, v in cfg["lambdas"].items()),
        defaults=", ".join(f"{k} {v:g}" for k, v in sp.DEFAULT_SPARSITY.items()),
        compression_table=compression_table(res), fig_compression=f"{rel}/superposition_compression.png",
        fig_l0=f"{rel}/superposition_l0.png", summary_table=summary_table(res), truth_table=truth_table(res),
        plain_table=sae_table(res, "plain"), rotated_table=sae_table(res, "rotated"),
        compressed_table=sae_table(res, "compressed"), loss_table=loss_table(res),
        planted_table=planted_table(res), planted=PLANTED, loss_text=loss_text(res),
        per_feature_name=first, per_feature=per_unit_table(res, first, "rotated", "gated"),
        saelens=saelens_status(),
        quick=" (QUICK RUN: few steps, not the reference numbers)" if cfg["quick"] else "",
        key_numbers=key_numbers(res), compression_text=compression_text(res), sae_text=sae_text(res))
    md.parent.mkdir(parents=True, exist_ok=True)
    tmp = md.with_suffix(".md.tmp")
    tmp.write_text(text)
    tmp.replace(md)


def programs_note(res: dict) -> str:
    missing = [p for p in PROGRAMS if p not in res["programs"]]
    if not missing:
        return ""
    return ("\n**Programs in this run:** " + ", ".join(f"`{p}`" for p in res["programs"]) + ". "
            + ", ".join(f"`{p}`" for p in missing) + " were not finished for this page: the run shared two "
            "cores with seven other jobs and was stopped at the session's deadline. The commands under "
            "*Reproduce* include them.\n")


def saelens_status() -> str:
    from rasp_compiler.interp.superposition import saelens
    return saelens.status()


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
    rows = final_rows(res, default=False)

    def stat(rs, key, fn=np.nanmean):
        return float(fn([row[key] for row in rs])) if rs else float("nan")

    lines.append(f"- Over all {len(rows)} SAEs (every program, setting, kind, sparsity coefficient and seed), the "
                 f"largest fraction of single one-hot directions recovered (max cos >= 0.9) is "
                 f"{stat(rows, 'recovered', np.nanmax):.2f} (mean {stat(rows, 'recovered'):.3f}); the largest "
                 f"fraction of independent units recovered is {stat(rows, 'units_recovered', np.nanmax):.2f} "
                 f"(mean {stat(rows, 'units_recovered'):.3f}), and the mean group capture is "
                 f"{stat(rows, 'group_capture'):.2f} (largest {stat(rows, 'group_capture', np.nanmax):.2f}).")
    for setting in SETTINGS:
        d = final_rows(res, setting)
        lines.append(f"- {setting}, default coefficients: median NMSE {stat(d, 'nmse', np.nanmedian):.4f}, mean L0 "
                     f"{stat(d, 'l0'):.2f}, mean spliced accuracy {stat(d, 'spliced_accuracy'):.3f} "
                     f"(baseline {stat(d, 'baseline_accuracy'):.3f}).")
    return "\n".join(lines)


def loss_text(res: dict) -> str:
    rows = [row for row in final_rows(res) if "loss" in row]
    counts = {t: loss_counts(rows, t) for t in ("one-hot", "one-hot best", "groups", "groups best")}
    n = len(rows)
    by_kind = {k: loss_counts([r for r in rows if r["kind"] == k], "groups best") for k in sp.SAE_KINDS}
    pl = res["planted"]
    pl_exact = sum(r["loss_truth"] > r["loss_trained"] for r in pl)
    pl_best = sum(r["loss_truth_best"] > r["loss_trained"] for r in pl)
    return (f"Measured again over {n} configurations (program x setting x kind x seed, default coefficients), "
            "the truth dictionary's loss is higher than the trained SAE's in: "
            f"one-hot with exact codes **{counts['one-hot'][0]}/{n}**, one-hot with the best codes "
            f"**{counts['one-hot best'][0]}/{n}**, groups with exact codes **{counts['groups'][0]}/{n}**, groups "
            f"with the best codes **{counts['groups best'][0]}/{n}** ("
            + ", ".join(f"{k} {a}/{b}" for k, (a, b) in by_kind.items()) + "). "
            f"On planted independent features (every kind, coefficient and seed, {len(pl)} runs) the truth with "
            f"exact codes loses to the trained SAE in {pl_exact}/{len(pl)} runs, the truth with the best codes in "
            f"{pl_best}/{len(pl)}. Reading the compiled-model counts as steps: pricing the codes fairly "
            f"(one-hot exact -> best) moves {counts['one-hot'][0]} -> {counts['one-hot best'][0]}; replacing the "
            f"one-hot truth by the groups (best codes) moves it to {counts['groups best'][0]}; what is left is "
            "where the objective prefers another dictionary to the group truth.")


def sae_text(res: dict) -> str:
    rows = final_rows(res)
    nmse = float(np.nanmedian([row["nmse"] for row in rows]))
    chance = [c for r in res["programs"].values() for c in r["chance"]]
    cos = float(np.nanmean([row["mean_max_cos"] for row in rows]))
    units = float(np.nanmean([row["units_recovered"] for row in rows]))
    cap = float(np.nanmean([row["group_capture"] for row in rows]))
    return (f"At the default coefficients the median NMSE is {nmse:.4f}. The best cosine between a one-hot "
            f"feature direction and any decoder row averages {cos:.2f} (a dictionary of as many random "
            f"directions: {np.nanmean([c['mean_max_cos'] for c in chance]):.2f}). Against the group truth the "
            f"SAEs recover {units:.2f} of the independent units on average (random dictionary "
            f"{np.nanmean([c['units_recovered'] for c in chance]):.2f}) and their in-group latents span "
            f"{cap:.2f} of the groups' varying subspaces "
            f"(random {np.nanmean([c['group_capture'] for c in chance]):.2f}). "
            "Dead latents at the default coefficients: "
            + ", ".join(f"{k} {np.nanmean([row['dead'] for row in rows if row['kind'] == k]):.2f}"
                        for k in sp.SAE_KINDS) + ".")


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
   compressed model (features `W e_i`, now sharing dimensions), scored against two
   truths: single one-hot directions, and **feature groups** derived from the program
   graph (below), which is what an SAE can actually be asked to find.

Code: `rasp_compiler/interp/superposition/` (`compress.py`, `sae.py`, `truth.py`,
`groups.py`, `truth_loss.py`, `evaluate.py`, `saelens.py`, `data.py`); this page is
written by `benchmarks/sae_eval.py` (seeds {seeds}; {seconds:.0f} s wall for the longest process, on {machine}).
{programs_note}
Every number below comes from that run; "a ± b" is the mean ± standard deviation over
the {n_seeds} seeds of the mean over programs (or of the single program in per-program
tables).

## The truth: feature groups, not one-hot directions

Scoring an SAE against every labelled dimension as an independent feature asks for
something no dictionary learner can produce:

* **A categorical SOp is a group.** Its one-hot dimensions are mutually exclusive and
  span a subspace in which one direction is on at a time; when the SOp is always defined,
  one value is a linear function of the others (`tokens:c = one - bos - tokens:a -
  tokens:b`) and can be folded into a decoder bias, leaving latents such as
  `tokens:a - tokens:c` (cosine 0.71 with `tokens:a`). What is identifiable is the
  group's *varying subspace* (the span of its centred activations) and, per value, a
  latent that lies in the group's span and fires exactly for that value.
* **A value that is a function of other values at the same position is not an
  independent feature.** We derive this from the compiled program graph: `tokens` and
  `indices` are inputs, and attention nodes (`Aggregate`, `SelectorWidth`) bring in
  information from other positions, so these are **independent**. Position-wise nodes
  (`Map`, `SequenceMap`, `LinearSequenceMap`, and the compiler's product spaces) are
  functions of their inputs at the same position; following their inputs (through
  virtual nodes, which have no dimensions) gives each one's *sources*. A node with one
  source is **derived** and its dimensions join that source's span (`Map(f, tokens)` always
  moves with `tokens`, so "tokens is a" is the direction `tokens:a + map:f(a)`); a node
  with two or more sources is an **interaction** (`opp_idx = length - indices - 1`): it is
  needed to reconstruct the residual but it is not independent, so it is scored
  separately and left out of the headline scores. Constants are dropped.

The graph rule is checked on the data: for every derived and interaction group, the
number of source-value combinations (at one position, over every evaluation input) that
map to more than one value of the group must be 0 (last column; tests check it too, and
check that a scrambled group fails it). An `Aggregate` that happens to compute a
position-wise function (e.g. selecting only its own position) would still be counted as
independent: the rule is structural.

{truth_table}

**Scores against the groups** (`groups.py`), for the independent groups:

* *units recovered*: a unit is a categorical value or a numerical feature. It is recovered
  when some latent has a decoder direction in the group's span (its projection onto
  `span(W e_i, i in group)` keeps >= 0.9 of its norm) and an activation that follows the
  unit: F1 >= 0.9 between "latent fires" (above 1e-3 of its largest activation: compiled
  attention leaks ~1e-6) and "the SOp has this value", or Pearson correlation >= 0.9 with
  the number. `tokens:a - tokens:c` firing for `a` recovers `tokens:a`;
  `tokens:a + indices:0` (a combination) recovers nothing.
* *group capture*: the fraction of the group's varying subspace (mapped by `W`; rank
  k-1 for an always-defined k-valued SOp) inside the span of the latents that lie in the
  group's span, `||P_latents U||_F^2 / rank`; *groups captured*: capture >= 0.9.
* *interaction units*: units recovered for interaction groups (not in the headline).

The single-direction scores are kept: *mean max cos* (best cosine between a one-hot
direction and any decoder row), *recovered (cos)* (>= 0.9), *mean max corr* (best
correlation of a latent's activation with a dimension's value).

## Sanity check: planted independent features

{planted[k]} independent features with random unit directions in {planted[d]} dimensions
(not orthogonal), each on with probability {planted[p]} at each of {planted[n]} tokens with
a magnitude uniform in [0.5, 1.5]; dictionaries of {planted[n_latents]} latents, the same
training code and scorer as below. The test suite trains one SAE of each kind on this
data and requires mean max cos >= 0.95, units recovered >= 0.9 and group capture >= 0.9
(`tests/test_superposition.py::test_every_sae_kind_recovers_planted_independent_features`).

{planted_table}

Every kind recovers all planted features at a suitable coefficient, so the SAEs are not
broken; the coefficient matters (too small: features split across latents, too large:
features merge or die).

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
directions that are never active and then the unread rest. Checkpoints (the
initialisation included) are compared on 512 training inputs and the most accurate one
is kept. **Accuracy** is exact match per sequence (`verify.same_value` against
`rasp.evaluate`) on *every* input of length 1..max_seq_len (363 inputs for 3-token
vocabularies, 1364 for `sort`). Compression is trained once (seed {base_seed}).

**SAEs.** All three share a decoder `x_hat = f W_dec + b_dec` with unit-norm rows and
are trained with Adam (lr 3e-3, {sae_steps} steps, batches of 256 tokens) on the
residual at every non-BOS, non-PAD position of {n_train} random inputs, scaled so that
`E||x||^2 = d`; they are scored on every input. The dictionary has `d_model` latents.
The seed sets the SAE's initialisation and batches and the rotation `Q`.

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

Sparsity coefficients swept: {lambdas}; the tables use {defaults}. Other scores:
*dead* = latents never active on the evaluation tokens; *NMSE* = reconstruction MSE /
total variance; *L0* = mean active latents per token; *spliced acc* = exact-match rate of
the model with the SAE's reconstruction replacing the residual at the site (all
positions but BOS); the *random dictionary* rows score as many random directions with
encoder = decoder^T (chance level).

## Compression: accuracy against width

{compression_table}

"Features" counts the labelled dimensions other than `one` and `bos`; "read rank" is the
dimension of the space the weights read; "active read rank" is the dimension of the span
of the residual vectors projected onto that space (smaller: some read directions are
never active, and categorical groups are linearly dependent). Keeping that span exactly
is enough for exactness, so an exact width below the active read rank means features
genuinely share directions. The widths tried are a grid over d_model plus the active
read rank r, r-1 and r-2.

![accuracy vs d']({fig_compression})

## SAEs on the final residual stream

Mean over programs at the default coefficients (mean ± std over seeds):

{summary_table}

![features recovered vs L0]({fig_l0})

### Rotated residual stream (features `Q e_i`)

{rotated_table}

### Compressed residual stream (features `W e_i`, d' = smallest exact width)

{compressed_table}

### Plain residual stream (features `e_i`)

{plain_table}

### Unit by unit: `{per_feature_name}`, rotated, Gated SAE

{per_feature}

## Is the truth the SAE objective's optimum?

At an earlier HEAD an SAE whose decoder is exactly the true one-hot features had a
*higher* training loss than the trained SAE in 21/21 configurations. `truth_loss.py`
builds two exact truth dictionaries in each setting's basis (reconstruction error
~1e-10) and evaluates them under the SAE's own loss, same coefficient, same
normalisation:

* **one-hot**: one latent per labelled dimension, code = its value, `b_dec` = the `one`
  direction;
* **groups**: per group (independent groups with their derived dimensions, and
  interaction groups), the most frequent state folded into `b_dec` and one latent per
  other state, along its difference from it; numerical dimensions one latent each.

Each is priced twice: with its **exact codes**, and with the **best codes** any encoder
could give it (for ReLU, the non-negative lasso optimum per token; for Gated, the gate
path's lasso optimum while the magnitude path keeps the exact codes; for JumpReLU the
exact codes, since L0 does not reward shrinking). The trained SAE's loss is its own
objective on the same tokens.

{loss_text}

{loss_table}

What this says about the truth definition versus the SAEs:

* *Exact codes are the wrong yardstick for L1.* An L1 penalty is lowered by shrinking
  every code a little and paying a little reconstruction error; a trained ReLU or Gated
  SAE does this, a dictionary priced with exact codes does not. The planted features
  show the size of this effect: compare the two loss columns of the planted table (exact
  codes against best codes, on SAEs that recovered every feature). On compiled models it
  explains only the few configurations whose count changes between the exact-codes and
  best-codes columns.
* *The one-hot truth is not what these objectives reward.* Every position has one value
  of every categorical group on, so the one-hot dictionary pays one unit of penalty per
  group per token; folding the most frequent value into the bias removes that payment at
  most tokens (compare the L0 columns). A truth that is never the optimum cannot be
  recovered by better training, so "recovered (cos)" near 0 measured the truth
  definition, not the SAEs.
* *Where the group truth with its best codes still loses* (count per kind above), the
  objective genuinely prefers another dictionary: with unit-norm decoder rows an L1
  penalty charges a latent the norm of the vector it writes, and one latent for a
  combination of k co-occurring one-hot parts (norm `sqrt(k)`) is cheaper than the k
  latents of the truth (cost k). In compiled models every feature co-occurs with one
  value of every other group at every position, so the optimum merges features into
  combinations as far as the dictionary size allows (absorption): the trained ReLU and
  Gated SAEs fire more latents than the group truth (L0 columns) yet pay a smaller L1
  penalty (penalty columns). Under L0 (JumpReLU)
  there is no such discount; where the group truth wins there, training missed a
  better optimum.
* So the group truth is the right truth to score against (exact, identifiable,
  basis-free; a hand-made dictionary scores 1.0 in the tests and planted features are
  recovered by every kind), and the measured gap between it and the SAEs splits into
  what the objective prefers (truth loses even with best codes) and what training
  misses (truth wins).

## What the numbers say

{key_numbers}

**Compression.** {compression_text}

**SAEs.** {sae_text}

* *Compressed settings add interference*: feature directions `W e_i` are no longer
  orthogonal and a group's span covers a larger share of the `d'` dimensions (a random
  direction keeps `sqrt(k/d')` of its norm in a k-dimensional span), so the span-based
  scores of the compressed setting are more lenient than the others; compare each row
  with its random-dictionary row.
* Splicing is a harsher test than NMSE: attention scores in compiled models are scaled
  by up to a few hundred and MLPs have steep slopes, so a reconstruction error of a
  percent of the variance can flip an attention pattern or an MLP bucket. Numerical
  outputs (`frac_prevs`, `pair_balance`) must land within half a gap of the right value
  and are the first to break.

## SAE-Lens SAEs

`rasp_compiler.interp.superposition.saelens.SAELensDictionary` wraps any SAE-Lens SAE
(anything with `W_dec`, `encode`, `decode` on torch tensors) so that `score_sae`,
`score_groups` and `splice_hooks` score it like ours:

```python
from rasp_compiler.interp.superposition.saelens import SAELensDictionary
scores = sp.score_sae(SAELensDictionary(sae_lens_sae), setting, site, test)
```

Install with `pip install torch==2.13.0` (the CPU build) and then `pip install
'rasp_compiler[sae]'`. {saelens}

## Reproduce

```
.venv/bin/python benchmarks/sae_eval.py                 # this page
.venv/bin/python benchmarks/sae_eval.py --quick         # smoke run, prints tables only
.venv/bin/python benchmarks/sae_eval.py --seeds 0,1,2,3,4   # more seeds
.venv/bin/python benchmarks/sae_eval.py --sites all     # every layer's resid_pre too (slower)
.venv/bin/python benchmarks/sae_eval.py --json run.json # keep every number, per unit too
.venv/bin/python benchmarks/sae_eval.py --from-json run.json  # rewrite this page from a saved run
```

This page was produced with one process per program (the planted features in their own
process), merged:

```
nice -n 10 .venv/bin/python benchmarks/sae_eval.py --programs none --json planted.json --md planted.md &
for p in frac_prevs hist reverse sort pair_balance shift_by; do
  nice -n 10 .venv/bin/python benchmarks/sae_eval.py --programs $p --no-planted --json $p.json --md $p.md &
done; wait
.venv/bin/python benchmarks/sae_eval.py --from-json planted.json frac_prevs.json hist.json ...
```

```python
from rasp_compiler.interp import superposition as sp
sweep = sp.compression_sweep(model, program, dims=[12, 16, 20], log=print)
result = sweep.result(sweep.smallest_exact)          # .W, .model (runnable), .accuracy
setting = sp.compressed_setting(result)              # or sp.rotated_setting(model), sp.plain_setting(model)
train, test = sp.random_data(model, program, 2048, seed=1), sp.eval_data(model, program)
site = sp.residual_sites(model)[-1]
truth = sp.feature_truth(model, sp.site_features(model, test, site))   # the groups and their roles
for sae, scores in sp.sae_experiment(setting, site, train, test, sp.SAEConfig(kind="jumprelu", n_latents=30),
                                     sparsities=[0.1, 0.3, 1.0]):
    print(scores.units_recovered, scores.group_capture, scores.mean_max_cos)
```

## Limits

* One site per program (the final residual) and dictionaries of `d_model` latents; the
  `--sites all` option covers every layer but is not part of the timed run. Compression
  and the training inputs use one seed ({base_seed}).
* Compression training is short and its loss landscape is very sharp (attention scales
  in the hundreds): accuracy against d' is not monotone, and widths below the reported
  smallest exact one may well admit exact solutions that this training does not find.
* The independence rule is structural (graph-derived); the functional check confirms
  that derived values are functions of their sources, not that every attention node
  brings new information.
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


def merge_runs(runs: list[dict]) -> dict:
    """One result from runs with the same settings that split the seeds and/or the programs
    between them (a program's compression: from the first run that has it)."""
    out = json.loads(json.dumps(runs[0]))
    for other in runs[1:]:
        out["config"]["seeds"] = sorted(set(out["config"]["seeds"]) | set(other["config"]["seeds"]))
        out["planted"] += other["planted"]
        out["seconds"] = max(out["seconds"], other["seconds"])
        for name, rec in other["programs"].items():
            if name not in out["programs"]:
                out["programs"][name] = rec
                continue
            out["programs"][name]["sae"] += rec["sae"]
            out["programs"][name]["chance"] += rec["chance"]
    order = [p for p in PROGRAMS if p in out["programs"]] + [p for p in out["programs"] if p not in PROGRAMS]
    out["programs"] = {p: out["programs"][p] for p in order}
    out["config"]["programs"] = order
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="few programs and steps; prints only unless --md is given")
    ap.add_argument("--programs", help=f"comma-separated LIBRARY names (default {','.join(PROGRAMS)})")
    ap.add_argument("--sites", choices=("final", "all"), default="final",
                    help="final residual only, or resid_pre of every layer plus the final residual")
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (SAE init and batches, rotation, "
                    "planted data)")
    ap.add_argument("--no-planted", action="store_true", help="skip the planted-feature experiment")
    ap.add_argument("--base-seed", type=int, default=0, help="seed of the compression and the training inputs")
    ap.add_argument("--n-train", type=int, default=2048, help="random training inputs per program")
    ap.add_argument("--compress-steps", type=int)
    ap.add_argument("--sae-steps", type=int)
    ap.add_argument("--md", type=Path, help="markdown report (default docs/superposition.md unless --quick)")
    ap.add_argument("--figdir", type=Path, default=ROOT / "docs" / "figures")
    ap.add_argument("--json", type=Path, help="also dump every number as JSON")
    ap.add_argument("--from-json", type=Path, nargs="+",
                    help="rewrite the report from saved --json runs, training nothing; several runs with different "
                         "--seeds (same everything else) are merged, so seeds can run as parallel processes")
    args = ap.parse_args(argv)
    if args.from_json:
        res = merge_runs([json.loads(p.read_text()) for p in args.from_json])
        args.quick = res["config"]["quick"]
    else:
        res = run(args)
        say(f"done in {res['seconds']:.0f} s")
        if args.json:
            args.json.write_text(json.dumps(res, indent=1, default=float))
    print()
    print(compression_table(res))
    print()
    print(summary_table(res))
    for setting in SETTINGS:
        print(f"\n{setting}:")
        print(sae_table(res, setting))
    md = args.md or (None if args.quick else ROOT / "docs" / "superposition.md")
    if md is not None:
        args.figdir.mkdir(parents=True, exist_ok=True)
        plot_compression(res, args.figdir / "superposition_compression.png")
        plot_l0(res, args.figdir / "superposition_l0.png")
        write_markdown(res, md, args.figdir)
        say(f"wrote {md} and figures in {args.figdir}")


if __name__ == "__main__":
    main()
