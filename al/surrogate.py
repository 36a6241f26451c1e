"""Surrogate × deployment experiments (paper §4–5.3, Tables 3–5) and generation chains.

For every seed:

1. every surrogate runs its own active-learning cycles with `al.loop.run` (same cycle-0 set for
   all surrogates of the seed: `al.loop.initial_selection` depends on dataset, pool and seed only);
2. every deployment model trains FROM SCRATCH on each surrogate's final selection, and on a random
   selection of the same size, and is evaluated on the validation split. The random selection
   CONTAINS the shared cycle-0 set plus a seeded random draw from the rest of the pool, so it
   differs from the surrogates' selections only in what the cycles picked (fair comparison).
   A deployment model starts from the same initial weights and training seed in every column of
   a row, so the columns differ only in their data.

Output: records `{deployment, surrogate, seed, metric, value}` (`surrogate = "random"` for the
baseline), aggregated by `al.analysis` into the paper's Table 3 layout.

Chains (`--chain`): model i selects (AL cycles) for model i+1, which trains from scratch on the
inherited set (compared with random of the same size) and then, as the new surrogate, continues
the cycles for model i+2.

Experiment directory (every sub-run resumable, skipped when finished)::

    experiment.toml  experiment.json  deploy.json
    seed_<s>/al/<surrogate>/                      al.loop run directory (DONE when finished)
    seed_<s>/train/<deployment>/<surrogate>.json, random_<n>.json   (one cell each; reused)
    seed_<s>/chain/gen_<g>_<model>/               inherited.json/.pt (trained on the inherited set)
    seed_<s>/chain/gen_<g>_<model>/al/            al.loop run continuing the cycles from the inherited set
    records.jsonl  chain.jsonl  timing.json  report.md  report.html  *.csv  *.png  DONE (last)
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import logging
import os
import platform
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from al.analysis import RANDOM, resolve_preset
from al.config import ALConfig, DataConfig, TrainConfig
from hwbench.errors import UserError
from hwbench.io import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    read_jsonl,
    to_jsonable,
    write_jsonl,
)

log = logging.getLogger(__name__)

PRESET_PREFIX = "surrogate_"


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class DeploySource:
    """Surrogates = models deployable on the old fleet, decided by `hwbench.deploy`."""

    device: str                      # device profile, e.g. "tx2"
    fps: float | None = None         # frame rate the fleet must sustain ...
    budget_ms: float | None = None   # ... or an explicit latency budget per frame
    share: float = 1.0               # share of the frame time the model may use
    mode: str = "paper"              # latency kind: paper | peak | roofline
    input: str = "1024x2048"         # HxW the latency is judged at (the fleet's camera frame)
    num_classes: int = 19            # classes of the fleet's model (Cityscapes: 19), not of the AL data set
    precision: str = "fp16"          # precision of the latency estimate (paper mode: TX2's FP16 peak)
    candidates: tuple[str, ...] = () # restrict to these models (default: every zoo model of the data's task)

    def input_hw(self) -> tuple[int, int]:
        try:
            h, w = (int(x) for x in self.input.lower().split("x"))
        except ValueError:
            raise UserError(f"surrogates.from_deploy.input {self.input!r}: expected HxW, e.g. \"1024x2048\"") from None
        if h < 1 or w < 1:
            raise UserError(f"surrogates.from_deploy.input {self.input!r}: sizes must be positive")
        return h, w


@dataclass(frozen=True)
class SurrogateSpec:
    """Either an explicit list of models or a deployability rule (exactly one)."""

    models: tuple[str, ...] = ()
    from_deploy: DeploySource | None = None


@dataclass(frozen=True)
class TrainSettings:
    """Training of the surrogates inside their AL cycles, and of the deployment models."""

    surrogate: TrainConfig = field(default_factory=TrainConfig)
    deployment: TrainConfig = field(default_factory=TrainConfig)


@dataclass(frozen=True)
class ChainSpec:
    """Generation order for `--chain` (oldest first); default: first surrogate, then the deployment models."""

    models: tuple[str, ...] = ()
    cycles_per_generation: int | None = None  # selection cycles each generation adds (default: al.cycles)


@dataclass(frozen=True)
class ExperimentConfig:
    """One surrogate × deployment experiment. Tables `[data]` and `[al]` are those of `al run`."""

    data: DataConfig
    surrogates: SurrogateSpec
    deployment: tuple[str, ...]
    al: ALConfig = field(default_factory=ALConfig)
    train: TrainSettings = field(default_factory=TrainSettings)
    seeds: tuple[int, ...] = (0, 1, 2)
    device: str = "auto"
    name: str = ""
    output_stride: int | None = None  # every model's output stride (None: builder default)
    save_deployment_checkpoints: bool = False  # deployment models are evaluated, not reused: no .pt by default
    threads: int = 0  # torch intra-op CPU threads (0: torch's default); 1 is fastest on a busy shared CPU
    chain: ChainSpec = field(default_factory=ChainSpec)


def load_experiment_config(path_or_preset: str | os.PathLike, *, seeds: int | None = None) -> ExperimentConfig:
    """Read a config file or preset (`surrogate_smoke`, or `smoke`) strictly; `seeds=N` -> seeds 0..N-1."""
    from hwbench.tomlconf import from_mapping, read_toml

    path = resolve_preset(os.fspath(path_or_preset), prefix=PRESET_PREFIX)
    raw = read_toml(path)
    if isinstance(raw.get("surrogates"), list):  # `surrogates = [..]` is short for `[surrogates] models = [..]`
        raw["surrogates"] = {"models": raw["surrogates"]}
    raw.setdefault("name", path.stem)
    cfg = from_mapping(ExperimentConfig, raw, where=str(path))
    if seeds is not None:
        if seeds < 1:
            raise UserError(f"--seeds must be >= 1, got {seeds}")
        cfg = dataclasses.replace(cfg, seeds=tuple(range(seeds)))
    return validate_experiment(cfg)


def validate_experiment(cfg: ExperimentConfig) -> ExperimentConfig:
    """Checks that need neither data nor models (those are in `prepare_experiment`)."""
    s = cfg.surrogates
    if bool(s.models) == (s.from_deploy is not None):
        raise UserError("surrogates: give either models = [...] or from_deploy = {device = ..., fps = ...}, "
                        "exactly one")
    if s.from_deploy is not None:
        d = s.from_deploy
        if (d.fps is None) == (d.budget_ms is None):
            raise UserError("surrogates.from_deploy: give either fps or budget_ms, exactly one")
        if d.fps is not None and d.fps <= 0 or d.budget_ms is not None and d.budget_ms <= 0:
            raise UserError("surrogates.from_deploy: fps / budget_ms must be positive")
        if not 0 < d.share <= 1:
            raise UserError(f"surrogates.from_deploy.share must be in (0, 1], got {d.share}")
        d.input_hw()
    if not cfg.deployment:
        raise UserError("deployment: list at least one deployment model")
    for what, names in (("surrogates.models", s.models), ("deployment", cfg.deployment),
                        ("chain.models", cfg.chain.models)):
        if len(set(names)) != len(names):
            raise UserError(f"{what}: a model is listed twice")
    if not cfg.seeds or len(set(cfg.seeds)) != len(cfg.seeds) or min(cfg.seeds) < 0:
        raise UserError(f"seeds: give distinct non-negative integers, got {list(cfg.seeds)}")
    if cfg.chain.cycles_per_generation is not None and cfg.chain.cycles_per_generation < 1:
        raise UserError("chain.cycles_per_generation must be >= 1")
    return cfg


# --------------------------------------------------------------------------- deployability


@dataclass(frozen=True)
class Resolved:
    """Surrogates after the deploy rule, with the verdicts that justify them."""

    surrogates: tuple[str, ...]
    source: dict[str, Any]
    verdicts: list[dict]


def resolve_surrogates(spec: SurrogateSpec, task: str) -> Resolved:
    """Explicit list, or the models `hwbench.deploy` finds deployable (filtered to `task`)."""
    from hwbench.models import list_models, model_info

    if spec.from_deploy is None:
        for m in spec.models:
            model_info(m)  # UserError listing the known models
        return Resolved(tuple(spec.models), {}, [])
    d = spec.from_deploy
    for m in d.candidates:
        model_info(m)
    candidates = list(d.candidates) or list_models(task)
    h, w = d.input_hw()
    verdicts = deploy_verdicts(candidates, d.device, fps=d.fps, budget_ms=d.budget_ms, share=d.share,
                               mode=d.mode, input_hw=(h, w), num_classes=d.num_classes, precision=d.precision)
    chosen = tuple(v["model"] for v in verdicts if v["deployable"] and model_info(v["model"]).task == task)
    if not chosen:
        raise UserError(f"no {task} model is deployable on {d.device} under the rule {_rule(d)}; "
                        "raise share/budget_ms or lower fps, or list surrogates.models")
    src = {k: v for k, v in dataclasses.asdict(d).items() if v not in (None, (), [])}
    return Resolved(chosen, src, verdicts)


def _rule(d: DeploySource) -> str:
    b = f"fps={d.fps:g}" if d.fps is not None else f"budget_ms={d.budget_ms:g}"
    return f"{b}, share={d.share:g}, mode={d.mode}, input={d.input}"


def deploy_verdicts(models: Sequence[str], device: str, *, fps: float | None, budget_ms: float | None,
                    share: float, mode: str, input_hw: tuple[int, int], num_classes: int = 19,
                    precision: str = "fp16") -> list[dict]:
    """One verdict per model: `hwbench.deploy`'s record (latency_ms, effective_latency_ms = latency / share,
    budget_ms, memory, ...) plus `deployable` as decided by `hwbench.deploy.deployable_models`, and a reason."""
    from hwbench.deploy import deploy, deployable_models

    kw: dict[str, Any] = {"fps": fps, "budget_ms": budget_ms, "share": share, "mode": mode, "precision": precision,
                          "input_shape": (1, 3, *input_hw), "num_classes": num_classes}
    ok = set(deployable_models(device, models=list(models), **kw))
    rows = []
    for v in deploy(list(models), [device], **kw):
        r = v.record()
        r["deployable"] = r["model"] in ok
        why = [f"{r['latency_ms']:.1f} ms / share {share:g} = {r['effective_latency_ms']:.1f} ms "
               f"{'<=' if r['meets_budget'] else '>'} {r['budget_ms']:.1f} ms budget"]
        if not r["fits_memory"]:
            why.append(f"needs {r['memory_used_gb']:.2f} GB > {r['memory_budget_gb']:.2f} GB")
        r["reason"] = "; ".join(why)
        rows.append(r)
    return rows


# --------------------------------------------------------------------------- the learning backend


class Backend:
    """Datasets, training, evaluation and scoring for one experiment (wraps al.loop / al.train).

    Built from a prepared `RunConfig` so it sees exactly the pool, validation split and strategy
    an `al run` with the same `[data]`/`[al]` tables would.
    """

    def __init__(self, prepared: Any, output_stride: int | None = None) -> None:
        self.p = prepared
        self.output_stride = output_stride

    @property
    def pool_size(self) -> int:
        return self.p.pool_size

    @property
    def metric(self) -> str:
        return self.p.metric

    @property
    def device(self) -> str:
        return self.p.device

    def new_model(self, name: str, *, init_seed: int) -> Any:
        import torch

        from hwbench.models import create_model

        torch.manual_seed(init_seed)
        return create_model(name, num_classes=self.p.pool.num_classes, output_stride=self.output_stride)

    def train_model(self, name: str, indices: np.ndarray, *, seed: int, cfg: TrainConfig | None = None,
                    aux: Any = None, init_seed: int | None = None) -> Any:
        """A fresh `name` trained from scratch on pool `indices`."""
        import torch

        from al.loop import deterministic
        from al.train import train

        model = self.new_model(name, init_seed=seed if init_seed is None else init_seed)
        torch.manual_seed(seed)
        with deterministic(self.device):
            train(model, self.p.pool, [int(i) for i in indices], cfg or self.p.config.train, device=self.device,
                  seed=seed, aux=aux)
        return model.eval()

    def evaluate(self, model: Any) -> dict:
        from al.loop import deterministic
        from al.train import evaluate

        with deterministic(self.device):
            res = evaluate(model, self.p.val, self.p.val_indices, device=self.device,
                           batch_size=self.p.config.al.batch_size)
        return to_jsonable(res)

    def load_model(self, name: str, path: str | os.PathLike) -> Any:
        import torch

        model = self.new_model(name, init_seed=0)
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return model.to(self.device).eval()

    def image_scores(self, model: Any, indices: np.ndarray, *, strategy: str = "entropy",
                     batch_size: int | None = None) -> np.ndarray:
        """Per-image scores of `strategy` (e.g. entropy) on pool `indices`, in that order."""
        from al.strategies import evidence, get_strategy

        strat = get_strategy(strategy)
        ev = evidence.collect(model, self.p.pool, np.asarray(indices, dtype=np.int64), frozenset({"image_score"}),
                              device=self.device, batch_size=batch_size or self.p.config.al.batch_size,
                              show_progress=False, **_score_fn_kw(strat))
        return _evidence_scores(ev, np.asarray(indices, dtype=np.int64), self.pool_size)


def _score_fn_kw(strategy: Any) -> dict:
    fn = getattr(strategy, "score_fn", None)
    return {"score_fn": fn} if callable(fn) else {}


def _evidence_scores(ev: Any, indices: np.ndarray, pool_size: int) -> np.ndarray:
    """Image scores of `indices` from an `Evidence` (arrays over the whole pool, NaN where not scored)."""
    scores = np.asarray(ev.image_score, dtype=np.float64)
    out = scores[indices] if scores.shape[0] == pool_size else scores
    if np.isnan(out).any():
        raise RuntimeError("evidence has no score for some requested images (bug)")
    return out


def run_config(cfg: ExperimentConfig, model: str, seed: int, *, cycles: int | None = None) -> Any:
    """The `al run` config of one surrogate's AL cycles in this experiment."""
    from al.config import ModelConfig, RunConfig

    al = cfg.al if cycles is None else dataclasses.replace(cfg.al, cycles=cycles)
    return RunConfig(data=cfg.data, model=ModelConfig(name=model, output_stride=cfg.output_stride),
                     train=cfg.train.surrogate, al=al, seed=seed, device=cfg.device,
                     name=f"{cfg.name}:{model}:seed{seed}")


