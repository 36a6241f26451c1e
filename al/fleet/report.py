"""Fleet report: summary tables (JSON, CSV), per-day and per-device CSVs, a trade-off plot, markdown.

Rendering functions are pure (records in, text out); `write_outputs` writes the files.
"""

from __future__ import annotations

import gzip
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from al.fleet.config import FleetConfig
from al.fleet.latency import ScoringLatency
from al.fleet.simulate import FIELDS, FleetResult, ci95, variant_key
from hwbench.csvfile import records_csv
from hwbench.io import atomic_write_bytes, atomic_write_json, atomic_write_text, to_jsonable, write_jsonl


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


def training_summary(training: Sequence[Mapping[str, Any]]) -> list[dict]:
    """Mean ± std over seeds per (generation, surrogate, method); paired differences fleet − random and
    fleet − pool (`al.paired`: mean, half-width of the 95 % t-interval, verdict beat / tie / lose)."""
    from al.paired import paired_diff, paired_differences

    groups: dict[tuple[str, str], dict[str, dict[int, float]]] = {}
    for r in training:
        groups.setdefault((r["generation"], r["surrogate"]), {}).setdefault(r["method"], {})[r["seed"]] = r["value"]
    out = []
    for (g, s), by in groups.items():
        rec: dict[str, Any] = {"generation": g, "surrogate": s}
        for m, vals in by.items():
            a = np.array(list(vals.values()))
            rec[m], rec[f"{m}_std"] = float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else None
        for other in ("random", "pool"):
            seeds, d = paired_differences(by.get("fleet", {}), by.get(other, {}))
            pd_ = paired_diff(d) if len(seeds) else None
            rec[f"fleet_minus_{other}"] = pd_.delta if pd_ else None
            rec[f"fleet_minus_{other}_ci95"] = pd_.half_width if pd_ else None
            rec[f"fleet_vs_{other}"] = pd_.verdict if pd_ else "n/a"
            rec[f"fleet_wins_vs_{other}"] = f"{int((d > 0).sum())}/{d.size}"
        rec["seeds"] = len(by.get("fleet", {}))
        rec["added"] = next((r["added"] for r in training if (r["generation"], r["surrogate"], r["method"])
                             == (g, s, "fleet")), None)
        out.append(rec)
    return out


def _pm(mean: Any, std: Any, digits: int = 1) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    if std is None or (isinstance(std, float) and math.isnan(std)):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def _md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def render_markdown(cfg: FleetConfig, world: Any, summary: Sequence[Mapping], train_sum: Sequence[Mapping],
                    timing: Mapping[str, float], config_text: str, *, image: str | None) -> str:
    w = world.info
    budget = cfg.upload_frames_per_day
    out = [f"# Fleet simulation: {cfg.name}", "",
           f"{cfg.devices:,} devices ({', '.join(f'{g.count:,} {g.profile}' for g in cfg.generation)}) drive "
           f"{cfg.hours_per_day:g} h a day for {cfg.days} day(s) with a {cfg.fps:g} fps camera "
           f"({cfg.frames_per_day:,} frames per device-day) through a world of {w['frames']} frames in "
           f"{w.get('drives', '?')} drives ({w['dataset']}, {w['world_fps']:g} world frames per second of driving). "
           f"Each device uploads at most {cfg.upload_mb_per_day:g} MB a day = {budget} frames of {cfg.frame_kb:g} kB. "
           f"Scoring latency: `{cfg.latency.source}` at {cfg.latency.input} (labelled per row).", "",
           "## Latency: how many frames each surrogate scores", "",
           _md_table(["generation", "profile", "surrogate", f"world {w['metric']} %", "latency source", "latency ms",
                      "share", "effective ms", "scores 1 frame in", "scored %"],
                     [[r["generation"], r["profile"], r["surrogate"], _f(r["surrogate_metric"]), r["latency_source"],
                       f"{r['latency_ms']:.1f}", f"{r['share']:g}", f"{r['effective_ms']:.1f}", f"{r['period']:.2f}",
                       f"{r['scored_pct']:.1f}"] for r in _unique(summary, ("generation", "surrogate"))]), "",
           f"`world {w['metric']}`: the surrogate trained on the {w['initial_labelled']} initial frames, on the "
           "validation frames: its quality as a model. A frame is scored only when the engine is free "
           "(frames arrive at camera rate; the engine is busy `effective ms` per scored frame).", "",
           "## What the devices did (mean per device-day)", "",
           "Recall: of the k frames a device uploaded in a day, the share that are among the k best-scored "
           "distinct world frames it drove past (offline pool top-k with the same surrogate and the same budget); "
           "mean ± 95 % interval of the mean over device-days (normal approximation).", "",
           device_table(summary), ""]
    if image:
        out += [f"![trade-off]({image})", ""]
    if train_sum:
        e = cfg.evaluation
        metric = w["metric"]
        out += [f"## What the collected data is worth: {e.deployment} {metric} (%)", "",
                f"The deployment model trains from scratch on the {w['initial_labelled']} initial frames plus "
                f"`added` frames: `fleet` = the best-scored of the generation's uploads (policy "
                f"`{cfg.policy[e.policy].label}`, duplicates across devices removed), `pool` = server-side pool AL "
                "with the same surrogate (every frame the generation passed is scored), `random` = random frames "
                f"it passed. Mean ± std over {len(e.seeds)} seed(s); Δ paired by seed with the half-width of its 95 % "
                "t-interval; verdict `beat`/`lose` only when the interval excludes 0, else `tie`.", "",
                training_table(train_sum), ""]
    out += ["## What this can and cannot show", ""] + [f"- {n}" for n in notes(cfg, world)] + [""]
    out += ["## Timing", ""] + [f"- {k.removesuffix('_s')}: {v:.1f} s" for k, v in timing.items()] + [""]
    out += ["## Config", "", "```toml", config_text.rstrip(), "```", ""]
    return "\n".join(out)


