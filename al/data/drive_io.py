"""The embedded drives as a camera stream, and as a directory of frames with a timestamp manifest.

    from al.data.drive_io import stream, write_frames, read_frames

    for f in stream(seed=0, split="test", drives=range(3), size=(64, 128)):
        f.drive_id, f.frame_index, f.timestamp_s, f.image, f.label   # image uint8 (H, W, 3)

    write_frames("run/frames", stream(seed=0, split="test", drives=[0, 1]), fmt="png")
    for f in read_frames("run/frames"): ...                            # the same frames back

A frame directory (what `write_frames` and `al data drives` write, and what an on-device scorer
or the fleet simulation reads) holds

    frames/000000.png ...    the camera images, uint8 RGB (`fmt="npy"`: numpy arrays (H, W, 3))
    labels/000000.png ...    class-id maps (mode L; optional)
    manifest.jsonl           one JSON object per frame, in stream order:
                             {"file": "frames/000000.png", "label": "labels/000000.png",
                              "timestamp_s": 0.0, "drive_id": "test-00000", "frame_index": 0,
                              "weather": "clear", "rare_scenes": []}

`timestamp_s` is the stream clock: seconds since the first frame, continuing across drives
(a drive starts `gap_s` after the previous one's last frame period). The directory is written
into a temporary sibling and renamed into place: it exists complete or not at all.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from al.data.drives import DRIVE_FRAMES, FPS, render_drive
from hwbench.errors import UserError

MANIFEST = "manifest.jsonl"
FORMATS = ("png", "npy")


@dataclass(frozen=True)
class Frame:
    """One camera frame of a drive."""

    drive_id: str
    frame_index: int              # position within its drive
    timestamp_s: float            # stream clock: seconds since the stream's first frame
    image: np.ndarray             # uint8 (H, W, 3)
    label: np.ndarray | None      # uint8 (H, W) class ids, or None when not stored
    weather: str = ""
    rare_scenes: tuple[str, ...] = ()


def stream(seed: int = 0, split: str = "train", drives: Iterable[int] | None = None, *,
           size: Sequence[int] = (64, 128), drive_frames: int = DRIVE_FRAMES, gap_s: float = 0.0) -> Iterator[Frame]:
    """Frames of the given drives (default: 0, 1, 2, ... without end) one after another, as a
    camera delivers them at `FPS`; each drive is rendered when the stream reaches it."""
    if gap_s < 0 or not math.isfinite(gap_s):
        raise UserError(f"gap_s must be a finite number >= 0, got {gap_s}")
    h, w = int(size[0]), int(size[1])
    start = 0.0
    for d in (range(2**31) if drives is None else drives):
        images, labels, info = render_drive(seed, split, int(d), (h, w), drive_frames)
        ts = info.timestamps_s()
        for k in range(info.n_frames):
            yield Frame(info.drive_id, k, start + float(ts[k]), images[k], labels[k], info.weather, info.rare_scenes)
        start += info.n_frames / info.fps + gap_s


def write_frames(out_dir: str | os.PathLike, frames: Iterable[Frame], *, fmt: str = "png",
                 labels: bool = True) -> Path:
    """Write `frames` as a frame directory (see the module docstring); returns its path.

    `out_dir` must not exist or be an empty directory; it appears only once complete.
    """
    from PIL import Image

    if fmt not in FORMATS:
        raise UserError(f"unknown frame format {fmt!r}; known: {', '.join(FORMATS)}")
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"{out} exists and is not an empty directory; choose a new output directory")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        (tmp / "frames").mkdir()
        if labels:
            (tmp / "labels").mkdir()
        lines = []
        for i, f in enumerate(frames):
            rec = {"file": f"frames/{i:06d}.{fmt}"}
            if fmt == "png":
                Image.fromarray(np.ascontiguousarray(f.image)).save(tmp / rec["file"])
            else:
                np.save(tmp / rec["file"], np.ascontiguousarray(f.image), allow_pickle=False)
            if labels and f.label is not None:
                rec["label"] = f"labels/{i:06d}.png"
                Image.fromarray(np.ascontiguousarray(f.label)).save(tmp / rec["label"])
            rec.update(timestamp_s=round(f.timestamp_s, 6), drive_id=f.drive_id, frame_index=f.frame_index,
                       weather=f.weather, rare_scenes=list(f.rare_scenes))
            lines.append(json.dumps(rec))
        if not lines:
            raise UserError("no frames to write; give at least one drive")
        (tmp / MANIFEST).write_text("\n".join(lines) + "\n")
        os.chmod(tmp, 0o777 & ~_umask())
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read_frames(frame_dir: str | os.PathLike) -> Iterator[Frame]:
    """The frames of a frame directory in manifest order (labels when stored).

    A missing or malformed manifest, a path escaping the directory, a non-finite or decreasing
    timestamp or an unreadable image is a `UserError` naming the file and line.
    """
    from al.data.base import inside_root, load_label, load_rgb

    root = Path(frame_dir)
    manifest = root / MANIFEST
    if not manifest.is_file():
        raise UserError(f"{root}: no {MANIFEST}; expected a frame directory written by `al data drives`")
    last = -math.inf
    with open(manifest, encoding="utf-8", errors="replace") as fh:
        for n, text in enumerate(fh, 1):
            where = f"{manifest}:{n}"
            if not text.strip():
                continue
            try:
                rec = json.loads(text)
                file, ts, k = rec["file"], float(rec["timestamp_s"]), int(rec.get("frame_index", n - 1))
            except (ValueError, KeyError, TypeError, AttributeError):
                raise UserError(f"{where}: not a manifest line (JSON with 'file' and 'timestamp_s'); "
                                "rewrite the directory with `al data drives`") from None
            if not isinstance(file, str) or not math.isfinite(ts) or ts < last:
                raise UserError(f"{where}: timestamp_s must be finite and non-decreasing, got {rec['timestamp_s']!r}")
            last = ts
            path = inside_root(root, file, where)
            image = _read_npy(path, where) if path.suffix == ".npy" else load_rgb(path)
            label = load_label(inside_root(root, rec["label"], where)) if isinstance(rec.get("label"), str) else None
            yield Frame(str(rec.get("drive_id", "")), k, ts, image, label,
                        str(rec.get("weather", "")), tuple(rec.get("rare_scenes", ())))


def _read_npy(path: Path, where: str) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise UserError(f"{where}: cannot read {path}: {e}; replace the file") from None
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise UserError(f"{where}: {path} holds {arr.dtype} {arr.shape}; expected uint8 (H, W, 3)")
    return arr


__all__ = ["FORMATS", "FPS", "MANIFEST", "Frame", "read_frames", "stream", "write_frames"]