def backend_for(data: DataConfig | dict, train: TrainConfig | dict, device: str, *, model: str | None = None,
                al: ALConfig | None = None, output_stride: int | None = None) -> Backend:
    """A `Backend` over the datasets of a `[data]` table (validated the way `al run` validates)."""
    from al.config import ModelConfig, RunConfig
    from al.loop import prepare
    from hwbench.tomlconf import from_mapping

    if isinstance(data, dict):
        data = from_mapping(DataConfig, data, where="data")
    if isinstance(train, dict):
        train = from_mapping(TrainConfig, train, where="train")
    if model is None:
        from hwbench.models import list_models

        model = list_models("segmentation")[0]
    cfg = RunConfig(data=data, model=ModelConfig(name=model, output_stride=output_stride), train=train,
                    al=al or ALConfig(), device=device)
    return Backend(prepare(cfg), output_stride=output_stride)


def check_task(models: Sequence[str], task: str, what: str) -> None:
    from hwbench.models import model_info

    for m in models:
        info = model_info(m)
        if info.task != task:
            raise UserError(f"{what}: {m!r} is a {info.task} model but the dataset is {task}; pick {task} models")


# --------------------------------------------------------------------------- seeds and baselines


def _seed(*parts: int | str) -> int:
    """A 63-bit seed from ints and strings (strings by crc32), stable across runs and machines."""
    ints = [p if isinstance(p, int) else zlib.crc32(p.encode()) for p in parts]
    return int(np.random.SeedSequence(ints).generate_state(2, np.uint64)[0] >> np.uint64(1))


