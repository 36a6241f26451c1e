"""`[train] bf16`: where autocast applies (dtype seen by the layers), how "auto" resolves and what it
does to an experiment's identity, and the plan's use of the measured speed-up."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import al.precision as precision
from al.experiments.config import config_toml, load_experiment, without_seeds
from al.experiments.plan import TRAIN_FACTOR, Schedule, estimate
from al.train import TrainConfig, evaluate, train
from hwbench.errors import UserError


class Blobs(torch.utils.data.Dataset):
    task, ignore_index, num_classes = "classification", -100, 2

    def __init__(self) -> None:
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(16, 3, 4, 4, generator=g)
        self.y = (self.x.mean((1, 2, 3)) > 0).long()

    def __len__(self) -> int:
        return 16

    def __getitem__(self, i: int):
        return self.x[i], int(self.y[i])


def _net() -> nn.Module:
    torch.manual_seed(3)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(64, 2))


def _dtypes(net: nn.Module) -> list[torch.dtype]:
    seen: list[torch.dtype] = []
    net[0].register_forward_hook(lambda _m, _i, out: seen.append(out.dtype))
    return seen


@pytest.mark.parametrize("bf16", [False, True])
def test_only_training_steps_run_in_bf16(bf16: bool) -> None:
    """The conv's output is bf16 in every training step with `bf16`, fp32 in PreciseBN, in evaluation
    and always without it; the weights stay fp32."""
    data, net = Blobs(), _net()
    seen = _dtypes(net)
    out = train(net, data, range(16), TrainConfig(epochs=2, batch_size=8, amp=False, bf16=bf16), show_progress=False)
    steps, precise_bn = seen[:out["iterations"]], seen[out["iterations"]:]
    assert out["iterations"] == 4 and out["bf16"] is bf16
    assert steps == [torch.bfloat16 if bf16 else torch.float32] * 4
    assert precise_bn == [torch.float32] * 2                      # two batches of 8, no autocast
    seen.clear()
    evaluate(net, data, show_progress=False, batch_size=16)
    assert seen == [torch.float32] and all(p.dtype == torch.float32 for p in net.parameters())


def test_bf16_changes_the_numbers_a_little() -> None:
    data = Blobs()
    nets = {b: _net() for b in (False, True)}
    for b, net in nets.items():
        train(net, data, range(16), TrainConfig(epochs=3, batch_size=8, amp=False, bf16=b), seed=1, show_progress=False)
    a, b = (torch.cat([p.detach().flatten() for p in nets[k].parameters()]) for k in (False, True))
    assert not torch.equal(a, b)                               # a different arithmetic ...
    assert (a - b).abs().max() < 0.05 * a.abs().max()          # ... of the same training


@pytest.mark.parametrize("native", [False, True])
def test_auto_resolves_by_the_cpu_and_is_part_of_the_identity(tmp_path, monkeypatch, native: bool) -> None:
    cfg_path = tmp_path / "exp.toml"
    cfg_path.write_text('surrogates = ["resnet20"]\ndeployment = ["resnet18"]\n[data]\nname = "digits"\n'
                        '[train.deployment]\nbf16 = "auto"\n')
    monkeypatch.setattr(precision, "native_bf16", lambda: native)
    cfg, lines = load_experiment(cfg_path)
    assert cfg.train.deployment.bf16 is native and cfg.train.surrogate.bf16 is False
    assert f"bf16 = {str(native).lower()}" in config_toml(without_seeds(cfg))   # experiment.toml pins the choice
    assert lines == [f"precision: bf16 = \"auto\" -> the deployment trainings' steps in "
                     f"{'bf16 autocast (this CPU has native bf16)' if native else 'fp32 (this CPU has no native bf16)'}"]
    monkeypatch.setattr(precision, "native_bf16", lambda: not native)
    other, _ = load_experiment(cfg_path)
    assert config_toml(without_seeds(other)) != config_toml(without_seeds(cfg))  # --resume on the other CPU: refused


def test_bad_values_are_one_line_errors(tmp_path) -> None:
    cfg_path = tmp_path / "exp.toml"
    cfg_path.write_text('surrogates = ["resnet20"]\ndeployment = ["resnet18"]\n[data]\nname = "digits"\n'
                        '[train.surrogate]\nbf16 = "yes"\n')
    with pytest.raises(UserError, match=r"train\.surrogate\.bf16: expected bool or 'auto', got str 'yes'"):
        load_experiment(cfg_path)
    with pytest.raises(UserError, match="train.bf16"):
        precision.resolve_bf16(1)
    assert precision.resolve_bf16(True) is True and precision.resolve_bf16(False) is False


def test_forced_bf16_without_native_bf16_warns_once(monkeypatch, caplog) -> None:
    monkeypatch.setattr(precision, "native_bf16", lambda: False)
    precision._warn_emulated.cache_clear()
    for _ in range(3):
        assert precision.resolve_bf16(True) is True
    assert [r.message for r in caplog.records].count(caplog.records[0].message) == 1 and len(caplog.records) == 1
    assert "emulated" in caplog.records[0].message
    precision._warn_emulated.cache_clear()


def test_plan_divides_only_the_training_cost_by_the_speedup() -> None:
    counts = [{"role": "deployment", "model": "m", "trainings": 1, "images_trained": 1000,
               "images_scored": 0, "images_evaluated": 500}]
    kw = dict(gmacs={"m": (10.0, 40.0)}, device="toy", precision="fp32", peak_tops=100.0, utilisation=0.5, seeds=1,
              schedule=Schedule(1, 1, 0), pool_size=10, val_size=500, train_hw=(8, 8), eval_hw=(16, 16))
    plan = estimate(counts, train_speedup={("deployment", "m"): 2.0}, **kw)
    macs = TRAIN_FACTOR * 10e9 * 1000 / 2.0 + 40e9 * 500       # 1.5e13 + 2e13
    assert plan.gpu_hours == pytest.approx(2 * macs / (100e12 * 0.5) / 3600)
    assert estimate(counts, train_speedup={("surrogate", "m"): 2.0}, **kw).gpu_hours == estimate(counts, **kw).gpu_hours


def test_host_plan_measures_the_bf16_speedup(tmp_path, capsys) -> None:
    """`--plan --device host` times a bf16 role's model in both precisions and says by how much it divided."""
    from al.cli import main

    if torch.cuda.is_available():
        pytest.skip("the host is costed on its GPU figure")
    cfg_path = tmp_path / "exp.toml"
    cfg_path.write_text('surrogates = ["resnet20"]\ndeployment = ["resnet18"]\nseeds = [0]\n[data]\nname = "digits"\n'
                        '[train.deployment]\nbf16 = true\nbatch_size = 4\n')
    assert main(["surrogate", str(cfg_path), "--plan", "--device", "host"]) == 0
    err = capsys.readouterr().err
    line = next(x for x in err.splitlines() if "bf16 training steps" in x)
    assert "bf16 training steps (deployment): resnet18's fp32 cost / " in line
    assert float(line.split("cost / ")[1].split(",")[0]) > 0
    assert "resnet20's" not in err


