"""One experiment being run: its validated plan, directory, timing and progress (`Experiment`).

`prepare_experiment` checks everything that can fail on bad input (names, data, budget, the
deployability rule) before any directory exists; `Experiment` then owns the directory and runs
the sub-runs the studies (`matrix`, `chains`) ask for, each resumable and skipped when finished.

Experiment directory::

    experiment.toml  experiment.json  deploy.json
    seed_<s>/al/<surrogate>/                      al.loop run directory (DONE when finished)
    seed_<s>/train/<deployment>/<surrogate>.json, random_<n>.json   (one cell each; reused)
    seed_<s>/chain/gen_<g>_<model>/               inherited.json (trained on the inherited set)
    seed_<s>/chain/gen_<g>_<model>/al/            al.loop run continuing the cycles from the inherited set
    records.jsonl  chain.jsonl  timing.json  report.md  report.html  *.csv  *.png  DONE (last)
"""

from __future__ import annotations

import contextlib
import os
import platform
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from al.experiments.backend import Backend, check_task
from al.experiments.config import ExperimentConfig, config_toml, run_config, without_seeds
from al.experiments.deployable import Resolved, resolve_surrogates
from al.runs.experiment_dir import experiment_dir
from al.runs.files import sha256_text
from al.weights import resolve_models
from hwbench.errors import UserError
from hwbench.io import atomic_write_json, atomic_write_text, write_jsonl
from hwbench.provenance import provenance


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
    budgets: tuple[int, ...] = ()     # budget sweep: sorted labelled-set sizes, the final one last (empty: none)

    @property
    def surrogates(self) -> tuple[str, ...]:
        return self.resolved.surrogates


def prepare_experiment(cfg: ExperimentConfig, *, chain: bool = False) -> Prepared:
    """Validate everything that can fail on bad input (names, data, budget) before any directory exists."""
    from al.prepare import prepare
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
    chain_models = (cfg.chain.models or tuple(dict.fromkeys((resolved.surrogates[0], *cfg.deployment)))
                    if chain else ())
    # only the models this invocation trains: `weights = "pretrain"` must not pre-train chain models
    # for a matrix run (a stray per-model entry is still an error, whether or not --chain is given)
    used = (*resolved.surrogates, *cfg.deployment, *chain_models)
    cfg, backend.weights = resolve_models(cfg, used, known=(*used, *cfg.chain.models))
    check_model_options(cfg, prepared.pool.num_classes)
    backend.model_options = {m: dict(o) for m, o in cfg.model_options.items()}
    p = Prepared(cfg, resolved, backend, prepared.n_initial, prepared.n_cycle,
                 budgets=sweep_budgets(cfg, prepared.n_initial, prepared.n_cycle))
    if chain:
        models = chain_models
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


def check_model_options(cfg: ExperimentConfig, num_classes: int) -> None:
    """Every `model_options` entry names a model of the experiment and builds (on the meta device)."""
    import torch

    from hwbench.models import create_model

    used = {*cfg.deployment, *cfg.surrogates.models, *cfg.chain.models}
    for m, opts in cfg.model_options.items():
        if cfg.surrogates.models and m not in used:
            raise UserError(f"model_options.{m}: not a model of this experiment; it has {', '.join(sorted(used))}")
        try:
            with torch.device("meta"):
                create_model(m, num_classes=num_classes, output_stride=cfg.output_stride, **opts)
        except (TypeError, ValueError) as e:
            raise UserError(f"model_options.{m}: {e}") from None


def sweep_budgets(cfg: ExperimentConfig, n_initial: int, n_cycle: int) -> tuple[int, ...]:
    """The sweep's budgets, checked against the schedule (each must end a cycle 1..C); the final one added."""
    if not cfg.budgets:
        return ()
    allowed = [n_initial + k * n_cycle for k in range(1, cfg.al.cycles + 1)]
    bad = [b for b in cfg.budgets if b not in allowed]
    if bad:
        raise UserError(f"budgets: {bad[0]} labelled images is not the end of a selection cycle; this schedule "
                        f"has {', '.join(map(str, allowed))}")
    return tuple(sorted({*cfg.budgets, allowed[-1]}))


