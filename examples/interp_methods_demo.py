"""Every circuit-discovery method of the registry on `sort`, compiled and with distractors.

The compiled model is clean: every component outside the circuit is silent, so the
exact methods (edge patching, path patching, ACDC) rank the true edges first with no
effort. The `distractors` variant adds heads and MLP blocks that read real features and
write cancelling pairs into the output: active but irrelevant, the negatives a method
can get wrong. The table shows each edge method's ROC AUC against the active circuit
of the output, on both.

Run: python examples/interp_methods_demo.py   (about a minute on two CPU cores)
"""

import numpy as np

from rasp_compiler import compile_rasp_to_model
from rasp_compiler.interp.methods import EDGE_METHODS, METHODS
from rasp_compiler.interp.testbed import evaluate
from rasp_compiler.interp.variants import make_variant
from rasp_compiler.lib import LIBRARY


def main() -> None:
    print("Registered methods:")
    for m in METHODS.values():
        print(f"  {m.name:14s} {m.level:4s}  {m.description}")

    entry = LIBRARY["sort"]
    model = compile_rasp_to_model(entry.build(), entry.vocab, max_seq_len=4)
    variants = {"compiled": (model, None)}
    v = make_variant(model, "distractors", seed=0)
    variants["distractors"] = (v.model, v.truth)

    rows = {}
    for kind, (m, truth) in variants.items():
        res = evaluate(m, "sort", n_pairs=8, targets=[m.config.output], gt=truth, methods=EDGE_METHODS)
        out = res.output()
        rows[kind] = out
        print(f"\n{kind}: {len(out.active_edges)} active circuit edges of {len(out.scores['acdc'].keys)} candidates")
        acdc = out.scores["acdc"]
        circuit = [e for e, s in acdc.score.items() if s >= acdc.threshold]
        print(f"  ACDC at tau = 1%: {len(circuit)} edges, "
              f"{len(set(circuit) & set(out.active_edges))} of them in the active circuit")

    print(f"\n{'edge method':14s}" + "".join(f"{k:>14s}" for k in rows) + "   (ROC AUC, active circuit)")
    for name in EDGE_METHODS:
        print(f"{name:14s}" + "".join(f"{rows[k].edge['active'][name].auc:14.2f}" for k in rows))

    out = rows["distractors"]
    outside = [e for e in out.scores["edge_patching"].keys if e not in set(out.circuit_edges)]
    print("\nlargest score outside the circuit (distractors), as a share of the metric gap:")
    for name in EDGE_METHODS:
        s = out.scores[name]
        print(f"  {name:14s} {max(s.score[e] for e in outside) / s.gap:.3f}")
    print(f"\nmean |metric gap| over pairs: {np.mean(out.pairs.gap):.2f}")


if __name__ == "__main__":
    main()
