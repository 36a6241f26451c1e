"""An experiment directory (`al surrogate`, `al entropy`): its identity and reuse on `--resume`.

`experiment.json` names the kind of experiment and the SHA-256 of the resolved config that
identifies it; `DONE` is written last and removed while a resumed experiment runs again.
"""

from __future__ import annotations

import json
from pathlib import Path

from al.runs.files import sha256_text
from hwbench.errors import UserError


def open_out_dir(out: Path, toml: str, *, resume: bool, kind: str, expect: dict | None = None) -> None:
    """Make `out` ready for an experiment of `kind` whose resolved config is `toml`.

    A new or empty directory is created. A directory holding the same experiment (same kind,
    config hash and `expect` entries in its `experiment.json`) is reused with `resume`, and its
    `DONE` is removed until the experiment finishes again. Anything else is a `UserError`.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        info_path = out / "experiment.json"
        if not info_path.is_file():
            raise UserError(f"--out {out} is not empty and holds no experiment; choose a new or empty directory")
        if not resume:
            state = "complete" if (out / "DONE").is_file() else "incomplete"
            raise UserError(f"--out {out} already holds an {state} experiment; pass --resume to continue or "
                            "re-report it, or choose another directory")
        info = json.loads(info_path.read_text(encoding="utf-8"))
        want = {"kind": kind, "config_sha256": sha256_text(toml), **(expect or {})}
        bad = [k for k, v in want.items() if info.get(k) != v]
        if bad:
            what = "an experiment of another kind" if "kind" in bad else "a different config"
            raise UserError(f"--out {out} holds {what} ({', '.join(bad)} differ); resume with the config in "
                            f"{out / 'experiment.toml'} or choose another directory")
        (out / "DONE").unlink(missing_ok=True)  # not complete until it finishes again
    out.mkdir(parents=True, exist_ok=True)
