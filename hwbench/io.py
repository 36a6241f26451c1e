"""Atomic file writes and JSON-lines helpers. Every file the toolkit writes goes through here.

Every JSON text is strict JSON (`dumps_json`): a non-finite float (a diverged loss, a statistic of
nothing) is written as `null`, never as the `NaN`/`Infinity` tokens other parsers reject, and
`allow_nan=False` guards that nothing else slips through. Inputs whose NaN or infinity would be a
mistake are refused where they are read (profiles, configs, measurements, trtexec logs, --fps).
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from hwbench.errors import UserError

TMP_SUFFIX = ".tmp"  # temporaries of atomic writes: `.<name>.<random>.tmp` beside their target


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, durable: bool = True) -> Path:
    """Write `data` to `path` via a temporary file in the same directory and `os.replace`.

    A process killed mid-write leaves at most a temporary (`is_atomic_temporary`), never half a file.
    `durable=False` skips the fsync (still atomic: readers see the old or the new file, never a
    part of one); for caches, where losing a fresh entry on power loss only costs a recomputation.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the mode a plain open() would
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def file_problem(path: str | os.PathLike) -> str | None:
    """Why `path` cannot be read as a regular file ("not found", "is a directory", "is a FIFO (named pipe)
    ...", ...), None when it can. Checked before opening, so a FIFO never blocks the reader."""
    import stat

    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "not found" if not os.path.islink(path) else "is a symbolic link to nothing"
    except OSError as e:
        return f"cannot be read ({e.strerror or type(e).__name__})"
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "is a directory, not a file"
    if stat.S_ISFIFO(mode):
        return "is a FIFO (named pipe), not a regular file"
    return "is a device or socket, not a regular file"


def is_atomic_temporary(name: str) -> bool:
    """Whether a file name is a temporary `atomic_write_bytes` leaves behind when killed."""
    return name.startswith(".") and name.endswith(TMP_SUFFIX) and name.count(".") >= 3


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Build a whole directory, then swap it in: yields a temporary sibling directory to fill; on
    success `path` is replaced by it, on any error or interrupt the temporary directory is removed and
    `path` is untouched (a new `path` stays an empty directory). One writer at a time: `path` itself is
    locked throughout (a second process gets a one-line `UserError`).

    The swap is one `renameat2(RENAME_EXCHANGE)` where the kernel has it (Linux >= 3.15), so `path` is
    never missing, whenever the process is killed; elsewhere it is two renames. A process killed outright
    can leave `.NAME.tmp-PID-*` or, between the two renames of the fallback, `.NAME.old-PID-*` beside
    `path`: `recover_dir(path)` (called here first, and by readers) puts the old directory back when
    `path` is missing and removes the leftovers of dead processes.
    """
    out = Path(os.path.abspath(path))
    if os.path.islink(out) and not out.exists():
        raise UserError(f"{path} is a symbolic link that leads nowhere (a loop or a missing target); remove it "
                        "or choose another output directory")
    out.parent.mkdir(parents=True, exist_ok=True)
    recover_dir(out)  # first: a swap killed between its two renames left `out` missing
    with _write_lock(out):
        recover_dir(out)  # again under the lock: leftovers of a writer that died meanwhile
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-{os.getpid()}-", dir=out.parent))
        try:
            os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; give the mode a plain mkdir would
            yield tmp
            if not out.is_symlink() and _exchange(tmp, out):
                shutil.rmtree(tmp, ignore_errors=True)  # `tmp` holds the old tree now
            elif out.exists() or out.is_symlink():
                old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-{os.getpid()}-", dir=out.parent))
                os.replace(out, old)  # `old` is an empty directory: replaced by the old tree
                os.replace(tmp, out)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


@contextlib.contextmanager
def _write_lock(out: Path) -> Iterator[None]:
    """Hold `flock` on the directory `out` itself (created empty if missing; no lock file is left anywhere).
    Never waits; the kernel drops the lock when the process dies. A writer that starts after a swap
    locks the new directory: by then the one before has finished."""
    out.mkdir(exist_ok=True)
    fd = os.open(out, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        try:
            import fcntl
        except ImportError:  # not POSIX: writers are not serialised
            fcntl = None
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
                raise UserError(f"{out} is being written by another process; wait for it to finish, "
                                "then retry") from None
        yield
    finally:
        os.close(fd)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (`renameat2(..., RENAME_EXCHANGE)`); False when the system cannot."""
    import ctypes

    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False  # not this kernel or file system: the two renames
    raise OSError(err, os.strerror(err), str(b))


def recover_dir(path: str | os.PathLike) -> None:
    """Clean up after an `atomic_dir` whose process died (see there)."""
    out = Path(os.path.abspath(path))
    if not out.parent.is_dir():
        return

    def leftovers(kind: str) -> list[Path]:
        found = []
        for p in out.parent.glob(f".{_glob_escape(out.name)}.{kind}-*"):
            pid = p.name[len(out.name) + len(kind) + 3:].split("-", 1)[0]
            if pid.isdigit() and not _alive(int(pid)):
                found.append(p)
        return sorted(found, key=lambda p: p.stat().st_mtime)

    olds = leftovers("old")
    if olds and not out.exists():
        os.replace(olds.pop(), out)  # killed between the two renames of a swap: the old directory back
    for p in olds + leftovers("tmp"):
        shutil.rmtree(p, ignore_errors=True)


def _glob_escape(name: str) -> str:
    import glob

    return glob.escape(name)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # our own leftovers are from an earlier call in this process
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def atomic_write_text(path: str | os.PathLike, text: str, *, durable: bool = True) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"), durable=durable)


def finite(obj: Any) -> Any:
    """`obj` with every non-finite float (nan, inf) replaced by None, recursively."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):
        return finite(obj.tolist())
    return obj


def dumps_json(obj: Any, **kw: Any) -> str:
    """Strict JSON text of `obj` (non-finite floats -> null; numpy/paths converted)."""
    kw.setdefault("default", _default)
    return json.dumps(finite(obj), allow_nan=False, **kw)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, dumps_json(obj, indent=2, sort_keys=False) + "\n")


def write_jsonl(path: str | os.PathLike, records: Iterable[dict]) -> Path:
    """Write all records at once (atomically), one JSON object per line."""
    return atomic_write_text(path, "".join(dumps_json(r) + "\n" for r in records))


def read_jsonl(path: str | os.PathLike) -> Iterator[dict]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def to_jsonable(obj: Any) -> Any:
    """Plain JSON types: numpy / torch scalars and arrays become Python numbers and lists, other
    unknown objects their `str`, non-finite floats None."""
    return json.loads(json.dumps(finite(obj), allow_nan=False,
                                 default=lambda o: finite(o.tolist()) if hasattr(o, "tolist") else str(o)))


def _default(obj: Any) -> Any:
    """JSON for numpy scalars/arrays, paths and tuples-as-lists."""
    if hasattr(obj, "tolist"):
        return finite(obj.tolist())
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
