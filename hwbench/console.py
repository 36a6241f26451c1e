"""Terminal output shared by both CLIs: Rich tables for people, `--json` records for machines,
progress bars for long work. Library code logs; only the CLI layer prints."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from rich.cells import cell_len
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from hwbench.io import dumps_json, finite


def _width(stream: Any) -> int | None:
    """Width for a console on `stream`: COLUMNS when it is a positive integer; COLUMNS of 0, below 0 or not
    a number counts as unset (the terminal's width, or 200 on a pipe); piped output (CI logs, `| less`)
    gets a wide fixed width instead of Rich's 80-column default."""
    cols = os.environ.get("COLUMNS")
    valid = cols is not None and cols.strip().isdigit() and int(cols) > 0
    if cols is not None and not valid:  # Rich would take it as is (0: prints nothing)
        import shutil

        return shutil.get_terminal_size((200, 24)).columns if stream.isatty() else 200
    return None if stream.isatty() or valid else 200


stdout = Console(width=_width(sys.stdout))
stderr = Console(stderr=True, width=_width(sys.stderr) if os.environ.get("COLUMNS") is not None else None)


def line(text: str, *, err: bool = True) -> None:
    """Write one plain line (status, path, `error:`) for people and scripts alike: never wrapped,
    never parsed as markup, whatever the terminal width or the characters in a path."""
    stream = sys.stderr if err else sys.stdout
    stream.write(f"{text}\n")
    stream.flush()


def setup_logging(verbose: int = 0) -> None:
    """Log to stderr: through Rich on a terminal (so log lines print above a live progress bar instead
    of onto its end), as plain `LEVEL name: message` lines otherwise (never wrapped; greppable)."""
    level = max(logging.WARNING - 10 * verbose, logging.DEBUG)
    if stderr.is_terminal:
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(console=stderr, show_time=False, show_path=False, markup=False,
                                               rich_tracebacks=False)
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])


def emit(records: Sequence[dict], *, as_json: bool, title: str | None = None,
         columns: Sequence[str] | None = None, formats: dict[str, str] | None = None) -> None:
    """Print `records` as a JSON list (only that, on stdout) or as a Rich table.

    JSON: every record (a dict) carries a `provenance` object (`hwbench.provenance`: time UTC, tool
    version, git commit, torch/onnxruntime versions, host); a record that has one keeps its own.

    Nothing is ever cut: every column is at least as wide as its longest name or number (cells wrap
    only at spaces, headers at word breaks); when those widths do not fit the terminal, the table
    turns into a narrow field/value layout, one block per record.
    """
    if as_json:
        from hwbench.provenance import provenance, with_provenance

        prov = provenance()
        out = [with_provenance(r, prov) if isinstance(r, dict) else r for r in records]
        sys.stdout.write(dumps_json(out, default=_jsonable) + "\n")
        return
    columns = [str(c) for c in (columns or (records[0].keys() if records else []))]
    formats = formats or {}
    cells = [[_fmt(r.get(c), formats.get(c)) for c in columns] for r in records]
    widths = _fit_widths(columns, cells, stdout.width)
    # data, not markup: a title or cell like "[cpu]" must print as written
    if widths is None:
        stdout.print(_field_value_table(columns, cells, title))
        return
    table = Table(title=escape(title) if title else title, show_lines=False)
    for c, w in zip(columns, widths, strict=True):
        table.add_column(escape(c), justify="right" if _numeric(records, c) else "left", width=w, overflow="fold")
    for row in cells:
        table.add_row(*(escape(v) for v in row))
    stdout.print(table)


def _longest_word(text: str) -> int:
    return max((cell_len(w) for w in text.split()), default=0)


def _fit_widths(columns: Sequence[str], cells: Sequence[Sequence[str]], width: int) -> list[int] | None:
    """Column widths that keep every word whole within `width` (None when no such widths exist).

    Each column gets at least its longest cell word; the space left goes to columns whose
    full cell or header text is wider, the smallest needs first."""
    # headers may fold (down to 4 characters); names and numbers in cells never do
    mins = [max([min(_longest_word(c), 4)] + [_longest_word(row[i]) for row in cells]) for i, c in enumerate(columns)]
    wants = [max([cell_len(c)] + [cell_len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    avail = width - (3 * len(columns) + 1)  # borders and one space of padding either side
    if sum(mins) > avail:
        return None
    widths, extra = list(mins), avail - sum(mins)
    order = sorted(range(len(columns)), key=lambda i: wants[i] - mins[i])
    for k, i in enumerate(order):
        give = min(wants[i] - mins[i], extra // (len(order) - k))
        widths[i] += give
        extra -= give
    return widths


def _field_value_table(columns: Sequence[str], cells: Sequence[Sequence[str]], title: str | None) -> Table:
    """The narrow layout: no borders, one (field, value) row per column, a blank row between records.
    Values keep their words whole (field names fold first)."""
    avail = stdout.width - 2  # one space either side of the gap between the two columns
    val_want = max((cell_len(v) for row in cells for v in row), default=1)
    val_min = max((_longest_word(v) for row in cells for v in row), default=1)
    key_want = max((cell_len(c) for c in columns), default=1)
    val_w = max(min(val_want, max(val_min, avail - key_want), avail - 1), 1)  # a value that fits is never cut
    key_w = max(min(key_want, avail - val_w), 1)
    table = Table(title=escape(title) if title else title, box=None, show_header=False, pad_edge=False)
    table.add_column("field", overflow="fold", style="bold", width=key_w)
    table.add_column("value", overflow="fold", width=val_w)
    for k, row in enumerate(cells):
        if k:
            table.add_row("", "")
        for c, v in zip(columns, row, strict=True):
            table.add_row(escape(c), escape(v))
    return table


def progress(transient: bool = True, disable: bool | None = None) -> Progress:
    """A Rich progress bar on stderr; silent when stderr is not a terminal unless forced."""
    if disable is None:
        disable = not stderr.is_terminal
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn(), console=stderr, transient=transient,
                    disable=disable)


@contextlib.contextmanager
def working(description: str) -> Iterator[Callable[[str], None]]:
    """A spinner with elapsed time for work of unknown length (stderr, terminal only); yields a
    function that changes the description."""
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=stderr,
                  transient=True, disable=not stderr.is_terminal) as p:
        task = p.add_task(escape(description), total=None)
        yield lambda text: p.update(task, description=escape(text))


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
