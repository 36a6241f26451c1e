"""The shared CLI layer (`hwbench.cli_base`, used by `hwbench` and `al`): SIGTERM ends a command like
Ctrl-C, with one `interrupted` line and exit 128 + signal, also while the command module is imported."""

from __future__ import annotations

import signal

import pytest

from hwbench.cli_base import make_main

COMMAND = """
import os, signal
{at_import}
def add_arguments(parser):
    pass
def run(args):
    os.kill(os.getpid(), signal.{sig})
    raise AssertionError("the signal did not stop the command")
"""


@pytest.mark.parametrize(("sig", "code", "at_import"), [
    ("SIGTERM", 128 + signal.SIGTERM, ""),
    ("SIGINT", 128 + signal.SIGINT, ""),
    ("SIGTERM", 128 + signal.SIGTERM, "os.kill(os.getpid(), signal.SIGTERM)"),  # during start-up
])
def test_signals_end_a_command_cleanly(sig, code, at_import, tmp_path, monkeypatch, capsys) -> None:
    name = f"_sigcmd_{sig.lower()}_{bool(at_import)}"
    (tmp_path / f"{name}.py").write_text(COMMAND.format(sig=sig, at_import=at_import))
    monkeypatch.syspath_prepend(str(tmp_path))
    # Ctrl-C as in a freshly started interpreter: a test worker (pytest-xdist) or a library imported by
    # an earlier test may have left SIGINT with another handler
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    main = make_main("prog", "test", {"go": (name, "sends itself a signal")})
    try:
        assert main(["go"]) == code
    finally:
        signal.signal(signal.SIGINT, previous_int)
    assert capsys.readouterr().err == "interrupted\n"
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # restored afterwards


def test_a_handler_someone_installed_is_left_alone(tmp_path, monkeypatch, capsys) -> None:
    seen = []
    previous = signal.signal(signal.SIGTERM, lambda s, f: seen.append(s))
    try:
        (tmp_path / "_sigcmd_own.py").write_text(COMMAND.format(sig="SIGTERM", at_import="").replace(
            'raise AssertionError("the signal did not stop the command")', "return 0"))
        monkeypatch.syspath_prepend(str(tmp_path))
        assert make_main("prog", "test", {"go": ("_sigcmd_own", "x")})(["go"]) == 0
        assert seen == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)
