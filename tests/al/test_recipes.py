"""`recipe = "auto"` (al.recipes): the stem rule against the layer1 size a real forward pass gives, the
train rule, a user's own value winning, the resolved config recording the choice, bad names."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from al import recipes
from al.cli import main
from al.experiments.config import config_toml, load_experiment, load_experiment_config

CONFIG = """name = "rec"
seeds = [0]
device = "cpu"
deployment = ["resnet18", "resnet20"]
surrogates = ["resnet20"]
{extra}
[data]
name = "digits"
pool_size = 100
options = {{ size = {size} }}

[al]
strategy = "entropy"
initial_fraction = 0.1
cycle_fraction = 0.1
cycles = 1
batch_size = 64

[train.surrogate]
epochs = 1
batch_size = 16

[train.deployment]
epochs = 1
batch_size = 16
{deploy_extra}
"""


def _write(tmp_path: Path, *, size: int = 8, extra: str = "", deploy_extra: str = "") -> Path:
    p = tmp_path / "exp.toml"
    p.write_text(CONFIG.format(size=size, extra=extra, deploy_extra=deploy_extra), encoding="utf-8")
    return p


def _layer1_px(stem: str, px: int) -> int:
    """Side of layer1's input: a real forward pass through resnet18's stem with that layout."""
    from hwbench.models import create_model

    net = create_model("resnet18", num_classes=10, stem=stem).eval()
    seen = {}

    def hook(module: torch.nn.Module, args: tuple) -> None:
        seen["hw"] = args[0].shape[-2:]

    net.layer1.register_forward_pre_hook(hook)
    with torch.no_grad():
        net(torch.zeros(1, 3, px, px))
    return int(min(seen["hw"]))


@pytest.mark.parametrize("px", [4, 8, 15, 16, 28, 31, 32, 64])
def test_stem_rule_is_the_largest_stride_that_keeps_layer1_at_8_px(px: int) -> None:
    order = [name for name, _ in recipes.stem_strides()]  # largest stride first
    chosen = recipes.stem_for("resnet18", px)
    if _layer1_px("cifar", px) >= 8:
        assert _layer1_px(chosen, px) >= 8
        for larger in order[:order.index(chosen)]:
            assert _layer1_px(larger, px) < 8
    else:  # nothing keeps 8 px: the smallest stride
        assert chosen == "cifar"


@pytest.mark.parametrize(("model", "px", "stem"), [
    ("resnet18", 8, "cifar"), ("resnet18", 16, "small"), ("resnet18", 28, "small"), ("resnet34", 28, "small"),
    ("resnet50", 32, "imagenet"), ("resnet18", 224, "imagenet"),
    ("resnet20", 8, None), ("mobilenetv3_small", 28, None), ("deeplabv3plus_resnet18", 32, None)])
def test_stem_rule_table(model: str, px: int, stem: str | None) -> None:
    assert recipes.stem_for(model, px) == stem


def test_train_rule_applies_to_small_images_only() -> None:
    assert recipes.train_for("deployment", 28) == {"warmup_steps": 20, "min_steps": 100, "ema_decay": 0.95,
                                                   "label_smoothing": 0.1}
    assert recipes.train_for("surrogate", 32) == {"warmup_steps": 10, "min_steps": 200}
    assert recipes.train_for("deployment", 33) == {}


def test_auto_fills_in_what_is_missing_and_keeps_the_users_values() -> None:
    raw = {"model_options": {"resnet18": {"stem": "imagenet", "zero_init_residual": True},
                             "resnet34": {"zero_init_residual": True}},
           "train": {"deployment": {"min_steps": 7}}}
    out, choices = recipes.apply_auto(raw, ["resnet18", "resnet34", "resnet20"], 28)
    assert out["model_options"] == {"resnet18": {"stem": "imagenet", "zero_init_residual": True},
                                    "resnet34": {"zero_init_residual": True, "stem": "small"}}
    assert out["train"] == {"deployment": {"min_steps": 7, "warmup_steps": 20, "ema_decay": 0.95,
                                           "label_smoothing": 0.1},
                            "surrogate": {"warmup_steps": 10, "min_steps": 200}}
    assert raw["model_options"]["resnet34"] == {"zero_init_residual": True}  # input untouched
    got = {(c.where, c.key): (c.value, c.auto) for c in choices}
    assert got[("resnet18", "stem")] == ("imagenet", False)
    assert got[("resnet34", "stem")] == ("small", True)
    assert got[("train.deployment", "min_steps")] == (7, False)
    assert ("resnet20", "stem") not in got
    assert "recipe: resnet34 at 28 px -> stem small (auto)" in recipes.describe(choices)


def test_auto_in_a_config_is_resolved_and_recorded(tmp_path: Path) -> None:
    cfg, lines = load_experiment(_write(tmp_path, size=8, extra='recipe = "auto"'))
    assert cfg.model_options == {"resnet18": {"stem": "cifar"}}
    assert (cfg.train.deployment.warmup_steps, cfg.train.deployment.min_steps) == (20, 100)
    assert (cfg.train.deployment.ema_decay, cfg.train.deployment.label_smoothing) == (0.95, 0.1)
    assert (cfg.train.surrogate.ema_decay, cfg.train.surrogate.label_smoothing) == (0.0, 0.0)  # picks from plain models
    assert (cfg.train.surrogate.warmup_steps, cfg.train.surrogate.min_steps) == (10, 200)
    assert lines[0] == "recipe: resnet18 at 8 px -> stem cifar (auto)"
    from al.experiments.context import Experiment, prepare_experiment

    with Experiment(prepare_experiment(cfg), tmp_path / "out").opened(resume=False):
        text = (tmp_path / "out" / "experiment.toml").read_text(encoding="utf-8")  # nothing trained yet
    assert text == config_toml(cfg)
    assert 'recipe = "auto"' in text and 'stem = "cifar"' in text
    assert "min_steps = 100" in text and "min_steps = 200" in text       # deployment and surrogate rules
    again = tmp_path / "experiment.toml"
    again.write_text(text, encoding="utf-8")
    cfg2, lines2 = load_experiment(again)
    assert cfg2 == cfg  # resolving the resolved config changes nothing ...
    assert all(line.endswith("(yours, kept)") for line in lines2)  # ... and says it kept every value


def test_a_users_option_wins_in_a_config(tmp_path: Path) -> None:
    cfg = load_experiment_config(_write(tmp_path, size=28, extra='recipe = "auto"\n'
                                        'model_options = { resnet18 = { stem = "cifar" } }',
                                        deploy_extra="warmup_steps = 0"))
    assert cfg.model_options == {"resnet18": {"stem": "cifar"}}
    assert (cfg.train.deployment.warmup_steps, cfg.train.deployment.min_steps) == (0, 100)


def test_auto_leaves_out_weight_averaging_when_precise_bn_is_off() -> None:
    out, choices = recipes.apply_auto({"train": {"deployment": {"precise_bn": False}}}, ["resnet18"], 28)
    assert "ema_decay" not in out["train"]["deployment"] and out["train"]["deployment"]["label_smoothing"] == 0.1
    assert ("train.deployment", "ema_decay") not in {(c.where, c.key) for c in choices}


def test_without_a_recipe_nothing_changes_and_a_hint_names_the_stem(tmp_path: Path) -> None:
    cfg, lines = load_experiment(_write(tmp_path, size=16))
    assert cfg.model_options == {} and cfg.train.deployment.min_steps == 0 and cfg.recipe is None
    assert lines == ['hint: resnet18\'s ImageNet stem shrinks 16 px inputs to 4x4 before layer1; recipe = "auto" '
                     '(or model_options = { resnet18 = { stem = "small" } }) keeps 8x8']
    cfg, lines = load_experiment(_write(tmp_path, size=32))
    assert lines == []  # 32 px keep 8x8 through the ImageNet stem
    _, lines = load_experiment(_write(tmp_path, size=16, extra='model_options = { resnet18 = { stem = "imagenet" } }'))
    assert lines == []  # the user chose


@pytest.mark.parametrize("value", ['"fast"', '"AUTO"', "1"])
def test_a_bad_recipe_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str) -> None:
    path = _write(tmp_path, extra=f"recipe = {value}")
    assert main(["surrogate", str(path), "--plan"]) == 2
    cap = capsys.readouterr()
    assert cap.err.startswith("error: recipe: unknown recipe") and cap.err.count("\n") == 1, cap.err
    assert "known: auto, none" in cap.err and cap.out == ""


def test_plan_prints_the_recipe_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["surrogate", str(_write(tmp_path, size=28, extra='recipe = "auto"')), "--plan"]) == 0
    out = capsys.readouterr().err  # status lines go to stderr, the table to stdout
    assert "recipe: resnet18 at 28 px -> stem small (auto)" in out
    assert ("recipe: train.deployment at 28 px -> warmup_steps 20, min_steps 100, ema_decay 0.95, label_smoothing 0.1"
            " (auto)") in out


def test_auto_resolves_to_the_fashion_presets_recipe() -> None:
    """The Fashion-MNIST preset's recipe (chosen on its random column) is what "auto" picks at 28 px: the
    preset with every recipe key removed and auto applied is the preset again, bar Res-20's and MNV3's layout (speed)."""
    import copy

    from al.config import PRESETS_DIR
    from hwbench.tomlconf import tomllib

    raw = tomllib.loads((PRESETS_DIR / "surrogate_fashion.toml").read_text(encoding="utf-8"))
    bare = copy.deepcopy(raw)
    bare["model_options"] = {m: {k: v for k, v in o.items() if k != "stem"} for m, o in bare["model_options"].items()}
    for role in ("surrogate", "deployment"):
        rule = recipes.train_for(role, 28)
        assert {k: raw["train"][role][k] for k in rule} == rule  # the preset writes each rule value itself
        bare["train"][role] = {k: v for k, v in bare["train"][role].items() if k not in rule}
    out, _ = recipes.apply_auto(bare, [*raw["surrogates"], *raw["deployment"]], 28)
    for m in ("resnet20", "mobilenetv3_small"):
        assert out["model_options"].pop(m) == {"channels_last": True}
        raw["model_options"].pop(m)
    assert out == raw
