"""Patching and attribution on `reverse`, with same-length and mixed-length pairs.

`reverse` computes `length` (a selector-width head + MLP), `opp_idx = length - index - 1`
(an MLP), and one head that attends from each position to `opp_idx`. With clean and
corrupted inputs of the same length only the last head's input changes, so no method
comparing two inputs can see the length chain; with inputs of different lengths it can.
The script also shows the rotated model: same outputs, same scores.
Saves out/interp_reverse.png and out/interp_reverse_mixed.png
(or into FOLDER); `python benchmarks/example_figures.py` writes the copies in docs/figures/.

Run: python examples/interp_reverse.py [FOLDER]
"""

import sys
from pathlib import Path

from rasp_compiler import compile_rasp_to_model
from rasp_compiler.interp import evaluate, ground_truth, plot_target, rotate_residual
from rasp_compiler.interp.hooks import ablate, replace_pattern
from rasp_compiler.lib import LIBRARY

OUT = Path("out")  # under the working directory; ignored by git


def show(result, label):
    out = result.output()
    print(f"\n== {label}: {len(out.pairs)} pairs, active circuit {out.active_nodes}")
    for method, s in out.edge["active"].items():
        print(f"  edges {method:14s} ROC AUC {s.auc:.2f}  TPR@k {s.tpr:.2f}  FPR@k {s.fpr:.2f}")
    for method in ("patching", "atp", "atp_star"):
        ranked = sorted(out.scores[method].score.items(), key=lambda kv: -kv[1])
        print(f"  nodes {method:10s}", ", ".join(f"{k}={v:.3g}" for k, v in ranked))


def main(figures: Path = OUT) -> None:
    entry = LIBRARY["reverse"]
    model = compile_rasp_to_model(entry.build(), entry.vocab, max_seq_len=5)
    gt = ground_truth(model)
    print(gt.summary())
    print("circuit of opp_idx:", sorted(gt.circuit("opp_idx").nodes))

    tokens = ["BOS", "a", "b", "c", "c"]
    print("\nclean run:", model.apply(tokens).decoded)
    print("L2.H0 zero-ablated:", model.run_with_cache(tokens, hooks=ablate(model, "L2.H0", "zero")).decoded)
    import numpy as np
    to_first = np.zeros((5, 5), np.float32)
    to_first[:, 1] = 1.0  # every query attends to the first token
    print("L2.H0 pattern replaced (all attend to position 1):",
          model.run_with_cache(tokens, hooks=replace_pattern(2, 0, to_first)).decoded)

    same = evaluate(model, "reverse", targets=[model.config.output])
    show(same, "same-length pairs")
    mixed = evaluate(model, "reverse", targets=[model.config.output], same_length=False)
    show(mixed, "mixed-length pairs")
    rotated = rotate_residual(model, seed=0)
    print("\nrotated model, same outputs:", rotated.apply(tokens).decoded)
    show(evaluate(rotated, "reverse (rotated)", targets=[model.config.output]), "rotated, same-length pairs")

    figures.mkdir(parents=True, exist_ok=True)
    print("saved", plot_target(same, same.output(), str(figures / "interp_reverse.png"),
                               title="reverse: same-length pairs (the length chain cannot change)"))
    print("saved", plot_target(mixed, mixed.output(), str(figures / "interp_reverse_mixed.png"),
                               title="reverse: mixed-length pairs"))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)
