"""Terminal output shared by both CLIs: Rich tables for people, `--json` records for machines,
progress bars for long work. Library code logs; only the CLI layer prints."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from hwbench.io import dumps_json, finite

# Piped output (CI logs, `| less`) gets a wide fixed width instead of Rich's 80-column default.
stdout = Console(width=None if sys.stdout.isatty() or "COLUMNS" in os.environ else 200)
stderr = Console(stderr=True)


def line(text: str, *, err: bool = True) -> None:
    """Write one plain line (status, path, `error:`) for people and scripts alike: never wrapped,
    never parsed as markup, whatever the terminal width or the characters in a path."""
    stream = sys.stderr if err else sys.stdout
    stream.write(f"{text}\n")
    stream.flush()


def setup_logging(verbose: int = 0) -> None:
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(level=max(level, logging.DEBUG), format="%(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)


def emit(records: Sequence[dict], *, as_json: bool, title: str | None = None,
         columns: Sequence[str] | None = None, formats: dict[str, str] | None = None) -> None:
    """Print `records` as a JSON list (only that, on stdout) or as a Rich table."""
    if as_json:
        sys.stdout.write(dumps_json(list(records), default=_jsonable) + "\n")
        return
    columns = list(columns or (records[0].keys() if records else []))
    formats = formats or {}
    # data, not markup: a title or cell like "[cpu]" must print as written
    table = Table(title=escape(title) if title else title, show_lines=False)
    for c in columns:
        table.add_column(escape(str(c)), justify="right" if _numeric(records, c) else "left")
    for r in records:
        table.add_row(*(escape(_fmt(r.get(c), formats.get(c))) for c in columns))
    stdout.print(table)


def progress(transient: bool = True, disable: bool | None = None) -> Progress:
    """A Rich progress bar on stderr; silent when stderr is not a terminal unless forced."""
    if disable is None:
        disable = not stderr.is_terminal
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn(), console=stderr, transient=transient,
                    disable=disable)


def track(items: Iterable, description: str, total: int | None = None) -> Iterable:
    """Iterate with a progress bar (stderr, terminal only)."""
    with progress() as p:
        yield from p.track(items, total=total, description=description)


def _numeric(records: Sequence[dict], col: str) -> bool:
    return any(isinstance(r.get(col), (int, float)) and not isinstance(r.get(col), bool) for r in records)


def _fmt(value: Any, spec: str | None) -> str:
    if value is None:
        return "-"
    if spec:
        return format(value, spec)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, (list, tuple)):
        return "x".join(map(str, value)) if all(isinstance(v, int) for v in value) else ", ".join(map(str, value))
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items()) or "-"
    return str(value)


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return finite(obj.tolist())
    return os.fspath(obj) if isinstance(obj, os.PathLike) else str(obj)
