"""`hwbench deploy`: which model meets a latency budget (and fits in memory) on which device."""

from __future__ import annotations

import argparse

from hwbench.commands.score_options import add_score_arguments
from hwbench.resolve import DEVICE_HELP, MODEL_HELP


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("models", nargs="*", metavar="MODEL",
                        help=f"{MODEL_HELP} (default: the paper's five DeepLabv3+ models)")
    parser.add_argument("--device", action="extend", nargs="+", metavar="DEVICE",
                        help=f"{DEVICE_HELP} (default: tx2 xavier_nx orin_nx)")
    budget = parser.add_mutually_exclusive_group(required=True)
    budget.add_argument("--fps", type=float, help="target frame rate; budget_ms = 1000 / fps")
    budget.add_argument("--budget-ms", type=float, help="latency budget in ms")
    parser.add_argument("--share", type=float, default=1.0,
                        help="fraction of the device the model may use, in (0, 1]: latency is divided by it, "
                             "memory budget multiplied by it (default: 1.0)")
    parser.add_argument("--mode", choices=("paper", "peak", "roofline"), default="roofline",
                        help="roofline: per-layer max(compute, memory) (default); peak: 2*MACs / peak; "
                             "paper: GMACs / the paper's TOPS figure (Table 2; no --precision/--engine)")
    parser.add_argument("--precision", choices=("fp32", "fp16", "int8"), default=None,
                        help="precision for peak/roofline and memory (default: fp16)")
    parser.add_argument("--engine", choices=("gpu", "dla", "gpu+dla", "cpu"), default=None,
                        help="engine for peak/roofline (default: gpu; `host` has cpu)")
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
    from hwbench.deploy import deploy, resolve_budget

    check_mode_flags(args)
    resolve_budget(fps=args.fps, budget_ms=args.budget_ms, share=args.share)  # bad budgets fail before counting
    counts = costed_counts(args)
    verdicts = deploy(counts, args.device or None, mode=args.mode, fps=args.fps,
                      budget_ms=args.budget_ms, share=args.share, precision=args.precision or "fp16", engine=args.engine or "gpu")
    labels = dict(zip([c.model for c in counts], unique_labels([c.model for c in counts]), strict=True))
    if args.json:
        emit([v.record() for v in verdicts], as_json=True)
        return 0
    inputs = {c.model: "x".join(map(str, c.input)) for c in counts}
    rows = [{"model": labels[v.model], "input": inputs[v.model], "device": v.device, "precision/engine": f"{v.precision}/{v.engine}",
             "latency (ms)": v.latency_ms, "latency/share (ms)": v.effective_latency_ms, "budget (ms)": v.budget_ms,
             "memory (GB)": v.memory_used_gb, "memory budget (GB)": v.memory_budget_gb,
             "headroom": v.headroom, "deployable": "yes" if v.deployable else "no"} for v in verdicts]
    target = f"{args.fps:g} fps" if args.fps is not None else f"{args.budget_ms:g} ms"
    emit(rows, as_json=False, title=f"deployability at {target}, share {args.share:g}, mode={args.mode} "
                                    "(headroom = budget / (latency/share) - 1)",
         formats={"latency (ms)": ".2f", "latency/share (ms)": ".2f", "budget (ms)": ".1f", "memory (GB)": ".2f",
                  "memory budget (GB)": ".1f", "headroom": "+.2f"})
    return 0
