"""How every report figure is drawn and saved: legible at 800 px.

Figures are at most `MAX_WIDTH_IN` wide, every text at least `MIN_FONT_PT`, saved as PNG at `DPI`;
the HTML shows them at their physical size (width in inches x 96 CSS px), so a 10 pt label reads as
10 pt on the page. The PNG carries its smallest font size (text chunk `MIN_FONT_KEY`) and its dpi,
so a renderer (and the layout test) knows both without the figure object.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

DPI = 160
MIN_FONT_PT = 10.0
MAX_WIDTH_IN = 7.5  # 720 CSS px: fits the 800 px window with the page's margins
CSS_PX_PER_IN = 96
MIN_FONT_KEY = "hwbench:min_font_pt"
RC = {"font.size": 10.5, "axes.titlesize": 11, "axes.labelsize": 10.5, "xtick.labelsize": 10,
      "ytick.labelsize": 10, "legend.fontsize": 10, "figure.titlesize": 12, "legend.title_fontsize": 10}


@contextmanager
def style() -> Iterator[None]:
    """matplotlib (Agg backend) with the report's font sizes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with plt.rc_context(RC):
        yield


def min_font_pt(fig: Any) -> float:
    """The smallest font size (pt) of any visible, non-empty text in `fig`."""
    from matplotlib.text import Text

    sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    return float(min(sizes)) if sizes else MIN_FONT_PT


def png_bytes(fig: Any, *, close: bool = True) -> bytes:
    """The figure as PNG at `DPI`, tagged with its smallest font size; closes pyplot figures."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if fig.canvas is None or not hasattr(fig.canvas, "print_png"):
        FigureCanvasAgg(fig)
    w, _ = fig.get_size_inches()
    if w > MAX_WIDTH_IN + 1e-6:
        raise ValueError(f"figure is {w:.2f} in wide; report figures are at most {MAX_WIDTH_IN} in (800 px pages)")
    fig.canvas.draw()  # tick labels get their text only when drawn
    small = min_font_pt(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={MIN_FONT_KEY: f"{small:g}"})
    if close:
        import matplotlib.pyplot as plt

        plt.close(fig)
    return buf.getvalue()


def save_png(fig: Any, path: str | Path) -> Path:
    """`png_bytes`, written atomically to `path`."""
    from hwbench.io import atomic_write_bytes

    return atomic_write_bytes(path, png_bytes(fig))


def png_info(data: bytes) -> dict[str, float | None]:
    """{width_px, height_px, dpi, width_css_px, min_font_pt} of a PNG (dpi None when it has none)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        w, h = im.size
        dpi = im.info.get("dpi", (None, None))[0]
        font = im.info.get(MIN_FONT_KEY)
    dpi = round(float(dpi)) if dpi else None
    return {"width_px": w, "height_px": h, "dpi": dpi,
            "width_css_px": round(w / dpi * CSS_PX_PER_IN) if dpi else w,
            "min_font_pt": float(font) if font else None}
