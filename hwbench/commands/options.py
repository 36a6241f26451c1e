"""Option rules shared by several commands: one meaning per flag, and old spellings that still work."""

from __future__ import annotations

import argparse

from hwbench.errors import UserError


def check_mode_flags(args: argparse.Namespace) -> None:
    """`--mode paper` divides by each device's published TOPS figure, whose precision and engine are
    fixed by the profile (`paper_precision`, `paper_engine`): a --precision/--engine/--sparse given with
    it would be silently ignored, so it is refused instead."""
    if args.mode != "paper":
        return
    given = [f"--{k} {getattr(args, k)}" for k in ("precision", "engine") if getattr(args, k, None) is not None]
    if getattr(args, "sparse", False):
        given.append("--sparse")
    if given:
        raise UserError(f"{' '.join(given)} has no effect in --mode paper (it divides GMACs by each device's paper "
                        "TOPS figure at that figure's own precision, e.g. fp16 on tx2); drop it or use "
                        "--mode peak or roofline")


def deprecated(old: str, new: str) -> None:
    """One line on stderr for an old spelling that still works."""
    from hwbench.console import line

    line(f"warning: {old} is deprecated; use {new}")


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
