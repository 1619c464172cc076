"""Writes the figures of docs/testbed.md that the examples draw: docs/figures/interp_reverse.png,
interp_reverse_mixed.png, interp_hist.png and interp_sort.png, by running
examples/interp_{reverse,hist,sort}.py with their figure folder set to docs/figures/
(run alone, each example writes under out/ and leaves the checkout as it was).

Run: python benchmarks/example_figures.py
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ("interp_reverse", "interp_hist", "interp_sort")


def main(figures: Path = ROOT / "docs" / "figures") -> None:
    for name in EXAMPLES:
        spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.main(figures)


if __name__ == "__main__":
    main()
