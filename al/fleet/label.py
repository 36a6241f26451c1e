"""`al label CANDIDATES --oracle FRAME_DIR | --labels DIR --out LABELLED`: candidates get labels.

The step between `al ingest` (RUN/candidates: frames the devices kept, `to_label.txt` in labelling
order, best score first) and `al finetune` (training that continues from the deployed model).
Labels come from one of

- an oracle: a frame directory with labels (`al data drives` writes one; any directory in the
  `al.data.drive_io` format with `labels/`): a candidate is looked up by the SHA-256 of its frame
  bytes (the spool keeps the bytes the camera gave, `al ingest` records their hash), so every
  candidate must be a frame of that directory;
- a labelling tool (real use): a directory of label maps, one per labelled candidate, named after
  the candidate's frame: `frames/<stem>.<ext>` -> `<stem>.png`, an 8-bit single-channel PNG of class
  ids (255 = ignore) of the frame's height and width. Candidates without a file are not labelled yet.

`budget` labels the first N candidates of `to_label.txt`. The output is a frame directory in the
`al.data.drive_io` format (frames/, labels/, manifest.jsonl sorted by timestamp, with each frame's
score, device and content hash), written into a temporary sibling and renamed into place; labelling
again into an existing directory adds only new frames. Everything is checked before anything is
written: a candidate missing from the oracle, a label of the wrong size or mode, is one `UserError`.
The candidates are verified as `al ingest` verifies them before anything is read from them: ingest.json
sealed and naming the SHA-256 of manifest.jsonl and to_label.txt as they are, and each frame to label
matching its `content_sha256`; a damaged, edited or replaced file is refused in one line naming it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from al.fleet.ingest import check_frames, read_candidates
from hwbench.errors import UserError

MANIFEST = "manifest.jsonl"


@dataclass(frozen=True)
class LabelResult:
    candidates: int      # listed in to_label.txt
    asked: int           # within the budget
    labelled: int        # newly labelled now
    total: int           # frames in the labelled directory
    out_dir: Path

    def record(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in self.__dict__.items()}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    try:
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise UserError(f"{path} is not a readable JSON-lines manifest ({str(e)[:60]})") from None


def _candidates(cand_dir: Path) -> list[dict[str, Any]]:
    """Candidate manifest lines in labelling order (to_label.txt), verified as `al ingest` verifies them:
    ingest.json sealed and naming the SHA-256 of manifest.jsonl and to_label.txt (`check_sealed`)."""
    manifest, order = cand_dir / MANIFEST, cand_dir / "to_label.txt"
    if not manifest.is_file() or not order.is_file():
        raise UserError(f"{cand_dir}: no {MANIFEST} and to_label.txt; give the candidates directory that "
                        "`al ingest SPOOL... --into RUN` wrote (RUN/candidates)")
    by_file = {r["file"]: r for r in read_candidates(cand_dir)}
    out = []
    for n, f in enumerate(order.read_text(encoding="utf-8").split(), 1):
        if f not in by_file:
            raise UserError(f"{order}:{n}: {f!r} is not in {manifest}; run `al ingest` again")
        out.append(dict(by_file[f]))
    return out


def _oracle_index(oracle: Path) -> dict[str, tuple[Path, dict[str, Any]]]:
    """content SHA-256 of each frame file -> (its label file, its manifest line)."""
    from al.data.base import inside_root

    rows = _read_jsonl(oracle / MANIFEST) if (oracle / MANIFEST).is_file() else None
    if rows is None:
        raise UserError(f"--oracle {oracle}: no {MANIFEST}; give a frame directory with labels (`al data drives`)")
    index = {}
    for n, r in enumerate(rows, 1):
        where = f"{oracle / MANIFEST}:{n}"
        if not isinstance(r.get("label"), str):
            raise UserError(f"{where}: no label; the oracle needs labels (`al data drives` without --no-labels)")
        frame = inside_root(oracle, r["file"], where)
        index[_sha256(frame)] = (inside_root(oracle, r["label"], where), r)
    return index


def _check_label(path: Path, frame: Path) -> None:
    from al.data.base import image_size, load_label

    load_label(path, size=image_size(frame))  # UserError: not 8-bit single channel, or another size


def label_candidates(candidates: str | os.PathLike, out: str | os.PathLike, *, oracle: str | os.PathLike | None = None,
                     labels: str | os.PathLike | None = None, budget: int | None = None) -> LabelResult:
    """Label the best `budget` candidates into the frame directory `out` (see the module docstring)."""
    if (oracle is None) == (labels is None):
        raise UserError("give exactly one of --oracle FRAME_DIR (frames with known labels) or --labels DIR "
                        "(your labelling tool's label maps)")
    if budget is not None and budget < 1:
        raise UserError(f"--budget must be >= 1, got {budget}")
    cand_dir, out_dir = Path(candidates), Path(out)
    for flag, d in (("--oracle", oracle), ("--labels", labels)):
        if d is not None and not Path(d).is_dir():
            raise UserError(f"{flag} {str(d)!r} is not a directory")
    if out_dir.exists() and not (out_dir / MANIFEST).is_file() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise UserError(f"--out {out_dir} exists and is not a labelled frame directory; choose a new one")
    cands = _candidates(cand_dir)
    asked = cands[:budget] if budget is not None else cands
    check_frames(cand_dir, asked)  # each frame to label: its file with the manifest's SHA-256 (sets _path)
    existing = _read_jsonl(out_dir / MANIFEST) if (out_dir / MANIFEST).is_file() else []
    have = {r.get("content_sha256") for r in existing}
    index = _oracle_index(Path(oracle)) if oracle is not None else None
    todo = []  # (candidate line, label path)
    for c in asked:
        if c.get("content_sha256") in have:
            continue
        if index is not None:
            hit = index.get(_sha256(c["_path"]))
            if hit is None:
                raise UserError(f"candidate {c['file']} is not a frame of --oracle {oracle} (no frame with its "
                                "SHA-256); the oracle must hold the frames the devices saw")
            lab = hit[0]
        else:
            lab = Path(labels) / (Path(c["file"]).stem + ".png")  # type: ignore[arg-type]
            if not lab.is_file():
                continue                                          # not labelled yet
        _check_label(lab, c["_path"])
        todo.append((c, lab))
    rows = [dict(r) for r in existing]
    parent = out_dir.parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=parent))
    try:
        if out_dir.is_dir():
            for sub in ("frames", "labels"):
                if (out_dir / sub).is_dir():
                    shutil.copytree(out_dir / sub, tmp / sub)
        (tmp / "frames").mkdir(exist_ok=True)
        (tmp / "labels").mkdir(exist_ok=True)
        for c, lab in todo:
            name = Path(c["file"]).name
            shutil.copyfile(c["_path"], tmp / "frames" / name)
            shutil.copyfile(lab, tmp / "labels" / (Path(name).stem + ".png"))
            rows.append({"file": f"frames/{name}", "label": f"labels/{Path(name).stem}.png",
                         "timestamp_s": float(c.get("timestamp_s", c.get("source_ts", 0.0))),
                         "drive_id": str(c.get("drive_id", c.get("device_id", ""))),
                         "frame_index": int(c.get("frame_index", c.get("index", 0))),
                         "score": c.get("score"), "content_sha256": c.get("content_sha256"),
                         "labelled_by": "oracle" if index is not None else "labels"})
        rows.sort(key=lambda r: (r["timestamp_s"], r["file"]))
        (tmp / MANIFEST).write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows), encoding="utf-8")
        old = None
        if out_dir.exists():
            old = parent / f".{out_dir.name}.old-{os.getpid()}"
            os.replace(out_dir, old)
        os.replace(tmp, out_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return LabelResult(len(cands), len(asked), len(todo), len(rows), out_dir)
