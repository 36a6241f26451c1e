"""Tables at every terminal width never cut a name or a number (issue 8, item 6)."""

from __future__ import annotations

import io
import logging

import pytest
from rich.console import Console

import hwbench.console as console

ROWS = [{"model": "deeplabv3plus_mobilenetv3_small", "device": "xavier_nx", "input": [1, 3, 1024, 2048],
         "latency (ms)": 101.6349, "memory budget (GB)": 8.0, "headroom": -0.0164, "path": "/tmp/[bold]/x"},
        {"model": "deeplabv3plus_xception65", "device": "orin_nx", "input": [1, 3, 512, 1024],
         "latency (ms)": 12345.678, "memory budget (GB)": 16.0, "headroom": 3.25, "path": "/a b/[/y]"}]
FORMATS = {"latency (ms)": ".2f", "headroom": "+.2f"}


def _render(width: int, monkeypatch) -> str:
    buf = io.StringIO()
    monkeypatch.setattr(console, "stdout", Console(file=buf, width=width, force_terminal=False, color_system=None))
    console.emit(ROWS, as_json=False, title="deployability (headroom = budget / latency - 1)", formats=FORMATS)
    return buf.getvalue()


@pytest.mark.parametrize("width", [40, 60, 80, 100, 140, 200])
def test_every_name_and_number_printed_whole(width: int, monkeypatch) -> None:
    text = _render(width, monkeypatch)
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= width
    words = {w for r in ROWS for c, v in r.items() for w in console._fmt(v, FORMATS.get(c)).split()}
    for w in words:  # "101.63", "deeplabv3plus_mobilenetv3_small", "1x3x1024x2048", "[bold]" ...
        assert w in text, (width, w)


def test_wide_terminal_keeps_the_table_narrow_one_switches_layout(monkeypatch) -> None:
    wide, narrow = _render(200, monkeypatch), _render(40, monkeypatch)
    assert "deeplabv3plus_mobilenetv3_small" in wide.splitlines()[4]  # header rows, then the first record
    assert sum(line.startswith("model ") for line in narrow.splitlines()) == len(ROWS)  # one block per record


def test_logging_on_a_pipe_is_plain_lines(monkeypatch, capsys) -> None:
    root = logging.getLogger()
    saved = root.handlers[:]
    monkeypatch.setattr(root, "handlers", [])
    try:
        console.setup_logging(0)
        logging.getLogger("hwbench.x").warning("a [bold] message %s", "x" * 120)
    finally:
        root.handlers[:] = saved
    err = capsys.readouterr().err
    assert err == f"WARNING hwbench.x: a [bold] message {'x' * 120}\n"
