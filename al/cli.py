"""`al` command line."""

from __future__ import annotations

import sys

from hwbench.cli_base import make_main

COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("al.commands.run", "one active-learning run (cycles of score, select, label, train)"),
    "surrogate": ("al.commands.surrogate", "surrogate x deployment experiment against random, over seeds"),
    "entropy": ("al.commands.entropy", "entropy histograms of models trained on the same random subset"),
    "data": ("al.commands.data", "embedded drives: fleet-data statistics, drives written as frames + timestamps"),
    "pretrain": ("al.commands.pretrain", "train each backbone once on the embedded drives; cache torchvision-format checkpoints"),
    "ingest": ("al.commands.ingest", "turn devices' upload spools into the next cycle's candidate frames"),
    "label": ("al.commands.label", "label ingested candidates (an oracle frame directory or your labelling tool's maps)"),
    "finetune": ("al.commands.finetune", "continue training the devices' model on the labelled frames (for the next export)"),
    "fleet": ("al.commands.fleet", "fleet simulation: on-device scoring at the device's latency under an upload budget"),
    "rank": ("al.commands.rank", "rank surrogates before the matrix from a cheap probe; check it against a matrix"),
    "report": ("al.commands.report", "rebuild the markdown/HTML report of a finished experiment"),
}

main = make_main("al", "Pool-based active learning with deployable surrogates.", COMMANDS)

if __name__ == "__main__":
    sys.exit(main())