def random_selection(initial: np.ndarray, pool_size: int, n: int, *, seed: int) -> np.ndarray:
    """`n` pool indices: the shared cycle-0 set `initial` + a seeded random draw from the rest.

    Depends only on (initial, pool size, n, seed); every surrogate's selection of size n contains
    the same `initial`, so the baseline differs from them only in the cycles' picks.
    """
    initial = np.asarray(initial, dtype=np.int64)
    if n < initial.size or n > pool_size:
        raise ValueError(f"random selection of {n} cannot hold the {initial.size} initial images of a "
                         f"{pool_size}-image pool")
    rest = np.setdiff1d(np.arange(pool_size), initial)
    rng = np.random.default_rng(_seed(seed, pool_size, n, "random-baseline"))
    extra = rng.choice(rest, size=n - initial.size, replace=False)
    return np.concatenate([initial, np.sort(extra)]).astype(np.int64)


def _digest(indices: np.ndarray) -> str:
    return hashlib.sha256(np.sort(np.asarray(indices, dtype=np.int64)).tobytes()).hexdigest()[:16]


# --------------------------------------------------------------------------- experiment


@dataclass
class Prepared:
    """A validated experiment: config, resolved surrogates, backend."""

    config: ExperimentConfig
    resolved: Resolved
    backend: Backend
    n_initial: int
    n_cycle: int
    chain_models: tuple[str, ...] = ()
    chain_cycles: int = 0

    @property
    def surrogates(self) -> tuple[str, ...]:
        return self.resolved.surrogates


