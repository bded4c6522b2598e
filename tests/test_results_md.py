"""bench/RESULTS.md is what bench/results_md.py writes from the committed JSON: it cannot go stale; nor can
what the README points to (RESULTS.md sections, the tests of each case it says is checked)."""

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


def test_each_case_docs_say_is_checked_names_tests_that_exist():
    """Every row of the tables of docs/reliability.md ('What is checked', which the README links)
    ends with its tests, as ``file.py::test_name`` under tests/, and each is a test function of that file."""
    import re

    assert "docs/reliability.md" in (ROOT / "README.md").read_text()
    lines = (ROOT / "docs" / "reliability.md").read_text().splitlines()
    rows = [line for i, line in enumerate(lines) if line.startswith("| ")
            and not (i + 1 < len(lines) and lines[i + 1].startswith("|---"))]  # the header rows aside
    assert len(rows) > 20, "docs/reliability.md's 'What is checked' tables are missing"
    missing = []
    for row in rows:
        named = re.findall(r"`([\w/]+\.py)::(test_\w+)`", row.rstrip(" |").rsplit(" | ", 1)[-1])
        assert named, f"a case with no test: {row[:80]}"
        missing += [f"{path}::{name}" for path, name in named
                    if not re.search(rf"^def {name}\(", (ROOT / "tests" / path).read_text(), re.MULTILINE)]
    assert not missing, f"docs/reliability.md names tests that do not exist: {missing}"
