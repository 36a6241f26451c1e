"""A `Report` (hwbench.report.doc) as one self-contained HTML page (Jinja2 template).

Self-contained: every figure is embedded as a `data:` URI and shown at its physical size (so its
fonts read at the size they were drawn); nothing refers to a file beside the page except links the
text itself makes. Tables never break a word: cells wrap only at spaces, and a table wider than the
page scrolls sideways inside its own box.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hwbench.provenance import FIELDS, provenance_line
from hwbench.report.doc import (
    SQUARES,
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
    scale_colour,
)
from hwbench.report.figstyle import png_info

CSS = """
:root{color-scheme:light}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;line-height:1.45;max-width:1300px;
  margin:1.5em auto;padding:0 16px;color:#1f2328;font-size:15px}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:1px solid #d0d7de;padding-bottom:.2em;margin-top:1.6em}
p.provenance{color:#57606a;font-size:13px;margin-top:0}
dl.provenance{display:grid;grid-template-columns:max-content auto;gap:0 1em;font-size:13px;color:#57606a}
dl.provenance dt{font-weight:600}dl.provenance dd{margin:0}
.table-wrap{overflow-x:auto;max-width:100%;margin:.8em 0}
table{border-collapse:collapse;font-size:13px}
th,td{border:1px solid #d0d7de;padding:3px 7px;text-align:left;vertical-align:top;
  overflow-wrap:normal;word-break:normal;hyphens:manual}
thead th{background:#f3f4f6}
td.r,th.r{text-align:right}td.c,th.c{text-align:center}
td.random{border-left:3px double #888;background:#fafafa}
tbody th{background:#fafafa;text-align:left}
figure{margin:1em 0}figure img{max-width:100%;height:auto;display:block}
figcaption{font-size:13px;color:#57606a}
pre{background:#f6f8fa;padding:.8em;overflow-x:auto;white-space:pre;font-size:13px}
code{background:#f6f8fa;padding:0 .2em;border-radius:3px;font-size:.92em;white-space:nowrap}
pre code{white-space:pre}
span.nw{white-space:nowrap}span.sq{display:inline-block;width:.8em;height:.8em;border-radius:2px;vertical-align:-.05em}
"""

TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>{{ css }}</style>
</head>
<body>
<header>
<h1>{{ title }}</h1>
{% if provenance %}<p class="provenance">{{ provenance_line }}</p>
<details><summary>Provenance</summary><dl class="provenance">
{% for k, v in provenance %}<dt>{{ k }}</dt><dd>{{ v }}</dd>
{% endfor %}</dl></details>{% endif %}
</header>
<main>
{{ intro }}
{% for depth, s, body in sections %}<section id="{{ s.anchor() }}">
<h{{ depth + 2 }}>{{ s.title | inline }}</h{{ depth + 2 }}>
{{ body }}
</section>
{% endfor %}</main>
</body>
</html>
"""


def inline(text: str) -> str:
    """Escape `text`, then turn the model's inline markup into HTML: `code`, **bold**, *italic*, [a](b)."""
    parts = re.split(r"(`[^`]+`)", str(text))
    out = []
    for p in parts:
        if len(p) > 1 and p.startswith("`") and p.endswith("`"):
            out.append(f"<code>{html.escape(p[1:-1])}</code>")
            continue
        s = html.escape(p, quote=False)
        s = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", s)
        s = re.sub(r"(?<![\w*])\*(?![\s*])(.+?)(?<![\s*])\*(?![\w*])", r"<i>\1</i>", s)
        s = re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", lambda m: f'<a href="{m.group(2).replace(chr(34), "%22")}">{m.group(1)}</a>', s)
        out.append(_squares(s))
    return "".join(out)


def _squares(s: str) -> str:
    """The markdown's coloured squares (🟥 … 🟩) as coloured boxes: no emoji font needed."""
    for i, sq in enumerate(SQUARES):
        if sq in s:
            colour = scale_colour((i + 0.5) / len(SQUARES))
            s = s.replace(sq, f'<span class="sq" style="background:{colour}" title="{sq}"></span>')
    return s


_JOINED = re.compile(r"(?<![^\s(\[])(\S*\w[-/+‑]\S*)")  # a word with a hyphen, slash or plus inside


def _nowrap_words(s: str) -> str:
    """Words such as `Res-20`, `fp16/gpu` in a no-wrap span: browsers break lines after a hyphen or slash."""
    parts = re.split(r"(<[^>]+>)", s)
    return "".join(p if p.startswith("<") else _JOINED.sub(r'<span class="nw">\1</span>', p) for p in parts)


def _cell_html(text: str) -> str:
    """Inline markup, with a value and its spread kept on one line (`62.0 ± 2.0`, `Δ +1.2`) and words
    that hold a hyphen or slash never split."""
    return _nowrap_words(inline(text)).replace(" ± ", "\u00a0±\u00a0").replace("Δ ", "Δ\u00a0")


def table_html(t: Table) -> str:
    align = column_align(t)
    head = "".join(f'<th class="{a}">{_cell_html(h)}</th>' for h, a in zip(t.header, align, strict=False))
    body = []
    for row in t.rows:
        tds = []
        for i, c in enumerate(row):
            tag = "th" if t.row_header and i == 0 else "td"
            cls = [align[i] if i < len(align) else "l"]
            attrs = ""
            if isinstance(c, Cell):
                if c.kind:
                    cls.append(c.kind)
                if c.scale is not None:
                    cls.append("cell")
                    attrs = f' style="background:{scale_colour(c.scale)}" data-scale="{c.scale:.3f}"'
            tds.append(f'<{tag} class="{" ".join(cls)}"{attrs}>{_cell_html(cell_text(c))}</{tag}>')
        body.append(f"<tr>{''.join(tds)}</tr>")
    cls = f' class="{t.css_class}"' if t.css_class else ""
    caption = f"<p>{inline(t.caption)}</p>" if t.caption else ""
    return (f'{caption}<div class="table-wrap"><table{cls}><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>")


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


def figure_html(f: Figure) -> str:
    """The figure embedded, shown at its physical width (px = inches x 96) and never wider than the page."""
    data = f.read()
    info = png_info(data) if data[:8] == b"\x89PNG\r\n\x1a\n" else {}
    mime = "image/png" if info else "image/svg+xml" if data.lstrip()[:5] in (b"<?xml", b"<svg ") else "image/png"
    attrs = ""
    if info.get("width_css_px"):
        attrs += f' width="{info["width_css_px"]}"'
    if info.get("min_font_pt"):
        attrs += f' data-min-font-pt="{info["min_font_pt"]:g}"'
    cap = f"<figcaption>{inline(f.caption)}</figcaption>" if f.caption else ""
    return f'<figure><img src="{data_uri(data, mime)}" alt="{html.escape(f.alt)}"{attrs}>{cap}</figure>'


def markdown_html(text: str, base: Path | None) -> str:
    """Markdown of an extension section (markdown-it, tables on); local images are embedded."""
    from markdown_it import MarkdownIt

    out = MarkdownIt("commonmark", {"html": False}).enable("table").render(text)
    out = out.replace("<table>", '<div class="table-wrap"><table>').replace("</table>", "</table></div>")

    def embed(m: re.Match) -> str:
        src = html.unescape(m.group(1))
        p = (base / src) if base is not None and not re.match(r"^[a-z]+:", src) else None
        if p is not None and p.is_file():
            return f'<img src="{data_uri(p.read_bytes())}"'
        return m.group(0)

    return re.sub(r'<img src="([^"]*)"', embed, out)


def block_html(b: Block, base: Path | None = None) -> str:
    if isinstance(b, Text):
        return f"<p>{inline(b.text)}</p>"
    if isinstance(b, Bullets):
        return "<ul>" + "".join(f"<li>{inline(x)}</li>" for x in b.items) + "</ul>"
    if isinstance(b, Table):
        return table_html(b)
    if isinstance(b, Figure):
        return figure_html(b)
    if isinstance(b, Code):
        return f"<pre><code>{html.escape(b.text.rstrip())}</code></pre>"
    if isinstance(b, Markdown):
        return markdown_html(b.text, base)
    raise TypeError(f"not a report block: {type(b).__name__}")


def _body(blocks: Sequence[Block], base: Path | None) -> str:
    return "\n".join(block_html(b, base) for b in blocks)


def render_html(report: Report, *, base: str | Path | None = None) -> str:
    """The whole report as one page; `base`: where relative image paths in Markdown blocks are found."""
    import jinja2
    from markupsafe import Markup

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    env.filters["inline"] = lambda s: Markup(inline(s))
    base_p = Path(base) if base is not None else None
    prov: Any = report.provenance or {}
    rows = [(k, "–" if prov.get(k) is None else prov[k]) for k in FIELDS if k in prov]
    return env.from_string(TEMPLATE).render(
        title=report.title, css=Markup(CSS), provenance=rows,
        provenance_line=provenance_line(prov) if prov else "",
        intro=Markup(_body(report.blocks, base_p)),
        sections=[(min(depth, 4), s, Markup(_body(s.blocks, base_p))) for depth, s in report.walk()])