def device_table(summary: Sequence[Mapping]) -> str:
    """Markdown: per device-day means and recall per (generation, surrogate, policy)."""
    return _md_table(["generation", "surrogate", "policy", "seen", "scored", "skipped", "kept", "uploaded",
                      "distinct", "MB", "recall", "fleet distinct frames"],
                     [[r["generation"], r["surrogate"], r["policy"], f"{r['seen_per_day']:,.0f}",
                       f"{r['scored_per_day']:,.0f}", f"{r['skipped_per_day']:,.0f}", f"{r['kept_per_day']:,.1f}",
                       f"{r['uploaded_per_day']:.1f}", f"{r['distinct_per_day']:.1f}", f"{r['mb_per_device_day']:.2f}",
                       _pm(r["recall"], r["recall_ci95"], 3), r["fleet_distinct_frames"]] for r in summary])


def training_table(train_sum: Sequence[Mapping]) -> str:
    """Markdown: deployment metric on fleet / pool / random sets with paired differences."""
    return _md_table(["generation", "surrogate", "added", "fleet", "pool", "random", "fleet − random (95 % CI)",
                      "verdict", "wins", "fleet − pool (95 % CI)", "verdict", "wins"],
                     [[r["generation"], r["surrogate"], r["added"], _pm(r.get("fleet"), r.get("fleet_std")),
                       _pm(r.get("pool"), r.get("pool_std")), _pm(r.get("random"), r.get("random_std")),
                       _pm(r["fleet_minus_random"], r["fleet_minus_random_ci95"], 2), r["fleet_vs_random"],
                       r["fleet_wins_vs_random"], _pm(r["fleet_minus_pool"], r["fleet_minus_pool_ci95"], 2),
                       r["fleet_vs_pool"], r["fleet_wins_vs_pool"]] for r in train_sum])


def section_markdown(fleet_dir: Path, *, prefix: str) -> list[str]:
    """The fleet section of another report (`al report`): tables of a finished `al fleet` directory whose
    files are reached at `prefix` (e.g. "fleet/") from that report."""
    import json

    from hwbench.io import read_jsonl

    summary = json.loads((fleet_dir / "summary.json").read_text(encoding="utf-8"))
    training = list(read_jsonl(fleet_dir / "training.jsonl")) if (fleet_dir / "training.jsonl").is_file() else []
    out = ["## Fleet simulation (`al fleet`)", "",
           "Each device generation scores camera frames with its surrogate only when the engine is free (latency "
           "from hwbench, labelled), keeps frames under an upload budget; recall of the offline top-k per policy, "
           f"and a deployment model trained on what the fleet sent. Full report: [{prefix}report.md]({prefix}report.md).", ""]
    if (fleet_dir / "fleet_tradeoff.png").is_file():
        out += [f"![fleet trade-off]({prefix}fleet_tradeoff.png)", ""]
    out += [device_table(summary), ""]
    if training:
        out += [training_table(training_summary(training)), ""]
    return out


