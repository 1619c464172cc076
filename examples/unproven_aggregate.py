"""A categorical Aggregate no rule proves, compiled anyway and guarded at run time.

`rare` copies the index of the position 0 or 4 that holds "h" (9 when neither does).
When both hold "h" it selects two positions holding different indices, which one head
cannot copy: it averages them. No proof rule settles it and there are 37,448 inputs, too
many to try, so the compiler warns (UnprovenAggregateWarning), records the node in
model.config.unproven_aggregates and guards every run: the input with two "h"s raises
BlendedValueError instead of decoding a wrong output. strict=True refuses the program.

Run: python examples/unproven_aggregate.py
"""

import warnings

from rasp_compiler import BlendedValueError, UnprovenAggregateWarning, compile_rasp_to_model, rasp
from rasp_compiler.errors import UnsupportedProgramError

ends = rasp.Select(rasp.indices, rasp.indices, lambda k, q: k in (0, 4)).named("ends")
is_h = rasp.Select(rasp.tokens, rasp.tokens, lambda k, q: k == "h").named("is_h")
rare = rasp.Aggregate(rasp.SelectorAnd(is_h, ends), rasp.indices, default=9).named("rare")
VOCAB = set("abcdefgh")

with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    model = compile_rasp_to_model(rare, VOCAB, max_seq_len=5)
warning = next(w.message for w in caught if issubclass(w.category, UnprovenAggregateWarning))
print("warning:    ", str(warning)[:110], "...")
print("unproven:   ", model.config.unproven_aggregates)

for xs in (list("habcd"), list("abcdh"), list("abcde"), list("habch")):
    try:
        print(f"{''.join(xs)}:       ", model.apply(["BOS", *xs]).decoded[1:], "=", rasp.evaluate(rare, xs))
    except BlendedValueError as exc:
        print(f"{''.join(xs)}:        BlendedValueError at SOp {exc.sop}, position {exc.position} of {exc.input}")
print("guard off:  ", model.apply(["BOS", *"habch"], guard=False).decoded[1:], "(wrong, unreported)")

try:
    compile_rasp_to_model(rare, VOCAB, max_seq_len=5, strict=True)
except UnsupportedProgramError as exc:
    print("strict=True:", str(exc)[:110], "...")
