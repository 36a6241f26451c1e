"""The HTML reports (`al report`, `hwbench report`, `al fleet`) laid out by headless Chromium at 800 and 1400 px,
each page moved alone to another directory first: every image loads from the page itself, no word
in a table cell is split across lines, nothing but a table's own box scrolls sideways, figures keep
their fonts at >= 10 pt on the page, and the HTML holds every heading, table and figure of the markdown.

A script injected into the copy measures the laid-out page (a Range per word of every cell; each
<img>'s natural and rendered size) and writes the result into the DOM, read back with --dump-dom.
Set HWBENCH_REPORT_SCREENSHOTS=DIR to also write full-page PNG screenshots there.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt install chromium)")
WIDTHS = (800, 1400)

MEASURE_JS = r"""
window.addEventListener('load', () => {
  const res = {width: window.innerWidth, pageScrollWidth: document.documentElement.scrollWidth,
               pageHeight: document.documentElement.scrollHeight,
               cells: 0, words: 0, split: [], images: [], tables: document.querySelectorAll('table').length,
               headings: Array.from(document.querySelectorAll('h1,h2,h3,h4,h5,h6')).map(h => h.textContent.trim())};
  for (const cell of document.querySelectorAll('td, th')) {
    res.cells++;
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    let node;
    while ((node = walker.nextNode())) {
      const re = /[^ \t\n\r]+/g;  // a word: what a browser may break only around (no-break spaces join)
      let m;
      while ((m = re.exec(node.data))) {
        res.words++;
        const r = document.createRange();
        r.setStart(node, m.index); r.setEnd(node, m.index + m[0].length);
        const tops = new Set(Array.from(r.getClientRects()).filter(x => x.width > 0).map(x => Math.round(x.top)));
        if (tops.size > 1) res.split.push(m[0]);
      }
    }
  }
  for (const img of document.images) {
    const b = img.getBoundingClientRect();
    res.images.push({alt: img.alt, complete: img.complete, naturalWidth: img.naturalWidth,
                     renderedWidth: b.width, declaredWidth: parseFloat(img.getAttribute('width') || 'NaN'),
                     minFontPt: parseFloat(img.dataset.minFontPt || 'NaN'), src: img.src.slice(0, 22)});
  }
  const out = document.createElement('pre');
  out.id = 'layout-check';
  out.textContent = JSON.stringify(res);
  document.body.appendChild(out);
});
"""


def chromium(url: str, width: int, tmp: Path, *extra: str) -> str:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
           f"--user-data-dir={tmp / 'chromium-profile'}", f"--window-size={width},2000",
           "--virtual-time-budget=10000", *extra, url]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout


def layout(html_file: Path, width: int, tmp: Path) -> dict:
    """Move the page alone into a fresh directory, inject the measuring script, lay it out at `width`."""
    alone = tmp / f"alone-{width}"
    alone.mkdir(parents=True)
    page = alone / "page.html"
    page.write_text(html_file.read_text(encoding="utf-8").replace("</body>", f"<script>{MEASURE_JS}</script></body>"),
                    encoding="utf-8")
    dom = chromium(page.as_uri(), width, tmp, "--dump-dom")
    m = re.search(r'<pre id="layout-check">(.*?)</pre>', dom, re.S)
    assert m, "the measuring script did not run"
    res = json.loads(m.group(1).replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">")
                     .replace("&amp;", "&"))
    shots = os.environ.get("HWBENCH_REPORT_SCREENSHOTS")
    if shots:  # the page as it is (no script), whole height
        Path(shots).mkdir(parents=True, exist_ok=True)
        plain = alone / "plain.html"
        shutil.copy(html_file, plain)
        chromium(plain.as_uri(), width, tmp, f"--screenshot={Path(shots) / f'{html_file.parent.name}-{width}.png'}",
                 f"--window-size={width},{min(16000, res['pageHeight'])}")
    return res


def markdown_parts(md: str) -> tuple[list[str], int, int]:
    """Headings (inline markup removed), number of tables and of images of a markdown report."""
    lines = [x for x in md.splitlines() if not x.startswith("    ")]
    in_code, heads, tables, images = False, [], 0, 0
    for x in lines:
        if x.startswith("```"):
            in_code = not in_code
        if in_code:
            continue
        if re.match(r"#{1,6} ", x):
            heads.append(re.sub(r"[`*]", "", x.lstrip("#").strip()))
        if re.match(r"\| *:?-{3,}", x):
            tables += 1
        images += len(re.findall(r"!\[[^\]]*\]\([^)]+\)", x))
    return heads, tables, images


def check_page(report_dir: Path, tmp: Path) -> None:
    md = (report_dir / "report.md").read_text(encoding="utf-8")
    heads, n_tables, n_images = markdown_parts(md)
    assert n_tables >= 3 and n_images >= 1
    for width in WIDTHS:
        res = layout(report_dir / "report.html", width, tmp / str(width))
        assert res["width"] == width
        assert res["headings"] == heads, "the HTML lacks a heading of the markdown (or has one more)"
        assert res["tables"] == n_tables, "the HTML lacks a table of the markdown"
        assert res["words"] > 100 and res["split"] == [], f"words broken inside a cell at {width} px: {res['split']}"
        assert res["pageScrollWidth"] <= width, "the page itself scrolls sideways (only a table's box may)"
        assert len(res["images"]) == n_images
        for img in res["images"]:
            assert img["src"].startswith("data:image/"), img  # embedded: the page moved alone still shows it
            assert img["complete"] and img["naturalWidth"] > 0, f"image {img['alt']!r} did not load"
            # drawn at >= 10 pt at its declared size (inches x 96 px); shown at that size (or scaled down)
            rendered_pt = img["minFontPt"] * img["renderedWidth"] / img["declaredWidth"]
            assert rendered_pt >= 10 - 1e-6, (width, img)


# ------------------------------------------------------------------------------ example reports
DEPLOY = ("deeplabv3plus_resnet18", "deeplabv3plus_resnet50", "deeplabv3plus_xception65")
SURR = ("deeplabv3plus_resnet20", "deeplabv3plus_mobilenetv3_small", "deeplabv3plus_resnet18")


def al_experiment(root: Path) -> Path:
    """An experiment directory with every section the al report has: matrix, deployability, entropy,
    AL curves, fleet simulation, timing, config (numbers made up here, not results)."""
    from al.fleet.plot import plot_tradeoff
    from al.fleet.training_summary import training_summary
    from al.runs.files import npz_bytes
    from al.stats import entropy_ratios, entropy_summary
    from hwbench.io import atomic_write_bytes, atomic_write_json, write_jsonl

    rng = np.random.default_rng(0)
    d = root / "exp"
    write_jsonl(d / "records.jsonl", [
        {"deployment": dep, "surrogate": s, "seed": seed, "metric": "miou", "value": float(40 + 5 * i + rng.normal(0, 1))}
        for i, dep in enumerate(DEPLOY) for s in (*SURR, "random") for seed in range(3)])
    atomic_write_json(d / "experiment.json", {
        "name": "layout", "kind": "surrogate", "dataset": "synthetic_streets", "seeds": [0, 1, 2],
        "deployment": list(DEPLOY), "surrogates": list(SURR), "summary": "Hand-made records for a layout test.",
        "meta": {"python": "3.12", "torch": "2.13.0", "device": "cpu"},
        "provenance": {"time_utc": "2026-01-02T03:04:05Z", "tool": "hwbench", "tool_version": "0.1.0", "host": "ci"}})
    (d / "experiment.toml").write_text('name = "layout"\n[data]\nname = "synthetic_streets"\n')
    atomic_write_json(d / "deploy.json", {"source": {"device": "tx2", "fps": 10, "share": 0.3, "mode": "paper"},
                                          "surrogates": list(SURR),
                                          "verdicts": [{"model": m, "device": "tx2", "mode": "paper", "latency_ms": 20.0 + k,
                                                        "budget_ms": 30.0, "deployable": True, "reason": "fits"}
                                                       for k, m in enumerate(SURR)]})
    atomic_write_json(d / "timing.json", {"total_s": 12.5, "reused": 0, "parts": [
        {"kind": "surrogate AL run", "name": "a", "seed": 0, "seconds": 2.0, "reused": False}]})
    scores = {m: rng.gamma(2.0 + k, 0.2, 60) for k, m in enumerate(SURR)}
    summ = entropy_summary(scores)
    (d / "entropy").mkdir()
    atomic_write_bytes(d / "entropy" / "entropy_scores.npz", npz_bytes({f"score__{k}": v for k, v in scores.items()}))
    atomic_write_json(d / "entropy" / "entropy.json", {
        "pool_size": 66, "train_size": 6, "held_out_size": 60, "train_fraction": 0.1, "top_fraction": 0.1,
        "summary": summ, "ratios": entropy_ratios({s["model"]: s["mean"] for s in summ})})
    for model in SURR[:2]:
        for strategy in ("entropy", "coreset", "random"):
            for seed in range(2):
                run = d / "runs" / f"{model}-{strategy}-{seed}"
                run.mkdir(parents=True)
                (run / "config.toml").write_text(f'seed = {seed}\n[model]\nname = "{model}"\n[al]\nstrategy = '
                                                 f'"{strategy}"\n[data]\nname = "synthetic_streets"\npool_size = 100\n')
                write_jsonl(run / "metrics.jsonl", [{"cycle": c, "labelled": 10 * (c + 1), "fraction": 0.1 * (c + 1),
                                                     "metric": "miou", "value": 20 + 4 * c + rng.normal(0, 1)}
                                                    for c in range(4)])
    fleet = d / "fleet"
    summary = [{"generation": g, "profile": g, "surrogate": s, "policy": p, "surrogate_metric": 30.0,
                "latency_source": "paper", "latency_ms": 25.0, "share": 0.3, "effective_ms": 83.3, "period": 2.5,
                "scored_pct": sp, "seen_per_day": 72000.0, "scored_per_day": 720.0 * sp, "skipped_per_day": 100.0,
                "kept_per_day": 50.0, "uploaded_per_day": 20.0, "distinct_per_day": 19.0, "mb_per_device_day": 4.0,
                "recall": 0.4 + 0.1 * k, "recall_ci95": 0.05, "fleet_distinct_frames": 300}
               for k, (g, s, sp) in enumerate((("tx2", SURR[0], 4.0), ("xavier_nx", SURR[1], 40.0)))
               for p in ("top-k per day", "threshold")]
    training = [{"generation": g, "surrogate": s, "method": m, "seed": seed, "value": 30.0 + j + seed, "added": 40}
                for g, s in (("tx2", SURR[0]), ("xavier_nx", SURR[1])) for j, m in enumerate(("fleet", "pool", "random"))
                for seed in range(3)]
    atomic_write_json(fleet / "summary.json", summary)
    write_jsonl(fleet / "training.jsonl", training)
    plot_tradeoff(summary, training_summary(training), fleet / "fleet_tradeoff.png", "miou")
    (fleet / "DONE").write_text("")
    return d


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, Path]:
    from al.report import write_report
    from hwbench.report import report

    root = tmp_path_factory.mktemp("reports")
    exp = al_experiment(root)
    write_report(exp, root / "al-report")
    report(root / "hwbench-report", input_shape=(1, 3, 256, 512))
    fleet_report_dir(exp / "fleet", root / "fleet-report")
    return {"al": root / "al-report", "hwbench": root / "hwbench-report", "fleet": root / "fleet-report"}


def fleet_report_dir(fleet: Path, out: Path) -> None:
    """`al fleet`'s own report (the preset's config, the hand-made records of `al_experiment`)."""
    from types import SimpleNamespace

    from al.fleet.config import load_fleet_config
    from al.fleet.document import fleet_report
    from al.fleet.training_summary import training_summary
    from hwbench.io import read_jsonl
    from hwbench.report.render_html import render_html
    from hwbench.report.render_md import render_markdown

    cfg, text = load_fleet_config("fleet_demo")
    world = SimpleNamespace(info={"frames": 400, "drives": 4, "dataset": "synthetic_streets", "world_fps": 4.0,
                                  "metric": "miou", "initial_labelled": 40})
    summary = json.loads((fleet / "summary.json").read_text())
    doc = fleet_report(cfg, world, summary, training_summary(list(read_jsonl(fleet / "training.jsonl"))),
                       {"simulate_s": 1.5, "train_s": 20.0}, text, image=fleet / "fleet_tradeoff.png")
    out.mkdir()
    (out / "report.md").write_text(render_markdown(doc, base=out))
    (out / "report.html").write_text(render_html(doc, base=out))


def test_al_report_lays_out_in_chromium(reports, tmp_path):
    check_page(reports["al"], tmp_path)
    html = (reports["al"] / "report.html").read_text(encoding="utf-8")
    assert "Fleet simulation" in html and "fleet − random (95 % CI)" in html  # the fleet tables, not a link


def test_hwbench_report_lays_out_in_chromium(reports, tmp_path):
    check_page(reports["hwbench"], tmp_path)


def test_fleet_report_lays_out_in_chromium(reports, tmp_path):
    check_page(reports["fleet"], tmp_path)
