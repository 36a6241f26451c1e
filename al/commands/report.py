"""`al report EXPERIMENT_DIR`: rebuild the markdown / HTML / CSV / PNG report of an experiment
(`al surrogate` or `al entropy` output, or a directory of `al run` runs for AL curves)."""

from __future__ import annotations

import argparse

from hwbench.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("experiment", metavar="EXPERIMENT_DIR", help="directory written by al surrogate / al entropy")
    parser.add_argument("--out", metavar="DIR", help="write the report here instead of EXPERIMENT_DIR")
    parser.add_argument("--diagnostics", action="store_true",
                        help="(re)compute the selection diagnostics of a surrogate experiment first (class "
                             "balance, redundancy, overlap with the deployment model's own picks; loads each "
                             "surrogate's checkpoint that made each cycle's picks, or its last one where only that was kept, "
                             "and the dataset) and show them beside the matrix")
    parser.add_argument("--json", action="store_true",
                        help="print only the aggregated table (mean, std, n per cell) as JSON")


def run(args: argparse.Namespace) -> int:
    from al.experiments.cell_runner import merge_partial
    from al.report import load_experiment, write_report
    from al.stats import aggregate, matrix_records
    from hwbench.console import emit, line

    missing = merge_partial(args.experiment)  # an experiment run as cells: merge what has finished
    if missing:
        line(f"{len(missing)} cell(s) not finished (the report covers the others): {', '.join(missing)}")
    if args.diagnostics:
        from al.selection_diagnostics import ensure
        from hwbench.console import progress

        try:
            with progress(transient=True) as bar:
                done = ensure(args.experiment, force=True, progress=bar)
        except (OSError, ValueError, KeyError, TypeError, StopIteration) as e:  # damaged runs: one line
            raise UserError(f"{args.experiment}: cannot compute selection diagnostics ({type(e).__name__}: {e}); "
                            "they need each surrogate run's selections.jsonl, config.toml and checkpoint") from None
        if done is None:
            line("no selection diagnostics: the directory holds no finished surrogate AL runs")
    written = write_report(args.experiment, args.out)
    if args.json:
        d = load_experiment(args.experiment)
        emit(matrix_records(aggregate(d.records)) if d.records else [], as_json=True)
        return 0
    for p in written.values():  # plain lines: a path is never folded mid-name, whatever the width
        line(f"wrote {p}", err=False)
    line(f"report: {written['markdown']}")
    return 0
