"""Figures: a method's scores next to the true circuit (matplotlib, Agg backend)."""

from __future__ import annotations

import math

import numpy as np

from rasp_compiler.interp.scoring import floored

METHOD_LABELS = {"patching": "activation patching", "atp": "AtP", "atp_qk": "AtP + QK fix",
                 "atp_star": "AtP* (QK fix + GradDrop)", "edge_patching": "edge patching", "eap": "EAP (AtP on edges)",
                 "eap_qk": "EAP + QK fix", "eap_star": "EAP* (QK fix + GradDrop)"}
SHORT = {"patching": "patching", "atp": "AtP", "atp_qk": "AtP+QK", "atp_star": "AtP*",
         "edge_patching": "patching", "eap": "EAP", "eap_qk": "EAP+QK", "eap_star": "EAP*"}
COLORS = {"patching": "#333333", "atp": "#d95f02", "atp_qk": "#7570b3", "atp_star": "#1b9e77"}


def _short(name: str) -> str:
    return name.replace("MLP:", "MLP\n") if len(name) > 12 else name


def _graph_axes(ax, gt, circuit_nodes, circuit_edges, active_nodes):
    """The component graph, top to bottom in forward order; circuit edges dark blue."""
    g = gt.graph
    comps = gt.components
    by_order: dict[int, list[str]] = {}
    for n in g.nodes:
        by_order.setdefault(comps[n].order, []).append(n)
    pos = {}
    for row, order in enumerate(sorted(by_order)):
        names = by_order[order]
        zig = 0.0 if len(names) > 1 else (0.5 if row % 2 else -0.5)  # keeps long edges off a chain
        for i, n in enumerate(names):
            pos[n] = ((i - (len(names) - 1) / 2) * 2.2 + zig, -row)
    for a, b in g.edges:
        true = (a, b) in circuit_edges
        (x0, y0), (x1, y1) = pos[a], pos[b]
        rad = 0.08 if abs(y1 - y0) <= 1 else 0.35  # skip connections bend around the rows between
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                    arrowprops=dict(arrowstyle="-|>", color="#1f4e79" if true else "#bbbbbb",
                                    lw=1.6 if true else 0.8, shrinkA=14, shrinkB=14,
                                    connectionstyle=f"arc3,rad={rad}"))
    for n, (x, y) in pos.items():
        c = comps[n]
        in_c = n in circuit_nodes or c.kind in ("embed", "unembed")
        face = "#cfe2f3" if in_c else "#f2f2f2"
        edge = "#1f4e79" if n in active_nodes or c.kind in ("embed", "unembed") else "#999999"
        node = g.nodes[n].get("node", "")
        if c.kind == "head":
            text = f"{n}\n{node}"
        elif c.kind == "mlp":
            text = f"L{c.layer}.MLP\n{node}"
        else:
            text = n
        ax.text(x, y, text, ha="center", va="center", fontsize=7,
                bbox=dict(boxstyle="round,pad=0.3", fc=face, ec=edge, lw=1.4 if n in active_nodes else 0.8))
    xs = [p[0] for p in pos.values()]
    ys = [p[1] for p in pos.values()]
    ax.set_xlim(min(xs) - 1.4, max(xs) + 1.4)
    ax.set_ylim(min(ys) - 0.6, max(ys) + 0.6)
    ax.set_axis_off()
    ax.set_title("true circuit (from the weights)\nblue: circuit, bold: changed by pairs",
                 fontsize=9)


def _bars(ax, keys, scores, truth, methods, title, gap):
    """Horizontal grouped bars, one group per key (top to bottom), each method scaled to its max."""
    y = np.arange(len(keys))[::-1]
    h = 0.8 / len(methods)
    for k, m in enumerate(methods):
        s = floored(scores[m].score, gap)
        vals = np.array([s.get(key, 0.0) for key in keys])
        top = vals.max() if vals.max() > 0 else 1.0
        ax.barh(y + ((len(methods) - 1) / 2 - k) * h, vals / top, h, color=list(COLORS.values())[k % 4],
                label=METHOD_LABELS.get(m, m))
    labels = [key if isinstance(key, str) else f"{key[0]} → {key[1]}" for key in keys]
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=7)
    for tick, key in zip(ax.get_yticklabels(), keys):
        if key in truth:
            tick.set_color("#1f4e79")
            tick.set_fontweight("bold")
    for yi, key in zip(y, keys):
        if key in truth:
            ax.axhspan(yi - 0.45, yi + 0.45, color="#cfe2f3", alpha=0.6, zorder=0)
    ax.set_xlabel("score / method's max (0 = below the noise floor)", fontsize=8)
    ax.set_xlim(0, 1.05)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, frameon=False)


def plot_target(result, target_result, path: str, title: str = "", max_edges: int = 24) -> str:
    """One figure: the true circuit, node scores and edge scores of every method, saved to ``path``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = target_result
    gt = result.gt
    gap = float(t.pairs.gap.mean())
    edge_methods = [m for m, s in t.scores.items() if s.level == "edge"]  # any registered method
    node_methods = [m for m, s in t.scores.items() if s.level == "node"]
    has_edges = bool(edge_methods)
    keys, hidden = [], 0
    if has_edges:  # true edges, then false edges some method scores, then say how many are left out
        all_keys = list(t.scores[edge_methods[0]].keys)
        truth = set(t.circuit_edges)
        scored = {e for m in edge_methods for e, v in floored(t.scores[m].score, gap).items() if v > 0}
        keys = [e for e in all_keys if e in truth] + [e for e in all_keys if e not in truth and e in scored]
        hidden = len(all_keys) - len(keys)
        keys = keys[:max_edges]
    n_rows = max(len(gt.scored), len(keys), 8)
    fig, axes = plt.subplots(1, 3 if has_edges else 2, figsize=(17 if has_edges else 11.5, 3.0 + 0.32 * n_rows),
                             gridspec_kw={"width_ratios": [0.8, 1, 1.3] if has_edges else [0.9, 1]})
    _graph_axes(axes[0], gt, set(t.circuit_nodes), set(t.circuit_edges), set(t.active_nodes))
    if node_methods:
        _bars(axes[1], gt.scored, t.scores, set(t.circuit_nodes), node_methods,
              "node scores (shaded: circuit)" + _auc_note(t.node.get("active", {}), node_methods), gap)
    else:
        axes[1].set_axis_off()
    if has_edges:
        note = f"\n(+{hidden} other candidate edges: every method 0)" if hidden else ""
        _bars(axes[2], keys, t.scores, set(t.circuit_edges), edge_methods,
              "edge scores (shaded: circuit edges)" + _auc_note(t.edge.get("active", {}), edge_methods) + note, gap)
    fig.suptitle(title or f"{result.name}: target {t.target}, {len(t.pairs)} clean/corrupted pairs", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _auc_note(scores: dict, methods) -> str:
    parts = []
    for m in methods:
        s = scores.get(m)
        if s is not None and not math.isnan(s.auc):
            parts.append(f"{SHORT.get(m, m)} {s.auc:.2f}")
    return ("\nROC AUC on the active circuit:\n" + " | ".join(parts)) if parts else ""
