"""An experiment directory (`al surrogate`, `al entropy`): its identity, lock and reuse on `--resume`.

`experiment.json` names the kind of experiment and the SHA-256 of the resolved config that
identifies it, and is written first; `DONE` is written last and removed while a resumed
experiment runs again. A directory holding nothing but `experiment.toml`, the lock file and
temporaries of interrupted writes (a kill before `experiment.json` landed) counts as new, and so does
one whose only other entries are other studies' directories (`<experiment>/entropy`, `/fleet`, a
folder of `al run` directories: the layout `al report` reads), whichever was started first.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

from al.runs.files import sha256_text
from al.runs.lock import DirLock, is_bookkeeping, remove_temporaries
from hwbench.errors import UserError

INFO = "experiment.json"
RUN_STATE = "state.json"  # an `al run` directory (al.runs.run_dir)


@contextlib.contextmanager
def experiment_dir(out: str | Path, toml: str, *, resume: bool, kind: str,
                   expect: dict | None = None) -> Iterator[Path]:
    """Hold `out` for an experiment of `kind` whose identifying config is `toml`.

    Checks come first (a `UserError` creates nothing); then the directory is created and locked
    (a second process gets a one-line error naming this one), checked again under the lock,
    cleared of temporaries of interrupted writes, and its `DONE` removed until the experiment
    finishes again. The lock is held until the block ends.
    """
    out = Path(out)
    check_out_dir(out, toml, resume=resume, kind=kind, expect=expect)
    with DirLock(out, what="experiment"):
        check_out_dir(out, toml, resume=resume, kind=kind, expect=expect)
        remove_temporaries(out)
        (out / "DONE").unlink(missing_ok=True)  # not complete until it finishes again
        yield out


def _is_study(path: Path, *, depth: int) -> bool:
    """`path` is another study's directory inside an experiment's (never one of its own `seed_*`): it holds
    an experiment or a run, or is still being created (nothing but bookkeeping), or holds only such
    directories (`depth` levels down)."""
    if not path.is_dir() or path.is_symlink() or path.name.startswith("seed_"):
        return False
    if (path / INFO).is_file() or (path / RUN_STATE).is_file():
        return True
    children = list(path.iterdir())
    if all(is_bookkeeping(c.name) for c in children):
        return True
    return depth > 1 and all(is_bookkeeping(c.name) or _is_study(c, depth=depth - 1) for c in children)


def check_out_dir(out: Path, toml: str, *, resume: bool, kind: str, expect: dict | None = None) -> None:
    """`UserError` unless `out` is new, empty, or (with `resume`) holds this very experiment."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a directory")
    if not out.is_dir() or all(is_bookkeeping(p.name) or p.name == "experiment.toml" or _is_study(p, depth=2)
                               for p in out.iterdir()):
        return
    info_path = out / INFO
    if not info_path.is_file():
        raise UserError(f"--out {out} is not empty and holds no experiment; choose a new or empty directory")
    if not resume:
        state = "complete" if (out / "DONE").is_file() else "incomplete"
        raise UserError(f"--out {out} already holds an {state} experiment; pass --resume to continue or "
                        "re-report it, or choose another directory")
    info = read_info(out)
    want = {"kind": kind, "config_sha256": sha256_text(toml), **(expect or {})}
    bad = [k for k, v in want.items() if info.get(k) != v]
    if bad:
        what = "an experiment of another kind" if "kind" in bad else "a different config"
        raise UserError(f"--out {out} holds {what} ({', '.join(bad)} differ); resume with the config in "
                        f"{out / 'experiment.toml'} or choose another directory")


def read_info(out: Path) -> dict:
    """`experiment.json` of `out` as a dict; `UserError` when unreadable."""
    path = Path(out) / INFO
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        info = None
    if not isinstance(info, dict):
        raise UserError(f"{path} is unreadable or not a JSON object; choose another directory "
                        "(or delete the damaged file and run again with --resume)")
    return info
