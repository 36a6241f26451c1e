"""File-backed datasets (Cityscapes, ADE20K, class folders) on tiny fake trees written with Pillow."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from al.data import build_dataset
from al.data.base import IMAGENET_MEAN, IMAGENET_STD, inside_root
from al.data.transforms import SegTrain, collate_segmentation
from hwbench.errors import UserError

H, W = 16, 32


def _png(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def _rgb(seed: int, h: int = H, w: int = W) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def make_cityscapes(root: Path, split: str = "train", n_per_city: int = 2) -> dict[str, np.ndarray]:
    """Two cities; label image columns hold hand-picked ids. Returns stem -> labelIds."""
    ids = np.array([0, 7, 8, 26, 24, 23, 33, 18, 255, 34, 1, 11], np.uint8)  # one id per column block
    out = {}
    for c, city in enumerate(("aachen", "bochum")):
        for i in range(n_per_city):
            stem = f"{city}_{i:06d}_000019"
            lab = np.broadcast_to(np.repeat(ids, W // len(ids) + 1)[:W], (H, W)).copy()
            lab = np.roll(lab, i + c, axis=1)
            _png(root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png", _rgb(10 * c + i))
            _png(root / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png", lab)
            out[stem] = lab
    return out


# --- Cityscapes ------------------------------------------------------------------------------------

def test_cityscapes_id_to_trainid(tmp_path: Path) -> None:
    labels = make_cityscapes(tmp_path, "val")
    ds = build_dataset("cityscapes", root=tmp_path, split="val")
    assert (ds.task, ds.num_classes, ds.ignore_index) == ("segmentation", 19, 255)
    assert len(ds) == 4 and ds.class_names[0] == "road" and ds.class_names[13] == "car"
    expected = {0: 255, 7: 0, 8: 1, 26: 13, 24: 11, 23: 10, 33: 18, 18: 255, 255: 255, 34: 255, 1: 255, 11: 2}
    for i in range(len(ds)):
        stem = ds.image_path(i).name.replace("_leftImg8bit.png", "")
        img, target = ds[i]
        assert img.dtype == torch.float32 and img.shape == (3, H, W)
        assert target.dtype == torch.int64 and target.shape == (H, W)
        raw = labels[stem]
        for stored, train_id in expected.items():
            if (raw == stored).any():
                assert (target.numpy()[raw == stored] == train_id).all(), (stored, train_id)


def test_cityscapes_eval_image_is_normalised_pixels(tmp_path: Path) -> None:
    make_cityscapes(tmp_path, "val")
    ds = build_dataset("cityscapes", root=tmp_path, split="val")
    img, _ = ds[0]
    raw = np.asarray(Image.open(ds.image_path(0)).convert("RGB")).astype(np.float32) / 255
    expected = (raw - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    np.testing.assert_allclose(img.permute(1, 2, 0).numpy(), expected, rtol=1e-5, atol=1e-5)


def test_cityscapes_train_augmentation_crops(tmp_path: Path) -> None:
    make_cityscapes(tmp_path, "train")
    ds = build_dataset("cityscapes", root=tmp_path, split="train", crop_size=[24, 24])
    torch.manual_seed(0)
    for i in range(len(ds)):
        img, target = ds[i]
        assert img.shape == (3, 24, 24) and target.shape == (24, 24)
        assert set(np.unique(target.numpy())) <= set(range(19)) | {255}


def test_cityscapes_missing_root_and_wrong_layout(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="needs a root"):
        build_dataset("cityscapes")
    with pytest.raises(UserError, match=r"does not exist.*leftImg8bit/train/<city>/\*_leftImg8bit.png"):
        build_dataset("cityscapes", root=tmp_path / "nope")
    (tmp_path / "leftImg8bit" / "train").mkdir(parents=True)
    with pytest.raises(UserError, match=r"gtFine/train is missing; expected leftImg8bit/train/<city>"):
        build_dataset("cityscapes", root=tmp_path)
    (tmp_path / "gtFine" / "train").mkdir(parents=True)
    with pytest.raises(UserError, match="no images in"):
        build_dataset("cityscapes", root=tmp_path)
    _png(tmp_path / "leftImg8bit/train/ulm/ulm_000000_000019_leftImg8bit.png", _rgb(0))
    with pytest.raises(UserError, match="has no label .*ulm_000000_000019_gtFine_labelIds.png"):
        build_dataset("cityscapes", root=tmp_path)
    with pytest.raises(UserError, match="unknown split 'testing'"):
        build_dataset("cityscapes", root=tmp_path, split="testing")


def test_cityscapes_corrupt_image_names_the_file(tmp_path: Path) -> None:
    make_cityscapes(tmp_path, "val")
    bad = tmp_path / "leftImg8bit/val/aachen/aachen_000001_000019_leftImg8bit.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    ds = build_dataset("cityscapes", root=tmp_path, split="val")
    idx = [ds.image_path(i) for i in range(len(ds))].index(bad)
    with pytest.raises(UserError, match=re.escape(f"cannot decode image {bad}")):
        ds[idx]
    with pytest.raises(UserError, match="aachen_000001_000019_leftImg8bit.png"):
        build_dataset("cityscapes", root=tmp_path, split="val", validate=True)


def test_cityscapes_rgb_label_rejected(tmp_path: Path) -> None:
    make_cityscapes(tmp_path, "val")
    lab = tmp_path / "gtFine/val/aachen/aachen_000000_000019_gtFine_labelIds.png"
    _png(lab, _rgb(3))
    ds = build_dataset("cityscapes", root=tmp_path, split="val")
    with pytest.raises(UserError, match="mode 'RGB'"):
        ds[0]


def test_manifest_selects_and_never_escapes(tmp_path: Path) -> None:
    make_cityscapes(tmp_path, "val")
    rel = "leftImg8bit/val/bochum/bochum_000001_000019_leftImg8bit.png"
    (tmp_path / "subset.txt").write_text(f"# chosen frames\n{rel}\n")
    ds = build_dataset("cityscapes", root=tmp_path, split="val", manifest=tmp_path / "subset.txt")
    assert len(ds) == 1 and ds.image_path(0) == tmp_path / rel
    for bad in ("../outside.png", "/etc/passwd", "leftImg8bit/../../x.png"):
        (tmp_path / "bad.txt").write_text(bad + "\n")
        with pytest.raises(UserError, match="escapes the dataset root"):
            build_dataset("cityscapes", root=tmp_path, split="val", manifest=tmp_path / "bad.txt")
    assert inside_root(tmp_path, "a/./b/../c.png", "m") == tmp_path / "a" / "c.png"


# --- ADE20K ----------------------------------------------------------------------------------------

def make_ade(base: Path, sub: str = "validation", n: int = 3) -> list[np.ndarray]:
    labels = []
    for i in range(n):
        h, w = H + 4 * i, W - 2 * i  # different sizes, as in ADE20K
        lab = np.random.default_rng(i).integers(0, 151, (h, w)).astype(np.uint8)
        lab[0, :4] = (0, 1, 150, 151)
        Image.fromarray(_rgb(i, h, w)).save(_mk(base / "images" / sub / f"ADE_val_{i:08d}.jpg"), quality=95)
        _png(base / "annotations" / sub / f"ADE_val_{i:08d}.png", lab)
        labels.append(lab)
    return labels


def _mk(p: Path) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    return p


def test_ade20k_labels_shift_and_ignore(tmp_path: Path) -> None:
    labels = make_ade(tmp_path / "ADEChallengeData2016")
    ds = build_dataset("ade20k", root=tmp_path, split="val")  # parent of ADEChallengeData2016 works
    assert (ds.num_classes, ds.ignore_index, len(ds)) == (150, 255, 3)
    assert ds.class_names[0] == "wall" and ds.class_names[149] == "flag"
    for i, raw in enumerate(labels):
        img, target = ds[i]
        assert img.shape[1:] == raw.shape
        t = target.numpy()
        assert t[0, 0] == 255 and t[0, 1] == 0 and t[0, 2] == 149 and t[0, 3] == 255
        expected = np.where((raw == 0) | (raw > 150), 255, raw.astype(np.int64) - 1)
        np.testing.assert_array_equal(t, expected)
    # the folder itself works as root too, and differently sized images batch with ignore padding
    ds2 = build_dataset("ade20k", root=tmp_path / "ADEChallengeData2016", split="val")
    x, y = collate_segmentation([ds2[0], ds2[2]])
    assert x.shape == (2, 3, H + 8, W) and (y[0, H:] == 255).all() and (x[0, :, H:] == 0).all()


def test_ade20k_wrong_layout(tmp_path: Path) -> None:
    (tmp_path / "images" / "training").mkdir(parents=True)
    with pytest.raises(UserError, match=r"annotations/training is missing; expected .*images/training/\*.jpg"):
        build_dataset("ade20k", root=tmp_path)
    make_ade(tmp_path, "training", n=1)
    (tmp_path / "annotations/training/ADE_val_00000000.png").unlink()
    with pytest.raises(UserError, match="has no annotation"):
        build_dataset("ade20k", root=tmp_path)


# --- class folders ------------------------------------------------------------------------------

def make_folder(root: Path) -> None:
    for split, n in (("train", 3), ("val", 2)):
        for c, cls in enumerate(("zebra", "ant", "cat")):
            for i in range(n):
                ext = ("jpg", "JPEG", "png")[i % 3]
                fmt = {"jpg": "JPEG", "JPEG": "JPEG", "png": "PNG"}[ext]
                Image.fromarray(_rgb(c * 10 + i, 40, 60)).save(_mk(root / split / cls / f"im{i}.{ext}"), format=fmt)
    (root / "train" / "cat" / "notes.txt").write_text("not an image")


def test_folder_classes_sorted_and_shapes(tmp_path: Path) -> None:
    make_folder(tmp_path)
    ds = build_dataset("folder", root=tmp_path, split="train", image_size=32)
    assert ds.class_names == ("ant", "cat", "zebra") and ds.num_classes == 3 and ds.task == "classification"
    assert len(ds) == 9
    assert [ds.samples[i][1] for i in range(len(ds))] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    torch.manual_seed(0)
    img, target = ds[4]
    assert img.shape == (3, 32, 32) and target == 1 and isinstance(target, int)
    val = build_dataset("folder", root=tmp_path, split="val", image_size=32)
    assert len(val) == 6 and val.class_names == ds.class_names and val[0][0].shape == (3, 32, 32)


def test_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"train is missing; expected train/<class>/\*.jpg"):
        build_dataset("folder", root=tmp_path)
    (tmp_path / "train" / "a").mkdir(parents=True)
    with pytest.raises(UserError, match="no images under"):
        build_dataset("folder", root=tmp_path)
    make_folder(tmp_path)
    (tmp_path / "val" / "dog").mkdir()
    with pytest.raises(UserError, match="dog of val are not in train"):
        build_dataset("folder", root=tmp_path, split="val")
    bad = tmp_path / "train" / "ant" / "im0.jpg"
    bad.write_bytes(b"garbage")
    ds = build_dataset("folder", root=tmp_path, split="train")
    with pytest.raises(UserError, match=re.escape(f"cannot decode image {bad}")):
        ds[0]


def test_seg_train_transform_pads_with_ignore() -> None:
    img = np.full((8, 8, 3), 255, np.uint8)
    lab = np.full((8, 8), 3, np.uint8)
    torch.manual_seed(0)
    x, y = SegTrain(crop_size=(20, 20), scale_range=(1.0, 1.0), flip=False)(img, lab)
    assert x.shape == (3, 20, 20) and y.shape == (20, 20)
    assert int((y == 3).sum()) == 64 and int((y == 255).sum()) == 400 - 64
    pad = x[:, y == 255]
    assert torch.allclose(pad, torch.zeros_like(pad))  # padded with the mean (0 after normalising)


def test_folder_small_image_settings(tmp_path) -> None:
    from PIL import Image

    from al.data import build_dataset

    for split in ("train", "val"):
        for cls in ("a", "b"):
            d = tmp_path / split / cls
            d.mkdir(parents=True)
            arr = np.zeros((28, 28, 3), dtype=np.uint8)
            arr[0, 0] = 255                                   # a border pixel an ImageNet centre crop would cut
            Image.fromarray(arr).save(d / "x.png")
    ds = build_dataset("folder", root=str(tmp_path), split="val", image_size=28, eval_crop=False)
    x, _ = ds[0]
    assert x.shape == (3, 28, 28) and float(x[0, 0, 0]) > float(x[0, 5, 5])   # kept, unresized
    cropped = build_dataset("folder", root=str(tmp_path), split="val", image_size=28)
    assert float(cropped[0][0][0, 0, 0]) == pytest.approx(float(x[0, 5, 5]))  # 32 px resize + crop drops it
    tr = build_dataset("folder", root=str(tmp_path), split="train", image_size=28, crop_scale=[0.64, 1.0])
    assert tr.transform.scale == (0.64, 1.0)
    with pytest.raises(UserError, match="crop_scale must be"):
        build_dataset("folder", root=str(tmp_path), crop_scale=[0.5, 1.5])
