"""Provenance: when, with what and where a record or report was made.

    provenance() -> {"time_utc", "tool", "tool_version", "git_commit", "git_dirty", "python", "torch",
                     "onnxruntime", "host", "platform"}

Every measurement record, every `--json` record and every report carries this object, so results
compared across runs and machines say where they came from. `time_utc` is ISO 8601 in UTC with a `Z`
(second resolution); `git_commit` / `git_dirty` are None unless the package runs from a git checkout;
library versions are read from the installed distributions (nothing heavy is imported), None when absent.
"""

from __future__ import annotations

import datetime as _dt
import functools
import platform
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

FIELDS = ("time_utc", "tool", "tool_version", "git_commit", "git_dirty", "python", "torch", "onnxruntime",
          "host", "platform")
_ROOT = Path(__file__).resolve().parent.parent  # the checkout (or site-packages) holding hwbench/


def utc_now() -> str:
    """Current time as ISO 8601 UTC, e.g. `2026-12-06T23:40:12Z`."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _dist_version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(_ROOT), *args], capture_output=True, text=True, timeout=5,
                             check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


@functools.lru_cache(maxsize=1)
def _static() -> dict[str, Any]:
    """Everything but the time: the same for the whole process."""
    from hwbench import __version__

    in_checkout = (_ROOT / ".git").exists() and (_ROOT / "pyproject.toml").is_file()
    commit = _git("rev-parse", "HEAD") if in_checkout else None
    dirty = None
    if commit:
        status = _git("status", "--porcelain", "--untracked-files=no")
        dirty = None if status is None else bool(status)
    return {"tool": "hwbench", "tool_version": __version__, "git_commit": commit or None, "git_dirty": dirty,
            "python": platform.python_version(), "torch": _dist_version("torch"),
            "onnxruntime": _dist_version("onnxruntime"), "host": socket.gethostname(),
            "platform": f"{platform.system()} {platform.release()} {platform.machine()}".strip()}


def provenance() -> dict[str, Any]:
    """The provenance object (see the module docstring); the time is now, the rest cached per process."""
    return {"time_utc": utc_now(), **_static()}


def with_provenance(record: dict[str, Any], prov: dict[str, Any] | None = None) -> dict[str, Any]:
    """`record` plus a `provenance` key (kept when it already has one)."""
    if "provenance" in record:
        return record
    return {**record, "provenance": prov if prov is not None else provenance()}


def provenance_line(prov: dict[str, Any]) -> str:
    """One line for a report header: `generated 2026-...Z by hwbench 0.1.0 (commit 1a2b3c4d5e6f, local
    changes) · Python 3.12.3 · torch 2.13.0 · onnxruntime 1.20.1 · host box (Linux 6.1 x86_64)`."""
    tool = f"{prov.get('tool', 'hwbench')} {prov.get('tool_version') or '?'}"
    if prov.get("git_commit"):
        tool += f" (commit {str(prov['git_commit'])[:12]}{', local changes' if prov.get('git_dirty') else ''})"
    def lib(name: str) -> str:  # None: not installed; no key: not recorded
        return f"{name} {prov[name] or 'not installed'}" if name in prov else f"{name} ?"

    parts = [f"generated {prov.get('time_utc') or '?'} by {tool}", f"Python {prov.get('python') or '?'}",
             lib("torch"), lib("onnxruntime"), f"host {prov.get('host') or '?'}"
             + (f" ({prov['platform']})" if prov.get("platform") else "")]
    return " · ".join(parts)


if __name__ == "__main__":  # pragma: no cover - `python -m hwbench.provenance` prints the object
    import json

    sys.stdout.write(json.dumps(provenance(), indent=2) + "\n")
