"""The CLI skeleton both `hwbench` and `al` use.

Each subcommand lives in its own module (imported only when that subcommand runs) exposing
    def add_arguments(parser: argparse.ArgumentParser) -> None
    def run(args: argparse.Namespace) -> int | None
Command modules import heavy packages (torch, onnxruntime, ...) inside `run`, not at import time.
Bad input raises `UserError`: one line `error: ...` on stderr, exit status 2, no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Mapping, Sequence

from hwbench.console import setup_logging
from hwbench.errors import UserError


class _Terminated(KeyboardInterrupt):
    """SIGTERM (what schedulers and `kill` send), handled exactly like Ctrl-C."""

    signum = signal.SIGTERM


def _on_sigterm(signum: int, frame: object) -> None:
    raise _Terminated()


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad usage as a one-line `UserError` instead of usage + exit."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UserError(f"{self.prog}: {message}")


def make_main(prog: str, description: str,
              commands: Mapping[str, tuple[str, str]]) -> Callable[[Sequence[str] | None], int]:
    """Build `main(argv)` from a mapping of subcommand name -> (module path, one-line help)."""

    def main(argv: Sequence[str] | None = None) -> int:
        on_main = threading.current_thread() is threading.main_thread()
        previous = signal.getsignal(signal.SIGTERM) if on_main else None
        if previous == signal.SIG_DFL:  # never replace a handler someone else installed
            signal.signal(signal.SIGTERM, _on_sigterm)
        try:
            return _main(argv)
        except KeyboardInterrupt as e:  # also while the command module is being imported
            print("interrupted", file=sys.stderr)
            return 128 + int(getattr(e, "signum", signal.SIGINT))
        finally:
            if previous == signal.SIG_DFL:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)

    def _main(argv: Sequence[str] | None) -> int:
        argv = list(sys.argv[1:] if argv is None else argv)
        chosen = next((a for a in argv if not a.startswith("-")), None)
        parser = _Parser(prog=prog, description=description)
        parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
        sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
        module = None
        for name, (path, help_) in commands.items():
            p = sub.add_parser(name, help=help_, description=help_)
            if name == chosen:
                module = importlib.import_module(path)
                module.add_arguments(p)
        try:
            args = parser.parse_args(argv)
            if args.command is None or module is None:
                parser.print_help()
                return 2
            setup_logging(args.verbose)
            return int(module.run(args) or 0)
        except UserError as e:
            msg = str(e).splitlines()[0] if str(e) else "bad input"
            print(f"error: {msg}", file=sys.stderr)
            return 2
        except OSError as e:  # a path given on the command line cannot be used (a file where a directory is needed, ...)
            where = f"{e.filename}: " if e.filename else ""
            why = e.strerror or str(e)
            if isinstance(e, (FileExistsError, NotADirectoryError)) and not os.path.isdir(e.filename or ""):
                why = "exists and is not a directory" if os.path.exists(e.filename or "") else "not a directory"
            print(f"error: {where}{why}; check the path", file=sys.stderr)
            return 2

    return main
