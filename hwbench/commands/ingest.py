"""`hwbench ingest trtexec LOG_OR_JSON`: trtexec logs (TensorRT 7.x-10.x) or --exportTimes JSON
-> measurement records (headline: GPU compute time). `--out DIR` appends them to
DIR/measurements.jsonl."""

from __future__ import annotations

import argparse

KINDS = ("trtexec",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", help="what produced the file: trtexec")
    parser.add_argument("path", help="trtexec log (stdout) or --exportTimes JSON file")
    parser.add_argument("--model", default=None, help="model name (default: from the log's --onnx, else file name)")
    parser.add_argument("--device", default=None,
                        help="device label or profile, e.g. tx2 (default: the log's GPU name); "
                             "a profile's precisions are checked")
    parser.add_argument("--precision", default=None, help="override/give the precision (fp32 | fp16 | int8)")
    parser.add_argument("--input", default=None, metavar="HxW",
                        help="override/give the input height x width (3 channels; default: from the log)")
    parser.add_argument("--batch", type=int, default=None, metavar="N",
                        help="with --input: batch size N (default 1)")
    parser.add_argument("--json", action="store_true", help="print only a JSON list of records")
    parser.add_argument("--out", default=None, metavar="DIR", help="append the records to DIR/measurements.jsonl")


def run(args: argparse.Namespace) -> int:
    import re
    from pathlib import Path

    from hwbench.console import emit
    from hwbench.errors import UserError, unknown
    from hwbench.latency.measure import append_records
    from hwbench.latency.trtexec import ingest

    if args.kind not in KINDS:
        raise unknown("ingest kind", args.kind, KINDS)
    shape = None
    if args.batch is not None and (args.batch < 1 or not args.input):
        raise UserError(f"--batch {args.batch}: give a batch size >= 1, together with --input HxW")
    if args.input and re.fullmatch(r"\d+(x\d+){3}", args.input):  # the old NxCxHxW form
        from hwbench.commands.options import deprecated

        shape = [int(v) for v in args.input.split("x")]
        if 0 in shape:
            raise UserError(f"bad --input {args.input!r}; expected positive HxW, e.g. 512x1024 (and --batch N)")
        deprecated(f"--input {args.input} (NxCxHxW)", f"--input {shape[2]}x{shape[3]} --batch {shape[0]}, "
                   "as in every other command")
    elif args.input:
        shape = [args.batch or 1, 3, *(int(v) for v in args.input.split("x"))] \
            if re.fullmatch(r"\d+x\d+", args.input) else []
    if shape is not None and (not shape or 0 in shape):
        raise UserError(f"bad --input {args.input!r}; expected positive HxW, e.g. 512x1024 (and --batch N)")
    records = ingest(args.path, model=args.model, device=args.device, precision=args.precision, input_shape=shape)
    if args.out:
        append_records(Path(args.out) / "measurements.jsonl", records)
    rows = [r.to_dict() for r in records]
    for row in rows:
        row["e2e_median_ms"] = row["components"].get("latency", {}).get("median_ms")
        row["per_image_ms"] = row["env"].get("per_image_median_ms")
    emit(rows, as_json=args.json, title=f"trtexec results from {Path(args.path).name} (GPU compute, ms)",
         columns=("model", "device", "precision", "input", "batch", "iters", "min_ms", "median_ms", "p90_ms",
                  "p99_ms", "e2e_median_ms", "per_image_ms", "source"))
    return 0
