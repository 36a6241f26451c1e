"""`hwbench report --out DIR`: the markdown/CSV/PNG hardware report (Table 2 and beyond)."""

from __future__ import annotations

import argparse

from hwbench.resolve import DEVICE_HELP, MODEL_HELP


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, metavar="DIR", help="directory to write into (nothing else is written)")
    parser.add_argument("--models", action="extend", nargs="+", metavar="MODEL",
                        help=f"models to report: {MODEL_HELP} (default: the paper's five DeepLabv3+ models)")
    parser.add_argument("--input", metavar="HxW",
                        help="input height x width of every model (default: 1024x2048, the paper's; with --models "
                             "whose own inputs all agree, that input)")
    parser.add_argument("--device", action="extend", nargs="+", metavar="DEVICE",
                        help=f"{DEVICE_HELP} (default: tx2 xavier_nx orin_nx)")
    parser.add_argument("--measure", action="store_true",
                        help="add a section measured on this machine: torch and onnxruntime on CPU, the five "
                             "DeepLabv3+ models at small inputs, beside roofline and calibrated predictions "
                             "(about a minute)")


def run(args: argparse.Namespace) -> int:
    from hwbench.console import line
    from hwbench.count import DEFAULT_INPUT, PAPER_MODELS
    from hwbench.errors import UserError
    from hwbench.profiles import PAPER_DEVICES
    from hwbench.report import report
    from hwbench.resolve import resolve_all

    models = list(dict.fromkeys(args.models or PAPER_MODELS))
    refs = resolve_all(models)
    if args.input:
        shapes = {r.input_shape(args.input) for r in refs}
    else:
        own = {r.declared_input for r in refs}
        shapes = own if len(own) == 1 and None not in own else {DEFAULT_INPUT}
    if len(shapes) > 1:
        raise UserError(f"--models have {len(shapes)} channel counts; a report compares them at one input")
    sections = [_measured] if args.measure else None
    paths = report(args.out, models=models, devices=args.device or PAPER_DEVICES, input_shape=shapes.pop(),
                   extra_sections=sections)
    line(f"wrote {paths[0]} and {len(paths) - 1} more files in {paths[0].parent}:", err=False)
    for p in paths[1:]:
        line(f"  {p.name}", err=False)
    return 0


def _measured(ctx):  # ReportContext -> (Section, files)
    from hwbench.console import progress
    from hwbench.latency.measured_report import BACKENDS, MODELS, RESOLUTIONS, measured_section

    with progress() as bar:
        task = bar.add_task("measuring", total=len(MODELS) * len(BACKENDS) * len(RESOLUTIONS))

        started = [0]

        def step(what: str) -> None:  # called as each measurement starts
            bar.update(task, completed=started[0], description=what)
            started[0] += 1

        return measured_section(ctx.out_dir, on_step=step)
