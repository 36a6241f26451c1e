"""`hwbench report --out DIR`: the markdown/CSV/PNG hardware report (Table 2 and beyond)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, metavar="DIR", help="directory to write into (nothing else is written)")
    parser.add_argument("--input", metavar="HxW", help="input height x width (default: 1024x2048)")
    parser.add_argument("--device", action="extend", nargs="+", metavar="DEVICE",
                        help="device profiles (default: tx2 xavier_nx orin_nx)")
    parser.add_argument("--measure", action="store_true",
                        help="add a section measured on this machine: torch and onnxruntime on CPU, the five "
                             "DeepLabv3+ models at small inputs, beside roofline and calibrated predictions "
                             "(about a minute)")


def run(args: argparse.Namespace) -> int:
    from hwbench.console import line
    from hwbench.count import input_shape_from_hw
    from hwbench.profiles import PAPER_DEVICES
    from hwbench.report import report

    shape = input_shape_from_hw(args.input)
    sections = [_measured] if args.measure else None
    paths = report(args.out, devices=args.device or PAPER_DEVICES, input_shape=shape, extra_sections=sections)
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
