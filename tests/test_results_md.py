"""bench/RESULTS.md is what bench/results_md.py writes from the committed JSON: it cannot go stale."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("results_md", ROOT / "bench" / "results_md.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_results_md_is_the_scripts_output():
    assert (ROOT / "bench" / "RESULTS.md").read_text() == _script().render(), (
        "bench/RESULTS.md is out of date with bench/results/*.json; run: python bench/results_md.py")


def test_readme_links_to_sections_that_exist():
    # The README's results table links to RESULTS.md's headings: each anchor must still be there.
    import re

    headings = {re.sub(r"[^\w\- ]", "", line.lstrip("# ").strip().lower()).replace(" ", "-")
                for line in (ROOT / "bench" / "RESULTS.md").read_text().splitlines() if line.startswith("#")}
    anchors = re.findall(r"bench/RESULTS\.md#([\w\-]+)", (ROOT / "README.md").read_text())
    assert anchors, "the README links to no section of bench/RESULTS.md"
    missing = [a for a in anchors if a not in headings]
    assert not missing, f"README links to missing RESULTS.md sections: {missing}"
