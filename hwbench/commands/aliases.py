"""Old option spellings that keep working: `renamed(parser, "--old", "--new")` (one deprecation line)."""

from __future__ import annotations

import argparse

from hwbench.commands.options import deprecated


class _Renamed(argparse.Action):
    """An old option spelling: stores into the new option's destination, with one deprecation line."""

    def __init__(self, option_strings: list[str], dest: str, new: str = "", **kw: object) -> None:
        self.new = new
        super().__init__(option_strings, dest, **kw)  # type: ignore[arg-type]

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:
        deprecated(f"{option_string}", self.new)
        setattr(namespace, self.dest, values)


def renamed(parser: argparse.ArgumentParser, old: str, new: str, **kw: object) -> None:
    """Keep `old` working as a hidden alias of the option `new` (same destination, same type/choices),
    printing `warning: OLD is deprecated; use NEW` when used. Declare `new` first."""
    dest = next(a.dest for a in parser._actions if new in a.option_strings)  # argparse has no public lookup
    parser.add_argument(old, dest=dest, action=_Renamed, new=new, help=argparse.SUPPRESS,
                        default=argparse.SUPPRESS, **kw)  # type: ignore[arg-type]
