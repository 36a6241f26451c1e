"""Reports of surrogate experiments and entropy analyses: markdown (GitHub), HTML, CSV, PNG.

`write_report(exp_dir)` reads what an experiment directory holds and renders every section it
has data for:

- `records.jsonl`  surrogate × deployment records -> the paper's Table 3 layout, beats-random count,
                   best surrogate per row, paired differences against random;
- `chain.jsonl`    generation-chain records;
- `deploy.json`    which surrogates were deployable on the old fleet and why (device, latency_ms, budget_ms);
- `entropy.json` + `entropy_scores.npz`  entropy histograms and mean-entropy ratios (paper Fig. 4);
- run directories (`metrics.jsonl`) anywhere below -> AL curves (paper Fig. 3);
- `experiment.toml` / `config.toml`, `timing.json`, `meta.json` -> config, seeds, timing.

Modules: `load` (read a directory), `tables` (rows and sentences), `format` (labels, numbers, colours),
`sections` (the report model's sections, one function each: add one with `register`), `plots` (PNG),
`write` (all files). The model is rendered to report.md and to a self-contained report.html by
`hwbench.report.render_md` / `render_html`, so the two always hold the same sections, tables and figures.
"""

from __future__ import annotations

from al.report.load import load_experiment
from al.report.write import write_report

__all__ = ["load_experiment", "write_report"]
