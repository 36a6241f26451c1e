"""`--score` / `--aggregation` for the commands that cost a model (latency, deploy, measure).

Kept apart from `hwbench.score_graph` so that building the parsers does not import torch."""

from __future__ import annotations

import argparse


def add_score_arguments(parser: argparse.ArgumentParser) -> None:
    """The scoring graph (`hwbench export --score`) is costed instead of the bare model."""
    parser.add_argument("--score", default=None,
                        help="cost the scoring graph instead: the model plus its entropy | margin | llal score "
                             "and embedding, as `hwbench export --score` writes it")
    parser.add_argument("--aggregation", default="mean", help="with --score: mean (default) | sum | max | minmax")
