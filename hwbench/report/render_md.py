"""A `Report` (hwbench.report.doc) as GitHub markdown."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hwbench.provenance import provenance_line
from hwbench.report.doc import (
    Block,
    Bullets,
    Cell,
    Code,
    Figure,
    Markdown,
    Report,
    Table,
    Text,
    cell_text,
    column_align,
    scale_square,
)


def md_cell(c: Any) -> str:
    """One cell's markdown: coloured cells get their square; pipes are escaped."""
    text = cell_text(c)
    if isinstance(c, Cell) and c.scale is not None:
        text = f"{scale_square(c.scale)} {text}"
    return text.replace("|", "\\|").replace("\n", " ")


def md_table(table: Table) -> str:
    align = column_align(table)
    sep = ["---:" if a == "r" else ":---:" if a == "c" else "---" for a in align]
    lines = ["| " + " | ".join(h.replace("|", "\\|") for h in table.header) + " |", "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join(md_cell(c) for c in row) + " |" for row in table.rows]
    return "\n".join(lines)


def _figure(f: Figure, base: Path | None) -> str:
    if f.path is not None and base is not None:
        target = os.path.relpath(Path(f.path).resolve(), Path(base).resolve())
    else:
        target = f.name or (Path(f.path).name if f.path is not None else "")
    out = f"![{f.alt}]({Path(target).as_posix()})"
    return out + (f"\n\n*{f.caption}*" if f.caption else "")


def block_md(b: Block, base: Path | None = None) -> str:
    if isinstance(b, Text):
        return b.text
    if isinstance(b, Bullets):
        return "\n".join(f"- {x}" for x in b.items)
    if isinstance(b, Table):
        return (f"{b.caption}\n\n" if b.caption else "") + md_table(b)
    if isinstance(b, Figure):
        return _figure(b, base)
    if isinstance(b, Code):
        return f"```{b.lang}\n{b.text.rstrip()}\n```"
    if isinstance(b, Markdown):
        return b.text.strip()
    raise TypeError(f"not a report block: {type(b).__name__}")


def _blocks(blocks: Sequence[Block], base: Path | None) -> list[str]:
    return [x for b in blocks for x in (block_md(b, base), "")]


def render_markdown(report: Report, *, base: str | Path | None = None) -> str:
    """The whole report; figure paths are written relative to `base` (the directory of report.md)."""
    base_p = Path(base) if base is not None else None
    out = [f"# {report.title}", ""]
    if report.provenance:
        out += [f"*{provenance_line(report.provenance)}*", ""]
    out += _blocks(report.blocks, base_p)
    for depth, s in report.walk():
        out += [f"{'#' * min(6, depth + 2)} {s.title}", ""]
        out += _blocks(s.blocks, base_p)
    return "\n".join(out).rstrip() + "\n"
