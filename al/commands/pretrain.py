"""`al pretrain [MODEL ...]`: train each backbone once on crops of the embedded drives and cache
its torchvision-format checkpoint (`$CACHE/pretrain/`: $HWBENCH_CACHE_DIR, else $XDG_CACHE_HOME/hwbench, else ~/.cache/hwbench)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("models", nargs="*", metavar="MODEL",
                        help="backbones or their deeplabv3plus_ models (default: the demo's, resnet20 "
                             "mobilenetv3_small resnet18)")
    parser.add_argument("--all", action="store_true", help="every zoo backbone (resnet20, mobilenetv3_small, "
                                                           "resnet18, resnet34, resnet50, xception65)")
    parser.add_argument("--seed", type=int, default=0, help="pre-training seed (default 0; part of the cache key)")
    parser.add_argument("--jobs", type=int, default=None, metavar="N",
                        help="backbones trained at once, one process and one thread each (default: CPU cores)")
    parser.add_argument("--force", action="store_true", help="retrain even when the cache has the checkpoint")
    parser.add_argument("--cache-dir", default=None, metavar="DIR",
                        help="cache root (default $HWBENCH_CACHE_DIR, else $XDG_CACHE_HOME/hwbench, else ~/.cache/hwbench); files go to DIR/pretrain/")
    parser.add_argument("--json", action="store_true", help="print the cache entries as JSON")


def run(args: argparse.Namespace) -> int:
    from al.pretrain import BACKBONES, DEFAULT_BACKBONES, backbone_of, pretrain
    from hwbench.console import emit, line, progress
    from hwbench.errors import UserError

    if args.all and args.models:
        raise UserError("give MODEL names or --all, not both")
    if args.seed < 0:
        raise UserError(f"--seed must be a non-negative integer, got {args.seed}")
    if args.jobs is not None and args.jobs < 1:
        raise UserError(f"--jobs must be >= 1, got {args.jobs}")
    models = BACKBONES if args.all else (args.models or DEFAULT_BACKBONES)
    names = list(dict.fromkeys(backbone_of(m) for m in models))  # bad names fail before any work
    with progress(transient=True) as bar:
        task = bar.add_task("pretraining backbones", total=len(names))
        entries = pretrain(names, seed=args.seed, cache_dir=args.cache_dir, jobs=args.jobs, force=args.force,
                           on_done=lambda _: bar.advance(task))
    if args.json:
        emit(entries, as_json=True)
        return 0
    emit([{"backbone": e["backbone"], "held-out top-1 %": e["heldout_top1"], "cpu_s": e["cpu_seconds"],
           "cached": e["cached"], "sha256": e["sha256"][:12]} for e in entries],
         as_json=False, title="pre-trained backbones (class-balanced crops of the pretrain drives, 8 classes)")
    for e in entries:
        line(f"{e['backbone']}: {e['path']}")
    return 0
