"""`hwbench count`: MACs and parameters of a model in any of the four forms (GMACs = 1e9 multiply-accumulates)."""

from __future__ import annotations

import argparse

from hwbench.resolve import MODEL_HELP


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("models", nargs="*", metavar="MODEL",
                        help=f"{MODEL_HELP} (default: the paper's five DeepLabv3+ models)")
    parser.add_argument("--input", metavar="HxW",
                        help="input height x width (default: the model's own: the zoo's, the ONNX file's static "
                             "shape, the callable's input_hw)")
    parser.add_argument("--batch", type=int, default=None, help="batch size N (default: the model's own, else 1)")
    parser.add_argument("--num-classes", type=int, default=None,
                        help="classes of the head (default: the model's own: 19 for DeepLabv3+, 1000 for ImageNet classifiers)")
    parser.add_argument("--ops", choices=("convlinear", "all"), default="convlinear",
                        help="convlinear: conv + linear MACs, the paper's GOPs (default); "
                             "all: also norm, resize, adaptive pooling")
    parser.add_argument("--counter", choices=("meta", "fvcore"), default=None,
                        help="PyTorch models: meta: shapes only, fast (default); fvcore: reference, one real CPU "
                             "forward. ONNX files are always counted from the graph")
    parser.add_argument("--per-module", action="store_true", help="also show the per-layer (per-node for ONNX) table")
    parser.add_argument("--json", action="store_true", help="print only a JSON list of records")


def run(args: argparse.Namespace) -> int:
    from hwbench.console import emit, track
    from hwbench.count import PAPER_MODELS, count_ref, unique_labels
    from hwbench.resolve import resolve_all

    refs = resolve_all(args.models or list(PAPER_MODELS))
    shapes = [r.input_shape(args.input, args.batch) for r in refs]  # every bad input fails before any count
    results = [count_ref(ref, shape, ops=args.ops, counter=args.counter, num_classes=args.num_classes)
               for ref, shape in track(list(zip(refs, shapes, strict=True)), "counting", total=len(refs))]
    if args.json:
        emit([r.record(per_module=args.per_module) for r in results], as_json=True)
        return 0
    labels = unique_labels([r.model for r in results])
    rows = [{"model": r.model, "label": label, "input": "x".join(map(str, r.input)), "counter": r.counter,
             "GMACs": r.gmacs, "GOPs (2/MAC)": 2 * r.gmacs, "backbone GMACs": r.backbone_macs / 1e9,
             "head GMACs": r.head_macs / 1e9, "params (M)": r.params / 1e6, "unsupported": r.unsupported}
            for r, label in zip(results, labels, strict=True)]
    emit(rows, as_json=False, title=f"MACs ({args.ops}) at each model's input (N x C x H x W)",
         formats={"GMACs": ".2f", "GOPs (2/MAC)": ".2f", "backbone GMACs": ".2f", "head GMACs": ".2f",
                  "params (M)": ".2f"})
    if args.per_module:
        for r in results:
            layers = [{"layer": x.name, "kind": x.kind, "MMACs": x.macs / 1e6, "params": x.params,
                       "in elems": x.input_elems, "out elems": x.output_elems, "weight elems": x.weight_elems,
                       "calls": x.calls} for x in r.layers]
            emit(layers, as_json=False, title=f"{r.model} per layer (MMACs = 1e6 MACs)", formats={"MMACs": ".2f"})
    return 0
