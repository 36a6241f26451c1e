"""`al fleet CONFIG --out DIR`: fleet simulation — each device generation scores frames at camera rate
with its surrogate's latency, keeps them under an upload budget; recall of the offline top-k per policy,
and the deployment model trained on what the fleet sent vs server-side pool AL and random upload."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", metavar="CONFIG",
                        help="fleet TOML file or preset name (fleet_demo; the fleet_ prefix may be left out)")
    parser.add_argument("--out", required=True, metavar="DIR", help="run directory (created; shards share it)")
    parser.add_argument("--shard", metavar="I/N",
                        help="simulate only the devices numbered I mod N and write DIR/shards/ (merge with --merge)")
    parser.add_argument("--merge", action="store_true",
                        help="merge a complete set of DIR/shards/ and write the tables, training and report")
    parser.add_argument("--json", action="store_true", help="print only the summary records as JSON")


def run(args: argparse.Namespace) -> int:
    from al.fleet.run import run_fleet
    from hwbench.console import emit, line, progress

    with progress(transient=True) as bar:
        task = bar.add_task("fleet", total=None)
        result = run_fleet(args.config, args.out, shard=args.shard, merge_shards=args.merge,
                           progress=lambda text: bar.update(task, description=text))
    if "shard" in result:
        line(f"shard {result['shard']}: {result['devices']} devices simulated in "
             f"{result['timing']['simulate_s']:.1f} s -> {result['path']}")
        return 0
    summary = result["summary"]
    if args.json:
        emit(summary, as_json=True)
        return 0
    rows = [{"generation": r["generation"], "surrogate": r["surrogate"].replace("deeplabv3plus_", ""),
             "latency": f"{r['effective_ms']:.1f} ms {r['latency_source']}", "scored %": r["scored_pct"],
             "policy": r["policy"], "kept/day": r["kept_per_day"], "up/day": r["uploaded_per_day"],
             "recall": r["recall"], "±95%": r["recall_ci95"]} for r in summary]
    emit(rows, as_json=False, title=f"{result['devices']:,} devices: per device-day means; recall of the offline "
         "top-k under the same budget", formats={"scored %": ".1f", "kept/day": ".1f", "up/day": ".1f",
                                                  "recall": ".3f", "±95%": ".3f"})
    for r in summary:
        rec = "–" if r["recall"] is None else f"{r['recall']:.3f}"
        half = "" if r["recall_ci95"] is None else f" ± {r['recall_ci95']:.3f}"
        line(f"recall {rec}{half}  {r['generation']} / {r['surrogate']} / {r['policy']}")
    line(f"simulated {result['devices']:,} devices in {result['timing']['simulate_s']:.1f} s")
    line(f"report: {args.out}/report.md")
    return 0