def prepare_experiment(cfg: ExperimentConfig, *, chain: bool = False) -> Prepared:
    """Validate everything that can fail on bad input (names, data, budget) before any directory exists."""
    from al.loop import prepare
    from hwbench.models import model_info

    probe_model = (cfg.surrogates.models or cfg.deployment)[0]
    for m in (*cfg.deployment, *cfg.surrogates.models, *cfg.chain.models):
        model_info(m)
    prepared = prepare(run_config(cfg, probe_model, cfg.seeds[0]))  # names, data, strategy, budget
    backend = Backend(prepared, output_stride=cfg.output_stride)
    task = prepared.task
    resolved = resolve_surrogates(cfg.surrogates, task)
    check_task(resolved.surrogates, task, "surrogates")
    check_task(cfg.deployment, task, "deployment")
    p = Prepared(cfg, resolved, backend, prepared.n_initial, prepared.n_cycle)
    if chain:
        models = cfg.chain.models or tuple(dict.fromkeys((resolved.surrogates[0], *cfg.deployment)))
        check_task(models, task, "chain.models")
        if len(models) < 2:
            raise UserError("chain: needs at least two models (a surrogate and its successor)")
        k = cfg.chain.cycles_per_generation or cfg.al.cycles
        total = prepared.n_initial + (len(models) - 1) * k * prepared.n_cycle
        if total > prepared.pool_size:
            raise UserError(f"chain budget of {total} images ({prepared.n_initial} initial + {len(models) - 1} "
                            f"generations x {k} cycles x {prepared.n_cycle}) exceeds the pool of "
                            f"{prepared.pool_size}; lower chain.cycles_per_generation or the fractions")
        if k < 1:
            raise UserError("chain: al.cycles (or chain.cycles_per_generation) must be >= 1")
        p.chain_models, p.chain_cycles = models, k
    return p


