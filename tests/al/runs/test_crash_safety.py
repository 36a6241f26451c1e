"""Run and experiment directories survive a kill at every atomic write, and a second process.

An uninterrupted reference run is copied just before each of its atomic writes (`os.replace` of a
temporary), with that write's temporary beside its untouched target: exactly what a kill -9 at that
write leaves on disk. Every copy is then resumed and must end exactly like the reference, with no
temporary left behind. (One test also stops a run in-process at a write, to check nothing catches it.)
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from al.cli import main
from al.experiments.surrogate import run_experiment
from al.loop import run
from al.runs.files import seal
from hwbench.io import is_atomic_temporary
from tests.al.corruption import tiny_run_toml

EXPERIMENT_TOML = """name = "tiny"
seeds = [0]
device = "cpu"
threads = 1
deployment = ["resnet20"]
surrogates = ["resnet20"]
[data]
name = "digits"
pool_size = 40
val_size = 20
options = { size = 8 }
[al]
strategy = "entropy"
initial_fraction = 0.25
cycle_fraction = 0.25
cycles = 1
batch_size = 20
[train.surrogate]
epochs = 1
batch_size = 10
[train.deployment]
epochs = 1
batch_size = 10
"""


class Killed(BaseException):
    """Stands for a kill: nothing in the toolkit may catch it."""


@contextmanager
def writes(kill_at: int | None = None) -> Iterator[list[Path]]:
    """Record every atomic write's target; with `kill_at`, stop at that write as a kill would."""
    done: list[Path] = []
    real = os.replace

    def replace(src: str | os.PathLike, dst: str | os.PathLike) -> None:
        if not is_atomic_temporary(os.path.basename(os.fspath(src))):
            return real(src, dst)
        if len(done) + 1 == kill_at:
            os.link(src, os.fspath(src)[:-4] + "k.tmp")  # the temporary outlives the process
            raise Killed
        real(src, dst)
        done.append(Path(dst))

    real_fsync = os.fsync
    os.replace, os.fsync = replace, lambda fd: None  # no fsync: the disk is not what is tested here
    try:
        yield done
    finally:
        os.replace, os.fsync = real, real_fsync


@contextmanager
def kill_states(root: Path, store: Path, keep: Callable[[int, Path], bool] = lambda n, dst: True
                ) -> Iterator[list[tuple[Path, Path]]]:
    """Copy `root` as a kill at each atomic write under it would leave it: [(copy, target of the write)]."""
    shots: list[tuple[Path, Path]] = []
    real, real_fsync, count = os.replace, os.fsync, [0]

    def replace(src: str | os.PathLike, dst: str | os.PathLike) -> None:
        src, dst = Path(src), Path(dst)
        if is_atomic_temporary(src.name) and root in src.parents:
            count[0] += 1
            if keep(count[0], dst):
                snap = store / f"kill_{count[0]:03d}"
                shutil.copytree(root, snap)
                shutil.copy2(src, snap / src.relative_to(root))  # the temporary, complete or not
                shots.append((snap, dst))
        real(src, dst)

    os.replace, os.fsync = replace, lambda fd: None  # no fsync: the disk is not what is tested here
    try:
        yield shots
    finally:
        os.replace, os.fsync = real, real_fsync


def temporaries(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if is_atomic_temporary(p.name)]


def run_outcome(d: Path) -> dict:
    """What must not depend on interruptions: selections, metrics, training losses, final weights."""
    state = json.loads((d / "state.json").read_text())
    final = torch.load(d / "checkpoints" / f"cycle_{len(state['cycles']) - 1:03d}.pt", weights_only=True)
    return {"selected": [c["selected"] for c in state["cycles"]],
            "records": [(c["record"]["value"], c["record"]["metrics"], c["train"]["loss_per_epoch"])
                        for c in state["cycles"]],
            "selections.jsonl": [json.loads(x)["selected"] for x in (d / "selections.jsonl").read_text().splitlines()],
            "metrics.jsonl": [json.loads(x)["value"] for x in (d / "metrics.jsonl").read_text().splitlines()],
            "weights": {k: v.tolist() for k, v in final["model"].items()},
            "done": state["done"] and (d / "DONE").is_file()}


