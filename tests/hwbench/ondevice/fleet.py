"""The Pythons the fleet runs (TX2: JetPack 4.6, Python 3.6; Xavier: JetPack 5, Python 3.8) as real
interpreters with virtual environments of that era's numpy / onnxruntime / Pillow, built once and
cached under ${XDG_CACHE_HOME:-~/.cache}/hwbench/fleet-pythons/<version>-<hash of the pins>.

`fleet_python(version)` returns the venv's interpreter, building it under a file lock (two xdist
workers never race; the second waits and reuses it), or raises `Unavailable` with a one-line reason
(no such interpreter on this machine, or no package index to build from).
"""

from __future__ import annotations

import fcntl
import glob
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

# pins of each JetPack's era: the last onnxruntime wheel for Python 3.6 is 1.10.0 (JetPack 4.6's
# ORT-GPU builds are 1.10/1.11); JetPack 5 (Ubuntu 20.04, Python 3.8) runs ORT 1.12-1.16 wheels,
# which need numpy >= 1.21.
FLEET = {
    "3.6": {"device": "TX2, JetPack 4.6 (TensorRT 8.0.1/8.2.1)",
            "bootstrap": ["pip==21.3.1"],
            "pins": ["numpy==1.19.5", "onnxruntime==1.10.0", "Pillow==8.4.0", "onnx==1.10.2",
                     "protobuf==3.19.6", "pytest==7.0.1"]},
    "3.8": {"device": "Xavier, JetPack 5.1 (TensorRT 8.5.2)",
            "bootstrap": [],
            "pins": ["numpy==1.21.6", "onnxruntime==1.12.1", "Pillow==9.0.1", "onnx==1.12.0",
                     "protobuf==3.20.1", "pytest==7.4.4"],
            # CI time: the 10-kill test (35 s of waiting) runs under 3.6 and the main interpreter only
            "deselect": "not test_sigkill_restart_ten_of_ten"},
    # JetPack 4.6's system numpy itself (no onnxruntime/onnx: they need numpy >= 1.16): the numpy paths
    "3.6-numpy1.13": {"device": "TX2, JetPack 4.6's system numpy", "python": "3.6",
                      "bootstrap": ["pip==21.3.1"], "pins": ["numpy==1.13.3", "pytest==7.0.1"],
                      "tests": ["test_old_numpy.py"]},
}


class Unavailable(Exception):
    """The interpreter or its venv cannot be had here (the reason is one line)."""