def notes(cfg: FleetConfig, world: Any) -> list[str]:
    w = world.info
    laps = cfg.hours_per_day * 3600 * cfg.world.world_fps / max(1, w["frames"])
    return [
        f"The world is small: a device-day covers {laps:.1f}x the world's {w['frames']} frames, so devices revisit "
        "scenes and the whole fleet passes every frame; a real fleet sees new streets. Per-device figures "
        "(scored, kept, recall) do not depend on this; fleet-level ones (distinct frames, the training sets) do.",
        "Camera frames between two world frames repeat the world frame exactly (the camera's near-duplicates); "
        "a frame repeated in a run has one score and one embedding.",
        f"Latency is constant per (device, surrogate) (`{cfg.latency.source}`); a real engine jitters and shares "
        "the GPU with the perception stack (`share`).",
        "Scores and embeddings are those of surrogates trained briefly on the initial frames at the world's "
        "resolution; the latency is that of the camera frame. Differences within a few points of mIoU are within "
        "seed noise at this size: read the ± and the paired wins, not the means alone.",
    ]


def _f(x: Any) -> str:
    return "–" if x is None else f"{x:.1f}"


def _unique(rows: Sequence[Mapping], keys: Sequence[str]) -> list[Mapping]:
    seen, out = set(), []
    for r in rows:
        k = tuple(r[x] for x in keys)
        if k not in seen:
            seen.add(k)
            out.append(r)
    return out


def plot_tradeoff(summary: Sequence[Mapping], train_sum: Sequence[Mapping], path: Path, metric: str) -> Path:
    """Left: recall vs share of frames scored, per policy. Right: deployment metric per set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = 2 if train_sum else 1
    fig, axes = plt.subplots(1, n, figsize=(6.2 * n, 4.0), squeeze=False)
    ax = axes[0, 0]
    policies = list(dict.fromkeys(r["policy"] for r in summary))
    surrogates = list(dict.fromkeys(r["surrogate"] for r in summary))
    markers = "osD^v<>"
    for r in summary:
        c = f"C{surrogates.index(r['surrogate'])}"
        if r["recall"] is None:
            continue
        ax.errorbar(r["scored_pct"], r["recall"], yerr=r["recall_ci95"] or 0, fmt=markers[policies.index(r["policy"]) % 7],
                    color=c, capsize=2)
        ax.annotate(r["generation"], (r["scored_pct"], r["recall"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    for i, p in enumerate(policies):
        ax.plot([], [], markers[i % 7], color="grey", label=p)
    for i, s in enumerate(surrogates):
        ax.plot([], [], "s", color=f"C{i}", label=s.replace("deeplabv3plus_", ""))
    ax.set_xscale("log")
    ax.set_xlabel("frames scored (% of camera frames, log)", fontsize=9)
    ax.set_ylabel("recall of the offline top-k", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    if train_sum:
        ax = axes[0, 1]
        labels = [f"{r['generation']}\n{r['surrogate'].replace('deeplabv3plus_', '')}" for r in train_sum]
        x = np.arange(len(train_sum))
        for j, m in enumerate(("fleet", "pool", "random")):
            ys = [np.nan if r.get(m) is None else r[m] for r in train_sum]
            es = [r.get(f"{m}_std") or 0 for r in train_sum]
            ax.bar(x + (j - 1) * 0.27, ys, 0.27, yerr=es, capsize=2, label=m)
        ax.set_xticks(x, labels, fontsize=7)
        ax.set_ylabel(f"deployment {metric} (%)", fontsize=9)
        vals = [r[m] for r in train_sum for m in ("fleet", "pool", "random") if r.get(m) is not None]
        if vals:
            ax.set_ylim(bottom=max(0, min(vals) - 5))
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def _csv(records: Sequence[Mapping]) -> str:
    return records_csv(records)


def write_outputs(cfg: FleetConfig, out: Path, world: Any, latencies: Sequence[ScoringLatency], res: FleetResult,
                  summary: list[dict], training: list[dict], timing: dict[str, float]) -> dict[str, Path]:
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
    written["markdown"] = atomic_write_text(out / "report.md", render_markdown(
        cfg, world, summary, train_sum, timing, text, image="fleet_tradeoff.png"))
    return written