def test_al_run_killed_at_every_write_resumes_identically(tmp_path: Path) -> None:
    cfg = tmp_path / "run.toml"
    cfg.write_text(tiny_run_toml())
    with kill_states(tmp_path / "ref", tmp_path / "kills") as shots:
        run(str(cfg), tmp_path / "ref", progress=False)
    ref = run_outcome(tmp_path / "ref")
    assert len(shots) >= 20 and ref["done"]
    for n, (d, target) in enumerate(shots, 1):
        assert temporaries(d), n
        res = run(str(cfg), d, resume=True, progress=False)
        assert res.done and run_outcome(d) == ref, f"killed at write {n} ({target.name})"
        assert not temporaries(d), n


def test_a_kill_is_not_caught_on_its_way_out(tmp_path: Path) -> None:
    cfg = tmp_path / "run.toml"
    cfg.write_text(tiny_run_toml())
    with writes(kill_at=12), pytest.raises(Killed):  # inside cycle 0
        run(str(cfg), tmp_path / "run", progress=False)
    assert temporaries(tmp_path / "run") and not (tmp_path / "run" / "DONE").exists()
    assert run(str(cfg), tmp_path / "run", resume=True, progress=False).status == "resumed"


def _records(d: Path) -> list[tuple]:
    return [(r["deployment"], r["surrogate"], r["seed"], r["value"])
            for r in map(json.loads, (d / "records.jsonl").read_text().splitlines())]


def test_al_surrogate_killed_at_every_experiment_write_resumes_identically(tmp_path: Path) -> None:
    cfg = tmp_path / "exp.toml"
    cfg.write_text(EXPERIMENT_TOML)
    ref_dir = tmp_path / "ref"
    with writes() as ref_writes:
        run_experiment(str(cfg), ref_dir)
    ref = _records(ref_dir)
    assert len(ref) == 2 and (ref_dir / "DONE").is_file()
    # every write of the experiment itself; the AL sub-run (an `al run`, tested at every write above)
    # at its first and last write
    sub = [i for i, p in enumerate(ref_writes, 1) if p.relative_to(ref_dir).parts[1:2] == ("al",)]
    points = {i for i in range(1, len(ref_writes) + 1) if i not in sub} | {sub[0], sub[-1]}
    assert len(points) >= 15
    with kill_states(tmp_path / "exp", tmp_path / "kills", keep=lambda n, dst: n in points) as shots:
        run_experiment(str(cfg), tmp_path / "exp")
    assert len(shots) == len(points)
    for d, target in shots:
        what = target.relative_to(tmp_path / "exp")
        assert temporaries(d), what
        run_experiment(str(cfg), d, resume=True)
        assert _records(d) == ref, f"killed at {what}"
        assert (d / "DONE").is_file() and (d / "report.md").is_file() and not temporaries(d), what


def test_al_surrogate_chain_killed_at_its_own_writes_resumes_identically(tmp_path: Path) -> None:
    cfg = tmp_path / "exp.toml"
    cfg.write_text(EXPERIMENT_TOML + '[chain]\nmodels = ["resnet20", "mobilenetv3_small"]\n')
    ref = run_experiment(str(cfg), tmp_path / "ref", chain=True)["chain"]
    assert [r["surrogate"] for r in ref] == ["resnet20", "random"]

    def chain_write(n: int, dst: Path) -> bool:  # the chain's own files: inherited set, random cell, chain.jsonl
        return "chain" in dst.parts or dst.name.startswith(("random_", "chain."))

    with kill_states(tmp_path / "exp", tmp_path / "kills", keep=chain_write) as shots:
        run_experiment(str(cfg), tmp_path / "exp", chain=True)
    assert len(shots) >= 4
    for d, target in shots:
        got = run_experiment(str(cfg), d, resume=True, chain=True)["chain"]
        assert got == ref and not temporaries(d), f"killed at {target.relative_to(tmp_path / 'exp')}"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "AL_TEST_SLOW_CYCLE_S"}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", **extra)
    return env


