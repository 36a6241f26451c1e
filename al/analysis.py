"""Analysis of active-learning results: surrogate tables, entropy histograms, AL curves.

Everything here is array / record maths on results that already exist (no training), so it is
testable on hand-made inputs. The one exception is `entropy_analysis`, which trains the listed
models on a shared random subset and scores the rest (paper Fig. 4); it imports torch lazily.

Tables follow the paper's Table 3 layout: deployment models as rows, surrogates as columns plus
`random`; a cell is the mean ± sample standard deviation (ddof=1) over seeds.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from al.config import DataConfig, TrainConfig
from hwbench.errors import UserError

log = logging.getLogger(__name__)

RANDOM = "random"  # the column name of the random-selection baseline


# --------------------------------------------------------------------------- labels


def model_label(name: str) -> str:
    """Display label of a zoo model (Res-20, MNV3, ...); the name itself when not in the zoo."""
    if name == RANDOM:
        return RANDOM
    try:
        from hwbench.models import model_info

        return model_info(name).label
    except Exception:  # unknown or zoo not importable: show the raw name
        return name


# --------------------------------------------------------------------------- surrogate tables


@dataclass(frozen=True)
class Cell:
    """One table cell: a metric over seeds. `std` is the sample std (ddof=1); NaN when n < 2."""

    values: tuple[float, ...]
    seeds: tuple[int, ...]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return float(np.mean(self.values)) if self.values else math.nan

    @property
    def std(self) -> float:
        return float(np.std(self.values, ddof=1)) if len(self.values) > 1 else math.nan


@dataclass(frozen=True)
class Matrix:
    """Deployment models (rows) × surrogates (columns, `random` last) for one metric."""

    metric: str
    rows: tuple[str, ...]
    columns: tuple[str, ...]
    cells: Mapping[tuple[str, str], Cell]

    def cell(self, row: str, column: str) -> Cell | None:
        return self.cells.get((row, column))

    @property
    def surrogates(self) -> tuple[str, ...]:
        return tuple(c for c in self.columns if c != RANDOM)


def aggregate(records: Iterable[Mapping[str, Any]], *, rows: Sequence[str] | None = None,
              columns: Sequence[str] | None = None, metric: str | None = None) -> Matrix:
    """Group `{deployment, surrogate, seed, metric, value}` records into a `Matrix`.

    Rows/columns keep the given order, else the order of first appearance; `random` is always
    the last column. Records of other metrics are ignored (the first metric seen is used when
    `metric` is None). A (deployment, surrogate, seed) seen twice is a bug -> ValueError.
    """
    recs = [r for r in records]
    if metric is None:
        metric = recs[0]["metric"] if recs else ""
    recs = [r for r in recs if r["metric"] == metric]
    found_rows = list(dict.fromkeys(r["deployment"] for r in recs))
    found_cols = list(dict.fromkeys(r["surrogate"] for r in recs))
    row_order = list(rows) if rows is not None else found_rows
    col_order = [c for c in (columns if columns is not None else found_cols) if c != RANDOM]
    if RANDOM in found_cols or (columns is not None and RANDOM in columns):
        col_order.append(RANDOM)
    grouped: dict[tuple[str, str], dict[int, float]] = {}
    for r in recs:
        key = (r["deployment"], r["surrogate"])
        per_seed = grouped.setdefault(key, {})
        seed = int(r["seed"])
        if seed in per_seed:
            raise ValueError(f"duplicate record for {key} seed {seed}")
        per_seed[seed] = float(r["value"])
    cells = {k: Cell(values=tuple(v[s] for s in sorted(v)), seeds=tuple(sorted(v))) for k, v in grouped.items()}
    return Matrix(metric=metric, rows=tuple(row_order), columns=tuple(col_order), cells=cells)


@dataclass(frozen=True)
class Comparison:
    """One surrogate/deployment pair against random: difference of means and per-seed wins."""

    deployment: str
    surrogate: str
    delta: float  # mean(surrogate) - mean(random), in metric units (p.p. for %)
    delta_std: float  # sample std (ddof=1) of the per-seed paired differences; NaN if < 2 pairs
    wins: int  # seeds where the surrogate's value > random's value (same seed)
    paired: int  # seeds present in both
    diagonal: bool  # surrogate == deployment (a model picking for itself)

    @property
    def beats_random(self) -> bool:
        return self.delta > 0


def compare_to_random(matrix: Matrix) -> list[Comparison]:
    """Every (deployment, surrogate) cell with a random cell in its row, in table order."""
    out = []
    for row in matrix.rows:
        base = matrix.cell(row, RANDOM)
        if base is None or base.n == 0:
            continue
        base_by_seed = dict(zip(base.seeds, base.values, strict=True))
        for col in matrix.surrogates:
            cell = matrix.cell(row, col)
            if cell is None or cell.n == 0:
                continue
            diffs = [v - base_by_seed[s] for s, v in zip(cell.seeds, cell.values, strict=True) if s in base_by_seed]
            out.append(Comparison(
                deployment=row, surrogate=col, delta=cell.mean - base.mean,
                delta_std=float(np.std(diffs, ddof=1)) if len(diffs) > 1 else math.nan,
                wins=sum(d > 0 for d in diffs), paired=len(diffs), diagonal=row == col))
    return out


@dataclass(frozen=True)
class BeatsRandom:
    wins: int  # off-diagonal pairs whose mean beats random's mean (strictly)
    pairs: int  # off-diagonal pairs with both cells present
    diagonal_wins: int  # models picking for themselves that beat random
    diagonal_pairs: int


def beats_random(matrix: Matrix) -> BeatsRandom:
    """Count surrogate/deployment pairs (diagonal excluded, paper §5.3) whose mean beats random."""
    comps = compare_to_random(matrix)
    off = [c for c in comps if not c.diagonal]
    diag = [c for c in comps if c.diagonal]
    return BeatsRandom(wins=sum(c.beats_random for c in off), pairs=len(off),
                       diagonal_wins=sum(c.beats_random for c in diag), diagonal_pairs=len(diag))


def best_per_row(matrix: Matrix, *, include_random: bool = False) -> dict[str, str]:
    """Row -> column with the highest mean (surrogates only unless `include_random`).

    Ties go to the earlier column; rows with no data are left out.
    """
    cols = matrix.columns if include_random else matrix.surrogates
    best: dict[str, str] = {}
    for row in matrix.rows:
        scored = [(c, matrix.cell(row, c)) for c in cols]
        scored = [(c, cell.mean) for c, cell in scored if cell is not None and cell.n > 0]
        if scored:
            best[row] = max(scored, key=lambda cm: cm[1])[0]  # max keeps the first of equal means
    return best


def row_scale(matrix: Matrix, row: str) -> dict[str, float]:
    """Column -> position in [0, 1] of the cell's mean between the row's worst (0) and best (1).

    All columns with data take part (random included); a row with one value or all equal -> 0.5.
    """
    means = {c: cell.mean for c in matrix.columns
             if (cell := matrix.cell(row, c)) is not None and cell.n > 0}
    if not means:
        return {}
    lo, hi = min(means.values()), max(means.values())
    if hi - lo <= 0:
        return {c: 0.5 for c in means}
    return {c: (m - lo) / (hi - lo) for c, m in means.items()}


def matrix_records(matrix: Matrix) -> list[dict]:
    """Flat table rows (one per cell) for CSV / `--json` summaries."""
    out = []
    for row in matrix.rows:
        for col in matrix.columns:
            cell = matrix.cell(row, col)
            if cell is None:
                continue
            out.append({"deployment": row, "surrogate": col, "metric": matrix.metric, "mean": cell.mean,
                        "std": cell.std, "n": cell.n, "seeds": list(cell.seeds)})
    return out


# --------------------------------------------------------------------------- entropy statistics


def entropy_summary(scores: Mapping[str, np.ndarray], *, top_fraction: float = 0.1) -> list[dict]:
    """Per model: n, mean, std (ddof=1), median, min, max and the top-`top_fraction` threshold.

    The threshold is the score of the last image in the top-k, k = ceil(top_fraction * n), so
    exactly the k highest-scoring images satisfy `score >= threshold` when scores are distinct.
    """
    out = []
    for name, s in scores.items():
        s = np.asarray(s, dtype=np.float64)
        if s.size == 0:
            continue
        k = top_k_count(s.size, top_fraction)
        out.append({"model": name, "n": int(s.size), "mean": float(s.mean()),
                    "std": float(s.std(ddof=1)) if s.size > 1 else math.nan, "median": float(np.median(s)),
                    "min": float(s.min()), "max": float(s.max()), "top_k": k,
                    "top_threshold": float(np.sort(s)[::-1][k - 1])})
    return out


def top_k_count(n: int, fraction: float) -> int:
    """How many of `n` images make the top `fraction` (at least 1)."""
    return max(1, min(n, math.ceil(fraction * n - 1e-9)))


def entropy_ratios(means: Mapping[str, float]) -> list[dict]:
    """Every ordered pair (a, b), a != b, with mean(a) / mean(b); largest ratio first."""
    out = [{"numerator": a, "denominator": b, "ratio": ma / mb}
           for a, ma in means.items() for b, mb in means.items() if a != b and mb > 0]
    return sorted(out, key=lambda r: -r["ratio"])


def histogram_counts(scores: np.ndarray, edges: np.ndarray, top_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Counts per bin of the images outside and inside the top `top_fraction` (by score, ties by index)."""
    s = np.asarray(scores, dtype=np.float64)
    top = top_mask(s, top_fraction)
    return np.histogram(s[~top], bins=edges)[0], np.histogram(s[top], bins=edges)[0]


