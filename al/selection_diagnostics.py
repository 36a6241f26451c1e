"""Why picks win or lose: per selection, its class balance, its redundancy and its agreement with
the deployment model's own picks, each beside what a random selection of the same size gives.

Computed from what a surrogate experiment already saved (`seed_*/al/<surrogate>/selections.jsonl`,
each AL run's `config.toml` and checkpoints) and written to `selection_diagnostics.json`,
which the report shows beside the matrix. Per seed, surrogate and cycle >= 1 (cycle 0 is the
shared random set):

- class balance: the picks' class histogram against the pool's (image labels; pixel counts for
  segmentation): total-variation distance (0 = same shares, 1 = disjoint) and the smallest
  class's share relative to its pool share (`min_class_ratio`: 1 = as in the pool, 0 = a class
  missing), each beside its mean over 200 uniformly random subsets of the same size;
- redundancy: mean pairwise cosine similarity of the picks' embeddings (the surrogate's own
  pooled embedding, from the checkpoint that made the picks: cycle k's picks come from the model
  trained in cycle k - 1) against its exact expectation for a uniformly random subset of the images
  that were unlabelled at that cycle. A run that kept only its last checkpoint
  (`keep_checkpoints = "last"`, the default) has the final model's embedding stand in, with a note;
- overlap: the share of the surrogate's picks that the deployment model picked at the same cycle
  when it selected for itself (needs the deployment model among the surrogates), against the
  random expectation k / (unlabelled images).

Also, per seed: the final selection's smallest class count for each surrogate and for the random
column's selection of the same size.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hwbench.io import atomic_write_json, read_jsonl

log = logging.getLogger(__name__)

FILE = "selection_diagnostics.json"
VERSION = 2  # 2: redundancy from the checkpoint that made the picks (1: the final one)
RANDOM_DRAWS = 200  # random subsets per selection for the class-balance reference


def class_counts(labels: np.ndarray, idx: Sequence[int] | np.ndarray) -> np.ndarray:
    """Summed class counts of images `idx`: labels (N, C) per-image counts -> (C,)."""
    return labels[np.asarray(idx, dtype=np.int64)].sum(axis=0)


def total_variation(counts: np.ndarray, reference: np.ndarray) -> float:
    """Total-variation distance between two count vectors' shares: 0.5 Σ |p − q| in [0, 1]."""
    p, q = counts / counts.sum(), reference / reference.sum()
    return float(0.5 * np.abs(p - q).sum())


def min_class_ratio(counts: np.ndarray, reference: np.ndarray) -> float:
    """min over the reference's classes of (share in counts / share in reference)."""
    present = reference > 0
    return float(np.min((counts[present] / counts.sum()) / (reference[present] / reference.sum())))


