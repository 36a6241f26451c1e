"""Reading what an experiment directory holds, for the report (no rendering here)."""

from __future__ import annotations

import logging
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from al.report.diagnostics import check_diagnostics
from al.report.inputs import (
    CHAIN_TYPES,
    FIX,
    INFO_TYPES,
    RECORD_TYPES,
    check_entropy,
    check_fields,
    read_object,
    read_records,
)
from al.runs.files import load_entropy_scores
from hwbench.errors import UserError
from hwbench.io import file_problem, read_jsonl

log = logging.getLogger(__name__)

DIAGNOSTICS_FILE = "selection_diagnostics.json"  # al.selection_diagnostics.FILE
ENTROPY_SUBDIR = "entropy"
FLEET_SUBDIR = "fleet"   # a finished `al fleet --out DIR/fleet` run gets its section in DIR's report


@dataclass
class ExperimentData:
    """Everything a report can show; absent parts are None / empty."""

    root: Path
    records: list[dict] = field(default_factory=list)
    chain: list[dict] = field(default_factory=list)
    deploy: dict | None = None
    entropy: dict | None = None
    entropy_scores: dict | None = None
    curves: list[dict] = field(default_factory=list)
    config_text: str = ""
    experiment: dict = field(default_factory=dict)  # experiment.json: name, kind, dataset, schedule ...
    timing: dict | None = None
    fleet_dir: Path | None = None  # DIR/fleet holding a finished `al fleet` run
    diagnostics: dict | None = None  # selection_diagnostics.json (al.selection_diagnostics)


def load_experiment(exp_dir: str | Path) -> ExperimentData:
    """Read an experiment (or entropy-analysis) directory; UserError when it holds no results."""
    root = Path(exp_dir)
    if not root.is_dir():
        why = file_problem(root)
        raise UserError(f"no such experiment directory: {root}" if why == "not found" else
                        f"{root} {why or 'is a file'}; give an experiment directory (al surrogate/entropy --out)")
    d = ExperimentData(root=root)
    if (root / "records.jsonl").is_file():
        d.records = read_records(root / "records.jsonl", RECORD_TYPES)
    if (root / "chain.jsonl").is_file():
        d.chain = read_records(root / "chain.jsonl", CHAIN_TYPES)
    for name, attr, types in (("deploy.json", "deploy", {"verdicts": list, "surrogates": list, "source": dict}),
                              ("timing.json", "timing", {"parts": list, "total_s": float}),
                              ("experiment.json", "experiment", INFO_TYPES)):
        if (root / name).is_file():
            setattr(d, attr, read_object(root / name, types))
    for p in (d.timing or {}).get("parts", []):
        if not isinstance(p, dict):
            raise UserError(f"{root / 'timing.json'}: a part is not an object; {FIX}")
        check_fields(p, {"kind": str, "seconds": float}, where=str(root / "timing.json"), required=True)
    if not all(isinstance(v, dict) for v in (d.deploy or {}).get("verdicts", [])):
        raise UserError(f"{root / 'deploy.json'}: a verdict is not an object; {FIX}")
    # An entropy analysis lives in the directory itself (`al entropy --out DIR`) or in its `entropy/`
    # subdirectory, so one report can show a surrogate experiment together with its entropy histograms.
    for entropy_dir in (root, root / ENTROPY_SUBDIR):
        if (entropy_dir / "entropy.json").is_file():
            d.entropy = check_entropy(read_object(entropy_dir / "entropy.json"), entropy_dir / "entropy.json")
            if (entropy_dir / "entropy_scores.npz").is_file():
                try:
                    d.entropy_scores = load_entropy_scores(entropy_dir / "entropy_scores.npz")
                except (OSError, ValueError, EOFError, zipfile.BadZipFile):
                    raise UserError(f"{entropy_dir / 'entropy_scores.npz'} is damaged; {FIX}") from None
            break
    if (root / DIAGNOSTICS_FILE).is_file():  # derived data: a damaged file is skipped, not fatal
        try:
            d.diagnostics = check_diagnostics(read_object(root / DIAGNOSTICS_FILE))
        except (UserError, KeyError, TypeError, ValueError) as e:
            log.warning("skipping %s (%s); `al report --diagnostics` rebuilds it", root / DIAGNOSTICS_FILE, e)
    for cfg_name in ("experiment.toml", "config.toml"):
        if (root / cfg_name).is_file():
            d.config_text = (root / cfg_name).read_text(encoding="utf-8")
            break
    for run_dir in find_runs(root):
        try:
            d.curves.extend(run_curve(run_dir))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:  # a damaged run dir must not sink the report
            log.warning("skipping AL curve of %s: %s", run_dir, e)
    if (root / FLEET_SUBDIR / "summary.json").is_file() and (root / FLEET_SUBDIR / "DONE").is_file():
        d.fleet_dir = root / FLEET_SUBDIR
    if not (d.records or d.chain or d.entropy or d.curves or d.fleet_dir):
        raise UserError(f"{root} holds no experiment results (records.jsonl, chain.jsonl, entropy.json or "
                        "run directories); run `al surrogate` or `al entropy` with --out there first")
    return d


_METRIC_KEYS = ("miou", "top1")
_LABELLED_KEYS = ("labelled", "n_labelled", "num_labelled", "labelled_count")


def find_runs(root: str | Path) -> list[Path]:
    """Run directories (holding `metrics.jsonl`) under `root`, sorted."""
    root = Path(root)
    return sorted(p.parent for p in root.rglob("metrics.jsonl"))


def run_curve(run_dir: str | Path, *, pool_size: int | None = None) -> list[dict]:
    """One run's `metrics.jsonl` as curve points {model, data, strategy, seed, cycle, labelled, fraction, metric,
    value}; `data` names the dataset and pool size, so curves of different studies are never averaged.

    Model, strategy and seed come from the run's resolved `config.toml`; the labelled count from
    the metrics record (or the labelled set in `state.json`); the fraction from the record's
    `labelled_fraction`/`fraction` or labelled / pool size.
    """
    from hwbench.tomlconf import read_toml

    run_dir = Path(run_dir)
    cfg = read_toml(run_dir / "config.toml") if (run_dir / "config.toml").is_file() else {}
    model = (cfg.get("model") or {}).get("name", run_dir.name)
    data_cfg = cfg.get("data") or {}
    data = str(data_cfg.get("name", "?")) + (f", pool {data_cfg['pool_size']}" if data_cfg.get("pool_size") else "")
    strategy = (cfg.get("al") or {}).get("strategy", "?")
    seed = cfg.get("seed", 0)
    points = []
    for i, rec in enumerate(read_jsonl(run_dir / "metrics.jsonl")):
        if isinstance(rec.get("metric"), str) and isinstance(rec.get("value"), (int, float)):
            metric, value = rec["metric"], rec["value"]  # al.loop's record: {metric, value, ...}
        else:
            metric = next((k for k in _METRIC_KEYS if isinstance(rec.get(k), (int, float))), None)
            if metric is None:
                continue
            value = rec[metric]
        labelled = next((rec[k] for k in _LABELLED_KEYS if isinstance(rec.get(k), (int, float))), None)
        fraction = rec.get("labelled_fraction", rec.get("fraction"))
        pool = rec.get("pool_size", pool_size)
        if fraction is None and labelled is not None and pool:
            fraction = labelled / pool
        if fraction is None:
            continue
        points.append({"model": model, "data": data, "strategy": strategy, "seed": int(seed),
                       "cycle": int(rec.get("cycle", i)),
                       "labelled": labelled, "fraction": float(fraction), "metric": metric,
                       "value": float(value)})
    return points