def find_interpreter(version: str) -> str | None:
    """A CPython `version` (e.g. '3.6') from pyenv's versions or PATH."""
    roots = [os.environ.get("PYENV_ROOT") or "", str(Path.home() / ".pyenv")]
    try:
        out = subprocess.run(["pyenv", "root"], capture_output=True, text=True, timeout=10)
        roots.insert(0, out.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    for root in filter(None, roots):
        hits = sorted(glob.glob(os.path.join(root, "versions", f"{version}.*", "bin", "python")),
                      key=lambda p: [int(x) for x in Path(p).parents[1].name.split(".") if x.isdigit()])
        if hits:
            return hits[-1]
    return shutil.which(f"python{version}")


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hwbench" / "fleet-pythons"


def venv_key(version: str, interpreter: str) -> str:
    spec = FLEET[version]
    h = hashlib.sha256("\n".join([interpreter] + spec["bootstrap"] + spec["pins"]).encode()).hexdigest()[:12]
    return f"{version}-{h}"


def fleet_python(version: str) -> str:
    """The venv interpreter for `version` (built once; see the module docstring)."""
    py_version = FLEET[version].get("python", version)
    interp = find_interpreter(py_version)
    if interp is None:
        raise Unavailable(f"Python {py_version} not found (pyenv versions or python{py_version} on PATH)")
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    key = venv_key(version, interp)
    venv = root / key
    py = venv / "bin" / "python"
    if (venv / ".ok").is_file():
        return str(py)
    with open(root / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)                # another worker may be building it: wait
        if (venv / ".ok").is_file():
            return str(py)
        tmp = root / f"{key}.building-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        spec = FLEET[version]
        steps = [[interp, "-m", "venv", str(tmp)]]
        pip = [str(tmp / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        if spec["bootstrap"]:
            steps.append(pip + spec["bootstrap"])
        steps.append(pip + spec["pins"])
        for cmd in steps:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
            if proc.returncode != 0:
                shutil.rmtree(tmp, ignore_errors=True)
                last = (proc.stderr.strip().splitlines() or ["?"])[-1][:160]
                raise Unavailable(f"cannot build the Python {version} venv ({' '.join(cmd[-2:])}: {last})")
        # venvs hold absolute paths: build in place of the final name, so rename the finished one
        shutil.rmtree(venv, ignore_errors=True)
        os.replace(tmp, venv)
        _fix_paths(venv, tmp)
        (venv / ".ok").write_text(" ".join(spec["pins"]) + "\n")
    return str(py)


def _fix_paths(venv: Path, old: Path) -> None:
    """A venv renamed after the build: rewrite its scripts' and pyvenv.cfg's absolute paths."""
    for p in list((venv / "bin").iterdir()) + [venv / "pyvenv.cfg"]:
        if p.is_file() and not p.is_symlink():
            try:
                text = p.read_text()
            except (UnicodeDecodeError, OSError):
                continue
            if str(old) in text:
                p.write_text(text.replace(str(old), str(venv)))


def copy_ondevice_tree(dst: Path) -> Path:
    """hwbench/ondevice.py and tests/hwbench/ondevice/ as a tree of their own (nothing else of hwbench:
    the device gets this one file), with a pytest.ini; returns the tests folder."""
    here = Path(__file__).resolve().parent
    repo = here.parents[2]
    (dst / "hwbench").mkdir(parents=True)
    (dst / "hwbench" / "__init__.py").write_text("")
    shutil.copy(repo / "hwbench" / "ondevice.py", dst / "hwbench" / "ondevice.py")
    tests = dst / "tests" / "hwbench" / "ondevice"
    tests.mkdir(parents=True)
    for f in here.iterdir():
        if f.suffix in (".py", ".json") and not f.name.startswith("test_fleet_") and f.name != "fleet.py":
            shutil.copy(f, tests / f.name)
    for pkg in (dst / "tests", dst / "tests" / "hwbench", tests):  # packages: relative imports on pytest 7.0
        (pkg / "__init__.py").write_text("")
    (dst / "pytest.ini").write_text("[pytest]\naddopts = -ra -p no:cacheprovider\n")
    return tests


def run_suite(python: str, tree: Path, tests: Path, files: list[str] | None = None, deselect: str | None = None,
              timeout: int = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(tree), PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTEST_XDIST_WORKER", None)
    env.pop("PYTEST_ADDOPTS", None)  # the outer run's options (e.g. a --basetemp above this tree) are not the fleet's
    # relative to the cwd: pytest reads "[...]" in an absolute path (a --basetemp with brackets) as a test id
    rel = tests.relative_to(tree)
    targets = [str(rel / f) for f in files] if files else [str(rel)]
    if deselect:
        targets += ["-k", deselect]
    return subprocess.run([python, "-m", "pytest", "-q", "-p", "no:randomly"] + targets, cwd=str(tree),
                          capture_output=True, text=True, timeout=timeout, env=env)


def check_under(version: str, tmp_path: Path, note_dir: Path) -> None:
    """Run this folder's tests under the fleet's Python `version` (pytest.skip when unavailable);
    the summary goes to note_dir/fleet-<version>.txt for the end of `make test`."""
    import re

    import pytest

    try:
        python = fleet_python(version)
    except Unavailable as e:
        pytest.skip(str(e))
    tree = tmp_path / "tree"
    tests = copy_ondevice_tree(tree)
    spec = FLEET[version]
    proc = run_suite(python, tree, tests, spec.get("tests"), spec.get("deselect"))
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    summary = lines[-1] if lines else "(no output)"
    if spec.get("deselect"):
        summary += f" (-k '{spec['deselect']}')"
    skips = sorted({re.sub(r"^SKIPPED \[\d+\] ", "", ln) for ln in lines if ln.startswith("SKIPPED")})
    note = f"Python {version} ({spec['device']}; {' '.join(spec['pins'][:3])}): {summary}"
    (note_dir / f"fleet-{version}.txt").write_text("\n".join([note] + [f"    skipped there: {s}" for s in skips]) + "\n")
    assert proc.returncode == 0, "\n".join(lines[-40:])
    assert re.search(r"\d+ passed", summary) and "failed" not in summary and "error" not in summary, summary


if __name__ == "__main__":  # build the venvs ahead of a test run: python tests/hwbench/ondevice/fleet.py
    for v in FLEET:
        try:
            print(v, fleet_python(v))
        except Unavailable as e:
            print(v, "unavailable:", e, file=sys.stderr)
