"""The trained (SIIT) variant of `reverse`: a dense learned model with a known circuit.

Loads the weights benchmarks/train_siit.py trained (or trains them, a few minutes, when
the file is missing), prints the measured accuracy, IIA and strict IIA, the mapped
circuit and the unmapped components, and how activation patching and AtP* score them:
unlike in the compiled model, the components outside the circuit are active and score
above zero.

Run: python examples/interp_trained.py
"""

from pathlib import Path

from rasp_compiler import compile_rasp_to_model
from rasp_compiler.interp.testbed import evaluate
from rasp_compiler.interp.variants import make_variant
from rasp_compiler.interp.variants.trained import from_cache
from rasp_compiler.lib import LIBRARY

CACHE = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "trained" / "reverse.safetensors"


def main() -> None:
    entry = LIBRARY["reverse"]
    compiled = compile_rasp_to_model(entry.build(), entry.vocab, max_seq_len=5)
    v = from_cache(compiled, CACHE) if CACHE.exists() else make_variant(compiled, "trained", seed=0, steps=2000)
    m = v.exactness.metrics
    print(f"{v.model}\naccuracy {v.exactness.accuracy:.4f} ({v.exactness.how}), "
          f"IIA {m['iia']:.4f}, strict IIA {m['strict_iia']:.4f}")
    circuit = v.truth.circuit().nodes
    print("mapped:  ", sorted(n for n in v.truth.scored if n in circuit))
    print("unmapped:", sorted(n for n in v.truth.scored if n not in circuit))
    out = evaluate(v.model, "reverse (trained)", targets=[compiled.config.output], gt=v.truth,
                   methods=("patching", "atp_star")).output()
    for method in ("patching", "atp_star"):
        scores = out.scores[method].score
        print(f"{method:9s}", "  ".join(f"{k}={scores[k]:.3g}" for k in v.truth.scored),
              f"  node AUC {out.node['structural'][method].auc:.3f}")


if __name__ == "__main__":
    main()
