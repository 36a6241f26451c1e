"""`al surrogate CONFIG --out DIR`: surrogate × deployment experiment (paper Table 3) or, with
`--chain`, a generation chain; writes the report (markdown, HTML, CSV, PNG) into DIR at the end."""

from __future__ import annotations

import argparse
import json
import sys

from hwbench.commands.aliases import renamed


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", metavar="CONFIG",
                        help="experiment TOML file or preset name (surrogate_smoke, surrogate_demo; "
                             "the surrogate_ prefix may be left out)")
    parser.add_argument("--out", metavar="DIR", help="experiment directory (created; not needed with --plan)")
    parser.add_argument("--data-root", metavar="DIR", help="dataset directory; replaces [data] root (the paper "
                        "presets cityscapes_paper, ade20k_paper, imagenet_paper need it)")
    parser.add_argument("--plan", action="store_true",
                        help="print the cost (trainings, images seen, estimated GPU hours) and exit without "
                             "training; checks the dataset layout only")
    parser.add_argument("--device", default="a100_sxm", metavar="PROFILE",
                        help="--plan: device profile the GPU hours are estimated for (default a100_sxm; any "
                             "`hwbench profiles` name, host = this machine measured)")
    renamed(parser, "--plan-device", "--device")
    parser.add_argument("--precision", default=None, choices=("fp32", "fp16"),
                        help="training precision of the estimate (default fp16: AMP, or fp32 on a profile "
                             "without fp16 figures, e.g. host on a CPU)")
    parser.add_argument("--utilisation", type=float, default=0.4, metavar="U",
                        help="share of the device's dense peak a training run sustains (default 0.4)")
    parser.add_argument("--random-spread", type=int, metavar="N",
                        help="train only the random column at N labels (nested random sets, as a sweep's) and print "
                             "each deployment model's mean and seed sd: the noise floor to choose a recipe on; for "
                             "classification also the test-sampling sd of a paired difference (more test images "
                             "shrink it, more seeds the rest)")
    parser.add_argument("--json", action="store_true",
                        help="print only one JSON object: {records: [{deployment, surrogate, seed, metric, value}], "
                             "pairs: [paired comparison with random per pair], summary: {beat, tie, lose, ...}} "
                             "(--chain: {records}; --plan: the plan; --list-cells: a list of cells)")
    parser.add_argument("--chain", action="store_true",
                        help="run the generation chain ([chain] models; default: first surrogate, then the "
                             "deployment models) instead of the matrix")
    parser.add_argument("--num-seeds", type=int, metavar="N", help="use seeds 0..N-1 instead of the config's")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="sets",
                        help="change one config key before anything else, e.g. --set train.deployment.bf16=false "
                             "(VALUE as in TOML; a bare word is a string; repeatable; part of the experiment's "
                             "identity, so --resume needs the same --set items)")
    renamed(parser, "--seeds", "--num-seeds", type=int)
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted experiment in DIR (finished sub-runs are reused)")
    parser.add_argument("--jobs", type=int, metavar="N",
                        help="run the cells in N local worker processes, one torch thread each (default: "
                             "the available cores, at most 8; 1 = serial in this process); same records")
    parser.add_argument("--list-cells", action="store_true",
                        help="print every cell (AL run, deployment training) with its dependencies and status")
    parser.add_argument("--cell", metavar="ID", help="run one cell (its dependencies must be done), e.g. "
                        "al/s0/deeplabv3plus_resnet20")
    parser.add_argument("--shard", metavar="I/N", help="run every N-th cell starting at I (plus dependencies "
                        "nobody runs); N processes with I = 0..N-1 together run the whole matrix")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # a --jobs worker process


