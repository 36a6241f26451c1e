"""Fleet report files: summary tables (JSON, CSV), per-day and per-device CSVs, the trade-off plot
(`al.fleet.plot`) and report.md + report.html, both rendered from one report model (`al.fleet.document`).

`write_outputs` writes the files.
"""

from __future__ import annotations

import gzip
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from al.fleet.config import FleetConfig
from al.fleet.latency import ScoringLatency
from al.fleet.simulate import FIELDS, FleetResult, ci95, variant_key
from al.fleet.training_summary import training_summary
from hwbench.csvfile import records_csv
from hwbench.io import atomic_write_bytes, atomic_write_json, atomic_write_text, to_jsonable, write_jsonl
from hwbench.report.render_html import render_html
from hwbench.report.render_md import render_markdown


def finite_or_none(obj: Any) -> Any:
    """JSON-safe copy: NaN and infinities become None (every JSON we write is valid JSON)."""
    obj = to_jsonable(obj)
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [finite_or_none(v) for v in obj]
    return obj


def summary_records(cfg: FleetConfig, latencies: Sequence[ScoringLatency], res: FleetResult, world: Any) -> list[dict]:
    """One record per (generation, surrogate, policy): latency, per device-day means, recall ± CI."""
    lat = {(x.generation, x.surrogate): x for x in latencies}
    out = []
    for gi, g in enumerate(cfg.generation):
        for s in g.surrogates:
            x = lat[(g.name, s)]
            for pi, p in enumerate(cfg.policy):
                v = res.variants[variant_key(gi, s, pi)]
                f = v.fields
                mean, std, half, n = ci95(f["recall"])
                out.append({
                    "generation": g.name, "profile": g.profile, "devices": int(np.unique(v.device).size),
                    "surrogate": s, "surrogate_metric": world.info.get("surrogate_metric", {}).get(s),
                    "latency_source": x.source, "latency_ms": x.latency_ms, "share": x.share,
                    "effective_ms": x.effective_ms, "period": x.period,
                    "scored_pct": 100.0 * float(f["scored"].sum()) / max(1.0, float(f["seen"].sum())),
                    "policy": p.label, "device_days": int(v.device.size),
                    **{f"{k}_per_day": float(f[k].mean()) for k in ("seen", "scored", "skipped", "kept", "uploaded")},
                    "distinct_per_day": float(f["distinct"].mean()),
                    "mb_per_device_day": float(f["bytes"].mean() / 1e6), "total_gb": float(f["bytes"].sum() / 1e9),
                    "recall": mean, "recall_std": std, "recall_ci95": half, "recall_n": n,
                    "fleet_distinct_frames": int((v.uploaded_by > 0).sum()),
                    "world_passed_pct": 100.0 * float((v.passed_by > 0).mean()),
                    "seconds": v.seconds})
    return [finite_or_none(r) for r in out]


def per_day_records(cfg: FleetConfig, res: FleetResult) -> list[dict]:
    """Sums over a generation's devices, per variant and day."""
    out = []
    for gi, g in enumerate(cfg.generation):
        for s in g.surrogates:
            for pi, p in enumerate(cfg.policy):
                v = res.variants[variant_key(gi, s, pi)]
                for day in np.unique(v.day):
                    m = v.day == day
                    rec = {"generation": g.name, "surrogate": s, "policy": p.label, "day": int(day),
                           "devices": int(m.sum())}
                    rec.update({k: float(v.fields[k][m].sum()) for k in FIELDS if k != "recall"})
                    rec["recall_mean"] = ci95(v.fields["recall"][m])[0]
                    out.append(finite_or_none(rec))
    return out


def device_days_csv(cfg: FleetConfig, res: FleetResult) -> bytes:
    """Every device-day of every variant (gzip-compressed CSV)."""
    lines = ["generation,surrogate,policy,device,day," + ",".join(FIELDS)]
    for gi, g in enumerate(cfg.generation):
        for s in g.surrogates:
            for pi, p in enumerate(cfg.policy):
                v = res.variants[variant_key(gi, s, pi)]
                cols = np.column_stack([v.device, v.day] + [v.fields[k] for k in FIELDS])
                prefix = f"{g.name},{s},{p.label},"
                lines += [prefix + ",".join(_num(x) for x in row) for row in cols.tolist()]
    return gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0)


def _num(x: float) -> str:
    if isinstance(x, float) and math.isnan(x):
        return ""
    return str(int(x)) if float(x).is_integer() else f"{x:.6g}"


def _csv(records: Sequence[Mapping]) -> str:
    return records_csv(records)


def write_outputs(cfg: FleetConfig, out: Path, world: Any, latencies: Sequence[ScoringLatency], res: FleetResult,
                  summary: list[dict], training: list[dict], timing: dict[str, float]) -> dict[str, Path]:
    from al.fleet.document import fleet_report
    from al.fleet.plot import plot_tradeoff

    training = finite_or_none(training)
    written = {
        "latency": atomic_write_json(out / "latency.json", finite_or_none([x.record() for x in latencies])),
        "summary": atomic_write_json(out / "summary.json", summary),
        "summary_csv": atomic_write_text(out / "summary.csv", _csv(summary)),
        "per_day_csv": atomic_write_text(out / "per_day.csv", _csv(per_day_records(cfg, res))),
        "device_days": atomic_write_bytes(out / "device_days.csv.gz", device_days_csv(cfg, res)),
        "timing": atomic_write_json(out / "timing.json", finite_or_none(timing)),
    }
    train_sum = finite_or_none(training_summary(training))
    if training:
        written["training"] = write_jsonl(out / "training.jsonl", training)
        written["training_csv"] = atomic_write_text(out / "training.csv", _csv(train_sum))
    written["plot"] = plot_tradeoff(summary, train_sum, out / "fleet_tradeoff.png", world.info["metric"])
    text = (out / "experiment.toml").read_text(encoding="utf-8") if (out / "experiment.toml").is_file() else ""
    report = fleet_report(cfg, world, summary, train_sum, timing, text, image=written["plot"])
    written["markdown"] = atomic_write_text(out / "report.md", render_markdown(report, base=out))
    written["html"] = atomic_write_text(out / "report.html", render_html(report, base=out))
    return written