def test_second_al_run_is_refused_and_sigterm_exits_cleanly(tmp_path: Path, capsys) -> None:
    cfg, d = tmp_path / "run.toml", tmp_path / "run"
    cfg.write_text(tiny_run_toml())
    proc = subprocess.Popen([sys.executable, "-m", "al", "run", str(cfg), "--out", str(d), "--json"],
                            env=_env(AL_TEST_SLOW_CYCLE_S="30"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + 300
        while not (d / "state.json").is_file():  # written holding the lock
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        capsys.readouterr()
        assert main(["run", str(cfg), "--out", str(d), "--resume"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"in use by process {proc.pid}" in err, err
        proc.send_signal(signal.SIGTERM)  # what a scheduler sends
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signal.SIGTERM and stderr.strip().splitlines()[-1] == "interrupted", stderr
    assert "Traceback" not in stderr
    assert main(["run", str(cfg), "--out", str(d), "--resume"]) == 0  # the lock died with its holder
    run(str(cfg), tmp_path / "ref", progress=False)
    assert run_outcome(d) == run_outcome(tmp_path / "ref")


def test_second_al_surrogate_is_refused_with_the_holders_pid(tmp_path: Path, capsys) -> None:
    cfg, d = tmp_path / "exp.toml", tmp_path / "exp"
    cfg.write_text(EXPERIMENT_TOML)
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom al.runs.lock import DirLock\n"
                               "with DirLock(sys.argv[1]):\n    print('locked', flush=True)\n    time.sleep(120)\n",
                               str(d)], stdout=subprocess.PIPE, text=True, env=_env())
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = sorted(p.name for p in d.iterdir())
        capsys.readouterr()
        assert main(["surrogate", str(cfg), "--out", str(d)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"in use by process {holder.pid}" in err, err
        assert sorted(p.name for p in d.iterdir()) == before  # nothing written
    finally:
        holder.kill()
        holder.wait()


def test_finished_run_is_verified_not_trusted(tmp_path: Path, capsys) -> None:
    cfg = tmp_path / "run.toml"
    cfg.write_text(tiny_run_toml())
    d = tmp_path / "run"
    run(str(cfg), d, progress=False)
    ref = run_outcome(d)
    # garbage last line in selections.jsonl: rewritten from state.json, and said so
    with open(d / "selections.jsonl", "a") as f:
        f.write('{"cycle": 2, "sel')
    assert main(["run", str(cfg), "--out", str(d), "--resume"]) == 0
    assert "repaired" in capsys.readouterr().err and run_outcome(d) == ref
    # the final checkpoint lost: its cycle is trained again, to the same weights
    (d / "checkpoints" / "cycle_001.pt").unlink()
    assert main(["run", str(cfg), "--out", str(d), "--resume"]) == 0
    assert "resumed" in capsys.readouterr().err and run_outcome(d) == ref
    # DONE beside an unfinished state is not believed; a finished state without DONE gets it back
    # (the state a kill after cycle 1's training leaves: written sealed, as the loop writes it)
    state = json.loads((d / "state.json").read_text())
    state["done"] = False
    state["cycles"][-1]["steps"] = ["select", "train"]
    del state["cycles"][-1]["record"]
    (d / "state.json").write_text(json.dumps(seal(state)))
    assert main(["run", str(cfg), "--out", str(d), "--resume"]) == 0
    assert "resumed" in capsys.readouterr().err and run_outcome(d) == ref
    (d / "DONE").unlink()
    assert main(["run", str(cfg), "--out", str(d), "--resume"]) == 0
    assert (d / "DONE").is_file() and run_outcome(d) == ref
