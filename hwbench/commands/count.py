"""`hwbench count`: MACs and parameters of zoo models (GMACs = 1e9 multiply-accumulates)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("models", nargs="*", metavar="MODEL",
                        help="zoo model names (default: the paper's five DeepLabv3+ models)")
    parser.add_argument("--input", metavar="HxW", help="input height x width (default: 1024x2048)")
    parser.add_argument("--batch", type=int, default=1, help="batch size N (default: 1)")
    parser.add_argument("--num-classes", type=int, default=None,
                        help="classes of the head (default: the model's own: 19 for DeepLabv3+, 1000 for ImageNet classifiers)")
    parser.add_argument("--ops", choices=("convlinear", "all"), default="convlinear",
                        help="convlinear: conv + linear MACs, the paper's GOPs (default); "
                             "all: also norm, resize, adaptive pooling")
    parser.add_argument("--counter", choices=("meta", "fvcore"), default="meta",
                        help="meta: shapes only, fast (default); fvcore: reference, one real CPU forward")
    parser.add_argument("--per-module", action="store_true", help="also show the per-layer table")
    parser.add_argument("--json", action="store_true", help="print only a JSON list of records")


def run(args: argparse.Namespace) -> int:
    from hwbench.console import emit, track
    from hwbench.count import PAPER_MODELS, count, input_shape_from_hw, model_label

    shape = input_shape_from_hw(args.input, batch=args.batch)
    names = args.models or list(PAPER_MODELS)
    results = [count(n, shape, num_classes=args.num_classes, ops=args.ops, counter=args.counter)
               for n in track(names, f"counting ({args.counter})", total=len(names))]
    if args.json:
        emit([r.record(per_module=args.per_module) for r in results], as_json=True)
        return 0
    rows = [{"model": r.model, "label": model_label(r.model), "input": r.input, "GMACs": r.gmacs,
             "GOPs (2/MAC)": 2 * r.gmacs, "backbone GMACs": r.backbone_macs / 1e9, "head GMACs": r.head_macs / 1e9,
             "params (M)": r.params / 1e6, "unsupported": r.unsupported} for r in results]
    emit(rows, as_json=False, title=f"MACs ({args.ops}, counter={args.counter})",
         formats={"GMACs": ".2f", "GOPs (2/MAC)": ".2f", "backbone GMACs": ".2f", "head GMACs": ".2f",
                  "params (M)": ".2f"})
    if args.per_module:
        for r in results:
            layers = [{"layer": x.name, "kind": x.kind, "MMACs": x.macs / 1e6, "params": x.params,
                       "in elems": x.input_elems, "out elems": x.output_elems, "weight elems": x.weight_elems,
                       "calls": x.calls} for x in r.layers]
            emit(layers, as_json=False, title=f"{r.model} per layer (MMACs = 1e6 MACs)", formats={"MMACs": ".2f"})
    return 0
