"""Run configuration: frozen dataclasses read strictly from TOML (DESIGN §3 "Runs", §4 "Config").

A run config has four tables and a few top-level keys::

    seed = 0
    device = "auto"            # "auto" | "cpu" | "cuda"
    threads = 1                # torch CPU threads (optional; default: torch's own choice)
    name = "smoke"             # free label (default: the preset or file name)
    [data]   name, root, split, val_split, pool_size, val_size, [data.options] (dataset kwargs)
    [model]  name, output_stride, weights, [model.options] (builder kwargs); num_classes comes from the data
    [al]     strategy, [al.options] (strategy kwargs), initial_fraction, cycle_fraction, cycles, ...
    [train]  al.train.TrainConfig (epochs, batch_size, lr, ...)

`load_config("smoke")` reads the shipped preset `al/presets/smoke.toml`; any other argument is a
path. Unknown keys, bad values and unknown strategy / model / dataset names are `UserError`s
that list the valid alternatives. `to_toml(config)` writes a config back (the run directory
keeps the resolved one). Budget checks that need the pool size happen in `al.loop` before the
run directory is created.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from al.train import TrainConfig
from hwbench.errors import UserError, unknown
from hwbench.io import file_problem
from hwbench.tomlconf import from_mapping, read_toml

PRESETS_DIR = Path(__file__).parent / "presets"
DEVICES = ("auto", "cpu", "cuda")
RETRAIN = ("scratch", "continue")
KEEP_CHECKPOINTS = ("last", "all")


@dataclass(frozen=True)
class DataConfig:
    """The unlabelled pool (`split`) and the split evaluated after every cycle (`val_split`)."""

    name: str
    root: str | None = None          # dataset directory; `~` and `$VARS` are expanded; None for synthetic sets
    split: str = "train"             # the pool the strategy selects from
    val_split: str = "val"
    pool_size: int | None = None     # use N evenly spaced images of `split` as the pool (None: all)
    val_size: int | None = None      # evaluate on N evenly spaced images of `val_split` (None: all)
    options: dict[str, Any] = field(default_factory=dict)  # extra keyword arguments of build_dataset


@dataclass(frozen=True)
class ModelConfig:
    """The scoring model (the surrogate); its number of classes comes from the dataset."""

    name: str
    output_stride: int | None = None  # None: the builder's default (16 for DeepLabv3+, 32 for classifiers)
    options: dict[str, Any] = field(default_factory=dict)  # extra keyword arguments of create_model
    weights: str = "none"            # starting weights: "none" | "pretrain" (al pretrain's cache) | checkpoint path
    weights_sha256: str | None = None  # SHA-256 of that checkpoint: pins it (the resolved config always has it)


@dataclass(frozen=True)
class ALConfig:
    """Active-learning schedule. Paper defaults: 2 % random start, then 9 cycles of 2 % -> 20 %."""

    strategy: str = "entropy"
    options: dict[str, Any] = field(default_factory=dict)  # strategy options, e.g. llal: {subset = 10000}
    initial_fraction: float = 0.02   # cycle 0: random share of the pool (same set for every strategy/model)
    cycle_fraction: float = 0.02     # share of the pool selected in each later cycle
    cycles: int = 9                  # selection cycles after the random start
    retrain: str = "scratch"         # "scratch": a fresh model every cycle, from model.weights (the paper: ImageNet
                                     # backbone, new head); "continue": warm start from the last cycle
    batch_size: int = 16             # batch size of scoring and evaluation
    score_size: tuple[int, ...] | None = None  # [H, W]: resize pool images for scoring only (evaluation keeps full size)
    keep_checkpoints: str = "last"   # "last" or "all" cycle checkpoints kept in checkpoints/


@dataclass(frozen=True)
class RunConfig:
    """Everything one active-learning run depends on."""

    data: DataConfig
    model: ModelConfig
    train: TrainConfig
    al: ALConfig = field(default_factory=ALConfig)
    seed: int = 0
    device: str = "auto"             # "auto" | "cpu" | "cuda"
    threads: int | None = None       # torch CPU threads during the run (None: torch's default)
    name: str = ""                   # free label (the preset name when loaded from a preset)

    def budget(self, pool_size: int) -> tuple[int, int, int]:
        """(initial, per-cycle, total) number of images to label for a pool of `pool_size`."""
        n_init = _count(self.al.initial_fraction, pool_size)
        n_cycle = _count(self.al.cycle_fraction, pool_size)
        return n_init, n_cycle, n_init + self.al.cycles * n_cycle


def _count(fraction: float, n: int) -> int:
    """Number of images a pool fraction stands for: floor, at least one."""
    return max(1, math.floor(fraction * n + 1e-9))


# --------------------------------------------------------------------------------------------------
# loading


def list_presets() -> list[str]:
    """Names of the shipped presets (`al/presets/<name>.toml`)."""
    return sorted(p.stem for p in PRESETS_DIR.glob("*.toml"))


def preset_path(name: str) -> Path:
    path = PRESETS_DIR / f"{name}.toml"
    if not path.is_file():
        raise unknown("preset", name, list_presets())
    return path


def resolve_path(path_or_preset: str | os.PathLike) -> tuple[Path, str]:
    """(file, default name): an existing file or a `.toml` path is a path, anything else a preset."""
    text = os.fspath(path_or_preset)
    p = Path(text)
    if p.is_file() or text.endswith(".toml") or os.sep in text:
        why = file_problem(p)
        if why is not None and why != "not found":
            raise UserError(f"config {p} {why}; give a TOML file or a preset ({', '.join(list_presets())})")
        if why is not None:
            raise UserError(f"no such config file: {p}; presets: {', '.join(list_presets())}")
        return p, p.stem
    return preset_path(text), text


def resolve_preset(name: str | Path, *, prefix: str) -> Path:
    """A path to an existing file, or a preset in al/presets/ (`demo` -> `<prefix>demo.toml`)."""
    p = Path(name)
    if p.is_file():
        return p
    why = file_problem(p)
    if why is not None and why != "not found":  # a directory, a FIFO: named as such (and never opened)
        raise UserError(f"config {p} {why}; give a TOML file or a preset")
    presets = PRESETS_DIR
    if p.suffix == "" and p.name == str(name):  # a bare preset name, not a path
        cand = presets / (f"{p.name}.toml" if p.name.startswith(prefix) else f"{prefix}{p.name}.toml")
        if cand.is_file():
            return cand
    known = sorted(q.stem for q in presets.glob(f"{prefix}*.toml")) if presets.is_dir() else []
    raise UserError(f"no such config file or preset {str(name)!r}; presets: {', '.join(known) or 'none'}")


def load_config(path_or_preset: str | os.PathLike, *, overrides: dict[str, Any] | None = None,
                validate_names: bool = True) -> RunConfig:
    """Read a config file or preset strictly, apply `overrides` (see `apply_overrides`), validate.

    Names (strategy, model, dataset) are checked against the registries unless `validate_names`
    is False; dataset-dependent checks (root, pool size, budget) are done by `al.prepare.prepare`.
    """
    path, name = resolve_path(path_or_preset)
    data = read_toml(path)
    data.setdefault("name", name)
    cfg = from_mapping(RunConfig, data, where=str(path))
    if overrides:
        cfg = apply_overrides(cfg, **overrides)
    return validate(cfg, names=validate_names)


def apply_overrides(cfg: RunConfig, *, strategy: str | None = None, model: str | None = None,
                    seed: int | None = None, device: str | None = None, root: str | None = None,
                    sync_bn: bool | None = None) -> RunConfig:
    """Return `cfg` with the CLI overrides that are not None applied."""
    if sync_bn is not None:
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, sync_bn=sync_bn))
    if strategy is not None:
        cfg = dataclasses.replace(cfg, al=dataclasses.replace(cfg.al, strategy=strategy))
    if model is not None:
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, name=model))
    if root is not None:
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, root=root))
    if seed is not None:
        cfg = dataclasses.replace(cfg, seed=seed)
    if device is not None:
        cfg = dataclasses.replace(cfg, device=device)
    return cfg


def validate(cfg: RunConfig, *, names: bool = True) -> RunConfig:
    """Check values that need no dataset; return the config with `data.root` expanded.

    Raises `UserError` for fractions outside (0, 1], negative cycles, a bad device, retrain or
    checkpoint mode, and (with `names`) unknown strategy / model / dataset names or a model
    whose task does not match the dataset.
    """
    a = cfg.al
    for key in ("initial_fraction", "cycle_fraction"):
        v = getattr(a, key)
        if not 0.0 < v <= 1.0:
            raise UserError(f"al.{key} must be in (0, 1], got {v!r}")
    if a.cycles < 0:
        raise UserError(f"al.cycles must be >= 0, got {a.cycles}")
    if cfg.seed < 0:
        raise UserError(f"seed must be a non-negative integer, got {cfg.seed}")
    if a.initial_fraction + a.cycles * a.cycle_fraction > 1.0 + 1e-9:
        raise UserError(f"budget {a.initial_fraction:g} + {a.cycles} x {a.cycle_fraction:g} of the pool "
                        f"exceeds the whole pool; lower al.cycles or the fractions")
    _choice("al.retrain", a.retrain, RETRAIN)
    _choice("al.keep_checkpoints", a.keep_checkpoints, KEEP_CHECKPOINTS)
    _choice("device", cfg.device, DEVICES)
    for key, v in (("al.batch_size", a.batch_size), ("data.pool_size", cfg.data.pool_size), ("data.val_size", cfg.data.val_size),
                   ("threads", cfg.threads)):
        if v is not None and v < 1:
            raise UserError(f"{key} must be a positive integer, got {v}")
    if a.score_size is not None:
        from al.strategies.evidence import check_score_size

        check_score_size(a.score_size)
    if cfg.model.output_stride not in (None, 8, 16, 32):
        raise UserError(f"model.output_stride must be 8, 16 or 32, got {cfg.model.output_stride}")
    if names:
        _validate_names(cfg)
    from al.precision import resolve_train

    return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, root=expand_root(cfg.data.root)),
                               train=resolve_train(cfg.train))


def _choice(key: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise UserError(f"{key}: {value!r} is not one of {', '.join(valid)}")


def _validate_names(cfg: RunConfig) -> None:
    from al.data import list_datasets
    from al.strategies import list_strategies
    from hwbench.models import model_info

    if cfg.al.strategy not in list_strategies():
        raise unknown("strategy", cfg.al.strategy, list_strategies())
    if cfg.data.name not in list_datasets():
        raise unknown("dataset", cfg.data.name, list_datasets())
    model_info(cfg.model.name)  # UserError listing the known models


def expand_root(root: str | None) -> str | None:
    """Expand `~` and `$VARS` in a dataset root; an unset variable is a `UserError`."""
    if root is None:
        return None
    expanded = os.path.expanduser(os.path.expandvars(root))
    left = re.search(r"\$\{?(\w+)", expanded)
    if left:
        raise UserError(f"data.root {root!r}: environment variable {left.group(1)} is not set; "
                        f"set it or give the path")
    return expanded


# --------------------------------------------------------------------------------------------------
# writing


def to_toml(cfg: Any) -> str:
    """TOML text of a (nested) dataclass; `load_config` / `from_mapping` read it back to an equal one.

    Scalars come first, then one `[table]` per nested dataclass or dict. None values are left out
    (they are the defaults of every optional key here).
    """
    lines: list[str] = []
    _write_table(dataclasses.asdict(cfg), [], lines)
    return "\n".join(lines).strip() + "\n"


def _write_table(obj: dict[str, Any], prefix: list[str], lines: list[str]) -> None:
    scalars = {k: v for k, v in obj.items() if not isinstance(v, dict) and v is not None}
    tables = {k: v for k, v in obj.items() if isinstance(v, dict)}
    if prefix and (scalars or not tables):
        lines.append("")
        lines.append(f"[{'.'.join(_key(p) for p in prefix)}]")
    for k, v in scalars.items():
        lines.append(f"{_key(k)} = {_value(v)}")
    for k, v in tables.items():
        _write_table(v, [*prefix, k], lines)


def _key(k: str) -> str:
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k)


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # JSON basic-string escapes are valid TOML
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items() if x is not None) + "}"
    if isinstance(v, os.PathLike):
        return json.dumps(os.fspath(v))
    raise TypeError(f"cannot write {type(v).__name__} to TOML")

