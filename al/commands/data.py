"""`al data stats|drives`: the embedded drives' fleet-data statistics, and drives written as a
directory of frames with a timestamp manifest (for an on-device scorer or a fleet simulation)."""

from __future__ import annotations

import argparse
import re

DRIVES_HELP = "drive indices: 3, 0-4 or 0,2,7 (default 0)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    s = sub.add_parser("stats", help="near-duplicate rate, class frequencies per split, rare-scene drive share",
                       description="statistics of the embedded drives (train = pool, val, test)")
    s.add_argument("dataset", nargs="?", default="synthetic_streets", help="dataset (only synthetic_streets)")
    _world(s)
    s.add_argument("--frames", type=int, metavar="N", help="frames per split (default 600 train, 240 val and test)")
    s.add_argument("--json", action="store_true", help="print the statistics as JSON")
    d = sub.add_parser("drives", help="write drives as a directory of frames with a timestamp manifest",
                       description="write drives of synthetic_streets as OUT/frames/*, OUT/labels/*, "
                                   "OUT/manifest.jsonl (timestamps at 10 fps, continuing across drives)")
    d.add_argument("out", metavar="OUT_DIR", help="output directory (must not exist or be empty)")
    d.add_argument("--split", default="test", choices=("train", "val", "test"), help="split of the drives (default test)")
    d.add_argument("--drives", default="0", metavar="LIST", help=DRIVES_HELP)
    _world(d)
    d.add_argument("--format", default="png", choices=("png", "npy"), help="frame files (default png)")
    d.add_argument("--no-labels", action="store_true", help="write the frames only")
    d.add_argument("--gap-s", type=float, default=0.0, metavar="S", help="seconds between drives (default 0)")


def _world(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=0, help="world seed (default 0)")
    p.add_argument("--size", default="64x128", metavar="HxW", help="frame size in pixels (default 64x128)")
    p.add_argument("--drive-frames", type=int, default=12, metavar="L", help="frames per drive (default 12)")


def parse_size(text: str) -> tuple[int, int]:
    from hwbench.errors import UserError

    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not m or min(int(m[1]), int(m[2])) < 16 or max(int(m[1]), int(m[2])) > MAX_SIDE:
        raise UserError(f"--size must be HxW with both between 16 and {MAX_SIDE} (e.g. 64x128), got {text!r}")
    return int(m[1]), int(m[2])


MAX_FRAMES = 100_000  # frames one `al data drives` call writes (100 000 frames of 64x128 are ~1.5 GB)
MAX_SIDE = 4096       # pixels per side of a synthetic frame


def parse_drives(text: str) -> list[int]:
    """"3" -> [3]; "0-4" -> [0..4]; "0,2,7" -> [0, 2, 7]."""
    from hwbench.errors import UserError

    out: list[int] = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not m or (m[2] is not None and int(m[2]) < int(m[1])):
            raise UserError(f"--drives: bad entry {part!r}; {DRIVES_HELP}")
        out.extend(range(int(m[1]), int(m[2] or m[1]) + 1))
    if len(out) > 100_000:
        raise UserError(f"--drives lists {len(out)} drives; give at most 100000")
    return out


def run(args: argparse.Namespace) -> int:
    from hwbench.errors import UserError

    if args.action is None:
        raise UserError("al data: give an action: stats or drives")
    size = parse_size(args.size)
    if args.drive_frames < 1:
        raise UserError(f"--drive-frames must be >= 1, got {args.drive_frames}")
    if args.seed < 0:
        raise UserError(f"--seed must be a non-negative integer, got {args.seed}")
    return _stats(args, size) if args.action == "stats" else _drives(args, size)


def _stats(args: argparse.Namespace, size: tuple[int, int]) -> int:
    from al.data.drive_stats import NEAR_DUP_LABEL, NEAR_DUP_THUMB, dataset_stats
    from hwbench.console import emit, line
    from hwbench.errors import UserError

    if args.dataset != "synthetic_streets":
        raise UserError(f"al data stats: {args.dataset!r} has no drives; only synthetic_streets")
    if args.frames is not None and args.frames < 2:
        raise UserError(f"--frames must be >= 2, got {args.frames}")
    n = None if args.frames is None else {s: args.frames for s in ("train", "val", "test")}
    stats = dataset_stats(seed=args.seed, size=size, drive_frames=args.drive_frames, n=n)
    if args.json:
        emit(stats, as_json=True)
        return 0
    pct = lambda x: "-" if x is None else f"{100 * x:.1f} %"  # noqa: E731
    emit([{"split": s["split"], "frames": s["frames"], "drives": s["drives"],
           "near-dup consecutive": pct(s["near_duplicates"]["within_rate"]),
           f"near-dup lag {s['drive_frames'] - 1}": pct(s["near_duplicates_lag_max"]["within_rate"]),
           "near-dup other drive": pct(s["near_duplicates"]["across_rate"]),
           **{f"{k} drives": pct(v) for k, v in s["rare_scenes"].items()}} for s in stats],
         as_json=False, title="synthetic_streets drives")
    for s in stats:
        emit([{"class": c["class"], "pixels": pct(c["pixel_share"]), "frames": pct(c["frame_share"]),
               "drives": pct(c["drive_share"])} for c in s["classes"]],
             as_json=False, title=f"{s['split']}: share of pixels, frames and drives with each class")
    line(f"near-duplicate: 8x16 thumbnails within {NEAR_DUP_THUMB} mean |difference| (0..1) "
         f"and >= {NEAR_DUP_LABEL:.0%} of pixels with the same class")
    return 0


def _drives(args: argparse.Namespace, size: tuple[int, int]) -> int:
    import math

    from al.data.drive_io import stream, write_frames
    from hwbench.console import line, progress
    from hwbench.errors import UserError

    if not math.isfinite(args.gap_s) or args.gap_s < 0:
        raise UserError(f"--gap-s must be a finite number >= 0, got {args.gap_s}")
    drives = parse_drives(args.drives)
    if len(drives) * args.drive_frames > MAX_FRAMES:
        raise UserError(f"--drives {args.drives} x --drive-frames {args.drive_frames} gives "
                        f"{len(drives) * args.drive_frames:,} frames; write at most {MAX_FRAMES:,} per call "
                        "(split the range over several --out directories)")
    frames = stream(args.seed, args.split, drives, size=size, drive_frames=args.drive_frames, gap_s=args.gap_s)
    with progress() as bar:
        task = bar.add_task("writing frames", total=len(drives) * args.drive_frames)

        def counted():
            for f in frames:
                yield f
                bar.advance(task)

        out = write_frames(args.out, counted(), fmt=args.format, labels=not args.no_labels)
    line(f"wrote {len(drives) * args.drive_frames} frames of {len(drives)} drive(s): {out}")
    return 0
