"""A regular (non-editable) wheel works outside the checkout: it carries the device profiles and
both command-line tools. The wheel is built from a copy of the sources, installed with
`--no-deps --no-index` (nothing is downloaded) into a fresh venv that sees this interpreter's
site-packages for torch & co. but not the editable install, and run from another directory."""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("hwbench", "al", "profiles", "pyproject.toml", "setup.py", "MANIFEST.in", "README.md")


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in SOURCES:
        p = ROOT / name
        if p.is_dir():
            shutil.copytree(p, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(p, src / name)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HWBENCH_PROFILES", "PIP_INDEX_URL")}
    env["PIP_NO_INDEX"] = "1"
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
                  "-w", str(tmp / "dist"), str(src)], tmp, env)
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next((tmp / "dist").glob("hwbench-*.whl"))

    venv = tmp / "venv"
    made = _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp, env)
    assert made.returncode == 0, made.stderr[-2000:]
    py = venv / "bin" / "python"
    purelib = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                        tmp, env).stdout.strip())
    # The running interpreter's site-packages as plain paths: their .pth files (the editable finder) are
    # not processed, so `hwbench` can only come from the wheel.
    shared = dict.fromkeys([*site.getsitepackages(), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (purelib / "zz_shared_site_packages.pth").write_text("".join(f"{p}\n" for p in shared))
    installed = _run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index", "-q",
                      str(wheel)], tmp, env)
    assert installed.returncode == 0, installed.stderr[-2000:]
    return venv


def _tool(venv: Path, tmp_path: Path, *argv: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HWBENCH_PROFILES")}
    env["HWBENCH_CACHE_DIR"] = str(tmp_path / "cache")
    env["COLUMNS"] = "200"
    return _run([str(venv / "bin" / argv[0]), *argv[1:]], tmp_path, env)


def test_wheel_imports_from_the_venv_not_the_checkout(venv: Path, tmp_path: Path) -> None:
    r = _tool(venv, tmp_path, "python", "-c", "import hwbench, hwbench.profiles as p; "
              "print(hwbench.__file__); print(p.profiles_dir())")
    assert r.returncode == 0, r.stderr
    module, profiles = r.stdout.splitlines()
    assert Path(module).is_relative_to(venv) and Path(profiles).is_relative_to(venv)
    assert sorted(p.name for p in Path(profiles).glob("*.toml")) == sorted(
        p.name for p in (ROOT / "profiles").glob("*.toml"))


def test_wheel_deploy_and_profiles_from_another_directory(venv: Path, tmp_path: Path) -> None:
    r = _tool(venv, tmp_path, "hwbench", "deploy", "--fps", "10", "--json")
    assert r.returncode == 0, r.stderr
    import json

    verdicts = json.loads(r.stdout)
    assert {v["device"] for v in verdicts} == {"tx2", "xavier_nx", "orin_nx"} and len(verdicts) == 15
    r = _tool(venv, tmp_path, "hwbench", "profiles")
    assert r.returncode == 0, r.stderr
    for name in ("tx2", "xavier_nx", "orin_nx", "agx_orin"):
        assert name in r.stdout
    # nothing written in the working directory (counts are cached in $HWBENCH_CACHE_DIR, set by `_tool`)
    assert sorted(p.name for p in tmp_path.iterdir() if p != tmp_path / "cache") == []


def test_wheel_versions(venv: Path, tmp_path: Path) -> None:
    from importlib.metadata import version

    for tool in ("hwbench", "al"):
        r = _tool(venv, tmp_path, tool, "--version")
        assert r.returncode == 0 and r.stdout.strip() == f"{tool} {version('hwbench')}", r.stdout + r.stderr


def test_wheel_counts_and_deploys_a_users_onnx_file(venv: Path, tmp_path: Path) -> None:
    """The must-show of issue 16: from the wheel, in another directory, `hwbench count my.onnx` and
    `hwbench deploy my.onnx --device tx2 --fps 30` work on an ONNX file built with onnx.helper."""
    import json

    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((8, 3, 3, 3), np.float32), "w")  # 3x3 conv 3 -> 8, pad 1, on 16x20
    g = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])], "my",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 20])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 16, 20])], initializer=[w])
    onnx.save_model(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), str(tmp_path / "my.onnx"))
    r = _tool(venv, tmp_path, "hwbench", "count", "my.onnx", "--json")
    assert r.returncode == 0, r.stderr
    (c,) = json.loads(r.stdout)
    assert c["macs"] == 8 * 3 * 9 * 16 * 20 and c["counter"] == "onnx"
    r = _tool(venv, tmp_path, "hwbench", "deploy", "my.onnx", "--device", "tx2", "--fps", "30", "--json")
    assert r.returncode == 0, r.stderr
    (v,) = json.loads(r.stdout)
    assert v["device"] == "tx2" and v["deployable"] is True and v["macs"] == c["macs"]


USER_SCRIPT = '''\
import al
import hwbench

c = hwbench.count("deeplabv3plus_resnet20", (1, 3, 64, 128))
reveal_type(c.macs)
reveal_type(hwbench.latency("deeplabv3plus_resnet20", "tx2").latency_ms)
reveal_type(hwbench.deploy)
reveal_type(al.run)
hwbench.count("deeplabv3plus_resnet20", input_shape="64x128", no_such_option=1)
'''


def test_mypy_sees_the_installed_packages_real_signatures(venv: Path, tmp_path: Path) -> None:
    """py.typed ships in the wheel, and the lazily imported public API is typed: mypy, pointed at the
    venv's interpreter, finds hwbench/al there (not in the checkout) and reveals real types, not Any."""
    pytest.importorskip("mypy")
    site_dir = next((venv / "lib").glob("python*/site-packages"))
    assert (site_dir / "hwbench" / "py.typed").is_file() and (site_dir / "al" / "py.typed").is_file()
    (tmp_path / "user.py").write_text(USER_SCRIPT)
    # the third-party packages are skipped (their types become Any): analysing torch's stubs takes mypy ~40 s,
    # and what is checked here is our own packages' signatures
    (tmp_path / "mypy.ini").write_text("[mypy]\nfollow_imports = silent\n"
                                       "[mypy-torch.*,numpy.*,scipy.*,matplotlib.*,onnx.*,onnxruntime.*,rich.*,PIL.*]\n"
                                       "follow_imports = skip\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MYPYPATH")}
    r = _run([sys.executable, "-m", "mypy", "--config-file", "mypy.ini", "--python-executable",
              str(venv / "bin" / "python"), "--no-incremental", "--show-error-codes", "-v", "user.py"], tmp_path, env)
    found = [line for line in r.stderr.splitlines() if "hwbench/__init__.py" in line]
    assert found and all(str(site_dir) in line for line in found), found[:3]
    notes = [line.split("note: ", 1)[1] for line in r.stdout.splitlines() if "note: Revealed type" in line]
    assert notes[0] == 'Revealed type is "int"' and notes[1] == 'Revealed type is "float"', notes
    assert "-> list[hwbench.deploy.DeployVerdict]" in notes[2] and "fps: float | None" in notes[2]
    assert "-> al.loop.RunResult" in notes[3] and "out_dir: str | os.PathLike" in notes[3]
    # and it checks calls against them: a wrong keyword is an error (exit 1), with its line
    assert r.returncode == 1 and 'user.py:9: error: Unexpected keyword argument "no_such_option"' in r.stdout, r.stdout
