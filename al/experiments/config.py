"""Config of a surrogate × deployment experiment (`al surrogate`): strict TOML into frozen dataclasses.

Tables `[data]` and `[al]` are those of `al run`; `[surrogates]` lists models or a deployability
rule; `[train]` has one recipe for the surrogates' AL cycles and one for the deployment models.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from al.config import ALConfig, DataConfig, TrainConfig, resolve_preset
from al.precision import resolve_train
from hwbench.errors import UserError

PRESET_PREFIX = "surrogate_"


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
        from hwbench.count import parse_hw

        return parse_hw(self.input, "surrogates.from_deploy.input")


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
    # per-model batch size in both roles, e.g. {deeplabv3plus_xception65 = 6} (the paper, Cityscapes)
    batch_size_by_model: dict[str, int] = field(default_factory=dict)

    def for_model(self, model: str, role: str) -> TrainConfig:
        """The recipe of `model` as "surrogate" or "deployment", with its batch size override."""
        cfg = self.surrogate if role == "surrogate" else self.deployment
        bs = self.batch_size_by_model.get(model)
        return cfg if bs is None else dataclasses.replace(cfg, batch_size=bs)


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
    # starting weights of every model ("none" | "pretrain" | checkpoint path), or per model:
    # {deeplabv3plus_resnet20 = "pretrain", deeplabv3plus_resnet50 = "~/ckpt/resnet50.pth"} (others: "none")
    weights: str | dict[str, str] = "none"
    weights_sha256: dict[str, str] = field(default_factory=dict)  # per model: pins; always in the resolved config
    # budget sweep: labelled-set sizes (each n_0 + k·n_c, k = 1..cycles) at which every deployment model also
    # trains on each surrogate's selection so far and on nested random sets (the final budget always is one)
    budgets: tuple[int, ...] = ()
    # builder options per model, e.g. {resnet18 = {stem = "small"}} (small-image recipes: docs/al-real-data.md)
    model_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    # "auto": fill in stems and small-image train settings by model family and input size (`al.recipes`);
    # keys written here win. None / "none": exactly what is written
    recipe: str | None = None

    def models(self) -> tuple[str, ...]:
        """Every model named in the config (surrogates listed, deployment, chain), in order, once."""
        return tuple(dict.fromkeys((*self.surrogates.models, *self.deployment, *self.chain.models)))

    def weights_for(self, model: str) -> str:
        return self.weights if isinstance(self.weights, str) else self.weights.get(model, "none")


def load_experiment_config(path_or_preset: str | os.PathLike, *, seeds: int | None = None,
                           data_root: str | None = None) -> ExperimentConfig:
    """Read a config file or preset (`surrogate_smoke`, or `smoke`) strictly; `seeds=N` -> seeds 0..N-1;
    `data_root` replaces `[data] root` (`~` and `$VARS` expanded); `recipe = "auto"` resolved."""
    return load_experiment(path_or_preset, seeds=seeds, data_root=data_root, hints=False)[0]


def load_experiment(path_or_preset: str | os.PathLike, *, seeds: int | None = None,
                    data_root: str | None = None, hints: bool = True,
                    sets: Sequence[str] = ()) -> tuple[ExperimentConfig, list[str]]:
    """`load_experiment_config` plus the lines to show: what the recipe chose (`recipe: ...`) or, without
    one and with `hints`, where a model's stem would shrink the input too far (`hint: ...`; this reads the
    dataset's size, which only `recipe = "auto"` needs otherwise). `sets`: `KEY=VALUE` items applied to
    the file's tables first (`hwbench.tomlconf.apply_sets`), e.g. `train.deployment.bf16=false`."""
    from al import recipes
    from hwbench.tomlconf import apply_sets, from_mapping, read_toml

    path = resolve_preset(os.fspath(path_or_preset), prefix=PRESET_PREFIX)
    raw = apply_sets(read_toml(path), sets)
    if isinstance(raw.get("surrogates"), list):  # `surrogates = [..]` is short for `[surrogates] models = [..]`
        raw["surrogates"] = {"models": raw["surrogates"]}
    raw.setdefault("name", path.stem)
    recipe = recipes.check_recipe(raw.get("recipe"))
    cfg = _finish(from_mapping(ExperimentConfig, raw, where=str(path)), seeds, data_root)
    lines: list[str] = []
    if recipe == "auto":
        raw, choices = recipes.apply_auto(raw, cfg.models(), recipes.sample_px(cfg.data))
        cfg = _finish(from_mapping(ExperimentConfig, raw, where=str(path)), seeds, data_root)
        lines = recipes.describe(choices)
    elif hints and any(m in recipes.STEM_MODELS for m in cfg.models()):
        try:
            px = recipes.sample_px(cfg.data)
        except UserError:
            px = None  # the data's own error comes when the experiment is prepared
        if px is not None:
            lines = recipes.hints(cfg.model_options, cfg.models(), px)
    return cfg, lines + _bf16_lines(raw)


