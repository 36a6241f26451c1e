"""`--set KEY=VALUE` items (`hwbench.tomlconf.apply_sets`) and `al surrogate --set`."""

from __future__ import annotations

import pytest

from hwbench.errors import UserError
from hwbench.tomlconf import apply_sets


def test_values_are_toml_or_else_strings_and_tables_are_made() -> None:
    raw = {"seeds": [0, 1], "train": {"deployment": {"epochs": 4}}}
    out = apply_sets(raw, ["train.deployment.epochs=6", "train.deployment.bf16=\"auto\"", "train.surrogate.lr=0.5",
                           "seeds=[3, 4]", "device=cpu", "train.deployment.fused_sgd=true", "name = x y"])
    assert out == {"seeds": [3, 4], "device": "cpu", "name": "x y",
                   "train": {"deployment": {"epochs": 6, "bf16": "auto", "fused_sgd": True}, "surrogate": {"lr": 0.5}}}
    assert raw == {"seeds": [0, 1], "train": {"deployment": {"epochs": 4}}}        # the input is left alone
    assert apply_sets(raw, []) == raw


@pytest.mark.parametrize("item, message", [("seeds", "expected KEY=VALUE"), ("=1", "expected KEY=VALUE"),
                                           ("a..b=1", "expected KEY=VALUE"), ("seeds.x=1", "seeds is not a table")])
def test_bad_items_are_one_line_errors(item: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        apply_sets({"seeds": [0]}, [item])


def test_al_surrogate_set_changes_the_config_and_its_identity(tmp_path, capsys) -> None:
    from al.cli import main
    from al.experiments.config import config_toml, load_experiment, without_seeds

    cfg_path = tmp_path / "exp.toml"
    cfg_path.write_text('surrogates = ["resnet20"]\ndeployment = ["resnet18"]\nseeds = [0, 1]\n[data]\nname = "digits"\n'
                        '[train.deployment]\nepochs = 2\n')
    plain, _ = load_experiment(cfg_path)
    changed, _ = load_experiment(cfg_path, sets=["train.deployment.epochs=5", "seeds=[0]"])
    assert changed.train.deployment.epochs == 5 and changed.seeds == (0,) and plain.train.deployment.epochs == 2
    assert config_toml(without_seeds(changed)) != config_toml(without_seeds(plain))
    assert main(["surrogate", str(cfg_path), "--set", "seeds=[0]", "--plan", "--json"]) == 0
    import json
    assert json.loads(capsys.readouterr().out)["seeds"] == 1
    assert main(["surrogate", str(cfg_path), "--set", "train.deployment.epoch=5", "--plan"]) == 2
    err = capsys.readouterr().err
    assert "unknown key(s) 'epoch'" in err and len(err.strip().splitlines()) == 1
