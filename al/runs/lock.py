"""An exclusive lock on a run, experiment or cell directory: `fcntl.flock` on `DIR/.lock`.

One process at a time works in a directory; a second one gets a one-line `UserError` naming the
holder's PID. The kernel drops the lock when its holder exits, however it exits (kill -9
included), so a stale lock file never blocks a resume. The lock file stays in the directory
(it is not part of the results: `is_bookkeeping` names it) and is never deleted while held.

Any directory can be a lock unit (a run, an experiment, one cell of an experiment); locks of
nested directories are independent, and one process may take the same lock again (re-entrant).
"""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path
from types import TracebackType

from hwbench.errors import UserError
from hwbench.io import is_atomic_temporary

log = logging.getLogger(__name__)

LOCK_NAME = ".lock"
_HELD: dict[str, tuple[int, int]] = {}  # lock file (real path) -> (fd, depth) of the locks this process holds


def is_bookkeeping(name: str) -> bool:
    """Files that do not make a directory hold results: the lock file and atomic-write temporaries."""
    return name == LOCK_NAME or is_atomic_temporary(name)


def holder_pid(directory: str | os.PathLike) -> int | None:
    """PID written into the lock file by its current (or last) holder, None when unreadable."""
    try:
        text = (Path(directory) / LOCK_NAME).read_text(encoding="ascii").strip()
        return int(text) if text.isdigit() else None
    except (OSError, ValueError):
        return None


class DirLock:
    """`with DirLock(path, what="run"):` holds the exclusive lock of `path` (created if missing)."""

    def __init__(self, path: str | os.PathLike, *, what: str = "directory") -> None:
        self.path = Path(path)
        self.what = what
        self._key: str | None = None

    @property
    def lock_file(self) -> Path:
        return self.path / LOCK_NAME

    def acquire(self) -> DirLock:
        """Take the lock now or raise `UserError` (never waits)."""
        self.path.mkdir(parents=True, exist_ok=True)
        key = os.path.realpath(self.lock_file)
        if key in _HELD:  # this process holds it already
            fd, depth = _HELD[key]
            _HELD[key] = (fd, depth + 1)
            self._key = key
            return self
        fd = os.open(key, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            _flock(fd)
        except BlockingIOError:
            os.close(fd)
            pid = holder_pid(self.path)
            who = f"process {pid}" if pid is not None else "another process"
            raise UserError(f"{self.what} {self.path} is in use by {who} (lock {self.lock_file}); wait for it to "
                            "finish or stop it, then retry") from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        _HELD[key] = (fd, 1)
        self._key = key
        return self

    def release(self) -> None:
        if self._key is None:
            return
        fd, depth = _HELD[self._key]
        if depth > 1:
            _HELD[self._key] = (fd, depth - 1)
        else:
            del _HELD[self._key]
            os.close(fd)  # closing the only descriptor drops the flock
        self._key = None

    def __enter__(self) -> DirLock:
        return self.acquire()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


def _flock(fd: int) -> None:
    """Exclusive, non-blocking flock; BlockingIOError when another process holds it."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no locking (runs still resume; concurrent use is not detected)
        log.debug("fcntl unavailable: directory locks are not enforced")
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            raise BlockingIOError(e.errno, e.strerror) from None
        raise


def remove_temporaries(root: str | os.PathLike) -> int:
    """Delete the atomic-write temporaries kills left under `root` (call it holding root's lock).

    Directories below that are lock units of their own (hold a lock file) are left to their holder.
    Returns how many files were removed.
    """
    root = Path(root)
    removed = 0
    for dirpath, dirnames, filenames in os.walk(root):
        if Path(dirpath) != root and LOCK_NAME in filenames:
            dirnames.clear()
            continue
        for name in filenames:
            if is_atomic_temporary(name):
                (Path(dirpath) / name).unlink(missing_ok=True)
                removed += 1
    if removed:
        log.info("%s: removed %d temporary file(s) of interrupted writes", root, removed)
    return removed
