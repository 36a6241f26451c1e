"""`al rank --against`: one PNG, a panel per signal — each pair's probe signal against its matrix Δ."""

from __future__ import annotations

import io
from pathlib import Path

from al.report.format import model_label


def plot_ranking_check(check: dict, path: str | Path) -> Path:
    """Scatter of signal (x) vs Δ vs random (y, p.p.) per off-diagonal pair, ρ and its CI in the title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hwbench.io import atomic_write_bytes

    pairs, signals = check["pairs"], list(check.get("signals") or {"overlap": None})
    fig, axes = plt.subplots(1, len(signals), figsize=(4.2 * len(signals), 3.8), squeeze=False)
    studies = sorted({p["study"] for p in pairs})
    for ax, g in zip(axes[0], signals, strict=True):
        for k in studies:
            pts = [p for p in pairs if p["study"] == k]
            ax.scatter([p[g] for p in pts], [p["delta"] for p in pts], s=28, label=f"study {k}" if len(studies) > 1
                       else None)
            for p in pts:
                ax.annotate(f"{model_label(p['deployment'])}←{model_label(p['surrogate'])}", (p[g], p["delta"]),
                            fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.axhline(0, color="#888", lw=0.8)
        s = (check.get("signals") or {}).get(g)
        title = g if s is None else f"{g}: ρ = {s['rho']:+.2f} [{s['ci95'][0]:+.2f}, {s['ci95'][1]:+.2f}]"
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(f"probe signal: {g}")
        ax.set_ylabel("matrix Δ vs random (p.p.)")
        if len(studies) > 1:
            ax.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return atomic_write_bytes(Path(path), buf.getvalue())
