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
