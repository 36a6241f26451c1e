"""`hwbench export MODEL --out FILE.onnx`: ONNX export (opset 13 by default, for TensorRT 8.2 on
the TX2) and a numerical check against PyTorch with onnxruntime on a fixed-seed random input.
Exit status 1 (and no file) when the max abs error exceeds --atol (1e-4, fp32)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="a zoo name (`hwbench models`), path/to/file.py:callable or "
                        "package.module:callable returning an nn.Module (an ONNX file is already exported)")
    parser.add_argument("--input", default=None, metavar="HxW",
                        help="input HxW (default: the model's own: the zoo's, the callable's input_hw)")
    parser.add_argument("--batch", type=int, default=None, help="batch size (default: the model's own, else 1)")
    parser.add_argument("--opset", type=int, default=13, help="ONNX opset 13..20 (default 13: TensorRT 8.2 / TX2)")
    parser.add_argument("--dynamic", action="store_true", help="symbolic batch, height and width")
    parser.add_argument("--exporter", default="torchscript", help="torchscript (default) | dynamo (opset >= 18)")
    parser.add_argument("--num-classes", type=int, default=None, help="classes of the model (default: builder's)")
    parser.add_argument("--atol", type=float, default=1e-4, help="max abs error allowed (default 1e-4)")
    parser.add_argument("--score", default=None, help="append the AL score to the graph: entropy | margin | llal "
                        "(outputs score (N,) and the Core-Set embedding (N, D) instead of logits)")
    parser.add_argument("--aggregation", default="mean", help="--score entropy/margin: per-image reduction of the "
                        "pixel map: mean (default) | sum | max | minmax")
    parser.add_argument("--weights", default=None, help="checkpoint to load (an `al run` checkpoint holds the "
                        "LLAL head too); default: seeded random weights")
    parser.add_argument("--out", metavar="DIR", help="directory for the ONNX file: DIR/MODEL.onnx "
                        "(with --score: DIR/MODEL+SCORE.onnx); created if missing")
    parser.add_argument("--onnx-out", metavar="FILE.onnx", help="the ONNX file to write (instead of --out DIR)")
    parser.add_argument("--json", action="store_true", help="print only a JSON list with the check result")


def run(args: argparse.Namespace) -> int:
    args.out, old_spelling = onnx_path(args)  # from here on, args.out is the ONNX file to write
    import sys

    from hwbench.console import emit, working
    from hwbench.errors import UserError, missing_package
    from hwbench.export import export_and_check
    from hwbench.resolve import resolve

    if args.batch is not None and args.batch < 1:
        raise UserError(f"--batch must be >= 1, got {args.batch}")
    if not args.atol > 0:
        raise UserError(f"--atol must be a positive number, got {args.atol}")
    ref = resolve(args.model)
    if ref.kind == "onnx":
        raise UserError(f"{args.model} is already an ONNX file; export takes a zoo name or a file.py:callable / "
                        "package.module:callable (measure the file with `hwbench measure FILE.onnx`)")
    shape = ref.input_shape(args.input, args.batch)
    model = ref.name if ref.kind == "zoo" else ref.module(num_classes=args.num_classes)
    if args.score and ref.kind != "zoo":
        raise UserError(f"--score wraps a zoo model with its score; {args.model} is not one")
    try:  # the numerical check needs it: say so before spending the export
        import onnxruntime  # noqa: F401
    except ImportError:
        raise missing_package("onnxruntime", "ort") from None
    with working(f"exporting {args.model} to ONNX and checking it with onnxruntime"):
        res = export_and_check(model, (shape[2], shape[3]), args.out, batch=shape[0], opset=args.opset,
                               dynamic=args.dynamic, num_classes=args.num_classes, atol=args.atol,
                               exporter=args.exporter, score=args.score, aggregation=args.aggregation,
                               weights=args.weights)
    row = {"model": ref.name + (f"+{args.score}" if args.score else ""), **res.to_dict()}
    if args.score and res.passed:
        from hwbench.onnxfile import onnx_output_shapes

        row["outputs"] = ", ".join(f"{n} {'x'.join(map(str, d))}" for n, d in onnx_output_shapes(args.out))
    emit([row], as_json=args.json, title="ONNX export check (ONNX Runtime vs PyTorch)",
         columns=("model", "path", "opset", "input", "max_abs_err", "max_rel_err", "passed", "provider")
         + (("outputs",) if args.score and res.passed else ()),
         formats={"max_abs_err": ".3g", "max_rel_err": ".3g"})
    if old_spelling:  # after the work, so that an error stays the only line on stderr
        from hwbench.commands.options import deprecated

        deprecated(f"--out {args.out} (a file)", f"--onnx-out {args.out}, or --out DIR")
    if not res.passed:
        print(f"error: ONNX output differs from PyTorch (max abs {res.max_abs_err:.3g}, allowed {res.atol:g}; "
              f"max rel {res.max_rel_err:.3g}, allowed {res.rtol:g}); {args.out} not written", file=sys.stderr)
        return 3  # a check that failed (exit codes: docs/conventions.md)
    return 0


def onnx_path(args: argparse.Namespace) -> tuple[str, bool]:
    """(the file to write, whether it came from the old spelling): --onnx-out FILE.onnx, or
    DIR/MODEL[+SCORE].onnx for --out DIR. The old `--out FILE.onnx` still works (deprecated)."""
    import os

    from hwbench.errors import UserError

    if args.out and args.onnx_out:
        raise UserError("give --out DIR or --onnx-out FILE.onnx, not both")
    if args.onnx_out:
        return str(args.onnx_out), False
    if not args.out:
        raise UserError("give --out DIR (writes DIR/MODEL.onnx) or --onnx-out FILE.onnx")
    if str(args.out).endswith(".onnx") and not os.path.isdir(args.out):
        return str(args.out), True
    import re

    stem = re.sub(r"[^A-Za-z0-9_.+-]", "_", os.path.basename(str(args.model)))  # a zoo name, or a path's last part
    name = stem + (f"+{args.score}" if args.score else "")
    return os.path.join(str(args.out), f"{name}.onnx"), False  # export creates DIR when it writes