class Timing:
    """Seconds per sub-run of this invocation (timing.json)."""

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
    """Runs (or resumes) one experiment directory. Use `al.experiments.surrogate.run_experiment`."""

    def __init__(self, prepared: Prepared, out_dir: str | os.PathLike, *, progress: Any = None) -> None:
        self.p = prepared
        self.cfg = prepared.config
        self.out = Path(out_dir)
        self.be = prepared.backend
        self.progress = progress
        self.task_id = None
        self.timing = Timing()

    def open(self, *, resume: bool) -> None:
        """`opened` without a block: the lock is held until `close()` (or the process ends)."""
        self._stack = contextlib.ExitStack()
        self._stack.enter_context(self.opened(resume=resume))

    def close(self) -> None:
        stack = getattr(self, "_stack", None)
        if stack is not None:
            stack.close()
            self._stack = None

    @contextlib.contextmanager
    def opened(self, *, resume: bool) -> Iterator[None]:
        """Create the directory, or check that an existing one belongs to this experiment; hold its lock."""
        toml = config_toml(without_seeds(self.cfg))
        with experiment_dir(self.out, toml, resume=resume, kind="surrogate",
                            expect={"surrogates": list(self.p.surrogates)}):
            atomic_write_json(self.out / "experiment.json", self.describe(toml))  # identity first
            atomic_write_text(self.out / "experiment.toml", config_toml(self.cfg))
            atomic_write_json(self.out / "deploy.json", {"source": self.p.resolved.source,
                                                         "surrogates": list(self.p.surrogates),
                                                         "verdicts": self.p.resolved.verdicts})
            yield

    def identity_sha256(self) -> str:
        """SHA-256 of the config that identifies this experiment (its seeds aside): `experiment.json`'s."""
        return sha256_text(config_toml(without_seeds(self.cfg)))

    def describe(self, toml: str) -> dict:
        import torch

        cfg, be = self.cfg, self.be
        n_total = self.p.n_initial + cfg.al.cycles * self.p.n_cycle
        return {
            "name": cfg.name, "kind": "surrogate", "config_sha256": sha256_text(toml), "dataset": cfg.data.name,
            "strategy": cfg.al.strategy, "metric": be.metric, "seeds": list(cfg.seeds),
            "surrogates": list(self.p.surrogates), "deployment": list(cfg.deployment),
            "chain": list(self.p.chain_models), "pool_size": be.pool_size,
            "val_size": len(be.p.val_indices) if be.p.val_indices is not None else len(be.p.val),
            "n_initial": self.p.n_initial, "n_cycle": self.p.n_cycle, "n_total": n_total,
            "summary": (f"{cfg.data.name}: pool of {be.pool_size} images, {cfg.al.strategy} selection, "
                        f"{self.p.n_initial} random + {cfg.al.cycles} cycles × {self.p.n_cycle} = {n_total} labelled "
                        f"({n_total / be.pool_size:.0%}); metric {be.metric} on the validation split; "
                        f"seeds {', '.join(map(str, cfg.seeds))}.{_precision_text(cfg)}"),
            "provenance": provenance(),
            "meta": {"python": platform.python_version(), "torch": torch.__version__, "device": be.device,
                     "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                     "machine": platform.machine()},
        }

    def seed_dir(self, seed: int) -> Path:
        return self.out / f"seed_{seed}"

    def start_progress(self, total: int, what: str) -> None:
        if self.progress is not None:
            self.task_id = self.progress.add_task(what, total=total)

    def advance(self, n: int, text: str | None = None) -> None:
        if self.progress is not None and self.task_id is not None:
            self.progress.update(self.task_id, advance=n, **({"description": text} if text else {}))

    def describe_step(self, text: str) -> None:
        if self.progress is not None and self.task_id is not None:
            self.progress.update(self.task_id, description=text)

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

    def sweep_records(self) -> list[dict]:
        """`{deployment, surrogate, seed, metric, value, budget}` of every finished train cell of the sweep, in the
        serial order (seed, deployment, budget, surrogates then random); cell names as `matrix.cell_stem`."""
        import json

        final = self.p.budgets[-1]
        out = []
        for seed in self.cfg.seeds:
            for d in self.cfg.deployment:
                for n in self.p.budgets:
                    for col in (*self.p.surrogates, "random"):
                        stem = f"random_nested_{n}" if col == "random" else col if n == final else f"{col}_{n}"
                        path = self.seed_dir(seed) / "train" / d / stem / "record.json"
                        if path.is_file():
                            rec = json.loads(path.read_text(encoding="utf-8"))
                            out.append({**{k: rec[k] for k in ("deployment", "surrogate", "seed", "metric", "value")},
                                        "budget": int(rec["labelled"])})
        return out

    def finish(self, *, records: list[dict] | None, chain: list[dict] | None) -> None:
        from al.report.write import write_report

        if records is not None:
            write_jsonl(self.out / "records.jsonl", records)
        if self.p.budgets:
            write_jsonl(self.out / "sweep.jsonl", self.sweep_records())
        if chain is not None:
            write_jsonl(self.out / "chain.jsonl", chain)
        atomic_write_json(self.out / "timing.json", self.timing.summary())
        write_report(self.out)
        atomic_write_json(self.out / "DONE", {"finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                              "records": len(records or []), "chain_records": len(chain or [])})


def _precision_text(cfg: Any) -> str:
    """" Training steps of the deployment models in bf16 autocast (CPU); all else fp32." where `bf16` is on."""
    roles = [f"{r} models" for r in ("surrogate", "deployment") if getattr(cfg.train, r).bf16 is True]
    if not roles:
        return ""
    return f" Training steps of the {' and '.join(roles)} in bf16 autocast (CPU; `[train] bf16`); all else fp32."
