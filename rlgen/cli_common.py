"""What the ``rlgen`` commands share: their tables, their status lines and their checks of arguments."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from rlgen.errors import UsageError


def fmt(x: Any) -> str:
    """A figure as the tables show it: thousands separated, three significant digits below 100."""
    if isinstance(x, float):
        return f"{x:,.1f}" if abs(x) >= 100 else f"{x:.3g}"
    if isinstance(x, int):
        return f"{x:,}"
    return str(x)


def print_table(title: str, rows: Sequence[tuple[str, Any]], out: Callable[[str], None] = print) -> None:
    """A two-column table: what a run or an evaluation measured."""
    width = max(len(k) for k, _ in rows)
    out(f"\n{title}")
    out("-" * (width + 2 + max(len(fmt(v)) for _, v in rows)))
    for key, value in rows:
        out(f"{key:<{width}}  {fmt(value)}")


def status(message: str) -> None:
    """Say what a command is doing before a wait (stderr, beside the progress bars; stdout keeps the tables)."""
    print(message, file=sys.stderr, flush=True)


def loading(run_dir: str) -> None:
    """Say that a run is being loaded (torch and the agent take seconds), if it is one: a path that
    is not gets its one-line error alone."""
    if (Path(run_dir) / "config.toml").is_file():
        status(f"loading {run_dir} ...")


def no_extra(extra: list[str], command: str) -> None:
    """Refuse arguments left over by a ``command`` that takes no recipe keys."""
    if extra:
        raise UsageError(f"{command}: unrecognised arguments {' '.join(extra)}; see '{command} --help'")


def hold_for_resume(run_dir: Path, holding: contextlib.ExitStack) -> None:
    """Be the one writer of a run directory about to be resumed, before its config.toml is read
    back, checked against the overrides or written: a second process is refused in one line and
    changes nothing. A directory without config.toml is left to the caller's own one-line error."""
    from rlgen.runs import CONFIG, hold_run

    if (run_dir / CONFIG).is_file():
        holding.enter_context(hold_run(run_dir))
