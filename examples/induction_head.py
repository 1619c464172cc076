"""An induction head, compiled causally, and a look at its two heads.

`make_induction_head()` is the circuit found in trained transformers: a previous-token
head (each position reads the token one back), then a head whose query is the current
token and whose keys are the previous tokens, copying the token that followed the first
earlier occurrence. Its selectors never look ahead, which the compiler proves by
evaluating the positional ones on every (key, query) pair, so it compiles with
causal=True. The script checks it against the evaluator on random inputs of length 64
and prints where the last position's match head attends.

Run: python examples/induction_head.py
"""

import numpy as np

from rasp_compiler import compile_rasp_to_model, rasp
from rasp_compiler.lib import make_induction_head
from rasp_compiler.verify import check_model, random_inputs

VOCAB = {"a", "b", "c", "d"}

program = make_induction_head()
model = compile_rasp_to_model(program, VOCAB, max_seq_len=64, causal=True)
print(model)

xs = list("abcdcab")
print("input      ", xs)
print("rasp       ", rasp.evaluate(program, xs))
print("transformer", model.apply(["BOS", *xs]).decoded[1:])

report = check_model(model, program, random_inputs(VOCAB, 64, 200, seed=1, full_length=50))
print(f"random inputs up to length 64: {report.checked} checked, {report.n_mismatches} mismatches")

# Where does the match + copy head look from the last position?
run = model.run_with_cache(["BOS", *xs])
heads = model.labels.heads
layer = next(i for i, row in enumerate(heads) if "induction" in row)
pattern = run.cache[f"blocks.{layer}.attn.hook_pattern"][heads[layer].index("induction")]
print(f"layer {layer} head 'induction', query {xs[-1]!r} at position {len(xs) - 1}: attends to",
      {("BOS" if k == 0 else f"{k - 1}:{xs[k - 1]}"): round(float(w), 2)
       for k, w in enumerate(pattern[-1]) if w > 0.01})
assert report.exact and np.isclose(pattern[-1].sum(), 1.0)
