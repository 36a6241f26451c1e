"""Embedded datasets (synthetic_streets, digits) and the registry."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from al.data import build_dataset, list_datasets
from al.data.base import IMAGENET_MEAN, IMAGENET_STD
from al.data.synthetic import CLASS_NAMES, PERSON, POLE, frame, generate
from hwbench.errors import UserError


@pytest.fixture(scope="module")
def streets():
    return build_dataset("synthetic_streets", split="train", n=200)


def test_registry_names_and_errors() -> None:
    assert list_datasets() == ["ade20k", "cityscapes", "digits", "folder", "idx", "synthetic_streets"]
    with pytest.raises(UserError, match="unknown dataset 'citiscapes'; known: ade20k, cityscapes, digits"):
        build_dataset("citiscapes")
    with pytest.raises(UserError, match="unknown option.*'crop'; known: n, size, seed"):
        build_dataset("synthetic_streets", crop=3)
    with pytest.raises(UserError, match="takes no root"):
        build_dataset("synthetic_streets", root="/data")
    with pytest.raises(UserError, match="unknown split 'test'; known: train, val"):
        build_dataset("digits", split="test")
    with pytest.raises(UserError, match="unknown split 'pool'; known: train, val, test"):
        build_dataset("synthetic_streets", split="pool")


def test_synthetic_contract(streets) -> None:
    ds = streets
    assert (ds.task, ds.num_classes, ds.ignore_index, len(ds)) == ("segmentation", 8, 255, 200)
    assert ds.class_names == CLASS_NAMES and CLASS_NAMES[7] == "pole/sign"
    img, target = ds[3]
    assert img.dtype == torch.float32 and img.shape == (3, 64, 128)
    assert target.dtype == torch.int64 and target.shape == (64, 128)
    x, y = ds.tensors()
    assert x.shape == (200, 3, 64, 128) and y.shape == (200, 64, 128)
    assert torch.equal(x[3], img) and torch.equal(y[3], target)
    # images are normalised uint8 renderings
    raw, lab = ds.raw(3)
    expected = (raw.astype(np.float32) / 255 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    np.testing.assert_allclose(img.permute(1, 2, 0).numpy(), expected, atol=1e-5)
    np.testing.assert_array_equal(lab, target.numpy())


def test_synthetic_deterministic_and_index_local() -> None:
    a_img, a_lab = generate(0, "train", 30, (64, 128))
    b_img, b_lab = generate(0, "train", 30, (64, 128))
    assert np.array_equal(a_img, b_img) and np.array_equal(a_lab, b_lab)
    # frame i depends on (seed, split, i, size, drive length) only, not on the pool size
    img16, lab16 = frame(0, "train", 16, (64, 128))
    assert np.array_equal(img16, a_img[16]) and np.array_equal(lab16, a_lab[16])
    short_img, _ = generate(0, "train", 17, (64, 128))  # a split cut inside drive 1
    assert np.array_equal(short_img, a_img[:17])
    c_img, _ = generate(1, "train", 5, (64, 128))
    v_img, _ = generate(0, "val", 5, (64, 128))
    assert not np.array_equal(a_img[:5], c_img) and not np.array_equal(a_img[:5], v_img)
    big, big_lab = generate(0, "train", 2, (128, 256))
    assert big.shape == (2, 128, 256, 3) and big_lab.max() < 8


def test_synthetic_classes_present_and_rare(streets) -> None:
    _, y = streets.tensors()
    present = torch.stack([(y == k).flatten(1).any(1) for k in range(8)], 1).numpy()  # (N, 8)
    assert present.any(0).all()  # all 8 classes occur in the set
    assert present[:, [0, 1, 4]].all()  # road, sidewalk, sky in every image
    img_frac = present.mean(0)
    for k in (PERSON, POLE):  # rare classes: in a minority of images and few pixels
        assert 0.05 < img_frac[k] < 0.4, (CLASS_NAMES[k], img_frac[k])
    pix_frac = np.bincount(y.flatten().numpy(), minlength=8) / y.numel()
    assert pix_frac[PERSON] < 0.01 and pix_frac[POLE] < 0.01
    assert pix_frac[[0, 1, 3, 4]].min() > 0.05


def test_synthetic_statistics_vary(streets) -> None:
    x, _ = streets.tensors()
    mean = x.mean((1, 2, 3))
    std = x.flatten(1).std(1)
    assert float(mean.std()) > 0.2 and float(std.std()) > 0.05  # lighting and contrast vary
    assert len({bytes(x[i].numpy()) for i in range(len(x))}) == len(x)  # no two images alike


def test_synthetic_cached_and_validated() -> None:
    a = build_dataset("synthetic_streets", split="val", n=10)
    b = build_dataset("synthetic_streets", split="val", n=10)
    assert a.tensors()[0] is b.tensors()[0]
    with pytest.raises(UserError, match="size must be"):
        build_dataset("synthetic_streets", size=[8, 8])


def test_digits() -> None:
    tr = build_dataset("digits", split="train")
    va = build_dataset("digits", split="val")
    assert (tr.task, tr.num_classes, len(tr), len(va)) == ("classification", 10, 1438, 359)
    img, target = tr[0]
    assert img.shape == (3, 32, 32) and isinstance(target, int) and 0 <= target < 10
    chans = [img[c] * IMAGENET_STD[c] + IMAGENET_MEAN[c] for c in range(3)]  # grey: equal channels
    assert torch.allclose(chans[0], chans[1], atol=1e-5) and torch.allclose(chans[0], chans[2], atol=1e-5)
    x, y = tr.tensors()
    # deterministic split, disjoint, covering all 1,797 images
    from sklearn.datasets import load_digits

    from al.data.digits import split_indices

    targets = load_digits().target
    per_class = np.bincount(targets)  # stratified: each class loses round(20 %) to val
    np.testing.assert_array_equal(torch.bincount(y, minlength=10).numpy(), per_class - np.round(per_class * 0.2))
    s1, s2 = split_indices(targets, 0.2, 0), split_indices(targets, 0.2, 0)
    assert np.array_equal(s1["train"], s2["train"]) and np.array_equal(s1["val"], s2["val"])
    assert len(np.union1d(s1["train"], s1["val"])) == 1797 and not np.intersect1d(s1["train"], s1["val"]).size
    # the 8x8 image survives the upsampling: pooling 32x32 back to 8x8 matches the original
    raw = load_digits().images[s1["train"][0]] / 16.0
    pix = img[0] * IMAGENET_STD[0] + IMAGENET_MEAN[0]
    pooled = torch.nn.functional.avg_pool2d(pix[None, None], 4)[0, 0].numpy()
    assert np.abs(pooled - raw).max() < 0.25
    assert build_dataset("digits", size=8).tensors()[0].shape[-1] == 8
