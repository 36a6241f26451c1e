"""`hwbench models`: list the model zoo (name, paper label, task, parameters, default input)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", choices=("segmentation", "classification"), help="only models of this task")
    parser.add_argument("--json", action="store_true", help="print a JSON list of records")


def run(args: argparse.Namespace) -> int:
    import torch

    from hwbench.console import emit
    from hwbench.models import create_model, list_models, model_info

    records = []
    for name in list_models(args.task):
        info = model_info(name)
        with torch.device("meta"):  # shapes only: instant, no memory
            model = create_model(name)
        records.append({
            "name": name,
            "label": info.label,
            "task": info.task,
            "family": info.family,
            "params": sum(p.numel() for p in model.parameters()),
            "num_classes": info.num_classes,
            "output_stride": info.output_stride,
            "default_input": list(info.default_input),
        })
    emit(records, as_json=args.json, title="hwbench model zoo (params at the default number of classes)",
         columns=("name", "label", "task", "params", "num_classes", "default_input"))
    return 0
