"""`al label RUN/candidates --oracle FRAME_DIR | --labels DIR --out LABELLED`: label the candidates
`al ingest` gathered (best score first) into a frame directory `al finetune` trains on."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("candidates", metavar="CANDIDATES", help="RUN/candidates of `al ingest`")
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--oracle", metavar="FRAME_DIR",
                     help="frames with known labels (e.g. `al data drives`): candidates matched by content hash")
    src.add_argument("--labels", metavar="DIR",
                     help="your labelling tool's output: DIR/<frame stem>.png, 8-bit class ids (255 = ignore)")
    parser.add_argument("--budget", type=int, default=None, help="label the first N of to_label.txt (default all)")
    parser.add_argument("--out", required=True, metavar="DIR", help="the labelled frame directory (created or extended)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def run(args: argparse.Namespace) -> int:
    from al.fleet.label import label_candidates
    from hwbench.console import emit, line

    res = label_candidates(args.candidates, args.out, oracle=args.oracle, labels=args.labels, budget=args.budget)
    if args.json:
        emit([res.record()], as_json=True)
        return 0
    line(f"labelled {res.labelled} new of {res.asked} asked ({res.candidates} candidates); "
         f"{res.total} labelled frames in {res.out_dir}")
    return 0
