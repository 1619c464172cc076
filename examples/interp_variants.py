"""Variants of `sort` that keep its circuit but make methods work for it.

The compiled model's negatives are all silent, so every method ranks them last. The
distractors variant adds active heads and neurons whose writes cancel in pairs; backups
copy the output head; dense rotates every basis. For each: its exactness (measured on
every input up to length 5 of the vocabulary ... or 500 random ones), its truth, a
zero-ablation check of that truth, and how patching and AtP* score it.

Run: python examples/interp_variants.py
"""

from rasp_compiler import compile_rasp_to_model
from rasp_compiler.interp.ground_truth import is_distractor
from rasp_compiler.interp.testbed import evaluate
from rasp_compiler.interp.variants import make_variant
from rasp_compiler.interp.variants.base import ablation_changes, check_inputs
from rasp_compiler.lib import LIBRARY


def main() -> None:
    entry = LIBRARY["sort"]
    model = compile_rasp_to_model(entry.build(), entry.vocab, max_seq_len=5)
    inputs, _ = check_inputs(model)
    for kind in ("compiled", "distractors", "backups", "dense"):
        v = make_variant(model, kind, seed=0)
        circuit = v.truth.circuit().nodes
        outside = [n for n in v.truth.scored if n not in circuit]
        print(f"\n== {kind}: {v.model}\n   exactness {v.exactness.accuracy:.3f} on {v.exactness.how}")
        print(f"   circuit: {sorted(n for n in v.truth.scored if n in circuit)}")
        print(f"   outside: {outside}")
        if outside:
            print(f"   outputs changed by ablating all of them: {ablation_changes(v.model, inputs[:300], outside)}")
        res = evaluate(v.model, "sort", targets=[model.config.output], n_pairs=8, gt=v.truth)
        out = res.output()
        print(f"   faithfulness of the true circuit: {out.truth_faithfulness['node']:.3f}")
        for method in ("patching", "atp_star"):
            s, raw = out.node["structural"][method], out.scores[method].score
            top_negative = max((raw[n] for n in outside), default=0.0)
            print(f"   {method:9s} node AUC {s.auc:.2f}  PR AUC {s.pr_auc:.2f}  F1@k {s.f1:.2f}  "
                  f"faithfulness@k {s.faithfulness:.2f}  largest non-circuit score {top_negative:.3f}")
        d = [n for n in v.truth.scored if is_distractor(v.truth.components[n].node)]
        if d:
            print(f"   distractors, e.g. {d[0]} = {v.truth.components[d[0]].node!r}")


if __name__ == "__main__":
    main()
