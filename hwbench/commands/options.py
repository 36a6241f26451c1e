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


def costed_counts(args: argparse.Namespace) -> list:
    """`CountResult`s of the MODEL arguments (any of the four forms, default the paper's five) at each model's own
    input unless --input/--batch are given; with --score, of their scoring graphs (zoo models only)."""
    from hwbench.count import PAPER_MODELS, count, count_ref
    from hwbench.resolve import resolve_all
    from hwbench.score_graph import check_score_arguments, scoring_model

    refs = resolve_all(args.models or list(PAPER_MODELS))
    shapes = [r.input_shape(args.input, getattr(args, "batch", None)) for r in refs]
    if args.score is None:
        return [count_ref(r, s, num_classes=args.num_classes) for r, s in zip(refs, shapes, strict=True)]
    check_score_arguments(args.score, args.aggregation)
    other = next((r for r in refs if r.kind != "zoo"), None)
    if other is not None:
        raise UserError(f"--score wraps a zoo model with its score; {other.spec} is not one (export the scoring "
                        "graph yourself and pass the ONNX file)")
    graphs = [scoring_model(r.name, args.score, args.aggregation, num_classes=args.num_classes, meta=True) for r in refs]
    return [count(g, s) for g, s in zip(graphs, shapes, strict=True)]
