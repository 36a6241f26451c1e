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
import time
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


def _who(directory: str | os.PathLike) -> str:
    pid = holder_pid(directory)
    return f"process {pid}" if pid is not None else "another process"


def check_not_busy(directory: str | os.PathLike, *, what: str = "directory") -> None:
    """`UserError` naming the holder when another process holds `directory`'s lock (creates nothing)."""
    lock = Path(directory) / LOCK_NAME
    key = os.path.join(os.path.realpath(directory), LOCK_NAME)
    if key in _HELD or not lock.is_file() or lock.is_symlink():
        return
    try:
        fd = os.open(key, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return
    try:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except ImportError:
        return
    except OSError as e:
        if e.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            raise UserError(f"{what} {directory} is in use by {_who(directory)} (lock {lock}); wait for it to "
                            "finish or stop it, then retry") from None
    finally:
        os.close(fd)


class DirLock:
    """`with DirLock(path, what="run"):` holds the exclusive lock of `path` (created if missing)."""

    def __init__(self, path: str | os.PathLike, *, what: str = "directory") -> None:
        self.path = Path(path)
        self.what = what
        self._key: str | None = None

    @property
    def lock_file(self) -> Path:
        return self.path / LOCK_NAME

    def acquire(self, wait_s: float = 0.0) -> DirLock:
        """Take the lock now (or within `wait_s` seconds) or raise `UserError`."""
        self.path.mkdir(parents=True, exist_ok=True)
        if self.lock_file.is_symlink():  # a dangling link would create (or lock) some other file
            raise UserError(f"{self.lock_file} is a symbolic link, not this {self.what}'s lock file; remove it "
                            "(it is made again), then retry")
        key = os.path.join(os.path.realpath(self.path), LOCK_NAME)
        if key in _HELD:  # this process holds it already
            fd, depth = _HELD[key]
            _HELD[key] = (fd, depth + 1)
            self._key = key
            return self
        fd = os.open(key, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o666)
        deadline = time.monotonic() + wait_s
        try:
            while True:
                try:
                    _flock(fd)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise
                    time.sleep(0.1)
        except BlockingIOError:
            os.close(fd)
            raise UserError(f"{self.what} {self.path} is in use by {_who(self.path)} (lock {self.lock_file}); "
                            "wait for it to finish or stop it, then retry") from None
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
        return self if self._key is not None else self.acquire()  # `with DirLock(p).acquire(wait_s=...)`

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
