"""`al ingest SPOOL... --out RUN_DIR`: the frames devices spooled become the next cycle's candidates.

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
Nothing is written when any input is bad. One `al ingest` at a time per run directory (its lock);
candidates/ is built beside the old one and swapped in whole, so a kill leaves the old set or the new
one. Verified on every ingest: each spool's frames against their `content_sha256`, each manifest line
against the spool's `state.json` (the device's commit point: a line edited or damaged in one of the two
is refused), and every earlier candidate frame against the manifest (a damaged one is copied back
from a spool that holds it, or refused in one line naming it).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from al.runs.files import sha256_text, write_sealed_json
from hwbench.errors import UserError
from hwbench.io import atomic_dir, atomic_write_bytes, atomic_write_text, recover_dir

log = logging.getLogger(__name__)
CANDIDATES = "candidates"
LOCK_WAIT_S = 60.0  # a concurrent ingest into the same run directory is waited for this long
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
    committed = _committed_entries(root)
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
        if committed is not None and committed.pop(row["file"], None) != row:
            raise UserError(f"{where}: this line disagrees with the spool's state.json (edited or damaged); "
                            "copy the whole SPOOL directory from the device again")
        rows.append({**row, "_path": path, "spool": str(root)})
    if committed:  # lines the state committed that the manifest lacks (a truncated or older manifest)
        raise UserError(f"{manifest} lacks {len(committed)} line(s) its state.json committed (truncated or "
                        "replaced); copy the whole SPOOL directory from the device again")
    return rows


def _committed_entries(root: Path) -> dict[str, dict] | None:
    """The manifest entries the spool's `state.json` committed, by file (None: a spool without a state)."""
    path = root / "state.json"
    if not path.exists():
        return None
    try:
        st = json.loads(path.read_bytes().decode("utf-8"))
        entries = st["entries"]
        return {e["file"]: e for e in entries}
    except (OSError, ValueError, UnicodeDecodeError, KeyError, TypeError):
        raise UserError(f"{path} is unreadable or damaged; copy the whole SPOOL directory from the device "
                        "again") from None


def _unit(v: list[float]) -> np.ndarray:
    e = np.asarray(v, dtype=np.float64)
    n = float(np.linalg.norm(e))
    return e / n if n > 0 else e


