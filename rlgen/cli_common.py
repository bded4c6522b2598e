"""What the ``rlgen`` commands share: their parser, their tables, their status lines and their checks of arguments."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import Any, Callable, NoReturn, Sequence

from rlgen.config_data import Range
from rlgen.errors import UsageError


class Parser(argparse.ArgumentParser):
    """The parser of every ``rlgen`` command and subcommand (their parsers are made by this class).

    An option is taken by its full name only: argparse would read ``--total_timestep 5`` as
    ``--total_timesteps`` and ``--resum`` as ``--resume``, so that one typo would change an experiment
    without a word; here such a flag is left over and refused as any unknown one. A malformed command
    line is one :class:`UsageError` line with exit status 2, as every other mistake, rather than
    argparse's usage block.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        where = f"{self.prog}: " if " " in self.prog else ""  # a subcommand's; 'rlgen: error:' names the program
        raise UsageError(f"{where}{message}; see '{self.prog} --help'")


def number_option(parser: argparse.ArgumentParser, flag: str, values: str | Range, *, default: Any, help: str,
                  kind: type = int, default_text: str | None = None) -> None:
    """Add an option taking one number in the range ``values`` (``">= 1"``, as a config field's is
    declared by :func:`rlgen.config_data.ranged`): its help shows the range and the default (or
    ``default_text``, for a default that is not a number), and a value outside is a one-line error
    naming the option, the value and the range."""
    rng = Range.parse(values) if isinstance(values, str) else values

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {'an integer' if kind is int else 'a number'} {rng}, "
                                             f"got {text!r}") from None
        if value not in rng:
            raise argparse.ArgumentTypeError(f"must be {rng}, got {text}")
        return value

    shown = f" (default: {default_text or default})" if default_text or default is not None else ""
    parser.add_argument(flag, type=parse, default=default, metavar="N", help=f"{help} [{kind.__name__}, {rng}]{shown}")


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
