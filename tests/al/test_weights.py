"""`weights` in run and experiment configs: checkpoints loaded into the backbone, named by SHA-256, bad files."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

import al.loop
import al.pretrain
from al.cli import main
from al.config import load_config
from al.experiments.config import load_experiment_config, run_config
from al.experiments.context import prepare_experiment
from al.weights import load, resolve
from hwbench.errors import UserError
from hwbench.models import create_model
from tests.al.test_pretrain import TINY

PRESETS = Path(__file__).parents[2] / "al" / "presets"


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    """A torchvision-format Res-20 classifier checkpoint (stride-16 layout) with non-default weights."""
    torch.manual_seed(7)
    model = create_model("resnet20", num_classes=8, imagenet_strides=True)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.5)
    path = tmp_path_factory.mktemp("ckpt") / "res20 [x].pth"
    torch.save(model.state_dict(), path)
    return path


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _smoke(tmp_path: Path, model_lines: str) -> Path:
    text = (PRESETS / "smoke.toml").read_text()
    text = text.replace('name = "deeplabv3plus_resnet20"\n', f'name = "deeplabv3plus_resnet20"\n{model_lines}\n')
    text = text.replace("cycles = 2", "cycles = 1")
    path = tmp_path / "cfg.toml"
    path.write_text(text)
    return path


def test_run_starts_from_the_checkpoint_and_names_it(tmp_path, ckpt, monkeypatch) -> None:
    starts = []

    def spy(model, ref):
        out = load(model, ref)
        starts.append({k: v.clone() for k, v in out.backbone.state_dict().items()})
        return out

    monkeypatch.setattr(al.loop, "load_weights", spy)
    out = tmp_path / "run"
    assert main(["run", str(_smoke(tmp_path, f'weights = "{ckpt}"')), "--out", str(out)]) == 0
    state = torch.load(ckpt, weights_only=True)
    assert len(starts) >= 2  # every model built (one fresh per cycle, as the paper; reloads) starts there
    for s in starts:
        assert all(torch.equal(s[k], state[k]) for k in s)
    resolved = load_config(out / "config.toml")
    assert resolved.model.weights == str(ckpt) and resolved.model.weights_sha256 == _sha(ckpt)
    saved = json.loads((out / "state.json").read_text())["weights"]
    assert saved == {"weights": str(ckpt), "path": str(ckpt.resolve()), "sha256": _sha(ckpt)}
    # the checkpoint changed: resuming is refused with one line
    changed = tmp_path / "changed.pth"
    changed.write_bytes(ckpt.read_bytes())
    torch.save({k: v + 1 if v.is_floating_point() else v for k, v in state.items()}, changed)
    with pytest.raises(UserError, match="SHA-256 .* not the .* this config pins"):
        resolve(str(changed), "deeplabv3plus_resnet20", sha256=_sha(ckpt))


def test_none_is_random_and_the_default(tmp_path) -> None:
    cfg = load_config("smoke")
    assert cfg.model.weights == "none" and cfg.model.weights_sha256 is None
    assert resolve("none", "deeplabv3plus_resnet20") is None
    model = create_model("deeplabv3plus_resnet20", num_classes=8)
    assert load(model, None) is model


def _bad_files(tmp_path: Path, ckpt: Path) -> dict[str, tuple[Path, str]]:
    rnd = tmp_path / "random.pth"
    rnd.write_bytes(bytes(range(256)) * 40)
    trunc = tmp_path / "truncated.pth"
    trunc.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    other = tmp_path / "resnet18.pth"
    torch.save(create_model("resnet18", num_classes=8).state_dict(), other)
    return {"random bytes": (rnd, "not a PyTorch checkpoint"), "truncated": (trunc, "not a PyTorch checkpoint"),
            "another backbone": (other, "does not fit the model"), "missing": (tmp_path / "nope.pth", "not found"),
            "a directory": (tmp_path, "is a directory")}


@pytest.mark.parametrize("case", ["random bytes", "truncated", "another backbone", "missing", "a directory"])
def test_bad_weight_files_are_one_line_errors_before_anything_is_written(tmp_path, ckpt, capsys, case) -> None:
    path, msg = _bad_files(tmp_path, ckpt)[case]
    out = tmp_path / "run"
    assert main(["run", str(_smoke(tmp_path, f'weights = "{path}"')), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: model.weights: ") and msg in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_bad_weights_entries(tmp_path, ckpt) -> None:
    with pytest.raises(UserError, match="64 lowercase hex digits"):
        resolve(str(ckpt), "deeplabv3plus_resnet20", sha256="abc")
    with pytest.raises(UserError, match='weights is "none"'):
        resolve("none", "deeplabv3plus_resnet20", sha256="0" * 64)
    with pytest.raises(UserError, match="give \"none\", \"pretrain\" or the path"):
        resolve("  ", "deeplabv3plus_resnet20")
    with pytest.raises(UserError, match="no pre-training for 'deeplabv3plus_x'"):
        resolve("pretrain", "deeplabv3plus_x")
    with pytest.raises(UserError, match=r"model\.weights: expected str"):
        load_config(_smoke(tmp_path, "weights = 3"))
    ref = resolve(str(ckpt), "deeplabv3plus_resnet20")
    copy = tmp_path / "copy.pth"
    copy.write_bytes(ckpt.read_bytes())
    moved = type(ref)(ref.spec, str(copy), ref.sha256)
    copy.write_bytes(copy.read_bytes()[:-10])  # changed after resolution
    with pytest.raises(UserError, match="changed"):
        load(create_model("deeplabv3plus_resnet20", num_classes=8), moved)


def test_pretrain_spec_uses_the_cache(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HWBENCH_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(al.pretrain, "RECIPE", TINY)
    ref = resolve("pretrain", "deeplabv3plus_mobilenetv3_small")
    assert ref.spec == "pretrain" and Path(ref.path).parent == tmp_path / "pretrain"
    assert ref.sha256 == _sha(Path(ref.path))
    again = resolve("pretrain", "mobilenetv3_small", sha256=ref.sha256)
    assert again == ref


def test_experiment_weights_per_model(tmp_path, ckpt) -> None:
    text = (PRESETS / "surrogate_smoke.toml").read_text()
    path = tmp_path / "exp.toml"
    path.write_text(text.replace('surrogates = [', f'weights = {{deeplabv3plus_resnet20 = "{ckpt}"}}\nsurrogates = ['))
    p = prepare_experiment(load_experiment_config(path))
    assert p.config.weights_sha256 == {"deeplabv3plus_resnet20": _sha(ckpt)}
    assert set(p.backend.weights) == {"deeplabv3plus_resnet20"}
    model = p.backend.new_model("deeplabv3plus_resnet20", init_seed=0)
    state = torch.load(ckpt, weights_only=True)
    assert all(torch.equal(v, state[k]) for k, v in model.backbone.state_dict().items())
    rc = run_config(p.config, "deeplabv3plus_resnet20", 0)  # the surrogate's AL run starts there too
    assert rc.model.weights == str(ckpt) and rc.model.weights_sha256 == _sha(ckpt)
    assert run_config(p.config, "deeplabv3plus_mobilenetv3_small", 0).model.weights == "none"
    path.write_text(text.replace('surrogates = [', 'weights = {deeplabv3plus_resnet99 = "none"}\nsurrogates = ['))
    with pytest.raises(UserError, match="'deeplabv3plus_resnet99' is not a model of this experiment"):
        prepare_experiment(load_experiment_config(path))


def test_entropy_config_weights(tmp_path, ckpt) -> None:
    from al.experiments.entropy import load_entropy_config
    from al.weights import resolve_models

    text = (PRESETS / "entropy_demo.toml").read_text()
    text = "\n".join(line for line in text.splitlines() if not line.startswith("weights ="))
    text = text.replace("seed = 0", f'seed = 0\nweights = "{ckpt}"', 1)
    path = tmp_path / "entropy.toml"
    path.write_text(text.replace('"deeplabv3plus_mobilenetv3_small", ', ""))
    cfg, _ = load_entropy_config(path)
    resolved, refs = resolve_models(cfg, ["deeplabv3plus_resnet20"])
    assert resolved.weights_sha256 == {"deeplabv3plus_resnet20": _sha(ckpt)} and refs["deeplabv3plus_resnet20"].path
    with pytest.raises(UserError, match=r"weights \(deeplabv3plus_resnet18\): .*does not fit the model"):
        resolve_models(cfg, cfg.models)  # a Res-20 checkpoint cannot start Res-18


def test_chain_only_models_are_resolved_only_for_a_chain(tmp_path, ckpt) -> None:
    """A matrix run must not load (or pre-train) the weights of a model only the chain trains."""
    from al.experiments.config import config_toml, without_seeds

    text = (PRESETS / "surrogate_smoke.toml").read_text()
    path = tmp_path / "exp.toml"
    missing = tmp_path / "not-there.pth"  # Res-18 is a chain model only
    path.write_text(text.replace('surrogates = [', f'weights = {{deeplabv3plus_resnet20 = "{ckpt}", '
                                                   f'deeplabv3plus_resnet18 = "{missing}"}}\nsurrogates = ['))
    cfg = load_experiment_config(path)
    matrix = prepare_experiment(cfg)
    assert set(matrix.backend.weights) == {"deeplabv3plus_resnet20"}
    with pytest.raises(UserError, match=r"weights \(deeplabv3plus_resnet18\)"):
        prepare_experiment(cfg, chain=True)
    torch.save(create_model("resnet18", num_classes=4).state_dict(), missing)
    chain = prepare_experiment(cfg, chain=True)
    assert set(chain.backend.weights) == {"deeplabv3plus_resnet20", "deeplabv3plus_resnet18"}
    # one experiment directory serves both: the identity leaves chain-only pins out
    assert config_toml(without_seeds(matrix.config)) == config_toml(without_seeds(chain.config))


def test_a_checkpoint_is_read_once_per_process_and_still_checked(tmp_path, ckpt, monkeypatch) -> None:
    import al.weights
    import hwbench.models.weights as hw_weights

    reads = []
    real = hw_weights.read_state_dict
    monkeypatch.setattr(hw_weights, "read_state_dict", lambda p: reads.append(str(p)) or real(p))
    monkeypatch.setattr(al.weights, "_STATES", {})
    copy = tmp_path / "copy.pth"
    copy.write_bytes(ckpt.read_bytes())
    ref = resolve(str(copy), "deeplabv3plus_resnet20")      # the fit check reads it ...
    models = [load(create_model("deeplabv3plus_resnet20", num_classes=3), ref) for _ in range(3)]
    assert reads == [str(copy.resolve())]                    # ... and the three loads reuse that read
    state = torch.load(ckpt, weights_only=True)
    for m in models:                                         # each got the file's tensors
        assert all(torch.equal(v, state[k]) for k, v in m.backbone.state_dict().items())
    assert all(torch.equal(v, state[k]) for k, v in al.weights._STATES[(ref.path, ref.sha256)].items())  # unmodified
    torch.save({k: v + 1 if v.is_floating_point() else v for k, v in state.items()}, copy)
    with pytest.raises(UserError, match="changed"):          # a changed file is refused, cached or not
        load(create_model("deeplabv3plus_resnet20", num_classes=3), ref)


def test_load_weights_from_a_given_state_equals_from_the_file(ckpt) -> None:
    from hwbench import load_weights
    from hwbench.models.weights import read_state_dict

    state = read_state_dict(ckpt)
    a = load_weights(create_model("deeplabv3plus_resnet20", num_classes=3), ckpt)
    b = load_weights(create_model("deeplabv3plus_resnet20", num_classes=3), ckpt, state=state)
    assert all(torch.equal(x, y) for x, y in zip(a.backbone.state_dict().values(), b.backbone.state_dict().values(),
                                                   strict=True))
    assert all(torch.equal(v, torch.load(ckpt, weights_only=True)[k]) for k, v in state.items())
