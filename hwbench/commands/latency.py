"""`hwbench latency`: theoretical latency (ms) in paper, peak or roofline mode."""

from __future__ import annotations

import argparse

from hwbench.commands.score_options import add_score_arguments
from hwbench.resolve import DEVICE_HELP, MODEL_HELP


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("models", nargs="*", metavar="MODEL",
                        help=f"{MODEL_HELP} (default: the paper's five DeepLabv3+ models)")
    parser.add_argument("--device", action="extend", nargs="+", metavar="DEVICE",
                        help=f"{DEVICE_HELP} (default: tx2 xavier_nx orin_nx)")
    parser.add_argument("--mode", choices=("paper", "peak", "roofline"), default="roofline",
                        help="roofline: per-layer max(compute, memory) (default); peak: 2*MACs / peak; "
                             "paper: GMACs / the paper's TOPS figure (Table 2; no --precision/--engine)")
    parser.add_argument("--precision", choices=("fp32", "fp16", "int8"), default=None,
                        help="precision for peak/roofline and memory (default: fp16)")
    parser.add_argument("--engine", choices=("gpu", "dla", "gpu+dla", "cpu"), default=None,
                        help="engine for peak/roofline (default: gpu; `host` has cpu)")
    parser.add_argument("--sparse", action="store_true", help="use the sparse peak figure")
    parser.add_argument("--no-fuse", action="store_true",
                        help="roofline: also charge norm/activation/element-wise layers (unfused runtime)")
    parser.add_argument("--input", metavar="HxW",
                        help="input height x width (default: the model's own: the zoo's, the ONNX file's static "
                             "shape, the callable's input_hw)")
    parser.add_argument("--batch", type=int, default=None, help="batch size N (default: the model's own, else 1)")
    parser.add_argument("--num-classes", type=int, default=None,
                        help="classes of the head (default: the model's own: 19 for DeepLabv3+, 1000 for ImageNet classifiers)")
    parser.add_argument("--json", action="store_true", help="print only a JSON list of records")
    add_score_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from hwbench.commands.options import check_mode_flags, costed_counts
    from hwbench.console import emit
    from hwbench.count import unique_labels
    from hwbench.latency.theoretical import latency
    from hwbench.profiles import PAPER_DEVICES, load_profile

    check_mode_flags(args)
    devices = [load_profile(d) for d in (args.device or PAPER_DEVICES)]
    counts = costed_counts(args)
    estimates = [latency(c, d, mode=args.mode, precision=args.precision or "fp16", engine=args.engine or "gpu", sparse=args.sparse,
                         fuse=not args.no_fuse) for d in devices for c in counts]
    if args.json:
        emit([e.record() for e in estimates], as_json=True)
        return 0
    labels = dict(zip([c.model for c in counts], unique_labels([c.model for c in counts]), strict=True))
    rows = [{"model": labels[e.model], "input": "x".join(map(str, e.input)), "device": e.device, "mode": e.mode,
             "precision/engine": f"{e.precision}/{e.engine}" + ("/sparse" if e.sparse else ""),
             "GMACs": e.macs / 1e9, "TOPS": e.tops, "latency (ms)": e.latency_ms, "fps": e.fps}
            for e in estimates]
    if args.mode == "roofline":
        for row, e in zip(rows, estimates, strict=True):
            row["compute (ms)"], row["memory (ms)"] = e.compute_ms, e.memory_ms
    emit(rows, as_json=False, title=f"theoretical latency, mode={args.mode}, at each model's input (N x C x H x W)",
         formats={"GMACs": ".2f", "latency (ms)": ".2f", "fps": ".1f", "compute (ms)": ".2f",
                  "memory (ms)": ".2f"})
    return 0
