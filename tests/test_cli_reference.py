"""docs/cli.md is what tools/cli_reference.py makes of the parsers today (regenerate: `make docs`)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _tool():
    spec = importlib.util.spec_from_file_location("cli_reference", ROOT / "tools" / "cli_reference.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_cli_reference_is_current():
    tool = _tool()
    assert (ROOT / "docs" / "cli.md").read_text(encoding="utf-8") == tool.render(), \
        "docs/cli.md is stale; regenerate it with: make docs"


def test_cli_reference_lists_every_command_and_flag():
    # independent of the renderer: every subcommand and every option string of a few commands appear
    from al.cli import COMMANDS as AL
    from hwbench.cli import COMMANDS as HW

    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    for prog, cmds in (("hwbench", HW), ("al", AL)):
        for name in cmds:
            assert f"## `{prog} {name}`" in text
    for flag in ("--fps", "--share", "--mode", "--list-presets", "--resume", "--sources"):
        assert f"`{flag}" in text


def test_check_mode_reports_a_stale_page(tmp_path, monkeypatch, capsys):
    tool = _tool()
    monkeypatch.setattr(tool, "OUT", tmp_path / "cli.md")
    monkeypatch.setattr(tool, "ROOT", tmp_path)
    (tmp_path / "cli.md").write_text("old\n")
    assert tool.main(["--check"]) == 3
    assert "stale" in capsys.readouterr().err
    assert tool.main([]) == 0 and tool.main(["--check"]) == 0
