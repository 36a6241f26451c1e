"""The CLI skeleton both `hwbench` and `al` use.

Each subcommand lives in its own module (imported only when that subcommand runs) exposing
    def add_arguments(parser: argparse.ArgumentParser) -> None
    def run(args: argparse.Namespace) -> int | None
Command modules import heavy packages (torch, onnxruntime, ...) inside `run`, not at import time.
Bad input raises `UserError`: one line `error: ...` on stderr, exit status 2, no traceback.
Nothing escapes as a traceback: Ctrl-C or SIGTERM at any point (even while a command's imports
load) exits 130 / 143 with `interrupted`; running out of memory is a one-line error (exit 2); any
other exception is a bug of ours, reported in one line (exit 1) that says so, with the traceback
under `-v`. Only the standard library is imported before `main` runs, so start-up has no window in
which Ctrl-C could print a traceback.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Mapping, Sequence
from types import ModuleType

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
            if argv is None and on_main:  # the command is over: a Ctrl-C now would only break the exit
                signal.signal(signal.SIGINT, signal.SIG_IGN)  # handlers (torch's) with a traceback

    def _main(argv: Sequence[str] | None) -> int:
        verbose = 0
        try:
            argv = list(sys.argv[1:] if argv is None else argv)
            verbose = sum(a.count("v") for a in argv if a.startswith("-") and set(a[1:]) == {"v"}) + \
                argv.count("--verbose")
            if argv[:1] == ["--print-completion"] or argv[:1] and argv[0].startswith("--print-completion="):
                return _print_completion(prog, description, commands, argv)
            chosen = next((a for a in argv if not a.startswith("-")), None)
            parser, modules = build_parser(prog, description, commands, only=[chosen] if chosen else [])
            module = modules.get(chosen or "")
            args = parser.parse_args(argv)
            if args.command is None or module is None:
                parser.print_help()
                return 2
            from hwbench.console import setup_logging

            setup_logging(args.verbose)
            return int(module.run(args) or 0)
        except UserError as e:
            return _fail(str(e).splitlines()[0] if str(e) else "bad input")
        except OSError as e:  # a path given on the command line cannot be used (a file where a directory is needed, ...)
            where = f"{e.filename}: " if e.filename else ""
            if e.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
                return _fail(f"{where}no space left on the device (or quota exceeded); free some space or write "
                             "to another directory, then rerun (--resume where the command has it)")
            why = e.strerror or str(e)
            if isinstance(e, (FileExistsError, NotADirectoryError)) and not os.path.isdir(e.filename or ""):
                why = "exists and is not a directory" if os.path.exists(e.filename or "") else "not a directory"
            return _fail(f"{where}{why}; check the path")
        except MemoryError:
            return _fail("out of memory; use a smaller input size, batch size or model (in the command's flags "
                         "or its config file)")
        except Exception as e:  # noqa: BLE001 - a bug of ours: one line, the traceback only when asked for
            if verbose:
                traceback.print_exc()
            first = (str(e).splitlines() or [""])[0]
            sys.stderr.write(f"error: internal error ({type(e).__name__}: {first}); this is a bug in {prog}, "
                             "please report it with the command line (rerun with -v for the traceback)\n")
            return 1

    return main


def build_parser(prog: str, description: str, commands: Mapping[str, tuple[str, str]],
                 only: Sequence[str] | None = None) -> tuple[argparse.ArgumentParser, dict[str, ModuleType]]:
    """The whole parser: every subcommand listed, the options of those in `only` (all when None) added.

    Returns the parser and the imported command modules by name. Only the named commands' modules are
    imported, so `main` pays for one; the CLI reference and the docs check build them all."""
    parser = _Parser(prog=prog, description=description)
    parser.add_argument("--version", action="version", version=f"{prog} {_version()}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    parser.add_argument("--print-completion", choices=SHELLS, metavar="{bash,zsh}",
                        help=f"print a shell completion script and exit, e.g. `eval \"$({prog} --print-completion "
                             "bash)\"` in ~/.bashrc")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    modules: dict[str, ModuleType] = {}
    for name, (path, help_) in commands.items():
        p = sub.add_parser(name, help=help_, description=help_)
        if only is None or name in only:
            module = importlib.import_module(path)
            module.add_arguments(p)
            modules[name] = module
    return parser, modules


SHELLS = ("bash", "zsh")


def _print_completion(prog: str, description: str, commands: Mapping[str, tuple[str, str]],
                      argv: Sequence[str]) -> int:
    """`PROG --print-completion bash|zsh`: a completion script for every command and flag (shtab)."""
    shell = argv[0].split("=", 1)[1] if "=" in argv[0] else (argv[1] if len(argv) > 1 else "")
    if shell not in SHELLS:
        raise UserError(f"--print-completion takes one of: {', '.join(SHELLS)} (got {shell or 'nothing'})")
    try:
        import shtab
    except ImportError:
        raise UserError("shell completion needs shtab; install it with: pip install shtab") from None
    parser, _ = build_parser(prog, description, commands)
    sys.stdout.write(shtab.complete(parser, shell=shell))
    return 0


def _fail(message: str) -> int:
    sys.stderr.write(f"error: {message}\n")
    sys.stderr.flush()
    return 2


def _version() -> str:
    """The installed distribution's version (the package's own when run from a checkout)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("hwbench")
    except PackageNotFoundError:
        from hwbench import __version__

        return __version__
