"""The documentation, recipes and benchmark records name no folder of the machine they were written on.

Every command they show must run as written from a fresh clone, so its paths are relative to the
repository (``runs/bench``, ``data/mnist``, ``.venv-imitation``). The check reads README.md, docs/,
demos/README.md, agents/ and bench/ (``.md``, ``.py``, ``.json`` and ``.toml`` files; bench/runs/, where
benchmarks train, is left out) and fails on an absolute path of the kinds that creep in from a
benchmark run: a folder under ``/work/``, ``/tmp/``, ``/root/``, ``/home/`` or ``/Users/``, or a Windows
drive (``C:\\``). A slash, word character, dot, ``~`` or ``-`` just before one of them makes it part
of something else (``runs/tmp/``, a URL), which is not flagged.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

MACHINE_PATH = re.compile(r"(?<![\w.~/-])/(?:work|tmp|root|home|Users)/|(?<!\w)[A-Za-z]:\\")
SUFFIXES = {".md", ".py", ".json", ".toml"}


def checked_files() -> list[Path]:
    files = [ROOT / "README.md", ROOT / "demos" / "README.md"]
    for folder in ("docs", "agents", "bench"):
        files += [p for p in sorted((ROOT / folder).rglob("*")) if p.suffix in SUFFIXES and p.is_file()
                  and (ROOT / "bench" / "runs") not in p.parents and "__pycache__" not in p.parts]
    return [p for p in files if p.is_file()]


def test_the_pattern_finds_machine_paths_and_nothing_else():
    for text in ("--runs-dir /work/runs-bg/bench", "`/tmp/iaf.json`", "(/root/x)", "/home/me/data",
                 "/Users/me/data", r"C:\Users\me"):
        assert MACHINE_PATH.search(text), text
    for text in ("runs/tmp/x", "https://example.org/work/x", "~/data/mnist", "bench/runs/images", r"failed:\n"):
        assert not MACHINE_PATH.search(text), text


def test_no_file_names_a_folder_of_the_machine_it_was_written_on():
    files = checked_files()
    assert ROOT / "README.md" in files and any(p.parent.name == "results" for p in files)
    found = [f"{p.relative_to(ROOT)}:{n}: {line.strip()[:120]}"
             for p in files for n, line in enumerate(p.read_text(errors="replace").splitlines(), 1)
             if MACHINE_PATH.search(line)]
    assert not found, "absolute machine paths (write them relative to the repository):\n" + "\n".join(found)
