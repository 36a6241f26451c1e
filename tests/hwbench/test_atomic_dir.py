"""`hwbench.io.atomic_dir` (the swap `hwbench report` and `al ingest` write through): a real SIGKILL at
each step of the swap leaves the old or the new directory whole, with nothing to recover first; a
second writer is refused while the first works."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hwbench.errors import UserError
from hwbench.io import atomic_dir

ROOT = Path(__file__).resolve().parents[2]

# builds OUT with old.txt, then rebuilds it with new.txt and SIGKILLs itself right after the K-th call of
# the swap (an os.replace or the atomic exchange): the body writes with plain open(), so every such call
# after it is the swap's own
KILLER = """
import os, signal, sys
import hwbench.io as hio
out, k = sys.argv[1], int(sys.argv[2])
with hio.atomic_dir(out) as d:
    open(os.path.join(d, "old.txt"), "w").write("old")
calls = [0]
def after(fn):
    def wrapped(*a, **kw):
        r = fn(*a, **kw)
        calls[0] += 1
        if calls[0] == k:
            os.kill(os.getpid(), signal.SIGKILL)
        return r
    return wrapped
hio.os.replace = after(os.replace)
hio._exchange = after(hio._exchange)
with hio.atomic_dir(out) as d:
    open(os.path.join(d, "new.txt"), "w").write("new")
print("swapped without a kill", flush=True)
"""


@pytest.mark.parametrize("k", [1, 2])
def test_sigkill_during_the_swap_never_leaves_the_directory_missing(tmp_path: Path, k: int) -> None:
    out = tmp_path / "rep"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.run([sys.executable, "-c", KILLER, str(out), str(k)], env=env, capture_output=True, text=True,
                       timeout=60)
    assert p.returncode in (-signal.SIGKILL, 0), p.stderr
    # no recover_dir: a reader right after the kill sees a whole directory, old or new
    assert out.is_dir(), (k, sorted(q.name for q in tmp_path.iterdir()))
    assert sorted(q.name for q in out.iterdir()) in (["old.txt"], ["new.txt"])


HOLDER = """
import sys
import hwbench.io as hio
with hio.atomic_dir(sys.argv[1]) as d:
    print("building", flush=True)
    sys.stdin.read()
"""


def test_a_second_writer_is_refused_and_the_first_finishes(tmp_path: Path) -> None:
    out = tmp_path / "rep"
    with atomic_dir(out) as d:
        (d / "first.txt").write_text("1")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], env=env, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "building"
        with pytest.raises(UserError, match=r"is being written by another process"):
            with atomic_dir(out) as d:
                (d / "second.txt").write_text("2")
        assert sorted(q.name for q in out.iterdir()) == ["first.txt"]
    finally:
        holder.communicate("")
    assert holder.returncode == 0 and out.is_dir() and not any(out.iterdir())  # the holder's (empty) build
    assert sorted(q.name for q in tmp_path.iterdir()) == ["rep"]  # no lock file, no leftovers


def test_symlink_loop_is_named_as_such(tmp_path: Path) -> None:
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    with pytest.raises(UserError, match=r"loop.* symbolic link that leads nowhere"):
        with atomic_dir(loop):
            pass
    assert sorted(q.name for q in tmp_path.iterdir()) == ["loop"]