def run(args: argparse.Namespace) -> int:
    from al.experiments.config import load_experiment
    from al.experiments.surrogate import run_experiment
    from al.report.format import fmt_cell, metric_label, model_label
    from al.report.tables import COMPARISON_HEADER, comparison_rows, verdict_line
    from al.stats import RANDOM, aggregate, beats_random, best_per_row, compare_to_random
    from hwbench.console import emit, line, progress
    from hwbench.errors import UserError

    cfg, notes = load_experiment(args.config, seeds=args.num_seeds, data_root=args.data_root, sets=args.sets)
    if not args.json and not args.worker:
        for note in notes:
            line(note)
    if args.plan:
        from al.commands.plan_view import show_plan

        return show_plan(cfg, device=args.device, precision=args.precision, utilisation=args.utilisation,
                         as_json=args.json)
    if args.random_spread is not None:
        from al.experiments.spread import random_spread

        rows = random_spread(cfg, args.random_spread)
        emit(rows, as_json=args.json, title=f"random column at {args.random_spread} labels ({rows[0]['metric']} %)",
             formats={"mean": ".2f", "sd": ".2f", "disagree_pct": ".1f", "test_sd_pp": ".2f"})
        return 0
    if args.list_cells and not args.out:
        args.out = "EXPERIMENT_DIR"  # nothing is created; statuses as for a new directory
    if not args.out:
        raise UserError("al surrogate: give --out DIR (the experiment directory), or --plan to only print the cost")
    if args.list_cells or args.cell or args.shard or args.worker:
        from al.commands.cells_view import run_cells

        return run_cells(cfg, args)
    from al.experiments.cell_runner import default_jobs

    jobs = default_jobs() if args.jobs is None else args.jobs
    if jobs < 1:
        raise UserError(f"--jobs must be >= 1, got {jobs}")
    with progress(transient=True) as bar:
        result = run_experiment(cfg, args.out, resume=args.resume, chain=args.chain, progress=bar, jobs=jobs,
                                child_args=_child_args(args))
    records = result["chain"] if args.chain else result["records"]
    if args.json:
        out = {"records": records}
        if not args.chain and records:
            m = aggregate(records)
            br = beats_random(m)
            out["pairs"] = [c.to_dict() for c in compare_to_random(m)]
            out["summary"] = {"beat": br.wins, "tie": br.ties, "lose": br.losses, "pairs": br.pairs,
                              "mean_wins": br.mean_wins, "median_half_width": br.median_half_width,
                              "seeds_for_1pt": br.seeds_for_1pt}
        sweep = _sweep_json(args.out)
        if sweep:
            out["sweep"] = sweep
        from hwbench.provenance import provenance

        out["provenance"] = provenance()
        sys.stdout.write(json.dumps(out, allow_nan=False) + "\n")
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
        emit(rows, as_json=False, title=f"{metric_label(m.metric)}: deployment (rows) x surrogate (columns), "
                                        "mean ± std over seeds, * best surrogate")
        comp = comparison_rows(m)
        if comp:
            emit([dict(zip(COMPARISON_HEADER, r, strict=True)) for r in comp], as_json=False,
                 title="surrogate − random, paired by seed (Δ and 95 % CI in p.p.)", columns=COMPARISON_HEADER)
        br = beats_random(m)
        line(verdict_line(m))
        if br.median_half_width is not None:
            line(f"median 95 % CI half-width: {br.median_half_width:.2f} p.p.; seeds to resolve 1 p.p. "
                 f"(median over pairs): {br.seeds_for_1pt}")
    _show_sweep(args.out)
    line(f"report: {args.out}/report.md")
    return 0


def _show_sweep(out: str) -> None:
    """The budget sweep's tables (Δ per budget and pair, AULC, crossover) when the experiment has one."""
    from pathlib import Path

    from al.report.sweep import DELTA_HEADER, SUMMARY_HEADER, delta_rows, summary_rows
    from al.sweep import spread_warnings, sweep_pairs
    from hwbench.console import emit, line
    from hwbench.io import read_jsonl

    path = Path(out) / "sweep.jsonl"
    records = list(read_jsonl(path)) if path.is_file() else []
    pairs = sweep_pairs(records) if records else []
    if not pairs:
        return
    emit([dict(zip(DELTA_HEADER, r, strict=True)) for r in delta_rows(records, pairs)], as_json=False,
         title="budget sweep: surrogate − random, paired by seed (p.p.)", columns=DELTA_HEADER)
    emit([dict(zip(SUMMARY_HEADER, r, strict=True)) for r in summary_rows(pairs)], as_json=False,
         title="area under the learning curve and crossover", columns=SUMMARY_HEADER)
    for w in spread_warnings(records):
        line(f"warning: {w}")


def _child_args(args: argparse.Namespace) -> list[str]:
    """The arguments that name this experiment, for `--cell` child processes."""
    out = [args.config, "--out", args.out]
    if args.num_seeds is not None:
        out += ["--num-seeds", str(args.num_seeds)]
    if args.data_root:
        out += ["--data-root", args.data_root]
    for item in args.sets:
        out += ["--set", item]
    return out


def _sweep_json(out: str) -> list[dict]:
    """Per pair: Δ per budget with CI, ΔAULC and the crossover (JSON)."""
    from pathlib import Path

    from al.sweep import sweep_pairs
    from hwbench.io import read_jsonl

    path = Path(out) / "sweep.jsonl"
    if not path.is_file():
        return []
    res = []
    for p in sweep_pairs(list(read_jsonl(path))):
        c = p.crossover
        res.append({"deployment": p.deployment, "surrogate": p.surrogate,
                    "budgets": [{"budget": b, **d.to_dict()} for b, d in zip(p.budgets, p.diffs, strict=True)],
                    "aulc": p.aulc.to_dict(),
                    "crossover": {"budget": c.budget, "bootstrap_low": c.low, "bootstrap_high": c.high,
                                  "share_never": c.share_never, "share_before": c.share_before}})
    return res
