"""`al run CONFIG_OR_PRESET --out DIR`: one active-learning run, resumable with `--resume`."""

from __future__ import annotations

import argparse

from hwbench.commands.aliases import renamed


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", nargs="?", metavar="CONFIG_OR_PRESET",
                        help="a TOML run config or a preset name (al/presets: smoke, smoke_digits, demo, ...); "
                             "with --resume defaults to DIR/config.toml")
    parser.add_argument("--preset", metavar="NAME", help="a preset name (same as giving it as CONFIG_OR_PRESET)")
    parser.add_argument("--out", metavar="DIR", help="run directory (created; nothing written elsewhere)")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run in DIR (or show a finished one)")
    parser.add_argument("--force", action="store_true", help="delete an existing run in DIR and start over")
    parser.add_argument("--strategy", help="override al.strategy")
    parser.add_argument("--model", help="override model.name (the scoring model / surrogate)")
    parser.add_argument("--seed", type=int, help="override seed")
    parser.add_argument("--torch-device", choices=("auto", "cpu", "cuda"), help="override device (where torch runs)")
    parser.add_argument("--data-root", metavar="DIR", help="override data.root (dataset directory)")
    renamed(parser, "--device", "--torch-device", choices=("auto", "cpu", "cuda"))  # --device is a device profile
    renamed(parser, "--root", "--data-root")
    parser.add_argument("--sync-bn", action=argparse.BooleanOptionalAction, default=None,
                        help="under torchrun: BatchNorm statistics over the global batch (override train.sync_bn; "
                             "default on for segmentation, off for classification)")
    parser.add_argument("--list-presets", action="store_true", help="print the shipped presets and exit")
    parser.add_argument("--json", action="store_true",
                        help="print only a JSON list of per-cycle records {cycle, labelled, fraction, metric, value, selected}")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from al.config import list_presets, load_config
    from hwbench.console import emit
    from hwbench.errors import UserError

    if args.list_presets:
        emit([{"preset": p} for p in list_presets()], as_json=args.json, title="presets")
        return 0
    if not args.out:
        raise UserError("--out DIR is required (the run directory)")
    if args.config and args.preset:
        raise UserError("give either CONFIG_OR_PRESET or --preset, not both")
    config = args.config or args.preset
    if config is None:
        saved = Path(args.out) / "config.toml"
        if not (args.resume and saved.is_file()):
            raise UserError("give a CONFIG_OR_PRESET (or --resume an existing run directory); "
                            f"presets: {', '.join(list_presets())}")
        config = saved
    overrides = {"strategy": args.strategy, "model": args.model, "seed": args.seed, "device": args.torch_device,
                 "root": args.data_root,
                 "sync_bn": args.sync_bn}
    cfg = load_config(config, overrides=overrides)

    from al import distributed
    from al.loop import run as al_run

    try:
        result = al_run(cfg, args.out, resume=args.resume, force=args.force, progress=not args.json)
    finally:
        distributed.teardown()
    if not distributed.launched_rank_main():  # under torchrun only rank 0 prints
        return 0
    if result.status != "completed":  # stderr: stdout stays the table or the JSON list
        from hwbench.console import line

        line(f"run {result.out_dir}: {result.status}")
    records = result.records()
    if args.json:
        emit(records, as_json=True)
        return 0
    from al.report.format import metric_label

    metric = metric_label(records[0]["metric"]) if records else "value"
    rows = [{"cycle": r["cycle"], "labelled": r["labelled"], "labelled %": 100 * r["fraction"],
             metric: r["value"], "new": len(r["selected"])} for r in records]
    title = f"{cfg.al.strategy} with {cfg.model.name} on {cfg.data.name}, seed {cfg.seed} -> {result.out_dir}"
    emit(rows, as_json=False, title=title, formats={"labelled %": ".1f", metric: ".2f"})
    return 0
