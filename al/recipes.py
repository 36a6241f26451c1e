"""Training recipes chosen by model family and input size (`recipe = "auto"` in an `al surrogate` config).

A small rule table, applied to the raw TOML of an experiment before it is parsed, so the resolved config
(and `experiment.toml`) records exactly what a run used. A key the user wrote always wins.

- **stem** of ResNet-18/34/50 (`hwbench.models.resnet.STEMS`): the stem with the largest stride that keeps
  layer1's input at least `MIN_LAYER1_PX` wide: ImageNet (stride 4) from 29 px, "small" (3x3/2, no pool)
  from 15 px, else "cifar" (3x3/1). Fashion-MNIST's 28 px -> small (14x14 in layer1, not 7x7); the
  digits' 8 px -> cifar (8x8, not 2x2).
- **train** settings for small images (at most `SMALL_IMAGE_PX`): warm-up and epochs counted in steps, per
  role, the values the Fashion-MNIST preset's random column was measured with (docs/al-real-data.md).

Without a recipe, `hints` says when an ImageNet stem would shrink the input below `MIN_LAYER1_PX`.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from hwbench.errors import UserError

RECIPES = ("auto", "none")     # `recipe = ...` in an experiment config; absent = "none"
MIN_LAYER1_PX = 8              # a stem must leave layer1 at least this many pixels wide
SMALL_IMAGE_PX = 32            # train rules apply up to this input size
STEM_MODELS = ("resnet18", "resnet34", "resnet50")  # classifiers whose builder takes `stem`


@functools.cache
def stem_strides() -> tuple[tuple[str, int], ...]:
    """(stem name, the stem's total stride) of every `hwbench.models.resnet.STEMS` layout, largest first."""
    from hwbench.models.resnet import STEMS

    strides = {name: stride * (2 if pool else 1) for name, (_, stride, pool) in STEMS.items()}
    return tuple(sorted(strides.items(), key=lambda kv: -kv[1]))


# per role: train settings for small images (Fashion-MNIST preset, chosen on random columns only: the
# surrogates' own accuracy at the sizes they pick from, 100-300 labels; for the deployment model its
# seed sd at 800 labels, 1.91 -> 1.64 -> 1.10 with weight averaging, then label smoothing, and at
# 200/400 labels 2.24/2.21 -> 1.65/1.11 with 100 steps instead of 50; docs/al-real-data.md)
SMALL_IMAGE_TRAIN: dict[str, dict[str, float]] = {
    "surrogate": {"warmup_steps": 10, "min_steps": 200},
    "deployment": {"warmup_steps": 20, "min_steps": 100, "ema_decay": 0.95, "label_smoothing": 0.1},
}


@dataclass(frozen=True)
class Choice:
    """One setting a recipe decided (or found given): `where` is e.g. "resnet18" or "train.deployment"."""

    where: str
    key: str
    value: Any
    auto: bool          # True: the recipe set it; False: the user's own value was kept
    input_px: int


def describe(choices: Iterable[Choice]) -> list[str]:
    """One line per place and origin, e.g. `recipe: resnet18 at 28 px -> stem small (auto)`."""
    groups: dict[tuple[str, bool, int], list[str]] = {}
    for c in choices:
        groups.setdefault((c.where, c.auto, c.input_px), []).append(f"{c.key} {c.value}")
    return [f"recipe: {where} at {px} px -> {', '.join(parts)} ({'auto' if auto else 'yours, kept'})"
            for (where, auto, px), parts in groups.items()]


def layer1_px(input_px: int, stride: int) -> int:
    """Side of layer1's input after a stem of total `stride` (padded stride-2 convs and pool round up)."""
    return -(-input_px // stride)


def stem_for(model: str, input_px: int) -> str | None:
    """The stem rule: a name from `stem_strides()` for a model that takes one, else None."""
    if model not in STEM_MODELS:
        return None
    strides = stem_strides()
    for name, stride in strides:
        if layer1_px(input_px, stride) >= MIN_LAYER1_PX:
            return name
    return strides[-1][0]


def train_for(role: str, input_px: int) -> dict[str, float]:
    """The train rule of `role` ("surrogate" | "deployment") at `input_px`: settings to fill in."""
    return dict(SMALL_IMAGE_TRAIN[role]) if input_px <= SMALL_IMAGE_PX else {}


def check_recipe(value: Any) -> str:
    """The recipe name of a config (`None` -> "none"); anything else than `RECIPES` is a `UserError`."""
    if value is None:
        return "none"
    if not isinstance(value, str) or value not in RECIPES:
        raise UserError(f"recipe: unknown recipe {value!r}; known: {', '.join(RECIPES)}")
    return value


def sample_px(data: Any) -> int:
    """The side of a training sample of `data` (an `al.config.DataConfig`), in pixels: the smaller of H, W."""
    from al.data import build_dataset
    from al.data.sizes import train_size

    pool = build_dataset(data.name, root=data.root, split=data.split, **data.options)
    return min(train_size(pool))


def apply_auto(raw: Mapping[str, Any], models: Iterable[str], input_px: int) -> tuple[dict[str, Any], list[Choice]]:
    """`raw` (an experiment's TOML mapping) with every rule filled in where the user gave no value.

    Returns the new mapping (the input is not changed) and one `Choice` per rule that applies."""
    out = copy.deepcopy(dict(raw))
    choices: list[Choice] = []
    options = out.setdefault("model_options", {})
    for m in dict.fromkeys(models):
        stem = stem_for(m, input_px)
        if stem is None:
            continue
        mine = options.get(m, {})
        if isinstance(mine, dict) and "stem" in mine:
            choices.append(Choice(m, "stem", mine["stem"], False, input_px))
            continue
        options[m] = {**(mine if isinstance(mine, dict) else {}), "stem": stem}
        choices.append(Choice(m, "stem", stem, True, input_px))
    if not options:
        del out["model_options"]
    for role in ("surrogate", "deployment"):
        rule = train_for(role, input_px)
        if not rule:
            continue
        train = out.setdefault("train", {})
        table = train.setdefault(role, {})
        if not isinstance(table, dict):
            continue  # from_mapping names the bad table
        for key, value in rule.items():
            if key == "ema_decay" and table.get("precise_bn") is False:
                continue  # averaged weights need their BatchNorm statistics recomputed: the user turned that off
            if key in table:
                choices.append(Choice(f"train.{role}", key, table[key], False, input_px))
            else:
                table[key] = value
                choices.append(Choice(f"train.{role}", key, value, True, input_px))
    return out, choices


def hints(model_options: Mapping[str, Mapping[str, Any]], models: Iterable[str], input_px: int) -> list[str]:
    """Without a recipe: one line per model whose ImageNet stem would shrink `input_px` below `MIN_LAYER1_PX`."""
    lines = []
    stride = dict(stem_strides())["imagenet"]
    for m in dict.fromkeys(models):
        stem = stem_for(m, input_px)
        if stem is None or stem == "imagenet" or "stem" in model_options.get(m, {}):
            continue
        px, keep = layer1_px(input_px, stride), layer1_px(input_px, dict(stem_strides())[stem])
        lines.append(f"hint: {m}'s ImageNet stem shrinks {input_px} px inputs to {px}x{px} before layer1; "
                     f"recipe = \"auto\" (or model_options = {{ {m} = {{ stem = \"{stem}\" }} }}) keeps {keep}x{keep}")
    return lines
