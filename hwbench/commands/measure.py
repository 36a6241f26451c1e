"""`hwbench measure MODEL`: measured latency with torch, onnxruntime or tensorrt.

Warm-up by time (--warmup-ms), then --iters timed single inferences; prints min / median / mean /
p90 / p99 / std / CV (nearest-rank percentiles, as trtexec). `--out DIR` appends the record to
DIR/measurements.jsonl.

`--device` is a device profile, as in every command (it labels the record and checks the precision);
where the backend runs is `--backend-device cpu|cuda`. The old spellings `--device cpu|cuda` and
`--device-profile NAME` still work with a one-line deprecation warning. `hwbench measure --onnx FILE`
needs no zoo name and takes the input shape from the file unless --input/--batch are given.
"""

from __future__ import annotations

import argparse

from hwbench.commands.score_options import add_score_arguments
from hwbench.resolve import MODEL_HELP


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", nargs="?", default=None,
                        help=f"{MODEL_HELP}; an ONNX file runs as with --onnx (optional with --onnx: the record's name)")
    parser.add_argument("--backend", default=None,
                        help="torch | onnxruntime | tensorrt (default torch; onnxruntime with --onnx)")
    parser.add_argument("--input", default=None, metavar="HxW",
                        help="input HxW (default: the model's own: the zoo's, the ONNX file's static shape, "
                             "the callable's input_hw)")
    parser.add_argument("--batch", type=int, default=None, help="batch size N (default 1, or the --onnx file's)")
    parser.add_argument("--precision", default="fp32", help="fp32 | fp16 | int8 (default fp32)")
    parser.add_argument("--warmup-ms", type=float, default=500.0, help="warm-up wall time in ms (default 500)")
    parser.add_argument("--iters", type=int, default=50, help="timed iterations (default 50)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (torch / onnxruntime intra-op)")
    parser.add_argument("--backend-device", default=None, choices=("cpu", "cuda"),
                        help="where the backend runs: cpu | cuda (default cpu)")
    parser.add_argument("--cuda-graphs", action="store_true", help="torch on CUDA: replay a captured CUDA graph")
    parser.add_argument("--channels-last", action="store_true", help="torch: NHWC memory format")
    parser.add_argument("--compile", action="store_true", help="torch: torch.compile the model")
    parser.add_argument("--onnx", default=None, help="onnxruntime/tensorrt: run this ONNX file instead of exporting")
    parser.add_argument("--dla-core", type=int, default=None, help="tensorrt: build for this DLA core")
    parser.add_argument("--workspace-mb", type=int, default=None,
                        help="tensorrt: builder workspace limit in MiB (default: the on-device script's)")
    parser.add_argument("--device", default=None, metavar="DEVICE",
                        help="device profile NAME or FILE.toml (e.g. orin_nx): labels the record and checks it "
                             "supports --precision")
    parser.add_argument("--device-profile", default=None, help=argparse.SUPPRESS)  # deprecated: --device
    parser.add_argument("--clock", default="wall",
                        help="wall (default) | cpu: process CPU time, immune to other processes' load "
                             "(--backend-device cpu with --threads 1 only; equals wall-clock latency on an idle machine)")
    parser.add_argument("--num-classes", type=int, default=None, help="classes of the model (default: builder's)")
    parser.add_argument("--json", action="store_true", help="print only a JSON list with the record")
    parser.add_argument("--out", default=None, metavar="DIR", help="append the record to DIR/measurements.jsonl")
    add_score_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hwbench.console import emit, progress
    from hwbench.errors import UserError
    from hwbench.latency.measure import MeasureConfig, append_records, measure, parse_hw

    backend_device, profile = _devices(args)
    model, hw, batch, label = _model_and_shape(args)
    backend = args.backend or ("onnxruntime" if args.onnx else "torch")
    cfg = MeasureConfig(backend=backend, precision=args.precision, device=backend_device,
                        batch=batch or 1, warmup_ms=args.warmup_ms, iters=args.iters, threads=args.threads,
                        cuda_graphs=args.cuda_graphs, channels_last=args.channels_last, compile=args.compile,
                        onnx_path=args.onnx, device_profile=profile, dla_core=args.dla_core,
                        num_classes=args.num_classes, clock=args.clock,
                        workspace_mb=args.workspace_mb)
    hw = hw or parse_hw(args.input)
    if args.out and Path(args.out).exists() and not Path(args.out).is_dir():  # fail before measuring
        raise UserError(f"--out {args.out} exists and is not a directory; choose a directory")
    name = None if isinstance(model, str) else label
    if args.score is not None:  # the scoring graph of `hwbench export --score` (onnxruntime/tensorrt export it)
        from hwbench.score_graph import check_score_arguments, scoring_model

        if not isinstance(model, str):
            raise UserError("--score wraps a zoo model with its score; export your scoring graph to ONNX and "
                            "measure that file")
        if args.onnx:
            raise UserError("--score builds the scoring graph from MODEL; with --onnx, pass a file from "
                            "`hwbench export MODEL --score ...` and leave --score out")
        check_score_arguments(args.score, args.aggregation)
        model = scoring_model(model, args.score, args.aggregation, num_classes=args.num_classes)
        name = model.name
    with progress() as bar:
        task = bar.add_task(f"{name or model} {backend}", total=args.iters)
        rec = measure(model, hw, cfg, model_name=name, on_iter=lambda: bar.advance(task))
    if args.out:
        append_records(Path(args.out) / "measurements.jsonl", [rec])
    row = rec.to_dict()
    emit([row], as_json=args.json, title=f"measured latency (ms) on {rec.env.get('device_name')} [{rec.device}]",
         columns=("model", "backend", "precision", "input", "iters", "min_ms", "median_ms", "p90_ms", "p99_ms",
                  "cv"))
    return 0


