"""`al ingest SPOOL... --into RUN_DIR`: the frames devices spooled become the next cycle's candidates.

Reads each spool of `hwbench/ondevice.py score` (SPOOL/manifest.jsonl + SPOOL/frames/*), checks every
line (JSON with a file inside the spool, a finite score, the frame present with the recorded
SHA-256), and merges them into RUN_DIR/candidates/, a frame directory in the format of
`al.data.drive_io` (readable with `read_frames`):

    candidates/frames/<sha256[:20]><ext>   each distinct frame once (content-addressed)
    candidates/manifest.jsonl              one line per frame, by (timestamp_s, file): file,
                                           timestamp_s (the device's source time), drive_id (the
                                           device), frame_index, score, content_sha256,
                                           embedding, embedding_sha256, model/engine hashes,
                                           policy, spool, and `also_from` (duplicates' devices)
    candidates/to_label.txt                files in labelling order: score descending
    candidates/ingest.json                 what was read, kept and removed

Duplicates across and within devices are removed: the same content hash or the same embedding
hash (same frame bytes, or the same model seeing the same pixels) is one frame, kept once with
the highest score; `dedup_dist` also drops frames whose L2-normalised embedding lies within that
distance of a higher-scored one (greedy, highest score first; embeddings of different models or
lengths are never compared). Ingesting more spools later (or the same again) adds only new frames.
Every file is written atomically; nothing is written when any input is bad.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from hwbench.errors import UserError
from hwbench.io import atomic_write_bytes, atomic_write_text

CANDIDATES = "candidates"
REQUIRED = ("file", "score", "content_sha256", "t_us", "index")


@dataclass(frozen=True)
class IngestResult:
    spools: int
    lines_read: int
    duplicates: int
    near_duplicates: int
    new_frames: int
    candidates: int
    out_dir: Path

    def record(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in self.__dict__.items()}


def _where(manifest: Path, n: int) -> str:
    return f"{manifest}:{n}"


def _inside(root: Path, rel: Any, where: str) -> Path:
    if not isinstance(rel, str) or not rel:
        raise UserError(f"{where}: 'file' must be a path relative to the spool")
    p = PurePosixPath(rel.replace("\\", "/"))
    if p.is_absolute() or ".." in p.parts:
        raise UserError(f"{where}: file {rel!r} escapes the spool {root}; is the manifest tampered with?")
    return root / Path(*p.parts)


def read_spool(spool: str | os.PathLike) -> list[dict[str, Any]]:
    """The checked manifest lines of one spool, each with `_path` (the frame file) and `spool`."""
    root = Path(spool)
    manifest = root / "manifest.jsonl"
    if not root.is_dir():
        raise UserError(f"spool {str(root)!r} is not a directory; give the SPOOL directories devices wrote")
    if not manifest.is_file():
        raise UserError(f"{root}: no manifest.jsonl; not a spool of `ondevice.py score`")
    try:
        text = manifest.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{manifest} is not UTF-8 text (corrupt or not a manifest)") from None
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = _where(manifest, n)
        try:
            row = json.loads(line)
        except ValueError:
            raise UserError(f"{where}: not a JSON line; the manifest is corrupt (truncated copy?)") from None
        if not isinstance(row, dict) or any(k not in row for k in REQUIRED):
            raise UserError(f"{where}: a manifest line needs {', '.join(REQUIRED)}")
        score = row["score"]
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
            raise UserError(f"{where}: score must be a finite number, got {score!r}")
        if not isinstance(row["t_us"], int) or not isinstance(row["index"], int):
            raise UserError(f"{where}: t_us and index must be integers")
        emb = row.get("embedding", [])
        if not isinstance(emb, list) or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in emb):
            raise UserError(f"{where}: embedding must be a list of finite numbers")
        path = _inside(root, row["file"], where)
        if not path.is_file():
            raise UserError(f"{where}: frame {row['file']} is missing from the spool; copy the whole SPOOL "
                            "directory (frames/ with manifest.jsonl)")
        if hashlib.sha256(path.read_bytes()).hexdigest() != row["content_sha256"]:
            raise UserError(f"{where}: frame {row['file']} does not match its content_sha256 (corrupt copy)")
        rows.append({**row, "_path": path, "spool": str(root)})
    return rows


def _unit(v: list[float]) -> np.ndarray:
    e = np.asarray(v, dtype=np.float64)
    n = float(np.linalg.norm(e))
    return e / n if n > 0 else e


def _read_existing(out: Path) -> list[dict[str, Any]]:
    manifest = out / "manifest.jsonl"
    if not manifest.exists():
        return []
    rows = []
    try:
        for n, line in enumerate(manifest.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                row = json.loads(line)
                if not isinstance(row, dict) or "content_sha256" not in row or "file" not in row:
                    raise ValueError(f"line {n}")
                rows.append(row)
    except (ValueError, UnicodeDecodeError) as e:
        raise UserError(f"{manifest} is corrupt ({str(e)[:60]}); move {out} away and ingest again") from None
    return rows


def ingest(spools: list[str | os.PathLike], into: str | os.PathLike, *, dedup_dist: float | None = None) -> IngestResult:
    """Merge the spools into `into`/candidates (see the module docstring)."""
    if not spools:
        raise UserError("give at least one SPOOL directory")
    if dedup_dist is not None and not (math.isfinite(dedup_dist) and dedup_dist >= 0):
        raise UserError(f"--dedup-dist must be a finite number >= 0, got {dedup_dist}")
    run_dir = Path(into)
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"--into {str(run_dir)!r} exists and is not a directory")
    out = run_dir / CANDIDATES
    old = _read_existing(out)
    rows = [r for s in spools for r in read_spool(s)]          # every input checked before any write
    for r in old:
        r["_path"] = out / r["file"]
    pool = sorted(old + rows, key=lambda r: (-float(r["score"]), str(r.get("device_id", "")), int(r.get("t_us", 0)),
                                             r["content_sha256"]))
    kept: list[dict[str, Any]] = []
    by_content: dict[str, dict] = {}
    by_emb: dict[str, dict] = {}
    units: list[tuple[int, np.ndarray, dict]] = []
    dup = near = 0
    for r in pool:
        emb_key = r.get("embedding_sha256") if r.get("embedding") else None
        first = by_content.get(r["content_sha256"]) or (by_emb.get(emb_key) if emb_key else None)
        if first is None and dedup_dist is not None and r.get("embedding"):
            u = _unit(r["embedding"])
            first = next((k for n, v, k in units if n == u.size and float(np.linalg.norm(v - u)) <= dedup_dist), None)
            near += first is not None
        if first is not None:
            dup += 1
            src = f"{r.get('device_id', '')}:{r.get('frame_id', '')}"
            own = f"{first.get('device_id', '')}:{first.get('frame_id', '')}"
            if src != own and src not in first["also_from"]:
                first["also_from"].append(src)
            continue
        r = dict(r, also_from=list(r.get("also_from", [])))
        by_content[r["content_sha256"]] = r
        if emb_key:
            by_emb[emb_key] = r
        if r.get("embedding"):
            u = _unit(r["embedding"])
            units.append((u.size, u, r))
        kept.append(r)
    new = [r for r in kept if not str(r["_path"]).startswith(str(out / "frames"))]
    out.mkdir(parents=True, exist_ok=True)
    for r in new:
        ext = Path(r["_path"]).suffix.lower()
        dst = out / "frames" / f"{r['content_sha256'][:20]}{ext}"
        if not dst.exists():
            atomic_write_bytes(dst, Path(r["_path"]).read_bytes())
        r["source_file"], r["file"] = r["file"], f"frames/{dst.name}"
    lines = []
    for r in sorted(kept, key=lambda r: (float(r.get("timestamp_s", r["t_us"] / 1e6)), r["file"])):
        rec = {k: v for k, v in r.items() if not k.startswith("_")}
        rec.setdefault("timestamp_s", r["t_us"] / 1e6)
        rec.setdefault("drive_id", str(r.get("device_id", "")))
        rec.setdefault("frame_index", int(r["index"]))
        lines.append(json.dumps(rec, sort_keys=True, allow_nan=False))
    order = [r["file"] for r in kept]                          # score descending
    atomic_write_text(out / "manifest.jsonl", "".join(x + "\n" for x in lines))
    atomic_write_text(out / "to_label.txt", "".join(f + "\n" for f in order))
    res = IngestResult(spools=len(spools), lines_read=len(rows), duplicates=dup, near_duplicates=near,
                       new_frames=len(new), candidates=len(kept), out_dir=out)
    atomic_write_text(out / "ingest.json", json.dumps({**res.record(), "spool_dirs": [str(s) for s in spools]},
                                                      indent=1, allow_nan=False))
    _drop_stale(out, {r["file"] for r in kept})
    return res


def _drop_stale(out: Path, keep: set[str]) -> None:
    """Frames of an interrupted earlier ingest that no manifest line lists."""
    frames = out / "frames"
    for p in frames.iterdir() if frames.is_dir() else ():
        if f"frames/{p.name}" not in keep:
            if p.is_dir():
                shutil.rmtree(p)
            else:
                p.unlink()
