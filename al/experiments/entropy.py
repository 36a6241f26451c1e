"""The entropy study (`al entropy`, paper Fig. 4): models trained on one random subset score the rest.

Every model trains on the same random `train_fraction` of the pool; each then scores every other
pool image by its mean pixel entropy. The report shows the histograms (top fraction highlighted),
the mean entropy per model and the ratios between them.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from al.config import DataConfig, TrainConfig, resolve_preset
from al.experiments.backend import backend_for, check_task
from al.precision import resolve_train
from al.runs.experiment_dir import experiment_dir
from al.runs.files import (
    npz_bytes,
    read_cached_json,
    save_state_dict,
    sha256_file,
    sha256_text,
    write_sealed_json,
)
from al.runtime import torch_threads
from al.seeds import selection_digest
from al.stats import entropy_ratios, entropy_summary
from al.weights import resolve_models
from hwbench.errors import UserError
from hwbench.io import atomic_write_bytes, atomic_write_json, atomic_write_text
from hwbench.provenance import provenance

log = logging.getLogger(__name__)


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
    weights: str | dict[str, str] = "none"  # starting weights, for all models or per model (al.weights)
    weights_sha256: dict[str, str] = dataclasses.field(default_factory=dict)  # pins; filled when resolved

    def weights_for(self, model: str) -> str:
        return self.weights if isinstance(self.weights, str) else self.weights.get(model, "none")

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
    cfg = dataclasses.replace(cfg, train=resolve_train(cfg.train))  # "auto" -> this CPU's choice, in the identity
    return cfg, path.read_text(encoding="utf-8")


def entropy_analysis(cfg: EntropyConfig, out_dir: str | Path, *, resume: bool = False,
                     progress: Any = None) -> dict:
    """See `_entropy_analysis`; runs with `cfg.threads` torch threads."""
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
    import torch

    from al.config import to_toml
    from al.report.write import write_report

    out = Path(out_dir)
    if out.exists() and not out.is_dir():  # before the models are resolved (pre-training takes minutes)
        raise UserError(f"--out {out} exists and is not a directory")
    be = backend_for(cfg.data, cfg.train, cfg.device, model=cfg.models[0], output_stride=cfg.output_stride)
    check_task(cfg.models, be.p.task, "models")
    cfg, be.weights = resolve_models(cfg, cfg.models)  # the resolved config names checkpoints by SHA-256
    pool_n = be.pool_size
    n_train = int(round(cfg.train_fraction * pool_n))
    if n_train < 1 or n_train >= pool_n:
        raise UserError(f"train_fraction {cfg.train_fraction} of a {pool_n}-image pool leaves no training or "
                        "no held-out images; change train_fraction or data.pool_size")
    toml = to_toml(cfg)
    ident = to_toml(dataclasses.replace(cfg, threads=0))  # threads may change on resume
    with experiment_dir(out, ident, resume=resume, kind="entropy"):
        t_start = time.perf_counter()
        rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, pool_n, 0xE7]))
        train_idx = np.sort(rng.choice(pool_n, size=n_train, replace=False))
        held = np.setdiff1d(np.arange(pool_n), train_idx)
        atomic_write_json(out / "experiment.json", {
            "name": cfg.name, "kind": "entropy", "config_sha256": sha256_text(ident), "dataset": cfg.data.name,
            "models": list(cfg.models), "seeds": [cfg.seed],
            "summary": (f"{cfg.data.name}: {len(cfg.models)} models trained on the same random {n_train} of "
                        f"{pool_n} pool images (seed {cfg.seed}), scored on the other {held.size}."),
            "provenance": provenance(),
            "meta": {"python": platform.python_version(), "torch": torch.__version__, "device": be.device,
                     "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads()}})
        atomic_write_text(out / "experiment.toml", toml)
        scores: dict[str, np.ndarray] = {}
        parts: list[dict] = []
        task = progress.add_task("entropy analysis", total=2 * len(cfg.models)) if progress is not None else None
        digest = selection_digest(train_idx)
        for name in cfg.models:
            mdir = out / "models" / name
            ckpt, res_path = mdir / "model.pt", mdir / "result.json"
            t0 = time.perf_counter()
            res = read_cached_json(res_path)
            cached = res is not None and ckpt.is_file() and res.get("train_sha") == digest \
                and res.get("model_sha256") == sha256_file(ckpt)  # an edited or damaged model.pt: trained again
            if progress is not None:
                progress.update(task, description=f"entropy: train {name} on {n_train} images")
            if cached:
                try:
                    model = be.load_model(name, ckpt)
                    log.info("entropy: reusing trained %s from %s", name, ckpt)
                except UserError as e:
                    log.warning("%s; training again", e)
                    cached = False
            if not cached:
                model = be.train_model(name, train_idx, seed=cfg.seed, cfg=cfg.train)
                sha = sha256_file(save_state_dict(model, ckpt))
                write_sealed_json(res_path, {"model": name, "train_size": int(n_train), "train_sha": digest,
                                             "model_sha256": sha, "seconds": round(time.perf_counter() - t0, 3)})
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
                           npz_bytes({"held_out": held, "train": train_idx,
                                       **{f"score__{k}": v for k, v in scores.items()}}))
        summary = entropy_summary(scores, top_fraction=cfg.top_fraction)
        result = {"pool_size": pool_n, "train_size": int(n_train), "held_out_size": int(held.size),
                  "train_fraction": cfg.train_fraction, "top_fraction": cfg.top_fraction, "seed": cfg.seed,
                  "models": list(cfg.models), "score": "mean pixel entropy per image (nats)", "summary": summary,
                  "ratios": entropy_ratios({s["model"]: s["mean"] for s in summary})}
        atomic_write_json(out / "entropy.json", result)
        atomic_write_json(out / "timing.json", {"total_s": round(time.perf_counter() - t_start, 3),
                                                "reused": sum(p["reused"] for p in parts), "parts": parts})
        write_report(out)
        atomic_write_json(out / "DONE", {"finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
        return result
