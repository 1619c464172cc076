"""The quick configuration of benchmarks/testbed_variants.py: the sweep, its page section and figure."""

import json
from scripts import load_script



def _bench():
    return load_script("benchmarks/testbed_variants.py")


def test_quick_sweep_writes_its_section_figure_and_records(tmp_path):
    bench = _bench()
    doc = tmp_path / "testbed.md"
    doc.write_text(f"# page\n\nbefore\n\n{bench.BEGIN}\nold numbers\n{bench.END}\n\nafter\n")
    out = bench.main(["--quick", "--programs", "hist", "--kinds", "compiled", "distractors", "--methods",
                      "patching", "atp", "--doc", str(doc), "--figure", str(tmp_path / "f.png"),
                      "--json", str(tmp_path / "r.json")])
    text = doc.read_text()
    assert "old numbers" not in text and text.startswith("# page") and text.rstrip().endswith("after")
    assert (tmp_path / "f.png").stat().st_size > 1000
    rows = json.loads((tmp_path / "r.json").read_text())["rows"]
    assert {r["variant"] for r in rows} == {"compiled", "distractors"}
    assert {r["method"] for r in rows} >= {"patching", "atp", "edge_patching", "eap"}
    by = {(r["variant"], r["method"]): r for r in rows}
    # compiled: every negative is silent; distractors: patching and AtP both score some above the floor
    assert by[("compiled", "edge_patching")]["nonzero_neg"] == 0
    assert by[("distractors", "patching")]["nonzero_neg"] > 0 and by[("distractors", "atp")]["nonzero_neg"] > 0
    assert by[("distractors", "patching")]["auc"] == 1.0 and by[("distractors", "atp")]["auc"] < 0.9
    assert by[("distractors", "patching")]["truth_faithfulness"] > 0.999
    assert "Ranking by mean edge ROC AUC" in out["section"]