def unit_rows(emb: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero), float64."""
    x = np.asarray(emb, dtype=np.float64)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


def mean_pairwise_cosine(unit: np.ndarray, idx: Sequence[int] | np.ndarray) -> float:
    """Mean cosine similarity over the distinct pairs of rows `idx` of unit-norm embeddings.

    Equals the exact expectation of the same statistic for a uniformly random subset (any size
    >= 2) of `idx`: (‖Σ e‖² − Σ ‖e‖²) / (n (n − 1)).
    """
    e = unit[np.asarray(idx, dtype=np.int64)]
    n = e.shape[0]
    if n < 2:
        return float("nan")
    s = e.sum(axis=0)
    return float((s @ s - np.einsum("ij,ij->", e, e)) / (n * (n - 1)))


def overlap(a: Sequence[int], b: Sequence[int]) -> float:
    """|a ∩ b| / |a|."""
    a = np.asarray(a, dtype=np.int64)
    return float(np.intersect1d(a, np.asarray(b, dtype=np.int64)).size / a.size) if a.size else float("nan")


def image_class_counts(dataset, num_classes: int, ignore_index: int | None) -> np.ndarray:
    """Per-image class counts (N, C): one-hot labels for classification, pixel counts for segmentation."""
    out = np.zeros((len(dataset), num_classes), dtype=np.int64)
    for i in range(len(dataset)):
        target = np.asarray(dataset[i][1]).reshape(-1)
        if ignore_index is not None:
            target = target[target != ignore_index]
        out[i] = np.bincount(target.astype(np.int64), minlength=num_classes)[:num_classes]
    return out


def random_class_balance(labels: np.ndarray, candidates: np.ndarray, k: int, rng: np.random.Generator,
                         draws: int = RANDOM_DRAWS) -> tuple[float, float]:
    """Mean (class_tv, min_class_ratio) of `draws` uniformly random k-subsets of `candidates`."""
    pool = labels.sum(axis=0)
    tv, ratio = [], []
    for _ in range(draws):
        counts = class_counts(labels, rng.choice(candidates, size=k, replace=False))
        tv.append(total_variation(counts, pool))
        ratio.append(min_class_ratio(counts, pool))
    return float(np.mean(tv)), float(np.mean(ratio))


def selection_rows(cycles: list[dict], labels: np.ndarray,
                   unit: np.ndarray | Callable[[int], np.ndarray | None] | None,
                   own_picks: dict[str, dict[int, list[int]]], rng: np.random.Generator) -> list[dict]:
    """Diagnostics of one AL run's cycles >= 1 (records of its selections.jsonl).

    unit: unit-norm embeddings of the pool (N, D), or a function cycle -> those of that cycle's picking
    model (None: no redundancy); own_picks: deployment model -> cycle -> that model's picks when it
    selected for itself; rng: draws the random subsets whose class balance is the random reference.
    """
    pool = labels.sum(axis=0)
    n = labels.shape[0]
    labelled: list[int] = []
    rows = []
    for rec in sorted(cycles, key=lambda r: r["cycle"]):
        picks = [int(i) for i in rec["selected"]]
        if rec["cycle"] >= 1 and picks:
            unl = np.setdiff1d(np.arange(n), labelled)
            counts = class_counts(labels, picks)
            row = {"cycle": int(rec["cycle"]), "n_picks": len(picks), "class_tv": total_variation(counts, pool),
                   "min_class_ratio": min_class_ratio(counts, pool), "overlap": {},
                   "overlap_random": len(picks) / unl.size}
            row["class_tv_random"], row["min_class_ratio_random"] = random_class_balance(labels, unl, len(picks), rng)
            emb = unit(int(rec["cycle"])) if callable(unit) else unit
            if emb is not None:
                row["redundancy"] = mean_pairwise_cosine(emb, picks)
                row["redundancy_random"] = mean_pairwise_cosine(emb, unl)
            for dep, by_cycle in own_picks.items():
                if rec["cycle"] in by_cycle:
                    row["overlap"][dep] = overlap(picks, by_cycle[rec["cycle"]])
            rows.append(row)
        labelled += picks
    return rows


def _read_cycles(run_dir: Path) -> list[dict]:
    return list(read_jsonl(run_dir / "selections.jsonl"))


def checkpoint_cycles(run_dir: Path) -> list[int]:
    """The cycles whose checkpoint an AL run kept (`checkpoints/cycle_<k>.pt`), ascending."""
    found = []
    for p in (run_dir / "checkpoints").glob("cycle_*.pt"):
        tail = p.stem.split("_", 1)[1]
        if tail.isdigit():
            found.append(int(tail))
    return sorted(found)


def picking_checkpoints(selected_cycles: Sequence[int], kept: Sequence[int]) -> tuple[dict[int, int], list[int]]:
    """Cycle -> the checkpoint whose embedding describes its picks: cycle k - 1's (the model that picked
    them) when kept, else the last kept one. Also returns the cycles that fell back (sorted)."""
    if not kept:
        return {}, []
    use, fallback = {}, []
    for k in selected_cycles:
        if k - 1 in kept:
            use[k] = k - 1
        else:
            use[k] = kept[-1]
            fallback.append(k)
    return use, sorted(fallback)


def _embeddings(run_dir: Path, model_name: str, prepared, k: int) -> np.ndarray:
    """The pool's pooled embeddings under the run's checkpoint of cycle `k`."""
    from al.experiments.backend import Backend
    from al.runs.run_dir import RunDir
    from al.strategies import evidence

    rd = RunDir(run_dir)
    cycles = rd.read_state()["cycles"]  # sealed: checked; the checkpoint must be the file it recorded
    ckpt = rd.load_checkpoint(k, cycles[k].get("ckpt_sha256") if k < len(cycles) else "not recorded")
    from al.config import load_config

    backend = Backend(prepared, output_stride=prepared.config.model.output_stride)
    backend.model_options = {model_name: dict(load_config(run_dir / "config.toml").model.options)}  # e.g. its stem
    model = backend.new_model(model_name, init_seed=0)
    model.load_state_dict(ckpt["model"])
    model = model.to(prepared.device).eval()
    ev = evidence.collect(model, prepared.pool_score, np.arange(prepared.pool_size), frozenset({"embedding"}),
                          device=prepared.device, batch_size=prepared.config.al.batch_size, show_progress=False,
                          score_size=prepared.config.al.score_size)
    return np.asarray(ev.embedding, dtype=np.float64)


def _unit_lookup(run_dir: Path, model_name: str, prepared: Any,
                 use: dict[int, int]) -> Callable[[int], np.ndarray | None]:
    """cycle -> unit-norm pool embeddings of checkpoint `use[cycle]` (each checkpoint computed once)."""
    cache: dict[int, np.ndarray] = {}

    def unit_of(cycle: int) -> np.ndarray | None:
        k = use.get(cycle)
        if k is None:
            return None
        if k not in cache:
            cache[k] = unit_rows(_embeddings(run_dir, model_name, prepared, k))
        return cache[k]

    return unit_of


def compute(exp_dir: str | Path, *, progress: Any = None) -> dict:
    """Diagnostics of every seed's AL runs in a finished surrogate experiment directory
    (`progress`: a Rich progress, advanced once per seed)."""
    from al import seeds
    from al.config import load_config
    from al.prepare import prepare
    from hwbench.tomlconf import read_toml

    root = Path(exp_dir)
    exp = json.loads((root / "experiment.json").read_text())
    swept = (root / "experiment.toml").is_file() and bool(read_toml(root / "experiment.toml").get("budgets"))
    # the random column's selection: nested sets in a budget sweep, else one draw per size (al.seeds)
    draw_random = getattr(seeds, "nested_random_selection", seeds.random_selection) if swept else seeds.random_selection
    surrogates = list(exp.get("surrogates") or [])
    deployment = list(exp.get("deployment") or [])
    rows, finals, notes = [], [], []
    labels = None
    task = progress.add_task("diagnostics", total=len(exp.get("seeds") or [])) if progress is not None else None
    for seed in exp.get("seeds") or []:
        if task is not None:
            progress.update(task, description=f"diagnostics: seed {seed}")
        runs = {s: root / f"seed_{seed}" / "al" / s for s in surrogates}
        runs = {s: d for s, d in runs.items() if (d / "DONE").is_file()}
        if not runs:
            continue
        cycles = {s: _read_cycles(d) for s, d in runs.items()}
        prepared = prepare(load_config(next(iter(runs.values())) / "config.toml"))
        if labels is None:
            ds = prepared.pool_score
            labels = image_class_counts(ds, int(ds.num_classes), getattr(ds, "ignore_index", None))
        own = {dep: {r["cycle"]: r["selected"] for r in cycles[dep]} for dep in deployment if dep in cycles}
        for s, d in runs.items():
            use, fell_back = picking_checkpoints([r["cycle"] for r in cycles[s] if r["cycle"] >= 1],
                                                 checkpoint_cycles(d))
            if fell_back:
                notes.append(f"seed {seed}, {s}: no checkpoint of the picking model for cycle(s) "
                             f"{', '.join(map(str, fell_back))} (keep_checkpoints = \"last\"); cycle {use[fell_back[0]]}'s "
                             "embedding stands in")
                log.warning("selection diagnostics: %s", notes[-1])
            unit_of = _unit_lookup(d, s, prepared, use)     # same pool and data for every run
            rng = np.random.default_rng([int(seed), surrogates.index(s)])
            for row in selection_rows(cycles[s], labels, unit_of, {k: v for k, v in own.items() if k != s}, rng):
                rows.append({"seed": int(seed), "surrogate": s, **row,
                             **({"embedding_cycle": use[row["cycle"]]} if row["cycle"] in use else {})})
            final = [i for r in cycles[s] for i in r["selected"]]
            finals.append({"seed": int(seed), "selection": s, "n": len(final),
                           "min_class_count": int(class_counts(labels, final).min())})
        initial = next(r["selected"] for r in next(iter(cycles.values())) if r["cycle"] == 0)
        n_total = max(f["n"] for f in finals if f["seed"] == seed)
        rand = draw_random(np.asarray(initial), labels.shape[0], n_total, seed=int(seed))
        finals.append({"seed": int(seed), "selection": "random", "n": int(rand.size),
                       "min_class_count": int(class_counts(labels, rand).min())})
        if task is not None:
            progress.update(task, advance=1)
    task = "pixels" if labels is not None and labels.sum() > labels.shape[0] else "images"
    return {"version": VERSION, "classes": None if labels is None else int(labels.shape[1]), "counted": task,
            "pool_class_counts": None if labels is None else labels.sum(axis=0).tolist(),
            "embedding": ("each surrogate's pooled embedding (embedding_tap) from the checkpoint that made the picks "
                          "(cycle k's picks: the model of cycle k - 1)" if not notes else
                          "each surrogate's pooled embedding (embedding_tap) from the checkpoint that made the picks "
                          "where the run kept it, else its last checkpoint (see notes)"),
            "notes": notes, "rows": rows, "final": finals}


def ensure(exp_dir: str | Path, *, force: bool = False, progress: Any = None) -> Path | None:
    """Write `selection_diagnostics.json` into a surrogate experiment directory unless it is there.

    Returns its path, or None when the directory holds no surrogate AL runs to diagnose.
    """
    root = Path(exp_dir)
    out = root / FILE
    if out.is_file() and not force:
        return out
    info = root / "experiment.json"
    if not info.is_file() or json.loads(info.read_text()).get("kind") != "surrogate":
        return None
    result = compute(root, progress=progress)
    if not result["rows"]:
        return None
    atomic_write_json(out, result)
    return out