def read_candidates(out: Path) -> list[dict[str, Any]]:
    """The manifest lines of the candidates directory `out` after `check_sealed` (each with a file, a
    content_sha256 and a finite score); [] for an empty or absent directory; `UserError` naming the file
    otherwise. Frames are not read here: `check_frames` verifies those that are used."""
    manifest = out / "manifest.jsonl"
    if not manifest.exists():
        if out.is_dir() and any(out.iterdir()):
            raise UserError(f"{out} holds files but no manifest.jsonl (not made by al ingest, or damaged); "
                            f"move {out} away and ingest again")
        return []
    check_sealed(out)  # every line below is then the one ingest wrote
    rows = []
    try:
        for n, line in enumerate(manifest.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                row = json.loads(line)
                if not isinstance(row, dict) or not isinstance(row.get("content_sha256"), str) or \
                        not isinstance(row.get("file"), str) or not _is_score(row.get("score")):
                    raise ValueError(f"line {n}")
                rows.append(row)
    except (ValueError, UnicodeDecodeError) as e:
        raise UserError(f"{manifest} is corrupt ({str(e)[:60]}); move {out} away and ingest again") from None
    return rows


def check_sealed(out: Path) -> None:
    """`UserError` naming the file unless ingest.json is sealed and names the SHA-256 of manifest.jsonl and
    to_label.txt as they are (an edited score, a damaged line, another run's copy)."""
    from al.runs.files import is_sealed

    info_path = out / "ingest.json"
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        info = None
    if not is_sealed(info):
        raise UserError(f"{info_path} is missing, damaged or edited (its sha256 does not match); the candidates "
                        f"are not used; move {out} away and ingest every spool again")
    for name in ("manifest.jsonl", "to_label.txt"):
        if not (out / name).is_file() or info.get("sha256_" + name) != _sha256(out / name):
            raise UserError(f"{out / name} does not match the sha256 in {info_path} (damaged, edited or replaced); "
                            f"it is not used; move {out} away and ingest every spool again")


def _is_score(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def check_frames(out: Path, old: list[dict[str, Any]], fresh: Sequence[dict[str, Any]] = ()) -> int:
    """Point every candidate of `old` (lines of `read_candidates`) at an intact copy of its frame (`_path`):
    its own file when its SHA-256 matches the manifest, else the same frame in `fresh`, lines of a spool
    being ingested now (repaired); `UserError` naming the file otherwise. Returns how many were repaired."""
    spare = {r["content_sha256"]: r["_path"] for r in fresh}
    repaired = 0
    for r in old:
        path = _inside(out, r["file"], _where(out / "manifest.jsonl", 0))
        if path.is_file() and _sha256(path) == r["content_sha256"]:
            r["_path"] = path
        elif r["content_sha256"] in spare:
            r["_path"] = spare[r["content_sha256"]]
            r["_repaired"] = True
            repaired += 1
        else:
            what = "is missing" if not path.is_file() else "does not match its content_sha256 in manifest.jsonl"
            raise UserError(f"{path} {what} (damaged or replaced); it is not used; ingest again the spool that "
                            f"holds it (it is copied back), or move {out} away and ingest every spool again")
    if repaired:
        log.warning("%s: %d damaged or missing frame(s) restored from the spools", out, repaired)
    return repaired


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def ingest(spools: list[str | os.PathLike], into: str | os.PathLike, *, dedup_dist: float | None = None) -> IngestResult:
    """Merge the spools into `into`/candidates (see the module docstring).

    One writer: the run directory's lock (`al.runs.lock.DirLock`) is held throughout, and the new
    candidates/ is built beside the old one and swapped in whole (`hwbench.io.atomic_dir`), so a kill
    at any moment leaves the old or the new candidate set, never a mix. Earlier candidates' frames are
    checked against their SHA-256 first.
    """
    from al.runs.lock import DirLock

    if not spools:
        raise UserError("give at least one SPOOL directory")
    if dedup_dist is not None and not (math.isfinite(dedup_dist) and dedup_dist >= 0):
        raise UserError(f"--dedup-dist must be a finite number >= 0, got {dedup_dist}")
    run_dir = Path(into)
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"--out {str(run_dir)!r} exists and is not a directory")
    rows = [r for s in spools for r in read_spool(s)]          # every input checked before any write
    out = run_dir / CANDIDATES
    with DirLock(run_dir, what="run").acquire(wait_s=LOCK_WAIT_S):  # another ingest: wait for it (seconds)
        return _merge(spools, rows, out, dedup_dist)


def _merge(spools: list[str | os.PathLike], rows: list[dict[str, Any]], out: Path,
           dedup_dist: float | None) -> IngestResult:
    recover_dir(out)
    old = read_candidates(out)
    check_frames(out, old, rows)
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
    frames = out / "frames"
    new = [r for r in kept if not str(r["_path"]).startswith(str(frames)) and not r.get("_repaired")]
    with atomic_dir(out) as tmp:
        for r in kept:
            if str(r["_path"]).startswith(str(frames)):          # an earlier candidate, verified: linked
                name = Path(r["file"]).name
                _link_or_copy(Path(r["_path"]), tmp / "frames" / name)
            else:
                ext = Path(r["_path"]).suffix.lower()
                name = f"{r['content_sha256'][:20]}{ext}"
                dst = tmp / "frames" / name
                if not dst.exists():
                    atomic_write_bytes(dst, Path(r["_path"]).read_bytes())
                if not r.get("_repaired"):
                    r["source_file"] = r["file"]
                r["file"] = f"frames/{name}"
        lines = []
        for r in sorted(kept, key=lambda r: (float(r.get("timestamp_s", r["t_us"] / 1e6)), r["file"])):
            rec = {k: v for k, v in r.items() if not k.startswith("_")}
            rec.setdefault("timestamp_s", r["t_us"] / 1e6)
            rec.setdefault("drive_id", str(r.get("device_id", "")))
            rec.setdefault("frame_index", int(r["index"]))
            lines.append(json.dumps(rec, sort_keys=True, allow_nan=False))
        order = [r["file"] for r in kept]                          # score descending
        manifest_text = "".join(x + "\n" for x in lines)
        order_text = "".join(f + "\n" for f in order)
        atomic_write_text(tmp / "manifest.jsonl", manifest_text)
        atomic_write_text(tmp / "to_label.txt", order_text)
        res = IngestResult(spools=len(spools), lines_read=len(rows), duplicates=dup, near_duplicates=near,
                           new_frames=len(new), candidates=len(kept), out_dir=out)
        write_sealed_json(tmp / "ingest.json", {**res.record(), "spool_dirs": [str(s) for s in spools],
                                                "sha256_manifest.jsonl": sha256_text(manifest_text),
                                                "sha256_to_label.txt": sha256_text(order_text)})
    return res


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)
