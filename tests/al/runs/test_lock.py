"""al.runs.lock and the directory checks: one process per directory, any directory a lock unit,
bookkeeping files never make a directory look used."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from al.runs.experiment_dir import check_out_dir
from al.runs.lock import LOCK_NAME, DirLock, holder_pid, remove_temporaries
from al.runs.run_dir import RunDir
from hwbench.errors import UserError

HOLD = ("import sys, time\nfrom al.runs.lock import DirLock\n"
        "with DirLock(sys.argv[1], what='cell'):\n    print('locked', flush=True)\n    sys.stdin.read()\n")


def _holder(path: Path) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True)
    assert p.stdout.readline().strip() == "locked"
    return p


def test_another_process_is_refused_and_named_until_the_holder_ends(tmp_path: Path) -> None:
    cell = tmp_path / "exp" / "cells" / "seed_0-resnet20"
    holder = _holder(cell)
    try:
        assert holder_pid(cell) == holder.pid
        with pytest.raises(UserError, match=rf"^cell {re.escape(str(cell))} is in use by process {holder.pid} "):
            DirLock(cell, what="cell").acquire()
        with DirLock(tmp_path / "exp"), DirLock(cell.parent / "seed_1-resnet20"):
            pass  # the parent and a sibling are separate lock units
    finally:
        holder.communicate("")  # closing stdin ends the holder
    with DirLock(cell) as lock:  # the kernel released the lock with its process
        assert holder_pid(cell) == __import__("os").getpid() and lock.lock_file.name == LOCK_NAME


def test_lock_is_reentrant_in_one_process(tmp_path: Path) -> None:
    with DirLock(tmp_path / "d"), DirLock(tmp_path / "d"):
        pass
    holder = _holder(tmp_path / "d")  # released after the outer block: another process can take it
    holder.communicate("")


def test_temporaries_and_the_lock_file_do_not_make_a_directory_used(tmp_path: Path) -> None:
    d = tmp_path / "run"
    d.mkdir()
    (d / LOCK_NAME).write_text("")
    (d / ".config.toml.x1y2z3.tmp").write_text("half")
    assert RunDir(d).is_empty() and not RunDir(d).is_run()
    (d / "sub").mkdir()
    (d / "sub" / ".state.json.abc.tmp").write_text("x")
    (d / "cell").mkdir()
    (d / "cell" / LOCK_NAME).write_text("")
    (d / "cell" / ".DONE.q.tmp").write_text("x")  # a lock unit of its own: left to its holder
    (d / "notes.tmp").write_text("a user's file")
    assert remove_temporaries(d) == 2
    assert sorted(p.relative_to(d).as_posix() for p in d.rglob("*") if p.is_file()) == \
        [".lock", "cell/.DONE.q.tmp", "cell/.lock", "notes.tmp"]


def test_experiment_killed_before_its_identity_counts_as_new(tmp_path: Path) -> None:
    out = tmp_path / "exp"
    out.mkdir()
    (out / "experiment.toml").write_text("name = 'x'\n")  # an older version wrote this before experiment.json
    (out / ".experiment.json.k3.tmp").write_text("{")
    (out / LOCK_NAME).write_text("")
    check_out_dir(out, "x", resume=False, kind="surrogate")  # no error: nothing identifies another experiment
    (out / "experiment.json").write_bytes(b"\xff\xfe garbage")
    with pytest.raises(UserError, match="experiment.json is unreadable"):
        check_out_dir(out, "x", resume=True, kind="surrogate")


def test_clear_keeps_the_held_lock_file(tmp_path: Path) -> None:
    d = tmp_path / "run"
    with DirLock(d):
        (d / "state.json").write_text("{}")
        (d / "checkpoints").mkdir()
        (d / "checkpoints" / "cycle_000.pt").write_bytes(b"x")
        RunDir(d).clear()
        assert [p.name for p in d.iterdir()] == [LOCK_NAME]


def test_other_studies_inside_a_new_experiment_directory_do_not_make_it_used(tmp_path: Path) -> None:
    """`al report DIR` reads DIR/entropy, DIR/fleet and folders of `al run` directories: started before the
    matrix (as `make demo`'s two lanes may), they must not make DIR 'not empty'; anything else still does."""
    out = tmp_path / "exp"
    (out / "entropy").mkdir(parents=True)
    (out / "entropy" / "experiment.json").write_text("{}")
    (out / "strategies" / "entropy").mkdir(parents=True)
    (out / "strategies" / "entropy" / "state.json").write_text("{}")
    (out / "digits").mkdir()
    (out / "digits" / LOCK_NAME).write_text("123")  # another experiment being created right now
    check_out_dir(out, "x", resume=False, kind="surrogate")  # no error
    for bad in ("seed_0/x", "notes/readme.txt", "strategies/stray.txt"):
        probe = out / bad
        probe.parent.mkdir(parents=True, exist_ok=True)
        probe.write_text("not a study")
        with pytest.raises(UserError, match="is not empty and holds no experiment"):
            check_out_dir(out, "x", resume=False, kind="surrogate")
        probe.unlink()
        if probe.parent != out and not any(probe.parent.iterdir()):
            probe.parent.rmdir()
    (out / "results.csv").write_text("a,b\n")
    with pytest.raises(UserError, match="is not empty and holds no experiment"):
        check_out_dir(out, "x", resume=False, kind="surrogate")


def test_a_symlinked_lock_file_is_refused_and_nothing_is_created(tmp_path: Path) -> None:
    """A dangling `.lock` symlink: before, the lock followed it (creating or locking its target, and naming
    the target in the error)."""
    d = tmp_path / "run"
    d.mkdir()
    target = tmp_path / "elsewhere" / "target"
    (d / LOCK_NAME).symlink_to(target)
    with pytest.raises(UserError, match=rf"^{re.escape(str(d / LOCK_NAME))} is a symbolic link"):
        DirLock(d, what="run").acquire()
    assert not target.exists() and not target.parent.exists()


def test_a_run_being_started_elsewhere_names_its_holder(tmp_path: Path, capsys) -> None:
    """The loser of two fresh `al run` on one directory sees the winner's config.toml already: it is told
    who holds the directory, not "pass --resume or --force"."""
    from al.cli import main

    d = tmp_path / "run"
    holder = _holder(d)
    try:
        (d / "config.toml").write_text("seed = 0\n")  # what the winner writes first, under its lock
        assert main(["run", "smoke_digits", "--out", str(d)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"in use by process {holder.pid}" in err and "--resume" not in err, err
    finally:
        holder.communicate("")
