"""The ``rlgen`` command line.

Each subcommand's options are generated from the config dataclass it runs,
so every recipe key can be overridden (``--ppo.learning_rate 1e-3``); an option
is taken by its full name only. Errors a user can fix, an unknown option or a
value out of range among them, print one line and exit with status 2; ``--debug``
shows the traceback instead. SIGINT and SIGTERM are not errors: a training run checkpoints,
prints the command that continues it, and exits with 130 or 143 as a shell would.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Sequence

from rlgen import __version__
from rlgen.cli_common import Parser
from rlgen.cli_gen import add_gen_command
from rlgen.cli_rl import EXAMPLES, add_agent_commands, add_demos_command

__all__ = ["EXAMPLES", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The ``rlgen`` parser: the agents' commands (:mod:`rlgen.cli_rl`), ``gen`` (:mod:`rlgen.cli_gen`)
    and ``demos``, in the order its help lists them."""
    parser = Parser(
        prog="rlgen",
        description="Reinforcement learning with learned rewards (GAIL, VIME) and generative models.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    parser.add_argument("--version", action="version", version=f"rlgen {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_agent_commands(sub)
    add_gen_command(sub)
    add_demos_command(sub)
    p = sub.add_parser("convert", help="rewrite the pickles of runs written by an older rlgen as data (--trust)",
                       description="Rewrite a run's files of the kind older rlgen wrote (pickles, whose loading can "
                                   "run any code) in the formats rlgen reads now, in place. Only for files you trust.")
    p.add_argument("paths", nargs="+", metavar="PATH", help="a run directory, a checkpoint directory or a file")
    p.add_argument("--trust", action="store_true", help="you trust where the files came from (required: converting "
                                                       "opens the pickles)")
    p.set_defaults(func=cmd_convert)
    return parser


def cmd_convert(args: argparse.Namespace, extra: list[str]) -> int:
    from rlgen.cli_common import no_extra
    from rlgen.errors import UsageError

    no_extra(extra, "rlgen convert")
    if not args.trust:
        raise UsageError("rlgen convert opens pickles, which can run any code they hold: add --trust if you trust "
                         f"where {' '.join(args.paths)} came from")
    from rlgen.convert import convert

    for path in args.paths:
        convert(path)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from rlgen.errors import Interrupted, RlgenError, UsageError

    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
    except RlgenError as e:  # a malformed command line (rlgen.cli_common.Parser)
        print(f"rlgen: error: {e}", file=sys.stderr)
        return e.exit_code
    try:
        if args.command is None:
            if extra:
                raise UsageError(f"unrecognised arguments {' '.join(extra)}; see 'rlgen --help'")
            parser.print_help()
            return 0
        return args.func(args, extra)
    except Interrupted as e:  # not an error: say where the run stands and how to go on
        if argv is None:  # the program itself, not a caller in Python that keeps its own handlers
            _ignore_signals()
        print(f"rlgen: {e}", file=sys.stderr)
        return e.exit_code
    except RlgenError as e:
        if args.debug:
            raise
        print(f"rlgen: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:  # Ctrl-C outside a training loop (loading, evaluating): nothing to keep
        if args.debug:
            raise
        if argv is None:
            _ignore_signals()
        print("rlgen: interrupted", file=sys.stderr)
        return 128 + signal.SIGINT


def _ignore_signals() -> None:
    """Once a command has been stopped, a signal repeated while Python shuts down (which takes a
    while after torch) would end it with a KeyboardInterrupt instead of the status decided."""
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)


if __name__ == "__main__":
    sys.exit(main())