def _devices(args: argparse.Namespace) -> tuple[str, str | None]:
    """(where the backend runs, device profile), accepting the deprecated spellings."""
    from hwbench.commands.options import deprecated

    backend_device, profile = args.backend_device, args.device
    if profile in ("cpu", "cuda"):  # before: --device meant cpu/cuda in measure only
        deprecated(f"`hwbench measure --device {profile}`", f"--backend-device {profile} "
                   "(--device is the device profile in every command)")
        backend_device, profile = backend_device or profile, None
    if args.device_profile:
        deprecated(f"--device-profile {args.device_profile}", f"--device {args.device_profile}")
        profile = profile or args.device_profile
    return backend_device or "cpu", profile


def _model_and_shape(args: argparse.Namespace) -> tuple[object, tuple[int, int] | None, int | None, str]:
    """The model (a zoo name, or the module of a callable) and, unless --input is given, the (H, W) and batch of
    its own input; an ONNX file as MODEL is run as with --onnx."""
    from pathlib import Path

    from hwbench.errors import UserError
    from hwbench.resolve import resolve

    if not args.onnx:
        if not args.model:
            raise UserError("give a zoo model name (`hwbench models`), FILE.onnx, file.py:callable or "
                            "package.module:callable, or --onnx FILE")
        ref = resolve(args.model)
        if ref.kind == "onnx":  # recorded under the path given, so `hwbench predict` can read the graph again
            args.onnx, args.model = str(ref.path), ref.spec
        else:
            shape = ref.input_shape(args.input, args.batch)
            model = ref.name if ref.kind == "zoo" else ref.module(num_classes=args.num_classes)
            return model, None if args.input else (shape[2], shape[3]), shape[0], ref.spec
    from hwbench.latency.backends import check_onnx_file, onnx_input_shape

    dims = onnx_input_shape(check_onnx_file(args.onnx))
    name = args.model or Path(args.onnx).stem
    if len(dims) != 4:
        raise UserError(f"{args.onnx} has a {len(dims)}-d input; hwbench measures (N, C, H, W) image models")
    static = [d if isinstance(d, int) and d > 0 else None for d in dims]
    if not args.input and None in static[2:]:
        raise UserError(f"{args.onnx} has a dynamic input ({'x'.join(map(str, dims))}); pass --input HxW (and --batch N)")
    hw = None if args.input else (static[2], static[3])
    return name, hw, args.batch or static[0], name
