"""``inspect``: a model's sizes, residual layout, graph and weights (``--plot``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from rasp_compiler.cli.common import (
    LIB_PREFIX,
    BosOpt,
    CausalOpt,
    Loaded,
    MaxLenOpt,
    OutputOpt,
    PadOpt,
    StrictOpt,
    VocabOpt,
    VocabType,
    VocabTypeOpt,
    _describe,
    _fmt,
    _load,
    app,
    out,
)


@app.command("inspect")
def inspect_command(
    target: Annotated[str, typer.Argument(metavar="MODEL_OR_PROGRAM",
                                          help="A weight file, a .rasp file or lib:NAME.")],
    plot: Annotated[Optional[Path], typer.Option(
        "--plot", help="Draw the program graph and the weight matrices into this PNG "
                       "(large models: one more PNG per layer, FILE-layerN.png).")] = None,
    vocab: VocabOpt = None,
    max_seq_len: MaxLenOpt = None,
    output: OutputOpt = None,
    causal: CausalOpt = False,
    bos: BosOpt = "BOS",
    pad: PadOpt = "PAD",
    vocab_type: VocabTypeOpt = VocabType.auto,
    strict: StrictOpt = False,
) -> None:
    """Print a model's layers, heads, MLPs and residual layout; optionally plot them.

    Example: rasp-compiler inspect reverse.safetensors --plot reverse.png
    """
    from rasp_compiler.export import model_metadata

    loaded = _load(target, vocab=vocab, vocab_type=vocab_type, max_seq_len=max_seq_len, output=output,
                   causal=causal, bos=bos, pad=pad, strict=strict)
    model = loaded.model
    graph = model_metadata(model).get("graph")
    _print_inspection(model, graph, loaded)
    if plot is not None:
        files = plot_model(model, graph, plot)
        for f in files:
            out.print(f"wrote {escape(str(f))}")


_PREDICATES = {"EQ": "==", "NEQ": "!=", "LT": "<", "LEQ": "<=", "GT": ">", "GEQ": ">="}


def _describe_term(term: dict) -> str:
    """One Boolean table of a head, as "key K <op> query Q" (tracr's order: predicate(key, query))."""
    pred = term.get("predicate")
    if pred == "TRUE":
        return "every key (TRUE)"
    if pred == "FALSE":
        return "no key (FALSE)"
    return f"key {term.get('key')} {_PREDICATES.get(pred, pred)} query {term.get('query')}"


def _node_records(graph: dict | None) -> dict[str, dict]:
    return {n["label"]: n for n in (graph or {}).get("nodes", [])}


def _print_inspection(model: Any, graph: dict | None, loaded: Loaded) -> None:
    c, labels = model.config, model.labels
    nodes = _node_records(graph)
    meta = model.metadata or {}
    summary = Table(show_header=False, box=None, pad_edge=False)
    summary.add_column(style="bold")
    summary.add_column()
    origin = (loaded.origin or {}).get("origin")
    summary.add_row("model", escape(f"{c.output}" + (f"  (from {origin})" if origin else "")))
    if meta.get("file"):
        summary.add_row("file", escape(f"{meta['file']}  (format {meta.get('format_version')}, "
                                       f"{meta.get('created_by')})"))
    summary.add_row("sizes", _describe(model))
    summary.add_row("vocab", escape(f"{' '.join(map(str, c.vocab))}   BOS={c.bos!r} PAD={c.pad!r}   "
                                    f"max_seq_len {c.max_seq_len}{'   causal' if c.causal else ''}"))
    kind = "numerical" if c.output_numerical else "categorical"
    values = " ".join(_fmt(v) for v in c.output_values)
    summary.add_row("output", escape(f"{c.output}: {kind}, {len(c.output_values)} values: {values}"))
    unproven = c.unproven_aggregates
    summary.add_row("unproven", escape(
        f"{', '.join(unproven)}: categorical Aggregates no rule proves to copy one value (run-time guarded; "
        f"compile with --strict to refuse them)") if unproven else "none (every categorical Aggregate proven)")
    summary.add_row("program", "stored source text" if model.source else
                    ("library reference" if origin and origin.startswith(LIB_PREFIX) else "not stored"))
    out.print(summary)

    layers = Table(title="layers", title_justify="left")
    layers.add_column("layer", justify="right")
    layers.add_column("attention heads")
    layers.add_column("MLP")
    for l in range(c.n_layers):
        heads = [f"h{h} {name}" for h, name in enumerate(labels.heads[l]) if name]
        mlps = [f"{name} [{a}:{b}]" for name, a, b in labels.mlps[l]]
        used = sum(b - a for _, a, b in labels.mlps[l])
        layers.add_row(str(l), escape(", ".join(heads) or "-"),
                       escape((", ".join(mlps) + f"  ({used}/{c.d_mlp} neurons)") if mlps else "-"))
    out.print(layers)

    heads = Table(title="attention heads", title_justify="left")
    for col in ("layer", "head", "node", "op", "selects", "reads value", "output values"):
        heads.add_column(col)
    for l in range(c.n_layers):
        for h, name in enumerate(labels.heads[l]):
            if not name:
                continue
            rec = nodes.get(name, {})
            terms = " and ".join(_describe_term(t) for t in rec.get("terms", []))
            op = rec.get("op", "?")
            if rec.get("kind") == "selector_width":
                op += " (head + MLP)"
            heads.add_row(str(l), str(h), escape(name), op, escape(terms or "?"),
                          escape(rec.get("aggregated") or "-"), _value_summary(rec))
    out.print(heads)

    mlps = Table(title="MLPs", title_justify="left")
    for col in ("layer", "node", "op", "neurons", "reads", "output values"):
        mlps.add_column(col)
    for l in range(c.n_layers):
        for name, a, b in labels.mlps[l]:
            rec = nodes.get(name, {})
            mlps.add_row(str(l), escape(name), rec.get("op", "?"), f"{a}:{b} ({b - a})",
                         escape(", ".join(rec.get("inputs", [])) or "?"), _value_summary(rec))
    out.print(mlps)

    out.print(_residual_table(model, nodes))


def _value_summary(rec: dict, limit: int = 8) -> str:
    from rasp_compiler.export.values import decode_value

    values = rec.get("value_set")
    if values is None:
        return "?" if not rec else "-"
    shown = [_fmt(decode_value(v)) for v in values[:limit]]
    more = f" ... ({len(values)})" if len(values) > limit else ""
    return escape(f"{rec.get('encoding', '')[:3]} " + " ".join(shown) + more)


def residual_groups(labels: list[str], node_names: set[str]) -> list[tuple[str, int, int, list[str]]]:
    """Consecutive residual dimensions of one node: (node, first, end, value labels)."""
    groups: list[tuple[str, int, int, list[str]]] = []
    for i, label in enumerate(labels):
        node = max((n for n in node_names if label == n or label.startswith(n + ":")), key=len, default=None)
        if node is None:
            node = label.partition(":")[0]
        value = label[len(node) + 1:] if len(label) > len(node) else ""
        if groups and groups[-1][0] == node and groups[-1][2] == i:
            name, a, _, vals = groups[-1]
            groups[-1] = (name, a, i + 1, vals + [value])
        else:
            groups.append((node, i, i + 1, [value]))
    return groups


def _residual_table(model: Any, nodes: dict[str, dict]) -> Table:
    table = Table(title=f"residual stream ({model.config.d_model} dimensions)", title_justify="left")
    for col in ("dims", "node", "encoding", "values", "written by"):
        table.add_column(col)
    for node, a, b, values in residual_groups(model.residual_labels, set(nodes)):
        rec = nodes.get(node, {})
        if node in ("one", "bos") and not rec:
            enc, writer = "-", "embedding"
            vals = "1 everywhere" if node == "one" else "1 at BOS only"
        else:
            enc = rec.get("encoding", "?")
            vals = " ".join(v for v in values if v) or "(one number)"
            if rec.get("kind") == "embed":
                writer = "embedding"
            elif rec.get("layer") is not None:
                writer = f"L{rec['layer']} " + ("head + MLP" if rec.get("kind") == "selector_width"
                                                else "attention" if rec.get("sublayer") == "attn" else "MLP")
            else:
                writer = "?"
        table.add_row(f"{a}" if b == a + 1 else f"{a}-{b - 1}", escape(node), enc, escape(vals), writer)
    return table


# ---------------------------------------------------------------------------- plots
_KIND_COLOURS = {"embed": "#d9d9d9", "virtual": "#f2f2f2", "attention": "#9ecae1",
                 "selector_width": "#c6b3e6", "mlp": "#fdbe85"}
_MAX_PANELS_ONE_FILE = 12


def _stage(rec: dict) -> float:
    """Column of a node in the graph drawing: 0 embedding, then one column per sublayer."""
    if rec.get("kind") == "embed":
        return 0.0
    if rec.get("kind") == "virtual" or rec.get("sublayer_index", -1) < 0:
        return rec.get("ready", -1) + 1.5
    return rec["sublayer_index"] + 1.0


def _short(text: str, n: int = 28) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _draw_graph(ax: Any, graph: dict | None, n_layers: int) -> None:
    import networkx as nx

    ax.set_title("program graph (columns: embedding, then each layer's attention and MLP sublayers; "
                 "bold: output)", fontsize=10, loc="left")
    ax.axis("off")
    if not graph or not graph.get("nodes"):
        ax.text(0.5, 0.5, "no program graph stored in this file", ha="center", va="center", transform=ax.transAxes)
        return
    g = nx.DiGraph()
    for rec in graph["nodes"]:
        g.add_node(rec["label"], **rec)
    g.add_edges_from((a, b) for a, b in graph.get("edges", []) if a in g and b in g)
    columns: dict[float, list[str]] = {}
    for label in nx.topological_sort(g):
        columns.setdefault(_stage(g.nodes[label]), []).append(label)
    pos = {}
    tallest = max(len(v) for v in columns.values())
    for x, labels in columns.items():
        for i, label in enumerate(labels):
            pos[label] = (x, (len(labels) - 1) / 2 - i)
    nx.draw_networkx_edges(g, pos, ax=ax, arrows=True, arrowstyle="-|>", arrowsize=12, edge_color="#777777",
                           node_size=2600, connectionstyle="arc3,rad=0.05")
    for label, (x, y) in pos.items():
        rec = g.nodes[label]
        where = ""
        if rec.get("head"):
            where = f"L{rec['head'][0]} h{rec['head'][1]}"
        elif rec.get("mlp_neurons"):
            where = f"L{rec['mlp_neurons'][0]} MLP"
        text = f"{_short(label, 24)}\n{rec.get('op', '')}" + (f" · {where}" if where else "")
        bold = label == graph.get("output")
        ax.text(x, y, text, ha="center", va="center", fontsize=8.5, fontweight="bold" if bold else "normal",
                bbox=dict(boxstyle="round,pad=0.35", fc=_KIND_COLOURS.get(rec.get("kind"), "white"),
                          ec="black" if bold else "#555555", lw=1.6 if bold else 0.8))
    n_sub = 2 * n_layers
    names = ["embedding"] + [f"L{s // 2} {'attn' if s % 2 == 0 else 'mlp'}" for s in range(n_sub)]
    top = tallest / 2 + 0.2
    for i, name in enumerate(names):
        ax.text(i, top, name, ha="center", va="bottom", fontsize=8, color="#444444")
        if i:
            ax.axvline(i - 0.5, color="#eeeeee", lw=1, zorder=0)
    ax.set_xlim(-0.7, max(n_sub, max(columns)) + 0.7)
    ax.set_ylim(-tallest / 2 - 0.3, top + 0.5)
    handles = [__import__("matplotlib.patches", fromlist=["Patch"]).Patch(fc=c, ec="#555555", label=k)
               for k, c in _KIND_COLOURS.items()]
    ax.legend(handles=handles, loc="lower right", fontsize=7, frameon=False, ncol=len(handles))


def _heatmap(ax: Any, matrix: Any, rows: list[str], cols: list[str], title: str, ylabel: str,
             xlabel: str) -> None:
    import numpy as np

    vmax = float(np.abs(matrix).max()) if matrix.size else 1.0
    image = ax.imshow(matrix, cmap="RdBu_r", vmin=-vmax or -1, vmax=vmax or 1, aspect="auto",
                      interpolation="nearest")
    size = lambda n: max(4.0, min(8.0, 260.0 / max(n, 1)))  # noqa: E731
    ax.set_yticks(range(len(rows)), [_short(r) for r in rows], fontsize=size(len(rows)))
    ax.set_xticks(range(len(cols)), [_short(c) for c in cols], fontsize=size(len(cols)), rotation=90)
    ax.set_title(title, fontsize=9, loc="left")
    ax.set_ylabel(ylabel, fontsize=8)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.figure.colorbar(image, ax=ax, fraction=0.04, pad=0.02).ax.tick_params(labelsize=6)


def _strip_node(neuron: str) -> str:
    """A neuron label without its node prefix (the panel title names the node)."""
    node, sep, rest = neuron.partition(": ")
    return rest if sep else neuron


def _nonzero(matrix: Any, axis: int) -> Any:
    import numpy as np

    return np.flatnonzero(np.abs(matrix).max(axis=axis) > 1e-9)


def _weight_panels(model: Any) -> list[list[tuple]]:
    """Per layer, the matrices to draw: (matrix, row labels, column labels, title, ylabel, xlabel)."""
    import numpy as np

    p, labels = model.params, model.labels
    res = model.residual_labels
    layers = []
    for l in range(model.config.n_layers):
        panels = []
        for h, node in enumerate(labels.heads[l]):
            if not node:
                continue
            wq, wk = p[f"blocks.{l}.attn.W_Q"][h], p[f"blocks.{l}.attn.W_K"][h]
            wv, wo = p[f"blocks.{l}.attn.W_V"][h], p[f"blocks.{l}.attn.W_O"][h]
            for m, title, ylabel, xlabel in (
                    (wq @ wk.T, f"L{l} h{h} {node}: W_QK", "query reads", "key reads"),
                    (wv @ wo, f"L{l} h{h} {node}: W_OV", "value reads", "output writes")):
                r, c = _nonzero(m, 1), _nonzero(m, 0)
                panels.append((m[np.ix_(r, c)], [res[i] for i in r], [res[i] for i in c], title, ylabel, xlabel))
        used = [i for i, name in enumerate(labels.neurons[l]) if name]
        if used:
            nodes = ", ".join(n for n, _, _ in labels.mlps[l])
            neuron_names = [f"{i}: {_strip_node(labels.neurons[l][i])}" for i in used]
            w_in = np.vstack([p[f"blocks.{l}.mlp.W_in"], p[f"blocks.{l}.mlp.b_in"][None]])[:, used]
            r = _nonzero(w_in, 1)
            columns = neuron_names if len(used) <= 16 else [str(i) for i in used]  # W_out rows name them
            panels.append((w_in[r], [(res + ["bias b_in"])[i] for i in r], columns,
                           f"L{l} MLP ({_short(nodes, 40)}): W_in", "residual reads", "neuron"))
            w_out = p[f"blocks.{l}.mlp.W_out"][used]
            c = _nonzero(w_out, 0)
            panels.append((w_out[:, c], neuron_names, [res[i] for i in c],
                           f"L{l} MLP ({_short(nodes, 40)}): W_out", "neuron", "residual writes"))
        layers.append(panels)
    return layers


def plot_model(model: Any, graph: dict | None, path: Path) -> list[Path]:
    """Draw the program graph and every head's W_QK / W_OV and every MLP's W_in / W_out.

    One row of matrices per layer. Small models go into one PNG; when there are more
    than a dozen matrices, ``path`` holds the graph and ``<stem>-layer<N><suffix>`` the
    matrices of layer N. Axes are labelled with residual dimensions and neuron labels;
    only rows and columns holding a non-zero weight are drawn.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    layers = _weight_panels(model)
    ncols = max(2, min(6, max((len(x) for x in layers), default=2)))
    row_specs = [(l, panels[i:i + ncols]) for l, panels in enumerate(layers) for i in range(0, len(panels), ncols)]
    tallest = max([1] + [len([1 for n in (graph or {}).get("nodes", []) if _stage(n) == s])
                         for s in {_stage(n) for n in (graph or {}).get("nodes", [])}])
    graph_height = max(3.0, 0.75 * tallest + 1.6)
    graph_width = max(12.0, 2.3 * (2 * model.config.n_layers + 1), 4.6 * ncols)
    title = f"{model.config.output}: {_describe(model)}"
    panel_h = 4.6

    def draw_rows(fig: Any, spec: Any, rows: list) -> None:
        for r, (_, panels) in enumerate(rows):
            for k, (m, rlabels, clabels, name, ylabel, xlabel) in enumerate(panels):
                _heatmap(fig.add_subplot(spec[r, k]), m, rlabels, clabels, name, ylabel, xlabel)

    if sum(len(p) for p in layers) <= _MAX_PANELS_ONE_FILE and len(row_specs) <= 4:
        n = len(row_specs)
        fig = plt.figure(figsize=(graph_width, graph_height + panel_h * n + 0.5), layout="constrained")
        outer = fig.add_gridspec(1 + n, 1, height_ratios=[graph_height] + [panel_h] * n)
        _draw_graph(fig.add_subplot(outer[0]), graph, model.config.n_layers)
        if n:
            draw_rows(fig, outer[1:].subgridspec(n, ncols), row_specs)
        fig.suptitle(title, fontsize=13, x=0.01, ha="left")
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return [path]
    files = [path]
    graph_width = max(12.0, 2.6 * (2 * model.config.n_layers + 1))
    fig = plt.figure(figsize=(graph_width, graph_height + 0.5), layout="constrained")
    _draw_graph(fig.add_subplot(1, 1, 1), graph, model.config.n_layers)
    fig.suptitle(title, fontsize=13, x=0.01, ha="left")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    for l in range(model.config.n_layers):
        rows = [r for r in row_specs if r[0] == l]
        if not rows:
            continue
        fig = plt.figure(figsize=(4.6 * ncols, panel_h * len(rows) + 0.5), layout="constrained")
        draw_rows(fig, fig.add_gridspec(len(rows), ncols), rows)
        fig.suptitle(f"{model.config.output}: layer {l}", fontsize=13, x=0.01, ha="left")
        target = path.with_name(f"{path.stem}-layer{l}{path.suffix or '.png'}")
        fig.savefig(target, dpi=100)
        plt.close(fig)
        files.append(target)
    return files


# ---------------------------------------------------------------------------- list
