"""`al pretrain`: crops, torchvision-format checkpoints that load into the DeepLab backbones, the cache."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch

from al.cli import main as al_main
from al.data.drives import render_drive
from al.pretrain import Recipe, backbone_of, pretrain
from al.pretrain.crops import make_crops
from hwbench import load_weights
from hwbench.errors import UserError
from hwbench.models import create_model

TINY = Recipe(crop=16, frame_size=(32, 64), drive_frames=4, train_drives=2, train_crops=48, heldout_drives=1,
              heldout_crops=16, epochs=1, batch_size=16)


def test_crops_are_centred_on_their_class_and_balanced() -> None:
    ds = make_crops(3, 64, crop=8, frame_size=(32, 64), drives=range(2), drive_frames=3)
    x, y = ds.tensors()
    assert x.shape == (64, 3, 8, 8) and ds.task == "classification" and ds.num_classes == 8
    counts = np.bincount(y.numpy(), minlength=8)
    present = [k for k in range(8) if any((render_drive(3, "pretrain", d, (32, 64), 3)[1] == k).any()
                                          for d in range(2))]
    assert sorted(np.flatnonzero(counts)) == present and counts[present].max() - counts[present].min() <= 1
    # every crop is a window of a pretrain frame whose centre pixel has the crop's class (brute force)
    frames = [render_drive(3, "pretrain", d, (32, 64), 3) for d in range(2)]
    imgs = np.concatenate([f[0] for f in frames])
    labs = np.concatenate([f[1] for f in frames])
    from al.data.base import IMAGENET_MEAN, IMAGENET_STD

    raw = np.round((x.permute(0, 2, 3, 1).numpy() * IMAGENET_STD + IMAGENET_MEAN) * 255).astype(np.uint8)
    pad = np.pad(imgs, ((0, 0), (4, 4), (4, 4), (0, 0)), mode="edge")
    for i in range(0, 64, 7):
        hits = [(f, r, c) for f in range(len(imgs)) for r in range(32) for c in range(64)
                if labs[f, r, c] == y[i] and np.array_equal(pad[f, r:r + 8, c:c + 8], raw[i])]
        assert hits, i


def test_checkpoint_is_torchvision_format_and_loads_into_the_backbone(tmp_path) -> None:
    entries = pretrain(["deeplabv3plus_resnet20", "mobilenetv3_small"], recipe=TINY, cache_dir=tmp_path, jobs=1)
    assert [e["backbone"] for e in entries] == ["resnet20", "mobilenetv3_small"]
    for e, classifier in zip(entries, ("resnet20", "mobilenetv3_small"), strict=True):
        state = torch.load(e["path"], weights_only=True)
        # the classifier's own keys (the zoo's ResNet / MobileNetV3 keys are torchvision's); Res-20 in the
        # stride-16 layout of the DeepLab backbone
        extra = {"imagenet_strides": True} if classifier == "resnet20" else {}
        assert list(state) == list(create_model(classifier, num_classes=8, **extra).state_dict())
        assert load_weights(create_model(classifier, num_classes=8, **extra), e["path"]) is not None
        assert hashlib.sha256(open(e["path"], "rb").read()).hexdigest() == e["sha256"]
        seg = load_weights(create_model(f"deeplabv3plus_{classifier}", num_classes=8), e["path"])
        own = seg.backbone.state_dict()
        head = tuple(seg.backbone.classifier_prefixes)
        assert set(own) == {k for k in state if not k.startswith(head)}
        assert all(torch.equal(own[k], state[k]) for k in own)
        meta = json.loads((tmp_path / "pretrain" / e["file"].replace(".pth", ".json")).read_text())
        assert meta["sha256"] == e["sha256"] and meta["recipe"]["crop"] == 16 and not e["cached"]


def test_cache_hits_misses_and_determinism(tmp_path) -> None:
    first = pretrain(["resnet20"], recipe=TINY, cache_dir=tmp_path / "a", jobs=1)[0]
    again = pretrain(["resnet20"], recipe=TINY, cache_dir=tmp_path / "a", jobs=1)[0]
    assert again["cached"] and again["sha256"] == first["sha256"] and again["path"] == first["path"]
    other = pretrain(["resnet20"], recipe=TINY, cache_dir=tmp_path / "b", jobs=1)[0]
    assert other["sha256"] == first["sha256"]  # same request, another cache: bit-identical checkpoint
    seed1 = pretrain(["resnet20"], recipe=TINY, seed=1, cache_dir=tmp_path / "a", jobs=1)[0]
    assert seed1["path"] != first["path"] and seed1["sha256"] != first["sha256"]
    # a damaged checkpoint is not a hit: it is trained again
    with open(first["path"], "r+b") as f:
        f.truncate(100)
    redone = pretrain(["resnet20"], recipe=TINY, cache_dir=tmp_path / "a", jobs=1)[0]
    assert not redone["cached"] and redone["sha256"] == first["sha256"]
    meta = first["path"].replace(".pth", ".json")
    for junk in (b"\x8f\xff\x00 random", b'{"sha256": NaN}', b'["not", "a", "dict"]'):  # damaged metadata: a miss
        with open(meta, "wb") as f:
            f.write(junk)
        again = pretrain(["resnet20"], recipe=TINY, cache_dir=tmp_path / "a", jobs=1)[0]
        assert not again["cached"] and again["sha256"] == first["sha256"]
    assert not [p for p in (tmp_path / "a" / "pretrain").iterdir() if p.name.startswith(".")]


def test_names_and_cli_errors(tmp_path, capsys) -> None:
    assert backbone_of("deeplabv3plus_xception65") == "xception65" and backbone_of("resnet18") == "resnet18"
    with pytest.raises(UserError, match="no pre-training for 'vgg16'; backbones: resnet20"):
        backbone_of("vgg16")
    for argv, msg in ((["pretrain", "vgg16"], "no pre-training for 'vgg16'"),
                      (["pretrain", "--all", "resnet20"], "not both"),
                      (["pretrain", "--jobs", "0"], "--jobs must be >= 1")):
        assert al_main([*argv, "--cache-dir", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and msg in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "pretrain").exists()
