"""`al ingest SPOOL... --out RUN_DIR`: the spools devices sent become the next cycle's candidates
(RUN_DIR/candidates: frames, manifest.jsonl, to_label.txt), duplicates across devices removed."""

from __future__ import annotations

import argparse

from hwbench.commands.aliases import renamed


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spools", nargs="+", metavar="SPOOL", help="spool directories of `ondevice.py score`")
    parser.add_argument("--out", metavar="RUN_DIR",
                        help="run directory; candidates go to RUN_DIR/candidates (merged with earlier ingests)")
    parser.add_argument("--dedup-dist", type=float, default=None,
                        help="also drop frames whose unit embedding lies within this distance of a higher-scored one")
    parser.add_argument("--json", action="store_true", help="print only a JSON list with the summary record")
    renamed(parser, "--into", "--out")


def run(args: argparse.Namespace) -> int:
    from al.fleet.ingest import ingest
    from hwbench.console import emit, line
    from hwbench.errors import UserError

    if not args.out:
        raise UserError("al ingest: give --out RUN_DIR (the run directory the candidates go to)")
    res = ingest(args.spools, args.out, dedup_dist=args.dedup_dist)
    if args.json:
        emit([res.record()], as_json=True)
        return 0
    line(f"ingested {res.lines_read} lines from {res.spools} spool(s): {res.duplicates} duplicates removed "
         f"({res.near_duplicates} near), {res.new_frames} new frames; {res.candidates} candidates in "
         f"{res.out_dir} (to_label.txt: labelling order)")
    return 0
