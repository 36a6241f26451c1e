"""The surrogate matrix as cells: the plan and its dependencies (surrogate_smoke), two concurrent `--shard`
processes then `al report`, and `--jobs 2`, each against the serial run of a smaller matrix (`cells_config`:
one seed of surrogate_smoke with MNV3 as its only surrogate, so 3 cells)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from al.cli import main
from al.experiments.surrogate import run_experiment
from hwbench.io import read_jsonl

ROOT = Path(__file__).resolve().parents[3]
SMOKE = ROOT / "al" / "presets" / "surrogate_smoke.toml"
RES20, MNV3 = "deeplabv3plus_resnet20", "deeplabv3plus_mobilenetv3_small"


def _al(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "al", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def cells_config(tmp_path_factory) -> str:
    """surrogate_smoke, one seed, MNV3 the only surrogate: cells al/s0/MNV3 -> train/s0/Res-20/MNV3,
    and train/s0/Res-20/random_8."""
    text = SMOKE.read_text()
    for old, new in ((f'surrogates = ["{RES20}", "{MNV3}"]', f'surrogates = ["{MNV3}"]'),
                     ("seeds = [0, 1]", "seeds = [0]"), ('name = "surrogate_smoke"', 'name = "cells_smoke"')):
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path = tmp_path_factory.mktemp("config") / "cells_smoke.toml"
    path.write_text(text)
    return str(path)


@pytest.fixture(scope="module")
def serial(cells_config, tmp_path_factory) -> list[dict]:
    out = tmp_path_factory.mktemp("serial") / "exp"
    recs = run_experiment(cells_config, out)["records"]
    assert [(r["seed"], r["deployment"], r["surrogate"]) for r in recs] == [(0, RES20, MNV3), (0, RES20, "random")]
    return recs


def test_list_cells_names_every_unit_and_its_dependencies(capsys) -> None:
    assert main(["surrogate", "surrogate_smoke", "--num-seeds", "1", "--list-cells", "--json"]) == 0
    cells = {c["cell"]: c for c in json.loads(capsys.readouterr().out)}
    assert set(cells) == {f"al/s0/{RES20}", f"al/s0/{MNV3}", f"train/s0/{RES20}/{RES20}",
                          f"train/s0/{RES20}/{MNV3}", f"train/s0/{RES20}/random_8"}
    assert cells[f"train/s0/{RES20}/{MNV3}"]["deps"] == [f"al/s0/{MNV3}"]
    assert cells[f"train/s0/{RES20}/random_8"]["deps"] == [] and cells[f"al/s0/{RES20}"]["deps"] == []
    assert {c["status"] for c in cells.values()} == {"ready", "waiting"}
    assert not Path("EXPERIMENT_DIR").exists()


def test_two_shards_at_once_then_report_equal_the_serial_matrix(cells_config, serial, tmp_path, capsys) -> None:
    out = tmp_path / "exp"
    procs = [_al("surrogate", cells_config, "--out", str(out), "--shard", f"{i}/2")
             for i in (0, 1)]
    for p in procs:
        _, err = p.communicate(timeout=900)
        assert p.returncode == 0, err[-2000:]
    partial = tmp_path / "partial"
    shutil.copytree(out, partial)
    assert main(["report", str(out)]) == 0
    assert list(read_jsonl(out / "records.jsonl")) == serial
    assert (out / "report.md").is_file()
    # a cell not finished: `al report` merges the others and names it
    for name in ("DONE", "records.jsonl"):
        (partial / name).unlink(missing_ok=True)
    shutil.rmtree(partial / "seed_0" / "train" / RES20 / MNV3)
    capsys.readouterr()
    assert main(["report", str(partial)]) == 0
    err = capsys.readouterr().err
    assert "1 cell(s) not finished" in err and f"train/s0/{RES20}/{MNV3}" in err
    assert list(read_jsonl(partial / "records.jsonl")) == [r for r in serial if r["surrogate"] != MNV3]


def test_jobs_two_equals_serial(cells_config, serial, tmp_path) -> None:
    p = _al("surrogate", cells_config, "--out", str(tmp_path / "exp"), "--jobs", "2", "--json")
    stdout, err = p.communicate(timeout=900)
    assert p.returncode == 0, err[-2000:]
    assert json.loads(stdout)["records"] == serial


def test_jobs_holds_the_experiment_for_its_whole_life(cells_config, serial, tmp_path, capsys) -> None:
    """A second `al surrogate --jobs 2 --resume` on a directory a `--jobs` run is working in is refused at
    once, naming the holder, and writes nothing; the first run ends as the serial one."""
    import time

    out = tmp_path / "exp"
    p = _al("surrogate", cells_config, "--out", str(out), "--jobs", "2", "--json")
    deadline = time.monotonic() + 120
    while not _children(p.pid, "--worker") and time.monotonic() < deadline:  # the parent holds the lock now
        time.sleep(0.1)
    assert p.poll() is None, p.communicate()
    before = sorted(str(q.relative_to(out)) for q in out.rglob("experiment.*"))
    capsys.readouterr()
    assert main(["surrogate", cells_config, "--out", str(out), "--jobs", "2", "--resume"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"in use by process {p.pid}" in err, err
    assert sorted(str(q.relative_to(out)) for q in out.rglob("experiment.*")) == before
    stdout, err = p.communicate(timeout=900)
    assert p.returncode == 0, err[-2000:]
    assert json.loads(stdout)["records"] == serial


def test_cell_with_unfinished_dependency_is_refused(tmp_path, capsys) -> None:
    rc = main(["surrogate", "surrogate_smoke", "--num-seeds", "1", "--out", str(tmp_path / "e"),
               "--cell", f"train/s0/{RES20}/{MNV3}"])
    assert rc == 2 and f"depends on al/s0/{MNV3}" in capsys.readouterr().err
    assert main(["surrogate", "surrogate_smoke", "--out", str(tmp_path / "e"), "--shard", "2/2"]) == 2


def test_a_failing_worker_is_reported_in_one_line(cells_config, serial, tmp_path) -> None:
    """`--jobs` workers are `al surrogate ... --worker` processes: one that exits non-zero stops the run with
    its last stderr line (here: the workers are pointed at a preset that does not exist)."""
    from al.experiments import cell_runner, cells
    from al.experiments.cell_runner import open_cells
    from hwbench.errors import UserError

    exp, plan = open_cells(cells_config, tmp_path / "exp")
    with pytest.raises(UserError, match=r"a cell worker failed \(exit 2\): .*no_such_preset"):
        cell_runner.run_parallel(exp, plan, 2, ["no_such_preset", "--out", str(tmp_path / "exp")])
    assert not any(cells.is_done(c) for c in plan)


def test_workers_end_when_the_parent_is_killed(cells_config, tmp_path) -> None:
    """SIGKILL gives `al surrogate --jobs 2` no chance to stop its workers: they notice and exit, before
    finishing any cell (the parent is killed while they start up)."""
    import signal
    import time

    p = _al("surrogate", cells_config, "--out", str(tmp_path / "exp"), "--jobs", "2")
    deadline = time.monotonic() + 120
    workers: list[int] = []
    while not workers and time.monotonic() < deadline:
        time.sleep(0.2)
        workers = _children(p.pid, "--worker")
    assert workers, "no worker process started"
    p.send_signal(signal.SIGKILL)                 # at once: the workers are still starting up
    p.communicate(timeout=30)
    deadline = time.monotonic() + 5                # the kernel kills them with the parent (PR_SET_PDEATHSIG);
    # the bound is slack for a loaded machine, not a speed claim (left alone they run all 3 cells, ~10 s)
    while time.monotonic() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.2)
    assert not any(_alive(w) for w in workers)
    assert not (tmp_path / "exp" / "seed_0" / "train" / RES20 / "random_8" / "record.json").is_file()


def _children(parent: int, arg: str) -> list[int]:
    """PIDs of `parent`'s child processes with `arg` on their command line (Linux /proc)."""
    found = []
    for d in Path("/proc").iterdir():
        try:
            ppid = int((d / "stat").read_text().split(")")[-1].split()[1])
            argv = (d / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue
        if ppid == parent and arg.encode() in argv:
            found.append(int(d.name))
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.is_file() and stat.read_text().split(")")[-1].split()[0] == "Z")  # a zombie has ended
