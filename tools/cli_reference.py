"""Write docs/cli.md, the reference of every `hwbench` and `al` command, from the real argparse parsers.

    python tools/cli_reference.py            # rewrite docs/cli.md
    python tools/cli_reference.py --check    # exit 3 if docs/cli.md is stale (what the test checks)

The page is built from the parsers' actions (option strings, metavar, choices, default, help), not from
`format_help()`, so it does not change with the Python version's help formatter.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "cli.md"


def _clis() -> list[tuple[str, str, Mapping[str, tuple[str, str]]]]:
    sys.path.insert(0, str(ROOT))
    from al.cli import COMMANDS as AL
    from hwbench.cli import COMMANDS as HW

    return [("hwbench", "Model cost, device profiles, latency and deployability.", HW),
            ("al", "Pool-based active learning with deployable surrogates.", AL)]


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _help(action: argparse.Action) -> str:
    text = action.help or ""
    if "%(" in text:
        params = {k: v for k, v in vars(action).items() if v is not argparse.SUPPRESS}
        params["choices"] = ", ".join(map(str, action.choices)) if action.choices else ""
        text = text % params
    return text


def _name(action: argparse.Action) -> str:
    if action.option_strings:
        takes = action.nargs != 0
        meta = action.metavar or (("{" + ",".join(map(str, action.choices)) + "}") if action.choices
                                  else action.dest.upper())
        spell = ", ".join(action.option_strings)
        return f"`{spell} {meta}`" if takes else f"`{spell}`"
    meta = action.metavar or action.dest.upper()
    suffix = {"?": " (optional)", "*": " ...", "+": " ..."}.get(str(action.nargs), "")
    return f"`{meta}`{suffix}"


def _default(action: argparse.Action) -> str:
    d = action.default
    if d is None or d is argparse.SUPPRESS or action.nargs == 0 or d == []:
        return ""
    return f"`{d}`"


def command_section(prog: str, name: str, parser: argparse.ArgumentParser, level: int = 2) -> list[str]:
    """Markdown for one subcommand: its description, a table of its arguments, then its own subcommands."""
    lines = [f"{'#' * level} `{prog} {name}`", "", _cell(parser.description or ""), ""]
    rows, nested = [], []
    for action in parser._actions:  # argparse keeps no public list of its actions
        if isinstance(action, argparse._SubParsersAction):
            nested += list(action.choices.items())
            rows.append(f"| `{action.metavar or action.dest.upper()}` | | one of: "
                        f"{', '.join(f'`{n}`' for n in action.choices)} |")
            continue
        if isinstance(action, argparse._HelpAction) or action.help is argparse.SUPPRESS:
            continue
        rows.append(f"| {_name(action)} | {_cell(_default(action))} | {_cell(_help(action))} |")
    if rows:
        lines += ["| argument | default | meaning |", "|---|---|---|", *rows, ""]
    for sub_name, sub_parser in nested:
        lines += command_section(prog, f"{name} {sub_name}", sub_parser, level + 1)
    return lines


def render() -> str:
    """The whole page."""
    from hwbench.cli_base import build_parser

    lines = ["# Command-line reference", "",
             "Generated from the argparse parsers by `tools/cli_reference.py` (`make docs`); "
             "`tests/test_cli_reference.py` fails when this page is stale. Do not edit by hand.", "",
             "Conventions shared by every command (units, `--json`, `--out`, exit codes): "
             "[conventions.md](conventions.md).", ""]
    for prog, description, commands in _clis():
        parser, _ = build_parser(prog, description, commands)
        lines += [f"# `{prog}`", "", description, "",
                  "| command | what it does |", "|---|---|",
                  *(f"| [`{prog} {n}`](#{prog}-{n}) | {_cell(h)} |" for n, (_, h) in commands.items()), ""]
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        for name in commands:
            lines += command_section(prog, name, sub.choices[name])
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="exit 3 if docs/cli.md differs from the parsers")
    args = p.parse_args(argv)
    text = render()
    if args.check:
        if not OUT.exists() or OUT.read_text(encoding="utf-8") != text:
            sys.stderr.write(f"error: {OUT.relative_to(ROOT)} is stale; regenerate it with: make docs\n")
            return 3
        return 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
