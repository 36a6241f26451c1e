"""Every `hwbench ...` / `al ...` command line in README.md and docs/*.md parses with the real parsers.

Command lines are taken from code blocks (fenced blocks other than ```text / ```toml / ```python / ...,
and indented blocks): they must parse completely. Inline code spans are checked too, but may name a
command or a flag without the arguments it requires (`al fleet`, `hwbench export --score`): a span fails on
an unknown command, flag or choice. A span or line that is a synopsis (`[--resume]`, `a|b`, `...`) is not
a command and is skipped. Lines ending in `# needs: gpu`, `# needs: jetson` or
`# needs: long` are parsed only; so is everything else, except CHEAP below, which also run.
Nothing here executes a command that is not in CHEAP.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

from al.cli import COMMANDS as AL_COMMANDS
from hwbench.cli import COMMANDS as HW_COMMANDS
from hwbench.cli_base import build_parser
from hwbench.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted(p for p in (ROOT / "docs").glob("*.md") if p.name != "cli.md")]  # cli.md: generated
CLIS = {"hwbench": ("hwbench", HW_COMMANDS), "al": ("al", AL_COMMANDS)}
CHECKED_FENCES = {"", "bash", "sh", "shell", "console", "zsh"}
NEEDS = re.compile(r"#.*\bneeds:\s*(gpu|jetson|long)\b")
SYNOPSIS = re.compile(r"\[[-A-Za-z]|\.\.\.|…| \| |\|$|\w\\?\|\w|<[A-Za-z]")  # [--opt], a|b, ..., <x>
SHELL_SPLIT = {"&&", "||", ";", "|", "&", "do", "then", "done"}
PREFIXES = [["nice", "-n"], ["time"], ["$"]]

# Cheap commands that really run (in-process, in a temporary directory). Each must appear in the docs.
CHEAP = [
    "hwbench models",
    "hwbench count deeplabv3plus_resnet50 --input 1024x2048",
    "hwbench latency --mode paper",
    "hwbench deploy --fps 10 --share 0.3 --mode roofline",
    "hwbench profiles orin_nx --sources",
    "al run --list-presets",
]


def _code_lines(text: str) -> list[tuple[int, str]]:
    """(line number, text) of every line inside a checked code block, continuations joined."""
    out, fence, prev_blank = [], None, True
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line, n = lines[i], i + 1
        stripped = line.strip()
        if stripped.startswith("```"):
            fence = None if fence is not None else stripped[3:].strip().lower()
            i += 1
            continue
        in_fence = fence is not None and fence in CHECKED_FENCES
        indented = fence is None and line.startswith("    ") and prev_blank and not stripped.startswith(("-", "*"))
        if in_fence or indented:
            while line.rstrip().endswith("\\") and i + 1 < len(lines):
                i += 1
                line = line.rstrip()[:-1] + " " + lines[i].strip()
            out.append((n, line.strip()))
        if fence is None:
            prev_blank = (not stripped) or (indented and prev_blank)
        i += 1
    return out


def _spans(text: str) -> list[tuple[int, str]]:
    out = []
    for n, line in enumerate(text.split("\n"), 1):
        out += [(n, m) for m in re.findall(r"`([^`]+)`", line)]
    return out


def _commands(line: str) -> list[tuple[list[str], bool]]:
    """(argv starting with hwbench/al, parse-only) for each command on a shell line."""
    parse_only = bool(NEEDS.search(line))
    try:
        lex = shlex.shlex(line, posix=True, punctuation_chars=";&|")
        lex.whitespace_split = True
        lex.commenters = "#"
        words = list(lex)
    except ValueError:
        return []
    found, cur = [], []
    for w in [*words, ";"]:
        if w in SHELL_SPLIT or set(w) <= set(";&|"):
            if cur:
                found.append(cur)
            cur = []
        else:
            cur.append(w)
    cmds = []
    for c in found:
        for pre in PREFIXES:
            while c[:len(pre)] == pre:
                c = c[len(pre) + (1 if pre == ["nice", "-n"] else 0):]
        c = [w for i, w in enumerate(c) if not (w.startswith((">", "2>")) or i and c[i - 1] in (">", ">>", "2>"))]
        if "-m" in c and c.index("-m") + 1 < len(c) and c[0].endswith(("python", "python3", "torchrun")):
            c = c[c.index("-m") + 1:]
        if c and Path(c[0]).name in CLIS and (len(c) == 1 or not c[1].startswith("=")):
            cmds.append(([Path(c[0]).name, *c[1:]], parse_only))
    return cmds


def doc_commands() -> list[tuple[str, list[str], bool, bool]]:
    """Every command line of the docs: (where, argv, parse-only, is an inline span)."""
    out = []
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        spans = set(_spans(text))
        for n, line in [*_code_lines(text), *sorted(spans)]:  # sorted: the same order in every xdist worker
            if SYNOPSIS.search(line.split("#")[0]):
                continue
            for argv, parse_only in _commands(line):
                out.append((f"{path.relative_to(ROOT)}:{n}", argv, parse_only, (n, line) in spans))
    return out


def parse(argv: list[str]) -> str:
    """Parse argv with the real parser of its CLI (only its command's module imported); returns what it
    wrote on stderr (deprecation warnings of old spellings)."""
    prog, commands = CLIS[argv[0]]
    chosen = next((a for a in argv[1:] if not a.startswith("-")), None)
    parser, _ = build_parser(prog, "", commands, only=[chosen] if chosen else [])
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            args = parser.parse_args(argv[1:])
    except SystemExit as e:  # --help / --version
        assert e.code in (0, None), f"{' '.join(argv)} exited {e.code}"
        return err.getvalue()
    if args.command == "export" and str(getattr(args, "out", "") or "").endswith(".onnx"):
        err.write("warning: --out FILE.onnx is deprecated; use --onnx-out\n")  # decided at run time
    return err.getvalue()


COMMANDS = doc_commands()


def test_the_docs_hold_commands_to_check():
    # the extraction works: the README's own examples are among them
    where = {w.split(":")[0] for w, *_ in COMMANDS}
    assert "README.md" in where and len(COMMANDS) > 50
    assert ["al", "run", "smoke", "--out", "runs/smoke"] in [a for _, a, _, _ in COMMANDS]


INCOMPLETE = ("the following arguments are required", "one of the arguments", "expected one argument")


@pytest.mark.parametrize("where,argv,parse_only,span", COMMANDS,
                         ids=[f"{w} {' '.join(a)}"[:120] for w, a, _, _ in COMMANDS])
def test_doc_command_parses(where, argv, parse_only, span):
    try:
        warned = parse(argv)
        old_ok = where.startswith("docs/conventions.md")  # its table of old spellings
        assert old_ok or "deprecated" not in warned, f"{where}: `{shlex.join(argv)}` uses an old spelling: {warned.strip()}"
    except UserError as e:
        placeholder = re.search(r"invalid \w+ value: '[A-Z][A-Z_]*'", str(e))  # `--jobs N` in a sentence
        if not (span and (placeholder or any(s in str(e) for s in INCOMPLETE))):
            pytest.fail(f"{where}: `{shlex.join(argv)}` does not parse: {e}")


def test_extraction_rules():
    text = "\n".join([
        "```bash", "hwbench count m --input 64x64   # a comment", "nice -n 10 al run smoke --out r \\",
        "   --resume", "for s in a b; do al run smoke --strategy $s --out r/$s; done", "```",
        "```text", "al run CONFIG [--resume]", "```", "",
        "    torchrun --standalone --nproc_per_node=2 -m al run smoke --out x   # needs: gpu", "",
        "see `hwbench models --json` and `hwbench profiles host [--refresh]`",
    ])
    got = [(a, p) for n, line in [*_code_lines(text), *_spans(text)] if not SYNOPSIS.search(line.split("#")[0])
           for a, p in _commands(line)]
    assert got == [
        (["hwbench", "count", "m", "--input", "64x64"], False),
        (["al", "run", "smoke", "--out", "r", "--resume"], False),
        (["al", "run", "smoke", "--strategy", "$s", "--out", "r/$s"], False),
        (["al", "run", "smoke", "--out", "x"], True),
        (["hwbench", "models", "--json"], False),
    ]


def test_a_wrong_flag_is_caught_and_an_old_spelling_is_seen():
    with pytest.raises(UserError):
        parse(["hwbench", "count", "--no-such-flag"])
    assert "deprecated" in parse(["al", "run", "smoke", "--root", "d", "--out", "r"])
    assert "deprecated" in parse(["hwbench", "export", "m", "--out", "m.onnx"])
    assert parse(["hwbench", "export", "m", "--onnx-out", "m.onnx"]) == ""


@pytest.mark.parametrize("line", CHEAP)
def test_cheap_doc_commands_run(line, tmp_path, monkeypatch):
    argv = shlex.split(line)
    assert argv in [a for _, a, _, _ in COMMANDS], f"{line!r} is no longer in the docs; update CHEAP"
    monkeypatch.chdir(tmp_path)
    from al.cli import main as al_main
    from hwbench.cli import main as hw_main

    rc = (hw_main if argv[0] == "hwbench" else al_main)(argv[1:])
    assert rc == 0
    assert list(tmp_path.iterdir()) == []  # nothing written where none of them asks for files


# Pages other open issues are writing; links to them are fine before they land.
RESERVED = {"own-model.md", "profiles.md", "al-real-data.md", "al-diagnostics.md", "jetson-stack.md", "integrity.md",
            "reports.md"}


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped (but - and _), spaces -> -."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    return {_slug(m) for m in re.findall(r"^#+\s+(.*)$", text, flags=re.M)}


def test_slug_rule():
    assert _slug("Pretrained starts (`al pretrain`, `weights`)") == "pretrained-starts-al-pretrain-weights"
    assert _slug("The embedded drives (`synthetic_streets`)") == "the-embedded-drives-synthetic_streets"


@pytest.mark.parametrize("page", DOCS + [ROOT / "docs" / "cli.md"], ids=lambda p: p.name)
def test_relative_links_resolve(page):
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto
        file, _, anchor = target.partition("#")
        dest = (page.parent / file).resolve() if file else page
        if not dest.exists():
            assert dest.name in RESERVED and dest.parent == ROOT / "docs", f"{page.name}: broken link {target}"
            continue
        if anchor and dest.suffix == ".md":
            assert anchor in _anchors(dest), f"{page.name}: no heading for #{anchor} in {dest.name}"


def test_readme_python_example(tmp_path, monkeypatch, capsys):
    """The README's Python block: its hwbench lines run and print what their comments say; its al lines
    (a training run and an experiment, tens of seconds: tested in tests/al) call the real signatures."""
    import inspect

    import al

    code = re.search(r"```python\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), re.S).group(1)
    lines = code.splitlines()
    cut = next(i for i, line in enumerate(lines) if line.startswith("result = al."))
    monkeypatch.chdir(tmp_path)
    exec(compile("\n".join(lines[:cut]), "README.md", "exec"), {})
    out = capsys.readouterr().out
    for line in lines[:cut]:
        if line.lstrip().startswith(("print(", "for ")) or "    print(" in line:
            comment = line.split("#", 1)[1] if "#" in line else ""
            for piece in re.split(r"\s+/\s+|\s+\(", comment.strip()):
                if piece and not piece.endswith(")"):
                    assert piece in out, f"README says {piece!r}; the code printed {out!r}"
    import ast

    for node in ast.walk(ast.parse("\n".join(lines[cut:]))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.value.id == "al":
            sig = inspect.signature(getattr(al, node.func.attr))
            sig.bind(*[ast.literal_eval(a) for a in node.args],
                     **{k.arg: ast.literal_eval(k.value) for k in node.keywords})


def test_al_strategy_table_lists_every_strategy():
    """docs/al.md's strategy table: one row per registered strategy (al.strategies.STRATEGIES), each with
    the table's three columns filled."""
    from itertools import takewhile

    from al.strategies import STRATEGIES

    text = (ROOT / "docs" / "al.md").read_text(encoding="utf-8")
    head = "| strategy | evidence | picks |"
    assert text.count(head) == 1
    rows = list(takewhile(lambda x: x.startswith("|"), text[text.index(head):].splitlines()[2:]))
    cells = [[c.strip() for c in re.split(r"(?<!\\)\|", row.strip())[1:-1]] for row in rows]
    assert all(len(c) == 3 and all(c) for c in cells), cells
    names = [re.match(r"`(\w+)`", c[0]).group(1) for c in cells]
    assert sorted(names) == sorted(STRATEGIES)