def config_toml(cfg: ExperimentConfig) -> str:
    from al.config import to_toml

    return to_toml(cfg)


class _Timing:
    def __init__(self) -> None:
        self.parts: list[dict] = []
        self.t0 = time.perf_counter()

    @contextlib.contextmanager
    def part(self, kind: str, name: str, seed: int, reused: bool = False) -> Iterator[None]:
        t = time.perf_counter()
        yield
        self.parts.append({"kind": kind, "name": name, "seed": seed, "seconds": round(time.perf_counter() - t, 3),
                           "reused": reused})

    def summary(self) -> dict:
        return {"total_s": round(time.perf_counter() - self.t0, 3), "reused": sum(p["reused"] for p in self.parts),
                "parts": self.parts}


class Experiment:
    """Runs (or resumes) one experiment directory. Use `surrogate_matrix` / `run_experiment`."""

    def __init__(self, prepared: Prepared, out_dir: str | os.PathLike, *, progress: Any = None) -> None:
        self.p = prepared
        self.cfg = prepared.config
        self.out = Path(out_dir)
        self.be = prepared.backend
        self.progress = progress
        self.task_id = None
        self.timing = _Timing()

    # -- directory ---------------------------------------------------------------------------------
    def open(self, *, resume: bool) -> None:
        """Create the directory, or check that an existing one belongs to this experiment."""
        toml = config_toml(_without_seeds(self.cfg))
        open_out_dir(self.out, toml, resume=resume, kind="surrogate",
                     expect={"surrogates": list(self.p.surrogates)})
        atomic_write_text(self.out / "experiment.toml", config_toml(self.cfg))
        atomic_write_json(self.out / "experiment.json", self.describe(toml))
        atomic_write_json(self.out / "deploy.json", {"source": self.p.resolved.source,
                                                     "surrogates": list(self.p.surrogates),
                                                     "verdicts": self.p.resolved.verdicts})

    def describe(self, toml: str) -> dict:
        import torch

        cfg, be = self.cfg, self.be
        n_total = self.p.n_initial + cfg.al.cycles * self.p.n_cycle
        return {
            "name": cfg.name, "kind": "surrogate", "config_sha256": _sha(toml), "dataset": cfg.data.name,
            "strategy": cfg.al.strategy, "metric": be.metric, "seeds": list(cfg.seeds),
            "surrogates": list(self.p.surrogates), "deployment": list(cfg.deployment),
            "chain": list(self.p.chain_models), "pool_size": be.pool_size,
            "val_size": len(be.p.val_indices) if be.p.val_indices is not None else len(be.p.val),
            "n_initial": self.p.n_initial, "n_cycle": self.p.n_cycle, "n_total": n_total,
            "summary": (f"{cfg.data.name}: pool of {be.pool_size} images, {cfg.al.strategy} selection, "
                        f"{self.p.n_initial} random + {cfg.al.cycles} cycles × {self.p.n_cycle} = {n_total} labelled "
                        f"({n_total / be.pool_size:.0%}); metric {be.metric} on the validation split; "
                        f"seeds {', '.join(map(str, cfg.seeds))}."),
            "meta": {"python": platform.python_version(), "torch": torch.__version__, "device": be.device,
                     "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                     "machine": platform.machine()},
        }

    def seed_dir(self, seed: int) -> Path:
        return self.out / f"seed_{seed}"

    # -- progress ----------------------------------------------------------------------------------
    def start_progress(self, total: int, what: str) -> None:
        if self.progress is not None:
            self.task_id = self.progress.add_task(what, total=total)

    def advance(self, n: int, text: str | None = None) -> None:
        if self.progress is not None and self.task_id is not None:
            self.progress.update(self.task_id, advance=n, **({"description": text} if text else {}))

    def describe_step(self, text: str) -> None:
        if self.progress is not None and self.task_id is not None:
            self.progress.update(self.task_id, description=text)

    # -- sub-runs ----------------------------------------------------------------------------------
    def surrogate_run(self, model: str, seed: int, *, cycles: int | None = None) -> Any:
        """The AL run of `model` as surrogate (al.loop; reused when its directory is DONE)."""
        from al.loop import run

        k = self.cfg.al.cycles if cycles is None else cycles
        sub = "al" if k == self.cfg.al.cycles else f"al_{k}cycles"
        rdir = self.seed_dir(seed) / sub / model
        reused = (rdir / "DONE").is_file()
        self.describe_step(f"seed {seed}: {model} selects ({k} cycles)")
        with self.timing.part("surrogate AL run", model, seed, reused):
            res = run(run_config(self.cfg, model, seed, cycles=cycles), rdir, resume=True, progress=False)
        return res

    def train_cell(self, deployment: str, column: str, seed: int, indices: np.ndarray) -> dict:
        """Train `deployment` from scratch on `indices` (column = surrogate or random); cached as JSON.

        Random cells are keyed by size (`random_<n>.json`), so a chain generation and the matrix
        share one when their sizes agree.
        """
        stem = f"{RANDOM}_{len(indices)}" if column == RANDOM else column
        path = self.seed_dir(seed) / "train" / deployment / f"{stem}.json"
        digest = _digest(indices)
        if path.is_file():
            rec = json.loads(path.read_text(encoding="utf-8"))
            if rec.get("selection_sha") == digest:
                self.timing.parts.append({"kind": "deployment training", "name": f"{deployment}<-{column}",
                                          "seed": seed, "seconds": rec.get("seconds", 0.0), "reused": True})
                return rec
            log.warning("%s: selection changed, retraining", path)
        self.describe_step(f"seed {seed}: train {deployment} on {column}'s {len(indices)} images")
        t = time.perf_counter()
        with self.timing.part("deployment training", f"{deployment}<-{column}", seed):
            # same init and training seed in every column of a row: columns differ only in their data
            model = self.be.train_model(deployment, indices, seed=_seed(seed, deployment, "train"),
                                        init_seed=_seed(seed, deployment, "init"), cfg=self.cfg.train.deployment)
            metrics = self.be.evaluate(model)
        rec = {"deployment": deployment, "surrogate": column, "seed": seed, "metric": self.be.metric,
               "value": float(metrics[self.be.metric]), "metrics": metrics, "labelled": int(len(indices)),
               "selection_sha": digest, "seconds": round(time.perf_counter() - t, 3)}
        if self.cfg.save_deployment_checkpoints:
            _save_state(model, path.with_suffix(".pt"))
        atomic_write_json(path, rec)
        return rec

    # -- the matrix --------------------------------------------------------------------------------
    def run_matrix(self) -> list[dict]:
        cfg = self.cfg
        units_al = cfg.al.cycles + 1
        per_seed = len(self.p.surrogates) * units_al + len(cfg.deployment) * (len(self.p.surrogates) + 1)
        self.start_progress(per_seed * len(cfg.seeds), "surrogate experiment")
        records = []
        for seed in cfg.seeds:
            finals: dict[str, np.ndarray] = {}
            initial = None
            for s in self.p.surrogates:
                res = self.surrogate_run(s, seed)
                self.advance(units_al)
                finals[s] = np.asarray(res.labelled, dtype=np.int64)
                if initial is None:
                    initial = np.asarray(res.selections[0], dtype=np.int64)
                elif not np.array_equal(np.sort(initial), np.sort(res.selections[0])):
                    raise RuntimeError(f"seed {seed}: surrogates started from different cycle-0 sets")
            n = {len(v) for v in finals.values()}
            if len(n) != 1:
                raise RuntimeError(f"seed {seed}: surrogates labelled different numbers of images: {sorted(n)}")
            rand = random_selection(initial, self.be.pool_size, n.pop(), seed=seed)
            for d in cfg.deployment:
                for col, idx in (*finals.items(), (RANDOM, rand)):
                    rec = self.train_cell(d, col, seed, idx)
                    records.append({k: rec[k] for k in ("deployment", "surrogate", "seed", "metric", "value")})
                    self.advance(1)
            write_jsonl(self.out / "records.jsonl", records)  # partial results readable while running
        return records

    # -- chains ------------------------------------------------------------------------------------
    def run_chains(self) -> list[dict]:
        models, k = self.p.chain_models, self.p.chain_cycles
        units = (k + 1) + (len(models) - 1) * 2 + (len(models) - 2) * k
        self.start_progress(units * len(self.cfg.seeds), "generation chain")
        records = []
        for seed in self.cfg.seeds:
            records += run_chain(_ChainOps(self, seed), models, seed)
            write_jsonl(self.out / "chain.jsonl", records)
        return records

    def finish(self, *, records: list[dict] | None, chain: list[dict] | None) -> None:
        from al.report import write_report

        if records is not None:
            write_jsonl(self.out / "records.jsonl", records)
        if chain is not None:
            write_jsonl(self.out / "chain.jsonl", chain)
        atomic_write_json(self.out / "timing.json", self.timing.summary())
        write_report(self.out)
        atomic_write_json(self.out / "DONE", {"finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                              "records": len(records or []), "chain_records": len(chain or [])})


def open_out_dir(out: Path, toml: str, *, resume: bool, kind: str, expect: dict | None = None) -> None:
    """Make `out` ready for an experiment of `kind` whose resolved config is `toml`.

    A new or empty directory is created. A directory holding the same experiment (same kind,
    config hash and `expect` entries in its `experiment.json`) is reused with `resume`, and its
    `DONE` is removed until the experiment finishes again. Anything else is a `UserError`.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        info_path = out / "experiment.json"
        if not info_path.is_file():
            raise UserError(f"--out {out} is not empty and holds no experiment; choose a new or empty directory")
        if not resume:
            state = "complete" if (out / "DONE").is_file() else "incomplete"
            raise UserError(f"--out {out} already holds an {state} experiment; pass --resume to continue or "
                            "re-report it, or choose another directory")
        info = json.loads(info_path.read_text(encoding="utf-8"))
        want = {"kind": kind, "config_sha256": _sha(toml), **(expect or {})}
        bad = [k for k, v in want.items() if info.get(k) != v]
        if bad:
            what = "an experiment of another kind" if "kind" in bad else "a different config"
            raise UserError(f"--out {out} holds {what} ({', '.join(bad)} differ); resume with the config in "
                            f"{out / 'experiment.toml'} or choose another directory")
        (out / "DONE").unlink(missing_ok=True)  # not complete until it finishes again
    out.mkdir(parents=True, exist_ok=True)


def _without_seeds(cfg: ExperimentConfig) -> ExperimentConfig:
    """The part of the config that identifies an experiment (seeds and threads may change on resume)."""
    return dataclasses.replace(cfg, seeds=(0,), threads=0)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _save_state(model: Any, path: Path) -> None:
    import torch

    buf = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buf)
    atomic_write_bytes(path, buf.getvalue())


# --------------------------------------------------------------------------- chain algorithm


class ChainOps(Protocol):
    """What `run_chain` needs; the real one trains models, tests use a stub."""

    def first_generation(self, model: str, cycles: int) -> tuple[np.ndarray, np.ndarray]:
        """AL run of the oldest model: (labelled in order, cycle-0 set)."""

    def train_inherited(self, gen: int, model: str, labelled: np.ndarray) -> tuple[float, Any]:
        """Train `model` from scratch on the inherited set: (metric value, trained model handle)."""

    def train_random(self, gen: int, model: str, n: int, initial: np.ndarray) -> float:
        """Train `model` from scratch on a random set of size n containing `initial`: metric value."""

    def continue_cycles(self, gen: int, model: str, handle: Any, labelled: np.ndarray, cycles: int) -> np.ndarray:
        """`model` (already trained on `labelled`) runs `cycles` more AL cycles: the new labelled set."""

    @property
    def cycles(self) -> int: ...

    @property
    def metric(self) -> str: ...


def run_chain(ops: ChainOps, models: Sequence[str], seed: int) -> list[dict]:
    """Generation chain for one seed: models[i] selects for models[i+1], which then selects for models[i+2].

    Returns, per generation g >= 1, a record for the inherited set (`surrogate` = models[g-1], the
    model that picked the latest cycles) and one for random of the same size (`surrogate = "random"`),
    both with `generation` and `labelled` added.
    """
    if len(models) < 2:
        raise ValueError("a chain needs at least two models")
    labelled, initial = ops.first_generation(models[0], ops.cycles)
    records = []
    for g in range(1, len(models)):
        model = models[g]
        value, handle = ops.train_inherited(g, model, labelled)
        rand = ops.train_random(g, model, len(labelled), initial)
        for column, v in ((models[g - 1], value), (RANDOM, rand)):
            records.append({"deployment": model, "surrogate": column, "seed": seed, "metric": ops.metric,
                            "value": float(v), "generation": g, "labelled": int(len(labelled))})
        if g < len(models) - 1:
            labelled = ops.continue_cycles(g, model, handle, labelled, ops.cycles)
    return records


class _ChainOps:
    """`ChainOps` on the real backend; every step persisted under seed_<s>/chain/."""

    def __init__(self, exp: Experiment, seed: int) -> None:
        self.exp, self.seed, self.be = exp, seed, exp.be
        self.cycles = exp.p.chain_cycles
        self.metric = exp.be.metric
        self.root = exp.seed_dir(seed) / "chain"

    def first_generation(self, model: str, cycles: int) -> tuple[np.ndarray, np.ndarray]:
        res = self.exp.surrogate_run(model, self.seed, cycles=cycles)
        self.exp.advance(cycles + 1)
        return np.asarray(res.labelled, dtype=np.int64), np.asarray(res.selections[0], dtype=np.int64)

    def _gdir(self, gen: int, model: str) -> Path:
        return self.root / f"gen_{gen}_{model}"

    def train_inherited(self, gen: int, model: str, labelled: np.ndarray) -> tuple[float, Any]:
        gdir = self._gdir(gen, model)
        path = gdir / "inherited.json"
        digest = _digest(labelled)
        if path.is_file():
            rec = json.loads(path.read_text(encoding="utf-8"))
            if rec.get("selection_sha") == digest:
                self.exp.timing.parts.append({"kind": "chain training", "name": model, "seed": self.seed,
                                              "seconds": rec["seconds"], "reused": True})
                self.exp.advance(1)
                return rec["value"], None
        t = time.perf_counter()
        self.exp.describe_step(f"seed {self.seed}: gen {gen} {model} trains on {len(labelled)} inherited images")
        with self.exp.timing.part("chain training", model, self.seed):
            m = self.be.train_model(model, labelled, seed=_seed(self.seed, model, "train"),
                                    init_seed=_seed(self.seed, model, "init"), cfg=self.exp.cfg.train.deployment)
            metrics = self.be.evaluate(m)
        rec = {"generation": gen, "model": model, "value": float(metrics[self.metric]), "metrics": metrics,
               "labelled": labelled.tolist(), "selection_sha": digest, "seconds": round(time.perf_counter() - t, 3)}
        atomic_write_json(path, rec)
        self.exp.advance(1)
        return rec["value"], None  # the continuation (al.loop.run) trains its own scoring model

    def train_random(self, gen: int, model: str, n: int, initial: np.ndarray) -> float:
        idx = random_selection(initial, self.be.pool_size, n, seed=self.seed)
        rec = self.exp.train_cell(model, RANDOM, self.seed, idx)  # shared with the matrix when sizes agree
        self.exp.advance(1)
        return rec["value"]

    def continue_cycles(self, gen: int, model: str, handle: Any, labelled: np.ndarray, cycles: int) -> np.ndarray:
        """`cycles` AL cycles of `al.loop.run` with `model` as the surrogate, started from `labelled`.

        The run (seed_<s>/chain/gen_<g>_<model>/al/) labels the inherited set in cycle 0, trains the
        surrogate on it and selects from there; it resumes, and starts over when the inherited set changed.
        """
        from al.loop import RunDir, run

        rdir = self._gdir(gen, model) / "al"
        start = [int(i) for i in labelled]
        rd = RunDir(rdir)
        stale = rd.state_path.is_file() and rd.read_state().get("initial_labelled") != start
        if stale:
            log.warning("%s: inherited set changed, starting its cycles over", rdir)
        reused = rd.is_done() and not stale
        self.exp.describe_step(f"seed {self.seed}: gen {gen} {model} selects ({cycles} cycles)")
        with self.exp.timing.part("chain AL run", model, self.seed, reused):
            res = run(run_config(self.exp.cfg, model, self.seed, cycles=cycles), rdir, resume=True, force=stale,
                      progress=False, initial_labelled=start)
        self.exp.advance(cycles)
        return np.asarray(res.labelled, dtype=np.int64)


# --------------------------------------------------------------------------- public entry points


def run_experiment(config: ExperimentConfig | str | os.PathLike, out_dir: str | os.PathLike, *,
                   resume: bool = False, chain: bool = False, seeds: int | None = None,
                   progress: Any = None) -> dict[str, list[dict]]:
    """Run (or resume) a surrogate experiment into `out_dir` and write its report.

    Returns {"records": matrix records, "chain": chain records (with --chain)}. Bad input raises
    `UserError` before `out_dir` is created or changed.
    """
    if not isinstance(config, ExperimentConfig):
        config = load_experiment_config(config, seeds=seeds)
    elif seeds is not None:
        config = validate_experiment(dataclasses.replace(config, seeds=tuple(range(seeds))))
    if config.threads < 0:
        raise UserError(f"threads must be >= 0 (0: torch's default), got {config.threads}")
    p = prepare_experiment(config, chain=chain)
    exp = Experiment(p, out_dir, progress=progress)
    from al.loop import torch_threads

    with torch_threads(config.threads):
        exp.open(resume=resume)
        records = exp.run_matrix() if not chain else _existing(exp.out / "records.jsonl")
        chain_records = exp.run_chains() if chain else _existing(exp.out / "chain.jsonl")
        exp.finish(records=records, chain=chain_records)
    return {"records": records or [], "chain": chain_records or []}


def _existing(path: Path) -> list[dict] | None:
    return list(read_jsonl(path)) if path.is_file() else None


def surrogate_matrix(config: ExperimentConfig | str | os.PathLike, out_dir: str | os.PathLike, *,
                     resume: bool = False, seeds: int | None = None, progress: Any = None) -> list[dict]:
    """Surrogate × deployment records `{deployment, surrogate, seed, metric, value}` (see module doc)."""
    return run_experiment(config, out_dir, resume=resume, seeds=seeds, progress=progress)["records"]
