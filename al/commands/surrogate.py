"""`al surrogate CONFIG --out DIR`: surrogate × deployment experiment (paper Table 3) or, with
`--chain`, a generation chain; writes the report (markdown, HTML, CSV, PNG) into DIR at the end."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", metavar="CONFIG",
                        help="experiment TOML file or preset name (surrogate_smoke, surrogate_demo; "
                             "the surrogate_ prefix may be left out)")
    parser.add_argument("--out", required=True, metavar="DIR", help="experiment directory (created)")
    parser.add_argument("--json", action="store_true",
                        help="print only the records {deployment, surrogate, seed, metric, value} as JSON")
    parser.add_argument("--chain", action="store_true",
                        help="run the generation chain ([chain] models; default: first surrogate, then the "
                             "deployment models) instead of the matrix")
    parser.add_argument("--seeds", type=int, metavar="N", help="use seeds 0..N-1 instead of the config's")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted experiment in DIR (finished sub-runs are reused)")


def run(args: argparse.Namespace) -> int:
    from al.experiments.surrogate import run_experiment
    from al.report.format import fmt_cell, model_label
    from al.stats import RANDOM, aggregate, beats_random, best_per_row
    from hwbench.console import emit, line, progress

    with progress(transient=True) as bar:
        result = run_experiment(args.config, args.out, resume=args.resume, chain=args.chain, seeds=args.seeds,
                                progress=bar)
    records = result["chain"] if args.chain else result["records"]
    if args.json:
        emit(records, as_json=True)
        return 0
    if args.chain:
        records = [{**r, "deployment": model_label(r["deployment"]), "surrogate": model_label(r["surrogate"])}
                   for r in records]
        emit(records, as_json=False, title="generation chain (value in %)",
             columns=["generation", "deployment", "surrogate", "seed", "labelled", "metric", "value"],
             formats={"value": ".2f"})
    else:
        m = aggregate(records)
        best = best_per_row(m)
        rows = []
        for r in m.rows:
            row = {"deployment": model_label(r)}
            for c in m.columns:
                cell = m.cell(r, c)
                text = "–" if cell is None else fmt_cell(cell.mean, cell.std)
                row[model_label(c) if c != RANDOM else RANDOM] = text + (" *" if best.get(r) == c else "")
            rows.append(row)
        emit(rows, as_json=False, title=f"{m.metric} (%): deployment (rows) x surrogate (columns), "
                                        "mean ± std over seeds, * best surrogate")
        br = beats_random(m)
        line(f"surrogate/deployment pairs beating random (diagonal excluded): {br.wins} of {br.pairs}")
    line(f"report: {args.out}/report.md")
    return 0
