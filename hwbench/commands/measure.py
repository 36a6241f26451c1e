"""`hwbench measure MODEL`: measured latency with torch, onnxruntime or tensorrt.

Warm-up by time (--warmup-ms), then --iters timed single inferences; prints min / median / mean /
p90 / p99 / std / CV (nearest-rank percentiles, as trtexec). `--out DIR` appends the record to
DIR/measurements.jsonl.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="zoo model name (see `hwbench models`)")
    parser.add_argument("--backend", default="torch", help="torch | onnxruntime | tensorrt (default torch)")
    parser.add_argument("--input", default="512x1024", help="input HxW (default 512x1024)")
    parser.add_argument("--batch", type=int, default=1, help="batch size N (default 1)")
    parser.add_argument("--precision", default="fp32", help="fp32 | fp16 | int8 (default fp32)")
    parser.add_argument("--warmup-ms", type=float, default=500.0, help="warm-up wall time in ms (default 500)")
    parser.add_argument("--iters", type=int, default=50, help="timed iterations (default 50)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (torch / onnxruntime intra-op)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda (default cpu)")
    parser.add_argument("--cuda-graphs", action="store_true", help="torch on CUDA: replay a captured CUDA graph")
    parser.add_argument("--channels-last", action="store_true", help="torch: NHWC memory format")
    parser.add_argument("--compile", action="store_true", help="torch: torch.compile the model")
    parser.add_argument("--onnx", default=None, help="onnxruntime/tensorrt: run this ONNX file instead of exporting")
    parser.add_argument("--dla-core", type=int, default=None, help="tensorrt: build for this DLA core")
    parser.add_argument("--workspace-mb", type=int, default=None,
                        help="tensorrt: builder workspace limit in MiB (default: the on-device script's)")
    parser.add_argument("--device-profile", default=None,
                        help="label the record with this device profile and check it supports --precision")
    parser.add_argument("--clock", default="wall",
                        help="wall (default) | cpu: process CPU time, immune to other processes' load "
                             "(CPU with --threads 1 only; equals wall-clock latency on an idle machine)")
    parser.add_argument("--num-classes", type=int, default=None, help="classes of the model (default: builder's)")
    parser.add_argument("--json", action="store_true", help="print a JSON list with the record")
    parser.add_argument("--out", default=None, help="append the record to DIR/measurements.jsonl")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hwbench.console import emit, progress
    from hwbench.errors import UserError
    from hwbench.latency.measure import MeasureConfig, append_records, measure, parse_hw

    cfg = MeasureConfig(backend=args.backend, precision=args.precision, device=args.device, batch=args.batch,
                        warmup_ms=args.warmup_ms, iters=args.iters, threads=args.threads,
                        cuda_graphs=args.cuda_graphs, channels_last=args.channels_last, compile=args.compile,
                        onnx_path=args.onnx, device_profile=args.device_profile, dla_core=args.dla_core,
                        num_classes=args.num_classes, clock=args.clock,
                        workspace_mb=args.workspace_mb)
    hw = parse_hw(args.input)
    if args.out and Path(args.out).exists() and not Path(args.out).is_dir():  # fail before measuring
        raise UserError(f"--out {args.out} exists and is not a directory; choose a directory")
    with progress() as bar:
        task = bar.add_task(f"{args.model} {args.backend}", total=args.iters)
        rec = measure(args.model, hw, cfg, on_iter=lambda: bar.advance(task))
    if args.out:
        append_records(Path(args.out) / "measurements.jsonl", [rec])
    row = rec.to_dict()
    emit([row], as_json=args.json, title=f"measured latency (ms) on {rec.env.get('device_name')} [{rec.device}]",
         columns=("model", "backend", "precision", "input", "iters", "min_ms", "median_ms", "p90_ms", "p99_ms",
                  "cv"))
    return 0
