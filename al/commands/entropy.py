"""`al entropy CONFIG --out DIR`: entropy histograms of models trained on the same random subset
(paper Fig. 4), mean entropy per model and the ratios between them; writes the report into DIR."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", metavar="CONFIG",
                        help="entropy TOML file or preset name (entropy_demo; the entropy_ prefix may be left out)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory (created)")
    parser.add_argument("--json", action="store_true", help="print only the per-model summary records as JSON")
    parser.add_argument("--resume", action="store_true",
                        help="reuse DIR's trained models (same config) and recompute the scores and report")


def run(args: argparse.Namespace) -> int:
    from al.experiments.entropy import entropy_analysis, load_entropy_config
    from al.report.format import model_label
    from hwbench.console import emit, line, progress

    cfg, _ = load_entropy_config(args.config)
    with progress(transient=True) as bar:
        result = entropy_analysis(cfg, args.out, resume=args.resume, progress=bar)
    if args.json:
        emit(result["summary"], as_json=True)
        return 0
    rows = [{"model": model_label(s["model"]), **{k: s[k] for k in ("n", "mean", "std", "median", "top_threshold")}}
            for s in result["summary"]]
    emit(rows, as_json=False, title="image entropy (mean pixel entropy, nats) on the held-out pool",
         formats={k: ".4f" for k in ("mean", "std", "median", "top_threshold")})
    for r in [r for r in result["ratios"] if r["ratio"] >= 1][:3]:
        line(f"mean entropy {model_label(r['numerator'])} / {model_label(r['denominator'])} = "
                     f"x{r['ratio']:.2f}")
    line(f"report: {args.out}/report.md")
    return 0
