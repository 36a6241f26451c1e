"""A `--jobs` worker process ends when the process that started it dies, at any moment.

On Linux the kernel sends the worker SIGKILL when its parent exits (`prctl(PR_SET_PDEATHSIG)`, set
as the first thing `python -m al` does in a worker, then a check that the parent is still the one
that started it, which covers a parent killed during the worker's start-up). Elsewhere a thread
polls the parent's PID every 0.2 s. A cell cut short is redone by `--resume` (every write is atomic).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

log = logging.getLogger(__name__)

PARENT_ENV = "AL_WORKER_PARENT"  # set for --jobs workers: the PID of the process that started them
_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int, poll_s: float = 0.2) -> None:
    """End this process when `parent` (the PID that started it) is gone; see the module docstring."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the watch thread below does it
        pass
    if os.getppid() != parent:  # the parent died before the death signal was armed
        os._exit(3)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        log.warning("the al surrogate process that started this worker is gone; stopping")
        os._exit(3)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def from_environment() -> None:
    """`die_with_parent` when this process is a `--jobs` worker (its environment names the parent)."""
    parent = os.environ.get(PARENT_ENV, "")
    if parent.isdigit():
        die_with_parent(int(parent))
