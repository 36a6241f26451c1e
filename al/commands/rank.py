"""`al rank CONFIG --out DIR`: rank the surrogates of a surrogate experiment before running it, from a
cheap probe (al.experiments.probe, al.surrogate_ranking); `--against EXP_DIR` checks the ranking
against that experiment's finished matrix; `al rank --pooled DIR [DIR ...]` pools several checks."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from hwbench.errors import UserError

RESULT = "ranking.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", metavar="CONFIG", nargs="?",
                        help="surrogate experiment TOML file or preset name (as for al surrogate)")
    parser.add_argument("--out", metavar="DIR", help="directory for ranking.json and ranking_check.png (created; must "
                                                     "be new or empty); with --pooled: pooled_check.json and its plot")
    parser.add_argument("--num-seeds", type=int, metavar="N", help="probe seeds 0..N-1 instead of the config's")
    parser.add_argument("--data-root", metavar="DIR", help="dataset directory; replaces [data] root")
    parser.add_argument("--against", metavar="EXP_DIR",
                        help="a finished `al surrogate` directory of the same config: rank correlation of each "
                             "signal with its matrix (Δ vs random) over every pair, with a bootstrap CI")
    parser.add_argument("--pooled", nargs="+", metavar="DIR",
                        help="instead of a probe: pool the checks of these `al rank --against` directories")
    parser.add_argument("--json", action="store_true", help="print only the result as JSON")


def _check(args: argparse.Namespace) -> None:
    out = Path(args.out) if args.out else None
    if out is not None and out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"--out {out} exists and is not an empty directory; choose a new one")
    if args.pooled:
        if args.config or args.against:
            raise UserError("--pooled takes only directories of earlier `al rank --against` runs (and --out for "
                            "its plot); drop CONFIG and --against")
        for d in args.pooled:
            res = Path(d) / RESULT
            try:
                data = json.loads(res.read_text(encoding="utf-8")) if res.is_file() else {}
            except (OSError, ValueError):
                raise UserError(f"{res} is damaged (not readable JSON); run `al rank` into a new directory") from None
            if not isinstance(data, dict) or not isinstance(data.get("matrix_records"), list) \
                    or not isinstance(data.get("signals"), list):
                raise UserError(f"{d} holds no checked ranking; run `al rank CONFIG --out {d} --against EXP_DIR` first")
        return
    if not args.config or out is None:
        raise UserError("give CONFIG and --out DIR (or --pooled DIR ...)")
    if args.against and not (Path(args.against) / "records.jsonl").is_file():
        raise UserError(f"--against {args.against} holds no records.jsonl; give a finished `al surrogate` directory")


def _verdict(sig: dict) -> str:
    """Plain words: a signal predicts only when the bootstrap CI excludes 0 and the permutation p < 0.05."""
    lo, hi = sig["ci95"]
    if not all(math.isfinite(v) for v in (sig["rho"], lo, hi, sig["p"])):
        return "undefined (a signal or the deltas are constant over the pairs)"
    if lo <= 0 <= hi:
        return "does not predict (CI includes 0)"
    if sig["p"] >= 0.05:
        return "inconclusive (the seed bootstrap excludes 0, the permutation test over pairs does not)"
    return "predicts (CI above 0)" if lo > 0 else "predicts the reverse (CI below 0)"


def _print_check(check: dict, as_json: bool) -> None:
    from hwbench.console import line

    if as_json:
        return
    line(f"check against the matrix: {check['n_pairs']} off-diagonal (surrogate, deployment) pairs")
    for p in check["pairs"]:
        line(f"  {p['deployment']} <- {p['surrogate']}: delta {p['delta']:+.2f}, overlap {p['overlap']:.3f}, "
             f"rank_corr {p['rank_corr']:+.3f}, separation {p['separation']:.3f}")
    for g, s in check.get("signals", {}).items():
        line(f"  {g}: Spearman rho = {s['rho']:+.2f}, 95 % bootstrap CI [{s['ci95'][0]:+.2f}, {s['ci95'][1]:+.2f}], "
             f"p = {s['p']:.3f} ({s['p_method']}) -> {_verdict(s)}")
    if check["n_pairs"] < 3:
        line("  fewer than 3 pairs: no correlation computed")


def run(args: argparse.Namespace) -> int:
    from al.surrogate_ranking import validate
    from hwbench.console import emit, line, progress
    from hwbench.io import atomic_write_json

    _check(args)
    if args.pooled:
        results = [json.loads((Path(d) / RESULT).read_text()) for d in args.pooled]
        check = validate([(r["signals"], r["matrix_records"]) for r in results])
        if args.out:
            from al.report.ranking_plot import plot_ranking_check

            Path(args.out).mkdir(parents=True, exist_ok=True)
            plot_ranking_check(check, Path(args.out) / "ranking_check.png")
            atomic_write_json(Path(args.out) / "pooled_check.json", check)
        if args.json:
            emit([check], as_json=True)
        _print_check(check, args.json)
        return 0
    from al.experiments.config import load_experiment
    from al.experiments.probe import run_probe
    from al.report.format import model_label
    from al.report.inputs import RECORD_TYPES, read_records

    cfg, notes = load_experiment(args.config, seeds=args.num_seeds, data_root=args.data_root)
    if not args.json:
        for note in notes:
            line(note)
    if args.against:
        from al.experiments.config import config_toml, without_seeds
        from al.runs.files import sha256_text

        info = Path(args.against) / "experiment.json"
        ran = json.loads(info.read_text()).get("config_sha256") if info.is_file() else None
        if ran != sha256_text(config_toml(without_seeds(cfg))):
            line(f"note: {args.against} ran another config than {args.config}; pairs are matched by model name")
        read_records(Path(args.against) / "records.jsonl", RECORD_TYPES)  # damaged: fail before the probe
    with progress(transient=True) as bar:
        result = run_probe(cfg, progress=bar)
    records = read_records(Path(args.against) / "records.jsonl", RECORD_TYPES) if args.against else None  # as of now
    if records is not None:
        result["against"] = str(args.against)
        result["matrix_records"] = records
        result["check"] = validate([(result["signals"], records)])
        if result["check"]["n_pairs"] == 0:
            raise UserError(f"no (surrogate, deployment) pair of the probe is in {args.against}'s matrix; "
                            "check it against the experiment of the same config")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    atomic_write_json(Path(args.out) / RESULT, result)
    if "check" in result:
        from al.report.ranking_plot import plot_ranking_check

        plot_ranking_check(result["check"], Path(args.out) / "ranking_check.png")
    if args.json:
        emit([{k: v for k, v in result.items() if k != "matrix_records"}], as_json=True)
        return 0
    rows = [{"deployment": model_label(d), "rank": i + 1, "surrogate": model_label(r["surrogate"]),
             "overlap": r["overlap"]} for d, rs in result["ranking"].items() for i, r in enumerate(rs)]
    emit(rows, as_json=False, title=f"surrogates ranked by overlap with the deployment model's own top-{result['k']} "
                                     f"(probe: {result['n_initial']} labelled, seeds {result['seeds']})",
         formats={"overlap": ".3f"})
    if "check" in result:
        _print_check(result["check"], False)
    line(f"probe: {result['probe_s']:.0f} s; result: {Path(args.out) / RESULT}")
    return 0