def test_train_resolves_an_unresolved_auto(monkeypatch) -> None:
    """A `TrainConfig` built in code with bf16 = "auto" follows the CPU at train time."""
    for native in (False, True):
        monkeypatch.setattr(precision, "native_bf16", lambda native=native: native)
        net = _net()
        seen = _dtypes(net)
        train(net, Blobs(), range(16), TrainConfig(batch_size=16, amp=False, bf16="auto"), show_progress=False)
        assert seen[0] == (torch.bfloat16 if native else torch.float32)


@pytest.mark.parametrize("native", [False, True])
def test_entropy_and_fleet_configs_pin_the_resolution(tmp_path, monkeypatch, native: bool) -> None:
    from al.config import PRESETS_DIR
    from al.experiments.entropy import load_entropy_config
    from al.fleet.config import load_fleet_config

    monkeypatch.setattr(precision, "native_bf16", lambda: native)
    text = (PRESETS_DIR / "entropy_demo.toml").read_text(encoding="utf-8").replace("[train]\n", "[train]\nbf16 = \"auto\"\n")
    (tmp_path / "entropy_x.toml").write_text(text)
    cfg, _ = load_entropy_config(tmp_path / "entropy_x.toml")
    assert cfg.train.bf16 is native                         # its identity is the resolved config's TOML
    fleet = (PRESETS_DIR / "fleet_demo.toml").read_text(encoding="utf-8").replace(
        "train = { epochs = 2, batch_size = 8, lr = 0.05 }", "train = { epochs = 2, batch_size = 8, lr = 0.05, bf16 = \"auto\" }")
    assert fleet.count('bf16 = "auto"') == 1                 # [evaluation]'s training only
    (tmp_path / "fleet_x.toml").write_text(fleet)
    cfg, ident = load_fleet_config(tmp_path / "fleet_x.toml")
    assert cfg.evaluation.train.bf16 is native and cfg.world.train.bf16 is False
    assert ident.endswith(f"# bf16 = \"auto\" resolved on this CPU: world.train false, evaluation.train "
                          f"{str(native).lower()}\n")               # the identity (its hash) records the choice
    _, plain = load_fleet_config("fleet_demo")
    assert "resolved on this CPU" not in plain


def test_the_report_summary_says_which_trainings_ran_in_bf16(tmp_path) -> None:
    from al.experiments.context import _precision_text

    base = 'surrogates = ["resnet20"]\ndeployment = ["resnet18"]\n[data]\nname = "digits"\n'
    (tmp_path / "a.toml").write_text(base + "[train.deployment]\nbf16 = true\n")
    (tmp_path / "b.toml").write_text(base)
    assert _precision_text(load_experiment(tmp_path / "a.toml")[0]) == (
        " Training steps of the deployment models in bf16 autocast (CPU; `[train] bf16`); all else fp32.")
    assert _precision_text(load_experiment(tmp_path / "b.toml")[0]) == ""
