"""`hwbench predict --measurements FILE.jsonl`: the roofline calibrated on measurements.

Without --model: leave-one-out tables and the fraction within +-10 % for each --protocol:
"pair" holds out each (model, resolution) and fits on the rest of its device/backend/precision group
(the model's other resolutions are training data); "model" holds out every resolution of one model
(the figure for an unseen model). With --model and --input: the prediction for that pair (fitted on
all records), next to the measurement if any.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--measurements", required=True, help="JSON-lines records (hwbench measure/ingest --out)")
    parser.add_argument("--model", default=None,
                        help="predict this model: a zoo name, FILE.onnx, path/to/file.py:callable or "
                             "package.module:callable (fitted on every record: unseen unless measured)")
    parser.add_argument("--input", default=None, metavar="HxW", help="input HxW of --model (default: the model's own)")
    parser.add_argument("--batch", type=int, default=None, help="batch of --model (default: the model's own, else 1)")
    parser.add_argument("--device", default=None, help="only this device group")
    parser.add_argument("--backend", default=None, help="only this backend group")
    parser.add_argument("--precision", default=None, help="only this precision group")
    parser.add_argument("--protocol", choices=("pair", "model", "both"), default="both",
                        help="leave-one-out protocol: pair = leave-one-(model, resolution)-out, "
                             "model = leave-one-model-out (default: both)")
    parser.add_argument("--json", action="store_true", help="print a JSON list of records")


def run(args: argparse.Namespace) -> int:
    import sys

    from hwbench.console import emit, working
    from hwbench.errors import UserError
    from hwbench.latency.measure import read_measurements
    from hwbench.latency.predict import PROTOCOLS, leave_one_out, loo_summary, predict

    records = read_measurements(args.measurements)
    if not records:
        raise UserError(f"{args.measurements} holds no records; write some with `hwbench measure --out DIR`")
    records = [r for r in records if (not args.device or r.device == args.device)
               and (not args.backend or r.backend == args.backend)
               and (not args.precision or r.precision == args.precision)]
    if not records:
        raise UserError(f"no records in {args.measurements} match --device/--backend/--precision")
    cols = ("protocol", "model", "backend", "device", "precision", "input", "measured_ms", "predicted_ms", "roofline_ms",
            "rel_err", "train_points")
    fmt = {"rel_err": "+.1%", "measured_ms": ".3f", "predicted_ms": ".3f", "roofline_ms": ".3f"}
    if args.model:
        from hwbench.count import input_shape_from_hw
        from hwbench.resolve import resolve

        shape = (input_shape_from_hw(args.input, batch=args.batch or 1) if args.input
                 else resolve(args.model).input_shape(None, args.batch))
        with working(f"calibrating on {len(records)} records"):
            rows = predict(records, args.model, shape, device=args.device, backend=args.backend,
                           precision=args.precision)
        emit(rows, as_json=args.json, title=f"predicted latency of {args.model} (ms)", columns=cols, formats=fmt)
        return 0
    protocols = tuple(PROTOCOLS) if args.protocol == "both" else (args.protocol,)
    rows = []
    with working("leave-one-out") as say:
        for prot in protocols:
            say(f"leave-one-out ({prot} protocol) over {len(records)} records")
            rows += leave_one_out(records, prot)
    if not any(r["train_points"] for r in rows):
        raise UserError(f"leave-one-out has nothing to fit on: no device/backend/precision group in {args.measurements} "
                        "has a second (model, resolution) pair (--protocol model: a second model); "
                        "measure more models or input sizes")
    emit(rows, as_json=args.json, title="leave-one-out: held-out pairs predicted from the others (ms)",
         columns=cols, formats=fmt)
    if not args.json:
        for prot in protocols:
            sel = [r for r in rows if r["protocol"] == prot]
            per = ", ".join(f"{b} {loo_summary([r for r in sel if r['backend'] == b])['fraction_within']:.0%}"
                            for b in dict.fromkeys(r["backend"] for r in sel))
            s = loo_summary(sel)
            print(f"{prot}: {PROTOCOLS[prot]}\n  {s['fraction_within']:.0%} of {s['pairs']} pairs within "
                  f"+-{s['within']:.0%} ({per}; mean |error| {s['mean_abs_rel_err']:.1%}, worst "
                  f"{s['max_abs_rel_err']:.1%})", file=sys.stderr)
    return 0
