"""Where hwbench and al keep their caches (counts, the host profile, TensorRT engines, pre-trained
checkpoints): `$HWBENCH_CACHE_DIR` when set, else `$XDG_CACHE_HOME/hwbench` (the XDG base-directory
rule: only an absolute `XDG_CACHE_HOME` counts), else `~/.cache/hwbench`."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """The cache folder (not created here)."""
    configured = os.environ.get("HWBENCH_CACHE_DIR", "").strip()
    if configured:
        return Path(configured).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "hwbench"
    return Path.home() / ".cache" / "hwbench"
