"""The hardware report (`hwbench report`): Table 2 reproduced, honest latency modes beside it,
backbone/head split, deployability matrices, and plain-words notes on what the numbers mean.

    report(out_dir, *, models, devices, input_shape, budgets, extra_sections) -> [Path] (report.md first)

Modules: `paper` (the published figures and shared column choices), `build` (computations, CSVs and
the whole-directory write), `figures` (PNG heatmaps), `markdown` (report.md).
"""

from hwbench.report.build import ReportContext, SectionFn, report
from hwbench.report.paper import (
    DEFAULT_BUDGETS,
    HONEST_PRECISION,
    PAPER_GOPS,
    PAPER_LATENCY_MS,
    PAPER_TABLE2_SOURCE,
    PAPER_TOPS,
    pct_diff,
)

__all__ = ["DEFAULT_BUDGETS", "HONEST_PRECISION", "PAPER_GOPS", "PAPER_LATENCY_MS", "PAPER_TABLE2_SOURCE",
           "PAPER_TOPS", "ReportContext", "SectionFn", "pct_diff", "report"]
