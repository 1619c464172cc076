"""InterpBench's case files, unchanged, compiled by rasp_compiler.

    python examples/interpbench_corpus.py PATH [CASE ...]

PATH is a local checkout of github.com/FlyingPumba/circuits-benchmark (nothing of it is
part of this project). Each case file is tracr code; the loader runs it with
``tracr.rasp.rasp`` standing for ``rasp_compiler.rasp``. The same cases as testbed tasks:
``rasp-compiler testbed export tasks/ --programs corpus:PATH:3,88 --random 0``; every case
with both compilers: ``python benchmarks/corpus.py PATH``.
"""

import sys

from rasp_compiler import compile_rasp_to_model
from rasp_compiler.corpus import load_corpus
from rasp_compiler.verify import check_model, random_inputs

path = sys.argv[1] if len(sys.argv) > 1 else sys.exit(__doc__)
numbers = [int(n) for n in sys.argv[2:]] or [2, 3, 88]
for case in load_corpus(path, numbers):
    model = compile_rasp_to_model(case.program, case.vocab, case.max_seq_len, causal=case.causal)
    report = check_model(model, case.program, random_inputs(case.vocab, case.max_seq_len, 200, seed=case.number))
    print(f"case {case.number} ({case.description}): {model.config.n_layers} layers, causal={case.causal}, "
          f"exact on {report.checked - report.n_mismatches}/{report.checked} random inputs")