def top_mask(scores: np.ndarray, fraction: float) -> np.ndarray:
    """Boolean mask of the k = `top_k_count` highest scores (stable: ties go to the lower index)."""
    s = np.asarray(scores, dtype=np.float64)
    top = np.zeros(s.size, dtype=bool)
    top[np.argsort(-s, kind="stable")[:top_k_count(s.size, fraction)]] = True
    return top


def plot_entropy_histograms(scores: Mapping[str, np.ndarray], path: str | Path, *, top_fraction: float = 0.1,
                            bins: int = 40, labels: Mapping[str, str] | None = None,
                            xlabel: str = "image entropy (mean pixel entropy, nats)") -> Path:
    """One PNG, one panel per model (shared x axis): histogram with the top `top_fraction` highlighted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hwbench.io import atomic_write_bytes

    names = [n for n, s in scores.items() if np.asarray(s).size]
    if not names:
        raise ValueError("no entropy scores to plot")
    labels = labels or {}
    allv = np.concatenate([np.asarray(scores[n], dtype=np.float64) for n in names])
    lo, hi = float(allv.min()), float(allv.max())
    if hi <= lo:
        hi = lo + 1e-6
    edges = np.linspace(lo, hi, bins + 1)
    fig, axes = plt.subplots(len(names), 1, sharex=True, figsize=(7, 1.9 * len(names) + 0.6), squeeze=False)
    for ax, name in zip(axes[:, 0], names, strict=True):
        s = np.asarray(scores[name], dtype=np.float64)
        rest, top = histogram_counts(s, edges, top_fraction)
        centres, width = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
        ax.bar(centres, rest, width=width, color="#9aa5b1", label="rest")
        ax.bar(centres, top, width=width, bottom=rest, color="#2ca02c", label=f"top {top_fraction:.0%}")
        ax.axvline(s.mean(), color="black", linestyle="--", linewidth=1)
        ax.set_title(f"{labels.get(name, name)}: mean {s.mean():.3g}, n={s.size}", fontsize=9, loc="left")
        ax.set_ylabel("images", fontsize=8)
        ax.tick_params(labelsize=8)
    axes[0, 0].legend(fontsize=8, loc="upper right")
    axes[-1, 0].set_xlabel(xlabel, fontsize=9)
    fig.tight_layout()
    return _save_fig(fig, path, atomic_write_bytes)


# --------------------------------------------------------------------------- AL curves


_METRIC_KEYS = ("miou", "top1")
_LABELLED_KEYS = ("labelled", "n_labelled", "num_labelled", "labelled_count")


def find_runs(root: str | Path) -> list[Path]:
    """Run directories (holding `metrics.jsonl`) under `root`, sorted."""
    root = Path(root)
    return sorted(p.parent for p in root.rglob("metrics.jsonl"))


def run_curve(run_dir: str | Path, *, pool_size: int | None = None) -> list[dict]:
    """One run's `metrics.jsonl` as curve points {model, strategy, seed, cycle, labelled, fraction, metric, value}.

    Model, strategy and seed come from the run's resolved `config.toml`; the labelled count from
    the metrics record (or the labelled set in `state.json`); the fraction from the record's
    `labelled_fraction`/`fraction` or labelled / pool size.
    """
    from hwbench.io import read_jsonl
    from hwbench.tomlconf import read_toml

    run_dir = Path(run_dir)
    cfg = read_toml(run_dir / "config.toml") if (run_dir / "config.toml").is_file() else {}
    model = (cfg.get("model") or {}).get("name", run_dir.name)
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
        points.append({"model": model, "strategy": strategy, "seed": int(seed), "cycle": int(rec.get("cycle", i)),
                       "labelled": labelled, "fraction": float(fraction), "metric": metric,
                       "value": float(value)})
    return points


def curve_table(points: Iterable[Mapping[str, Any]]) -> list[dict]:
    """Mean ± std (ddof=1) over seeds per (model, strategy, metric, cycle)."""
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for p in points:
        groups.setdefault((p["model"], p["strategy"], p["metric"], p["cycle"]), []).append(p)
    out = []
    for (model, strategy, metric, cycle), ps in groups.items():
        v = np.array([p["value"] for p in ps], dtype=np.float64)
        out.append({"model": model, "strategy": strategy, "metric": metric, "cycle": cycle,
                    "fraction": float(np.mean([p["fraction"] for p in ps])), "mean": float(v.mean()),
                    "std": float(v.std(ddof=1)) if v.size > 1 else math.nan, "n": int(v.size)})
    return sorted(out, key=lambda r: (r["model"], r["strategy"], r["metric"], r["cycle"]))


def plot_al_curves(points: Sequence[Mapping[str, Any]], path: str | Path, *,
                   labels: Mapping[str, str] | None = None) -> Path:
    """Metric vs labelled fraction, one line per strategy, one panel per model (paper Fig. 3)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hwbench.io import atomic_write_bytes

    table = curve_table(points)
    if not table:
        raise ValueError("no AL curve points to plot")
    labels = labels or {}
    models = list(dict.fromkeys(r["model"] for r in table))
    fig, axes = plt.subplots(1, len(models), figsize=(4.2 * len(models), 3.4), squeeze=False)
    markers = {"entropy": "D", "llal": "o", "learning_loss": "o", "coreset": "s", "true_loss": "^", "random": "+"}
    for ax, model in zip(axes[0], models, strict=True):
        rows = [r for r in table if r["model"] == model]
        for strategy in dict.fromkeys(r["strategy"] for r in rows):
            pts = [r for r in rows if r["strategy"] == strategy]
            x = np.array([r["fraction"] for r in pts]) * 100
            y = np.array([r["mean"] for r in pts])
            e = np.nan_to_num(np.array([r["std"] for r in pts]))
            ax.errorbar(x, y, yerr=e, marker=markers.get(strategy, "x"), capsize=2, label=strategy, linewidth=1)
        ax.set_title(labels.get(model, model_label(model)), fontsize=10)
        ax.set_xlabel("labelled (% of pool)", fontsize=9)
        ax.set_ylabel({"miou": "mIoU (%)", "top1": "Top-1 (%)"}.get(rows[0]["metric"], rows[0]["metric"]), fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return _save_fig(fig, path, atomic_write_bytes)


def _save_fig(fig: Any, path: str | Path, write: Any) -> Path:
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return write(path, buf.getvalue())


# --------------------------------------------------------------------------- entropy experiment (paper Fig. 4)


@dataclass(frozen=True)
class EntropyConfig:
    """`al entropy` config: train each model on the same random subset, score the rest (paper Fig. 4).

    `[data]` and `[train]` are the tables of an `al run` config (al.config.DataConfig / TrainConfig).
    """

    models: tuple[str, ...]
    data: DataConfig
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    train_fraction: float = 0.10  # paper: 275 of ~2,975 Cityscapes train images
    top_fraction: float = 0.10  # highlighted in the histograms (paper: top 10 %)
    seed: int = 0
    device: str = "auto"
    bins: int = 40
    batch_size: int = 16  # scoring batch size
    output_stride: int | None = None
    name: str = ""
    threads: int = 0  # torch intra-op CPU threads (0: torch's default)

    def __post_init__(self) -> None:
        if self.threads < 0:
            raise ValueError(f"threads must be >= 0, got {self.threads}")
        if not self.models:
            raise ValueError("models: list at least one model")
        if len(set(self.models)) != len(self.models):
            raise ValueError("models: a model is listed twice")
        for key in ("train_fraction", "top_fraction"):
            v = getattr(self, key)
            if not 0 < v < 1:
                raise ValueError(f"{key} must be in (0, 1), got {v}")
        if self.bins < 2:
            raise ValueError(f"bins must be >= 2, got {self.bins}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")


def load_entropy_config(path_or_preset: str | Path) -> tuple[EntropyConfig, str]:
    """Read an entropy config (file or preset name, e.g. `entropy_demo`); returns (config, TOML text)."""
    from hwbench.tomlconf import from_mapping, read_toml

    path = resolve_preset(path_or_preset, prefix="entropy_")
    raw = read_toml(path)
    raw.setdefault("name", path.stem)
    cfg = from_mapping(EntropyConfig, raw, where=str(path))
    return cfg, path.read_text(encoding="utf-8")


def resolve_preset(name: str | Path, *, prefix: str) -> Path:
    """A path to an existing file, or a preset in al/presets/ (`demo` -> `<prefix>demo.toml`)."""
    p = Path(name)
    if p.is_file():
        return p
    presets = Path(__file__).parent / "presets"
    if p.suffix == "" and p.name == str(name):  # a bare preset name, not a path
        cand = presets / (f"{p.name}.toml" if p.name.startswith(prefix) else f"{prefix}{p.name}.toml")
        if cand.is_file():
            return cand
    known = sorted(q.stem for q in presets.glob(f"{prefix}*.toml")) if presets.is_dir() else []
    raise UserError(f"no such config file or preset {str(name)!r}; presets: {', '.join(known) or 'none'}")


def entropy_analysis(cfg: EntropyConfig, out_dir: str | Path, *, resume: bool = False,
                     progress: Any = None) -> dict:
    """See `_entropy_analysis`; runs with `cfg.threads` torch threads."""
    from al.loop import torch_threads

    with torch_threads(cfg.threads):
        return _entropy_analysis(cfg, out_dir, resume=resume, progress=progress)


def _entropy_analysis(cfg: EntropyConfig, out_dir: str | Path, *, resume: bool = False,
                      progress: Any = None) -> dict:
    """Paper Fig. 4: one random subset -> each model trained on it -> entropy of every other pool image.

    Writes under `out_dir`: `experiment.toml` / `experiment.json`, `models/<name>/model.pt` +
    `result.json` (trained models, reused with `resume`), `entropy_scores.npz` (per-model image
    scores on the held-out images, in pool order), `entropy.json` (summary, ratios, sizes),
    the report (`report.md`, `report.html`, `entropy_hist.png`) and `DONE` last. Bad input raises
    `UserError` before the directory is created. Returns the `entropy.json` content.
    """
    import platform

    import torch

    from al.config import to_toml
    from al.surrogate import backend_for, check_task, open_out_dir
    from hwbench.io import atomic_write_bytes, atomic_write_json, atomic_write_text

    out = Path(out_dir)
    be = backend_for(cfg.data, cfg.train, cfg.device, model=cfg.models[0], output_stride=cfg.output_stride)
    check_task(cfg.models, be.p.task, "models")
    pool_n = be.pool_size
    n_train = int(round(cfg.train_fraction * pool_n))
    if n_train < 1 or n_train >= pool_n:
        raise UserError(f"train_fraction {cfg.train_fraction} of a {pool_n}-image pool leaves no training or "
                        "no held-out images; change train_fraction or data.pool_size")
    toml = to_toml(cfg)
    ident = to_toml(dataclasses.replace(cfg, threads=0))  # threads may change on resume
    open_out_dir(out, ident, resume=resume, kind="entropy")
    atomic_write_text(out / "experiment.toml", toml)
    t_start = time.perf_counter()
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, pool_n, 0xE7]))
    train_idx = np.sort(rng.choice(pool_n, size=n_train, replace=False))
    held = np.setdiff1d(np.arange(pool_n), train_idx)
    atomic_write_json(out / "experiment.json", {
        "name": cfg.name, "kind": "entropy", "config_sha256": _sha(ident), "dataset": cfg.data.name,
        "models": list(cfg.models), "seeds": [cfg.seed],
        "summary": (f"{cfg.data.name}: {len(cfg.models)} models trained on the same random {n_train} of "
                    f"{pool_n} pool images (seed {cfg.seed}), scored on the other {held.size}."),
        "meta": {"python": platform.python_version(), "torch": torch.__version__, "device": be.device,
                 "cpu_count": __import__("os").cpu_count(), "torch_threads": torch.get_num_threads()}})
    scores: dict[str, np.ndarray] = {}
    parts: list[dict] = []
    task = progress.add_task("entropy analysis", total=2 * len(cfg.models)) if progress is not None else None
    digest = hashlib_digest(train_idx)
    for name in cfg.models:
        mdir = out / "models" / name
        ckpt, res_path = mdir / "model.pt", mdir / "result.json"
        t0 = time.perf_counter()
        cached = res_path.is_file() and ckpt.is_file() and \
            json.loads(res_path.read_text(encoding="utf-8")).get("train_sha") == digest
        if progress is not None:
            progress.update(task, description=f"entropy: train {name} on {n_train} images")
        if cached:
            model = be.load_model(name, ckpt)
            log.info("entropy: reusing trained %s from %s", name, ckpt)
        else:
            model = be.train_model(name, train_idx, seed=cfg.seed, cfg=cfg.train)
            buf = io.BytesIO()
            torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buf)
            atomic_write_bytes(ckpt, buf.getvalue())
            atomic_write_json(res_path, {"model": name, "train_size": int(n_train), "train_sha": digest,
                                         "seconds": round(time.perf_counter() - t0, 3)})
        parts.append({"kind": "entropy training", "name": name, "seed": cfg.seed,
                      "seconds": round(time.perf_counter() - t0, 3), "reused": bool(cached)})
        if progress is not None:
            progress.update(task, advance=1, description=f"entropy: {name} scores {held.size} images")
        t1 = time.perf_counter()
        scores[name] = be.image_scores(model, held, strategy="entropy", batch_size=cfg.batch_size)
        parts.append({"kind": "entropy scoring", "name": name, "seed": cfg.seed,
                      "seconds": round(time.perf_counter() - t1, 3), "reused": False})
        if progress is not None:
            progress.advance(task)
    atomic_write_bytes(out / "entropy_scores.npz",
                       _npz_bytes({"held_out": held, "train": train_idx,
                                   **{f"score__{k}": v for k, v in scores.items()}}))
    summary = entropy_summary(scores, top_fraction=cfg.top_fraction)
    result = {"pool_size": pool_n, "train_size": int(n_train), "held_out_size": int(held.size),
              "train_fraction": cfg.train_fraction, "top_fraction": cfg.top_fraction, "seed": cfg.seed,
              "models": list(cfg.models), "score": "mean pixel entropy per image (nats)", "summary": summary,
              "ratios": entropy_ratios({s["model"]: s["mean"] for s in summary})}
    atomic_write_json(out / "entropy.json", result)
    atomic_write_json(out / "timing.json", {"total_s": round(time.perf_counter() - t_start, 3),
                                            "reused": sum(p["reused"] for p in parts), "parts": parts})
    from al.report import write_report

    write_report(out)
    atomic_write_json(out / "DONE", {"finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    return result


def hashlib_digest(indices: np.ndarray) -> str:
    """Short digest of a set of indices (order-free): detects a changed training subset on resume."""
    import hashlib

    return hashlib.sha256(np.sort(np.asarray(indices, dtype=np.int64)).tobytes()).hexdigest()[:16]


def _sha(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


def load_entropy_scores(path: str | Path) -> dict[str, np.ndarray]:
    """Per-model score arrays from an `entropy_scores.npz`."""
    with np.load(path) as z:
        return {k.removeprefix("score__"): z[k] for k in z.files if k.startswith("score__")}


def _npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    import io

    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    return buf.getvalue()
