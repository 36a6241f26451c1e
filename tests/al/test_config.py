"""Run configs: strict loading, validation before anything is written, TOML round trip."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from al.cli import main
from al.config import (
    ALConfig,
    RunConfig,
    apply_overrides,
    expand_root,
    list_presets,
    load_config,
    to_toml,
)
from hwbench.errors import UserError
from hwbench.tomlconf import from_mapping, read_toml

SMOKE = Path(__file__).parents[2] / "al" / "presets" / "smoke.toml"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cfg.toml"
    path.write_text(text)
    return path


def _smoke_with(tmp_path: Path, old: str, new: str) -> Path:
    text = SMOKE.read_text()
    assert old in text
    return _write(tmp_path, text.replace(old, new))


def _cli_fails(args: list[str], out: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """Run `al run ... --out out`; it must exit 2 with one error line and create nothing."""
    code = main(["run", *args, "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.startswith("error: ") and len(err.splitlines()) == 1, err
    assert not out.exists(), "bad input must not create the run directory"
    return err


def test_presets_load_and_round_trip(tmp_path: Path) -> None:
    assert {"smoke", "smoke_digits", "demo"} <= set(list_presets())
    for name in ("smoke", "smoke_digits", "demo"):  # the run presets (others configure experiments)
        cfg = load_config(name)
        assert isinstance(cfg, RunConfig) and cfg.name == name
        path = _write(tmp_path, to_toml(cfg))
        assert load_config(path) == cfg  # the resolved config reads back to an equal one


def test_smoke_values() -> None:
    cfg = load_config("smoke")
    assert (cfg.data.name, cfg.model.name, cfg.al.strategy) == ("synthetic_streets", "deeplabv3plus_resnet20",
                                                                "entropy")
    assert cfg.train.epochs >= 1 and cfg.device == "cpu"
    # 100 images: 10 % start + 2 cycles x 10 %
    assert cfg.budget(100) == (10, 10, 30)
    # paper defaults: 2 % + 9 x 2 % = 20 % (Cityscapes train: 2975 images -> floor(59.5) = 59)
    paper = dataclasses.replace(cfg, al=ALConfig())
    assert paper.budget(2975) == (59, 59, 590)


def test_to_toml_nested_values(tmp_path: Path) -> None:
    cfg = load_config("smoke")
    cfg = dataclasses.replace(cfg, al=dataclasses.replace(cfg.al, options={"subset": 5, "weird key": [1.5, True]}),
                              name='quote " and \\ backslash')
    path = _write(tmp_path, to_toml(cfg))
    raw = read_toml(path)
    assert raw["al"]["options"] == {"subset": 5, "weird key": [1.5, True]} and raw["name"] == cfg.name
    assert "root" not in raw["data"]  # None values are left out (they are the defaults)
    assert from_mapping(RunConfig, raw) == cfg


def test_unknown_key_names_key_and_valid_ones(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _smoke_with(tmp_path, "cycles = 2", "cycles = 2\ncylces = 3")
    with pytest.raises(UserError, match=r"'cylces'.*known: strategy, options, initial_fraction"):
        load_config(path)
    err = _cli_fails([str(path)], tmp_path / "run", capsys)
    assert "cylces" in err and "cycle_fraction" in err


@pytest.mark.parametrize(("old", "new", "message"), [
    ("initial_fraction = 0.1", "initial_fraction = 0.0", "initial_fraction must be in (0, 1]"),
    ("cycle_fraction = 0.1", "cycle_fraction = 1.5", "cycle_fraction must be in (0, 1]"),
    ("cycles = 2", "cycles = 12", "exceeds the whole pool"),       # 0.1 + 12 x 0.1 > 1
    ("cycles = 2", "cycles = -1", "cycles must be >= 0"),
    ('device = "cpu"', 'device = "tpu"', "device: 'tpu' is not one of auto, cpu, cuda"),
    ("cycles = 2", 'cycles = 2\nretrain = "sometimes"', "retrain"),
    ("cycles = 2", "cycles = 2.5", "expected int"),
    ("n = 100", "n = 2", "exceeds the pool of 2"),                # at least 1 image per step: 1 + 2 x 1 > 2
])
def test_bad_values_exit_2_without_run_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str], old: str, new: str,
                                            message: str) -> None:
    path = _smoke_with(tmp_path, old, new)
    err = _cli_fails([str(path)], tmp_path / "run", capsys)
    assert message in err, err


@pytest.mark.parametrize(("flag", "value", "known"), [
    ("--strategy", "entropyy", "known: coreset, entropy, llal"),
    ("--model", "resnet51", "known: deeplabv3plus_mobilenetv3_small"),
])
def test_unknown_names_list_valid_ones(tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str,
                                       known: str) -> None:
    err = _cli_fails(["smoke", flag, value], tmp_path / "run", capsys)
    assert repr(value) in err and known in err


def test_unknown_dataset_and_task_mismatch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _cli_fails([str(_smoke_with(tmp_path, '"synthetic_streets"', '"cityscape"'))], tmp_path / "run", capsys)
    assert "unknown dataset 'cityscape'" in err and "cityscapes" in err
    err = _cli_fails(["smoke", "--model", "resnet20"], tmp_path / "run", capsys)
    assert "classification model" in err and "segmentation" in err
    err = _cli_fails([str(_smoke_with(tmp_path, "n = 100", "n = 100\ncolour = true"))], tmp_path / "run", capsys)
    assert "'colour'" in err
    err = _cli_fails(["no_such_preset"], tmp_path / "run", capsys)
    assert "unknown preset 'no_such_preset'" in err and "smoke" in err
    err = _cli_fails([str(tmp_path / "missing.toml")], tmp_path / "run", capsys)
    assert "no such config file" in err


def test_cityscapes_without_root_fails_before_writing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = SMOKE.read_text().replace('"synthetic_streets"', '"cityscapes"').replace("n = 100\nsize = [32, 64]\n", "")
    err = _cli_fails([str(_write(tmp_path, text)), "--data-root", str(tmp_path / "nowhere")], tmp_path / "run", capsys)
    assert "cityscapes" in err


def test_overrides_and_root_expansion(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = apply_overrides(load_config("smoke"), strategy="coreset", model="deeplabv3plus_mobilenetv3_small", seed=3)
    assert (cfg.al.strategy, cfg.model.name, cfg.seed) == ("coreset", "deeplabv3plus_mobilenetv3_small", 3)
    monkeypatch.setenv("AL_TEST_ROOT", "/data/x")
    assert expand_root("$AL_TEST_ROOT/cityscapes") == "/data/x/cityscapes"
    monkeypatch.delenv("AL_TEST_ROOT")
    with pytest.raises(UserError, match="AL_TEST_ROOT is not set"):
        expand_root("$AL_TEST_ROOT/cityscapes")
