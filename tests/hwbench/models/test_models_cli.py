"""`hwbench models --json`."""

from __future__ import annotations

import json

from hwbench.cli import main


def test_models_json(capsys) -> None:
    assert main(["models", "--json"]) == 0
    records = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert records["resnet18"]["params"] == 11_689_512
    assert records["mobilenetv3_small"]["params"] == 2_542_856
    seg = records["deeplabv3plus_xception65"]
    assert (seg["label"], seg["task"], seg["num_classes"], seg["default_input"]) == \
        ("Xc-65", "segmentation", 19, [1, 3, 1024, 2048])


def test_models_task_filter(capsys) -> None:
    assert main(["models", "--json", "--task", "segmentation"]) == 0
    names = [r["name"] for r in json.loads(capsys.readouterr().out)]
    assert len(names) == 5 and all(n.startswith("deeplabv3plus_") for n in names)
