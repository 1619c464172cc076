"""Patching, ablation and attribution on `hist`: a saturated MLP hides the head from gradients.

`hist` is one selector-width block: a head computes 1/(count+1) (attention to BOS) and an
MLP turns it into the count through steep ReLU steps. Every step sits flat at the clean
input, so the gradient through the MLP is exactly zero: AtP and AtP* (whose QK fix only
concerns attention) score the head 0, while activation patching finds it.
Saves out/interp_hist.png
(or into FOLDER); `python benchmarks/example_figures.py` writes the copies in docs/figures/.

Run: python examples/interp_hist.py [FOLDER]
"""

import sys
from pathlib import Path

from rasp_compiler import compile_rasp_to_model
from rasp_compiler.interp import evaluate, plot_target
from rasp_compiler.interp.hooks import ablate, patch_from
from rasp_compiler.lib import LIBRARY
from rasp_compiler.verify import exhaustive_inputs

OUT = Path("out")  # under the working directory; ignored by git


def main(figures: Path = OUT) -> None:
    entry = LIBRARY["hist"]
    model = compile_rasp_to_model(entry.build(), entry.vocab, max_seq_len=5)
    bos = model.config.bos
    clean, corrupt = [bos, "a", "a", "b", "a"], [bos, "b", "c", "b", "c"]
    print("clean  ", model.apply(clean).decoded)
    print("corrupt", model.apply(corrupt).decoded)
    corrupt_cache = model.run_with_cache(corrupt).cache
    for name in ("L0.H0", "L0.MLP:hist"):
        patched = model.run_with_cache(clean, hooks=patch_from(model, name, corrupt_cache)).decoded
        print(f"clean with {name} patched from corrupt:", patched)
    reference = [[bos, *xs] for xs in exhaustive_inputs(entry.vocab, 4, min_len=4)]
    for how in ("zero", "mean", "resample"):
        hooks = ablate(model, "L0.H0", how, reference=reference, seed=1)
        print(f"L0.H0 {how}-ablated:", model.run_with_cache(clean, hooks=hooks).decoded)

    result = evaluate(model, "hist")
    out = result.output()
    for method, scores in out.scores.items():
        print(f"{method:14s}", ", ".join(f"{k}={v:.3g}" for k, v in scores.score.items()))
    for method, s in out.edge["active"].items():
        print(f"edges {method:14s} ROC AUC {s.auc:.2f}  TPR@k {s.tpr:.2f}  FPR@k {s.fpr:.2f}")
    figures.mkdir(parents=True, exist_ok=True)
    print("saved", plot_target(result, out, str(figures / "interp_hist.png")))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)