def _bf16_lines(raw: dict) -> list[str]:
    """What `bf16 = "auto"` resolved to, per role that has it."""
    from al.precision import native_bf16

    roles = [r for r in ("surrogate", "deployment") if (raw.get("train") or {}).get(r, {}).get("bf16") == "auto"]
    if not roles:
        return []
    how = "bf16 autocast (this CPU has native bf16)" if native_bf16() else "fp32 (this CPU has no native bf16)"
    return [f"precision: bf16 = \"auto\" -> the {' and '.join(roles)} trainings' steps in {how}"]


def _finish(cfg: ExperimentConfig, seeds: int | None, data_root: str | None) -> ExperimentConfig:
    if seeds is not None:
        if seeds < 1:
            raise UserError(f"--seeds must be >= 1, got {seeds}")
        cfg = dataclasses.replace(cfg, seeds=tuple(range(seeds)))
    if data_root is not None:
        from al.config import expand_root

        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, root=expand_root(data_root)))
    t = cfg.train
    train = dataclasses.replace(t, surrogate=resolve_train(t.surrogate, "train.surrogate"),
                                deployment=resolve_train(t.deployment, "train.deployment"))
    return validate_experiment(dataclasses.replace(cfg, train=train))


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
    for m, bs in cfg.train.batch_size_by_model.items():
        if isinstance(bs, bool) or not isinstance(bs, int) or bs < 1:
            raise UserError(f"train.batch_size_by_model.{m} must be a positive integer, got {bs!r}")
    if len(set(cfg.budgets)) != len(cfg.budgets) or any(isinstance(b, bool) or b < 1 for b in cfg.budgets):
        raise UserError(f"budgets: give distinct positive numbers of labelled images, got {list(cfg.budgets)}")
    for m, opts in cfg.model_options.items():
        if not isinstance(opts, dict):
            raise UserError(f"model_options.{m} must be a table of builder options, e.g. {{stem = \"small\"}}")
    if cfg.chain.cycles_per_generation is not None and cfg.chain.cycles_per_generation < 1:
        raise UserError("chain.cycles_per_generation must be >= 1")
    return cfg


def run_config(cfg: ExperimentConfig, model: str, seed: int, *, cycles: int | None = None) -> Any:
    """The `al run` config of one surrogate's AL cycles in this experiment."""
    from al.config import ModelConfig, RunConfig

    al = cfg.al if cycles is None else dataclasses.replace(cfg.al, cycles=cycles)
    return RunConfig(data=cfg.data, model=ModelConfig(name=model, output_stride=cfg.output_stride,
                                                      options=dict(cfg.model_options.get(model, {})),
                                                      weights=cfg.weights_for(model),
                                                      weights_sha256=cfg.weights_sha256.get(model)),
                     train=cfg.train.for_model(model, "surrogate"), al=al, seed=seed, device=cfg.device,
                     name=f"{cfg.name}:{model}:seed{seed}")


def without_seeds(cfg: ExperimentConfig) -> ExperimentConfig:
    """The part of the config that identifies an experiment (seeds and threads may change on resume).

    Checkpoint pins of chain models are left out: a matrix run resolves only the models it trains,
    a `--chain` run of the same directory the chain's too (each sub-run's state pins its own)."""
    chain_only = set(cfg.chain.models) - set(cfg.deployment) - set(cfg.surrogates.models)
    pins = {m: h for m, h in cfg.weights_sha256.items() if m not in chain_only}
    return dataclasses.replace(cfg, seeds=(0,), threads=0, weights_sha256=pins)


def config_toml(cfg: ExperimentConfig) -> str:
    from al.config import to_toml

    return to_toml(cfg)
