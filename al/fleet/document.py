"""The fleet report as a report model (`hwbench.report.doc`): `fleet_report` for `al fleet`'s own
report (report.md and report.html), `fleet_section` for the fleet section of `al report`."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from al.fleet.config import FleetConfig
from al.report.format import metric_label, model_label
from hwbench.provenance import provenance
from hwbench.report.doc import Bullets, Code, Figure, Report, Section, Table, Text


def _pm(mean: Any, std: Any, digits: int = 1) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    if std is None or (isinstance(std, float) and math.isnan(std)):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


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


def latency_table(summary: Sequence[Mapping], metric: str) -> Table:
    """Per (generation, surrogate): its quality, latency and the share of camera frames it scores."""
    return Table(["generation", "profile", "surrogate", f"world {metric_label(metric)}", "latency source",
                  "latency ms", "share", "effective ms", "scores 1 frame in", "scored %"],
                 [[r["generation"], r["profile"], model_label(r["surrogate"]), _f(r["surrogate_metric"]), r["latency_source"],
                   f"{r['latency_ms']:.1f}", f"{r['share']:g}", f"{r['effective_ms']:.1f}", f"{r['period']:.2f}",
                   f"{r['scored_pct']:.1f}"] for r in _unique(summary, ("generation", "surrogate"))])


def device_table(summary: Sequence[Mapping]) -> Table:
    """Per device-day means and recall per (generation, surrogate, policy)."""
    return Table(["generation", "surrogate", "policy", "seen", "scored", "skipped", "kept", "uploaded",
                  "distinct", "MB", "recall", "fleet distinct frames"],
                 [[r["generation"], model_label(r["surrogate"]), r["policy"], f"{r['seen_per_day']:,.0f}",
                   f"{r['scored_per_day']:,.0f}", f"{r['skipped_per_day']:,.0f}", f"{r['kept_per_day']:,.1f}",
                   f"{r['uploaded_per_day']:.1f}", f"{r['distinct_per_day']:.1f}", f"{r['mb_per_device_day']:.2f}",
                   _pm(r["recall"], r["recall_ci95"], 3), r["fleet_distinct_frames"]] for r in summary])


def training_table(train_sum: Sequence[Mapping]) -> Table:
    """Deployment metric on fleet / pool / random sets with paired differences."""
    return Table(["generation", "surrogate", "added", "fleet", "pool", "random", "fleet − random (95 % CI)",
                  "verdict", "wins", "fleet − pool (95 % CI)", "verdict", "wins"],
                 [[r["generation"], model_label(r["surrogate"]), r["added"], _pm(r.get("fleet"), r.get("fleet_std")),
                   _pm(r.get("pool"), r.get("pool_std")), _pm(r.get("random"), r.get("random_std")),
                   _pm(r["fleet_minus_random"], r["fleet_minus_random_ci95"], 2), r["fleet_vs_random"],
                   r["fleet_wins_vs_random"], _pm(r["fleet_minus_pool"], r["fleet_minus_pool_ci95"], 2),
                   r["fleet_vs_pool"], r["fleet_wins_vs_pool"]] for r in train_sum])


RECALL_TEXT = ("Recall: of the k frames a device uploaded in a day, the share that are among the k best-scored "
               "distinct world frames it drove past (offline pool top-k with the same surrogate and the same "
               "budget); mean ± 95 % interval of the mean over device-days (normal approximation).")


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


def fleet_report(cfg: FleetConfig, world: Any, summary: Sequence[Mapping], train_sum: Sequence[Mapping],
                 timing: Mapping[str, float], config_text: str, *, image: Path | None) -> Report:
    """`al fleet`'s own report."""
    w = world.info
    budget = cfg.upload_frames_per_day
    r = Report(f"Fleet simulation: {cfg.name}", provenance=provenance())
    r.blocks.append(Text(
        f"{cfg.devices:,} devices ({', '.join(f'{g.count:,} {g.profile}' for g in cfg.generation)}) drive "
        f"{cfg.hours_per_day:g} h a day for {cfg.days} day(s) with a {cfg.fps:g} fps camera "
        f"({cfg.frames_per_day:,} frames per device-day) through a world of {w['frames']} frames in "
        f"{w.get('drives', '?')} drives ({w['dataset']}, {w['world_fps']:g} world frames per second of driving). "
        f"Each device uploads at most {cfg.upload_mb_per_day:g} MB a day = {budget} frames of {cfg.frame_kb:g} kB. "
        f"Scoring latency: `{cfg.latency.source}` at {cfg.latency.input} (labelled per row)."))
    r.sections.append(Section("Latency: how many frames each surrogate scores").add(
        latency_table(summary, w["metric"]),
        Text(f"`world {metric_label(w['metric'])}`: the surrogate trained on the {w['initial_labelled']} initial "
             "frames, on the validation frames: its quality as a model. A frame is scored only when the engine is "
             "free (frames arrive at camera rate; the engine is busy `effective ms` per scored frame).")))
    r.sections.append(Section("What the devices did (mean per device-day)").add(
        Text(RECALL_TEXT), device_table(summary),
        Figure("fleet trade-off", path=image) if image is not None else None))
    if train_sum:
        e = cfg.evaluation
        r.sections.append(Section(f"What the collected data is worth: {model_label(e.deployment)} {metric_label(w['metric'])}").add(
            Text(f"The deployment model trains from scratch on the {w['initial_labelled']} initial frames plus "
                 f"`added` frames: `fleet` = the best-scored of the generation's uploads (policy "
                 f"`{cfg.policy[e.policy].label}`, duplicates across devices removed), `pool` = server-side pool "
                 "AL with the same surrogate (every frame the generation passed is scored), `random` = random "
                 f"frames it passed. Mean ± std over {len(e.seeds)} seed(s); Δ paired by seed with the half-width "
                 "of its 95 % t-interval; verdict `beat`/`lose` only when the interval excludes 0, else `tie`."),
            training_table(train_sum)))
    r.sections.append(Section("What this can and cannot show").add(Bullets(notes(cfg, world))))
    r.sections.append(Section("Timing").add(Bullets([f"{k.removesuffix('_s')}: {v:.1f} s" for k, v in timing.items()])))
    r.sections.append(Section("Config").add(Code(config_text, "toml")))
    return r


def fleet_section(fleet_dir: Path) -> Section:
    """The fleet section of another report (`al report`), from a finished `al fleet` directory: its
    device table, trade-off figure and training table (the full report stays in `fleet_dir`)."""
    import json

    from al.fleet.training_summary import training_summary
    from hwbench.io import read_jsonl

    summary = json.loads((fleet_dir / "summary.json").read_text(encoding="utf-8"))
    training = list(read_jsonl(fleet_dir / "training.jsonl")) if (fleet_dir / "training.jsonl").is_file() else []
    s = Section("Fleet simulation (`al fleet`)", id="fleet")
    s.add(Text("Each device generation scores camera frames with its surrogate only when the engine is free "
               "(latency from hwbench, labelled), keeps frames under an upload budget; recall of the offline "
               "top-k per policy, and a deployment model trained on what the fleet sent. Full report: "
               f"`{fleet_dir.name}/report.md` (and `report.html`) in the experiment directory."))
    if (fleet_dir / "fleet_tradeoff.png").is_file():
        s.add(Figure("fleet trade-off", path=fleet_dir / "fleet_tradeoff.png"))
    s.add(Text(RECALL_TEXT), device_table(summary))
    if training:
        s.add(training_table(training_summary(training)))
    return s
