"""Patching and attribution on `sort`, scored against the circuit read off the weights.

`sort` moves each token to the position given by how many tokens are smaller (a
selector-width head + MLP per count, an MLP for the target position, then one head
whose *query/key* side reads that position). Its attention is saturated (score gaps of
~50), so plain attribution patching (AtP) sees nothing through the last head's
query/key side; AtP*'s QK fix recomputes the softmax exactly and finds the
target-position MLP. Saves out/interp_sort.png
(or into FOLDER); `python benchmarks/example_figures.py` writes the copies in docs/figures/.

Run: python examples/interp_sort.py [FOLDER]
"""

import sys
from pathlib import Path

from rasp_compiler import compile_rasp_to_model
from rasp_compiler.interp import evaluate, plot_target
from rasp_compiler.lib import LIBRARY

OUT = Path("out")  # under the working directory; ignored by git


def main(figures: Path = OUT) -> None:
    entry = LIBRARY["sort"]
    model = compile_rasp_to_model(entry.build(), entry.vocab, max_seq_len=5)
    result = evaluate(model, "sort", targets=[model.config.output])
    print(result.gt.summary())
    out = result.output()
    print(f"\n{len(out.pairs)} clean/corrupted pairs, e.g. {out.pairs.tokens(model)[0]} vs "
          f"{out.pairs.tokens(model, 'corrupt')[0]}")
    for method, scores in out.scores.items():
        ranked = sorted(scores.score.items(), key=lambda kv: -kv[1])[:4]
        print(f"{method:14s}", ", ".join(f"{k}={v:.3g}" for k, v in ranked))
    mlp = "L1.MLP:sort_target_pos"
    print(f"\n{mlp}: patching {out.scores['patching'].score[mlp]:.3f}, AtP {out.scores['atp'].score[mlp]:.2e}, "
          f"AtP* {out.scores['atp_star'].score[mlp]:.3f}  (saturated softmax: AtP's gradient is ~exp(-50))")
    for view in ("active",):
        for m, s in out.edge[view].items():
            print(f"edges ({view}) {m:14s} ROC AUC {s.auc:.2f}  TPR@k {s.tpr:.2f}  FPR@k {s.fpr:.2f}")
    figures.mkdir(parents=True, exist_ok=True)
    print("saved", plot_target(result, out, str(figures / "interp_sort.png")))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)
