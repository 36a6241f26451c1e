"""The report model: a report is built once as sections of blocks, then rendered to markdown
(`hwbench.report.render_md`) and to one self-contained HTML page (`hwbench.report.render_html`).

    Report(title, provenance, blocks=[...], sections=[Section(title, blocks=[...], sections=[...]), ...])
    blocks: Text, Bullets, Table (of plain strings or Cell), Figure, Code, Markdown

Text in every block may use a small inline markup that both renderers understand: **bold**,
*italic*, `code` and [label](target). Both the al and the hwbench reports are built from these
classes, so what one format shows the other shows too.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union


@dataclass(frozen=True)
class Text:
    """A paragraph (inline markup allowed)."""

    text: str


@dataclass(frozen=True)
class Bullets:
    """A bulleted list, one string per item (inline markup allowed)."""

    items: Sequence[str]


@dataclass(frozen=True)
class Cell:
    """A table cell with more than text: `scale` in [0, 1] colour-codes it from worst (red) to best (green)
    (markdown shows a coloured square); `kind` names its role ("random": the uncoloured random column)."""

    text: str
    scale: float | None = None
    kind: str | None = None


@dataclass(frozen=True)
class Table:
    """Rows of cells under a header. `row_header`: the first column names the row. `align`: one of
    "l" / "r" / "c" per column, or None to right-align columns that hold numbers only."""

    header: Sequence[str]
    rows: Sequence[Sequence[Any]]
    caption: str | None = None
    row_header: bool = False
    align: Sequence[str] | None = None
    css_class: str | None = None


@dataclass(frozen=True)
class Figure:
    """An image: `path` is the file on disk (markdown links it relative to the report; HTML embeds it);
    `data` the bytes when no file is kept. `caption`: one line under it."""

    alt: str
    path: Path | None = None
    data: bytes | None = None
    caption: str | None = None
    name: str | None = None  # how markdown refers to it when there is no path (e.g. "latency_heatmap.png")

    def read(self) -> bytes:
        if self.data is not None:
            return self.data
        if self.path is None:
            raise ValueError(f"figure {self.alt!r} has neither data nor path")
        return Path(self.path).read_bytes()


@dataclass(frozen=True)
class Code:
    """A preformatted block (a config file, a log)."""

    text: str
    lang: str = ""


@dataclass(frozen=True)
class Markdown:
    """Markdown text from an extension that builds no blocks (rendered as is; HTML via markdown-it)."""

    text: str


Block = Union[Text, Bullets, Table, Figure, Code, Markdown]


@dataclass
class Section:
    """A titled part of a report: its blocks, then its subsections (one heading level deeper)."""

    title: str
    blocks: list[Block] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    id: str | None = None

    def add(self, *blocks: Block | None) -> Section:
        """Append the blocks that are not None; returns self."""
        self.blocks.extend(b for b in blocks if b is not None)
        return self

    def anchor(self) -> str:
        return self.id or slug(self.title)


@dataclass
class Report:
    """A whole report: title, provenance (`hwbench.provenance`), blocks under the title, sections."""

    title: str
    provenance: dict[str, Any] | None = None
    blocks: list[Block] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)

    def walk(self) -> list[tuple[int, Section]]:
        """(depth, section) for every section, depth-first; depth 0 = top level (heading level 2)."""
        out: list[tuple[int, Section]] = []

        def visit(s: Section, depth: int) -> None:
            out.append((depth, s))
            for sub in s.sections:
                visit(sub, depth + 1)

        for s in self.sections:
            visit(s, 0)
        return out

    def figures(self) -> list[Figure]:
        return [b for blocks in [self.blocks, *(s.blocks for _, s in self.walk())] for b in blocks
                if isinstance(b, Figure)]


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


def cell_text(c: Any) -> str:
    """The text of a table cell (a Cell, None, a float or anything else)."""
    if isinstance(c, Cell):
        return c.text
    if c is None:
        return "–"
    return str(c)


NUMBER_MARKS = ("±", "*", "▲", "▼", "=", "◆", "%", "×", "(", ")", "[", "]", ",", "/")


def is_numeric(text: str) -> bool:
    """Whether a cell reads as a number (optionally with ± spread, marks, brackets): right-aligned."""
    t = text
    for m in NUMBER_MARKS:
        t = t.replace(m, " ")
    t = t.replace("Δ", " ")
    words = t.split()
    if not words:
        return text.strip() in ("–", "-")
    try:
        [float(w.lstrip("+")) for w in words]
    except ValueError:
        return False
    return True


def column_align(table: Table) -> list[str]:
    """One of l / r / c per column: the table's own, else r for columns of numbers (the first stays l)."""
    if table.align is not None:
        return list(table.align)
    out = ["l"]
    for i in range(1, len(table.header)):
        texts = [cell_text(r[i]) for r in table.rows if i < len(r)]
        out.append("r" if texts and all(is_numeric(x) for x in texts) else "l")
    return out


# ---------------------------------------------------------------------------------- colour scale
def scale_colour(t: float) -> str:
    """Worst (0, red) -> middle (0.5, yellow) -> best (1, green): Excel's 3-colour scale."""
    stops = ((0.0, (248, 105, 107)), (0.5, (255, 235, 132)), (1.0, (99, 190, 123)))
    t = min(1.0, max(0.0, t))
    (t0, c0), (t1, c1) = (stops[0], stops[1]) if t <= 0.5 else (stops[1], stops[2])
    w = (t - t0) / (t1 - t0)
    r, g, b = (round(a + (bb - a) * w) for a, bb in zip(c0, c1, strict=True))
    return f"#{r:02x}{g:02x}{b:02x}"


SQUARES = ("🟥", "🟧", "🟨", "🟩")


def scale_square(t: float) -> str:
    """Coloured square for a position in the row's range: 🟥 worst quarter … 🟩 best quarter."""
    return SQUARES[min(len(SQUARES) - 1, int(max(0.0, t) * len(SQUARES)))]
