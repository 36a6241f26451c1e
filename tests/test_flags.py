"""One meaning per flag across both CLIs (docs/conventions.md), old spellings that still work with one
deprecation line, exit code 3 for a failed check, and shell completion."""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from al.cli import COMMANDS as AL
from al.cli import main as al_main
from hwbench.cli import COMMANDS as HW
from hwbench.cli import main as hw_main
from hwbench.cli_base import build_parser

ROOT = Path(__file__).resolve().parents[1]
TRT_LOG = ROOT / "tests" / "data" / "trtexec" / "trt8.2_tx2_fp16.log"


def _subparsers(parser: argparse.ArgumentParser, path: str):
    """(\"prog cmd [sub]\", parser) for every (nested) subcommand."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield f"{path} {name}", sub
                yield from _subparsers(sub, f"{path} {name}")


def _options():
    """(command, option string, action) of every visible option of every command of both CLIs."""
    for prog, cmds in (("hwbench", HW), ("al", AL)):
        parser, _ = build_parser(prog, "", cmds)
        for where, sub in _subparsers(parser, prog):
            for a in sub._actions:
                if a.help is argparse.SUPPRESS:
                    continue
                for opt in a.option_strings:
                    yield where, opt, a


OPTIONS = list(_options())


def test_out_is_always_a_directory():
    outs = [(w, a.metavar) for w, o, a in OPTIONS if o == "--out"]
    assert len(outs) >= 10
    assert all(m in ("DIR", "RUN_DIR") for _, m in outs), outs


def test_input_is_always_hxw():
    inputs = [(w, a.metavar) for w, o, a in OPTIONS if o == "--input"]
    assert len(inputs) >= 7 and all(m == "HxW" for _, m in inputs), inputs


def test_device_is_always_a_profile_never_a_torch_device():
    devices = [(w, a) for w, o, a in OPTIONS if o == "--device"]
    assert any(w.startswith("al ") for w, _ in devices) and any(w.startswith("hwbench ") for w, _ in devices)
    for w, a in devices:
        assert not set(a.choices or ()) & {"cpu", "cuda", "auto"}, w


def test_one_name_for_the_data_root_and_for_seeds():
    names = {o for _, o, _ in OPTIONS}
    assert "--data-root" in names and "--root" not in names
    assert "--seeds" not in names and "--seed" in names and "--num-seeds" in names
    for w, o, a in OPTIONS:  # --seed is always one seed value
        if o == "--seed":
            assert a.type is int and a.nargs is None, w


def test_json_is_documented_in_every_command():
    for w, o, a in OPTIONS:
        if o == "--json":
            assert a.help and ("JSON" in a.help), w


def _parse_with_warnings(prog_main_cmds, argv, capsys):
    prog, cmds = prog_main_cmds
    parser, _ = build_parser(prog, "", cmds, only=[argv[0]])
    args = parser.parse_args(argv)
    return args, [line for line in capsys.readouterr().err.splitlines() if line]


@pytest.mark.parametrize("cli,old,new,dest,value", [
    (("al", AL), ["run", "smoke", "--out", "r", "--device", "cpu"], "--torch-device", "torch_device", "cpu"),
    (("al", AL), ["run", "smoke", "--out", "r", "--root", "/data"], "--data-root", "data_root", "/data"),
    (("al", AL), ["surrogate", "surrogate_smoke", "--seeds", "2"], "--num-seeds", "num_seeds", 2),
    (("al", AL), ["surrogate", "cityscapes_paper", "--plan", "--plan-device", "orin_nx"], "--device", "device",
     "orin_nx"),
    (("al", AL), ["ingest", "spool", "--into", "runs/next"], "--out", "out", "runs/next"),
])
def test_old_spellings_work_with_one_deprecation_line(cli, old, new, dest, value, capsys):
    args, err = _parse_with_warnings(cli, old, capsys)
    assert getattr(args, dest) == value
    assert len(err) == 1 and err[0] == f"warning: {old[-2]} is deprecated; use {new}", err
    args, err = _parse_with_warnings(cli, [*old[:-2], new, old[-1]], capsys)
    assert getattr(args, dest) == value and err == []


def test_new_and_old_defaults_do_not_collide(capsys):
    args, err = _parse_with_warnings(("al", AL), ["surrogate", "surrogate_smoke"], capsys)
    assert args.device == "a100_sxm" and args.num_seeds is None and err == []


def _ingest_json(argv, capsys):
    assert hw_main(["ingest", "trtexec", str(TRT_LOG), "--json", *argv]) == 0
    out = capsys.readouterr()
    return json.loads(out.out), [line for line in out.err.splitlines() if line]


def test_ingest_input_is_hxw_with_batch_and_the_old_form_still_works(capsys):
    new, err_new = _ingest_json(["--input", "256x512", "--batch", "2"], capsys)
    old, err_old = _ingest_json(["--input", "2x3x256x512"], capsys)
    assert err_new == [] and len(err_old) == 1 and "--input 256x512 --batch 2" in err_old[0]
    assert new[0]["input"] == old[0]["input"] and new[0]["batch"] == old[0]["batch"] == 2
    assert hw_main(["ingest", "trtexec", str(TRT_LOG), "--batch", "2"]) == 2  # --batch only with --input
    assert "--batch" in capsys.readouterr().err


@pytest.fixture()
def ort():
    return pytest.importorskip("onnxruntime")


def test_export_out_is_a_directory_onnx_out_a_file(ort, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    base = ["export", "resnet20", "--input", "32x32"]
    assert hw_main([*base, "--out", "models"]) == 0
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["resnet20.onnx"]
    assert hw_main([*base, "--onnx-out", "x/mine.onnx"]) == 0 and (tmp_path / "x" / "mine.onnx").is_file()
    assert "deprecated" not in capsys.readouterr().err
    assert hw_main([*base, "--out", "old.onnx"]) == 0 and (tmp_path / "old.onnx").is_file()  # the old spelling
    err = [line for line in capsys.readouterr().err.splitlines() if line]
    assert len(err) == 1 and "--onnx-out old.onnx" in err[0]
    assert hw_main(base) == 2 and "--onnx-out" in capsys.readouterr().err
    assert hw_main([*base, "--out", "d", "--onnx-out", "f.onnx"]) == 2


def test_a_failed_export_check_exits_3_and_writes_nothing(ort, tmp_path, capsys):
    rc = hw_main(["export", "resnet20", "--input", "32x32", "--atol", "1e-30", "--out", str(tmp_path / "m")])
    assert rc == 3
    assert "ONNX output differs" in capsys.readouterr().err
    assert not list(tmp_path.rglob("*.onnx"))


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_completion_completes_commands_and_flags(tmp_path, capsys):
    assert hw_main(["--print-completion", "bash"]) == 0
    (tmp_path / "hw.bash").write_text(capsys.readouterr().out)
    assert al_main(["--print-completion", "bash"]) == 0
    (tmp_path / "al.bash").write_text(capsys.readouterr().out)

    def complete(script: str, fn: str, words: list[str]) -> list[str]:
        line = " ".join(words)
        code = (f"source {shlex.quote(str(script))}; COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; COMP_LINE='{line}'; "
                f"COMP_POINT=${{#COMP_LINE}}; {fn} {words[0]} {words[-1]} {words[-2]}; "
                'printf "%s\\n" "${COMPREPLY[@]}"')
        r = subprocess.run(["bash", "-c", code], capture_output=True, text=True, timeout=60)
        return r.stdout.split()

    assert complete(tmp_path / "hw.bash", "_shtab_hwbench", ["hwbench", "dep"]) == ["deploy"]
    assert complete(tmp_path / "hw.bash", "_shtab_hwbench", ["hwbench", "deploy", "--f"]) == ["--fps"]
    assert "--torch-device" in complete(tmp_path / "al.bash", "_shtab_al", ["al", "run", "--t"])


def test_zsh_completion_and_a_bad_shell(capsys):
    assert al_main(["--print-completion", "zsh"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("#compdef al") and "--num-seeds" in out
    assert hw_main(["--print-completion", "fish"]) == 2
    assert capsys.readouterr().err.startswith("error: --print-completion takes one of: bash, zsh")


def test_completion_from_the_console_script():
    r = subprocess.run([sys.executable, "-m", "hwbench", "--print-completion=bash"], capture_output=True, text=True,
                       timeout=120, cwd=ROOT)
    assert r.returncode == 0 and "complete -o bashdefault -F _shtab_hwbench hwbench" in r.stdout
