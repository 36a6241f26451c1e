"""The hardware report (`hwbench report`): Table 2 reproduced, honest latency modes beside it,
backbone/head split, deployability matrices, and plain-words notes on what the numbers mean.

    report(out_dir, *, models, devices, input_shape, budgets, extra_sections) -> [Path] (report.md first)

Modules: `paper` (the published figures and shared column choices), `build` (computations, CSVs and
the whole-directory write), `sections` (the hardware report as a report model), `figures` (PNG heatmaps).
Shared by every report of both packages: `doc` (the report model: sections, tables, figures),
`render_md` / `render_html` (markdown; one self-contained HTML page), `figstyle` (legible figures).
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
