"""`idx` reader: small IDX files written here by hand (struct, not the reader's code), plain and gzip."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from al.data import build_dataset
from al.data.base import IMAGENET_MEAN, IMAGENET_STD
from al.data.idx import load_split, pad_crop_flip, read_idx
from hwbench.errors import UserError


def idx_bytes(arr: np.ndarray) -> bytes:
    """IDX encoding per LeCun's spec: 0, 0, type 0x08, ndim, big-endian uint32 dims, then the bytes."""
    return bytes([0, 0, 8, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.astype(np.uint8).tobytes()


def write_set(root: Path, images: dict[str, np.ndarray], labels: dict[str, np.ndarray], *, gz: bool) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for split in ("train", "t10k"):
        for kind, arr in (("images-idx3", images[split]), ("labels-idx1", labels[split])):
            data = idx_bytes(arr)
            name = f"{split}-{kind}-ubyte"
            if gz:
                (root / f"{name}.gz").write_bytes(gzip.compress(data))
            else:
                (root / name).write_bytes(data)
    load_split.cache_clear()
    return root


@pytest.fixture()
def tiny(tmp_path: Path):
    rng = np.random.default_rng(0)
    images = {"train": rng.integers(0, 256, size=(12, 6, 6)), "t10k": rng.integers(0, 256, size=(5, 6, 6))}
    labels = {"train": np.arange(12) % 3, "t10k": np.array([2, 1, 0, 1, 2])}
    return images, labels


@pytest.mark.parametrize("gz", [False, True])
def test_reads_pixels_and_labels_exactly(tmp_path: Path, tiny, gz: bool) -> None:
    images, labels = tiny
    root = write_set(tmp_path / "d", images, labels, gz=gz)
    ds = build_dataset("idx", root=str(root), split="train", size=8)
    assert (len(ds), ds.num_classes, ds.task, ds.class_names) == (12, 3, "classification", ("0", "1", "2"))
    x, y = ds.tensors()
    assert x.shape == (12, 3, 8, 8) and y.tolist() == labels["train"].tolist()
    raw = load_split(str(root.resolve()), "", "train")[0]
    assert np.array_equal(raw, images["train"])
    # native size: each channel is (pixel / 255 - mean_c) / std_c, computed by hand
    native = build_dataset("idx", root=str(root), split="test")
    img, target = native[4]
    assert target == 2 and img.shape == (3, 6, 6)
    for c in range(3):
        want = (images["t10k"][4] / 255.0 - IMAGENET_MEAN[c]) / IMAGENET_STD[c]
        assert torch.allclose(img[c], torch.tensor(want, dtype=torch.float32), atol=1e-6)
    assert len(build_dataset("idx", root=str(root), split="val")) == 5  # val = the t10k files


def test_each_bad_file_is_named(tmp_path: Path, tiny) -> None:
    images, labels = tiny
    root = write_set(tmp_path / "d", images, labels, gz=False)
    img = root / "train-images-idx3-ubyte"
    good = img.read_bytes()
    img.write_bytes(good[:-7])
    with pytest.raises(UserError, match=r"train-images-idx3-ubyte is truncated: .* \(expected 448\)"):
        read_idx(img, ndim=3)
    img.write_bytes(good + b"\0")
    with pytest.raises(UserError, match="longer than its header says"):
        read_idx(img, ndim=3)
    img.write_bytes(b"\x89PNG" + good[4:])
    with pytest.raises(UserError, match="train-images-idx3-ubyte is not an IDX file"):
        read_idx(img, ndim=3)
    img.write_bytes(bytes([0, 0, 0x0D, 3]) + good[4:])  # float elements
    with pytest.raises(UserError, match=r"element type 0x0d"):
        read_idx(img, ndim=3)
    with pytest.raises(UserError, match="with 1 dimensions; expected unsigned bytes .0x08. with 3"):
        read_idx(root / "train-labels-idx1-ubyte", ndim=3)  # a label file where images belong
    img.write_bytes(good)
    (root / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(labels["t10k"][:4]))
    load_split.cache_clear()
    with pytest.raises(UserError, match="holds 5 images but .*t10k-labels-idx1-ubyte 4 labels"):
        build_dataset("idx", root=str(root), split="test")
    (root / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(UserError, match=r"t10k-labels-idx1-ubyte\[.gz\] is missing"):
        build_dataset("idx", root=str(root), split="test")
    gzpath = tmp_path / "bad" / "train-images-idx3-ubyte.gz"
    gzpath.parent.mkdir()
    gzpath.write_bytes(gzip.compress(good)[:-10])
    with pytest.raises(UserError, match="cannot read IDX file .*train-images-idx3-ubyte.gz"):
        read_idx(gzpath, ndim=3)
    with pytest.raises(UserError, match="needs a root directory"):
        build_dataset("idx", split="train")


def test_options_checked(tmp_path: Path, tiny) -> None:
    images, labels = tiny
    root = write_set(tmp_path / "d", images, labels, gz=True)
    with pytest.raises(UserError, match="num_classes = 2 but the labels go up to 2"):
        build_dataset("idx", root=str(root), num_classes=2)
    with pytest.raises(UserError, match="class_names lists 2 names for 3 classes"):
        build_dataset("idx", root=str(root), class_names=["a", "b"])
    with pytest.raises(UserError, match="pad must be in 0..3"):
        build_dataset("idx", root=str(root), pad=4)
    aug = build_dataset("idx", root=str(root), augment=True)
    assert not hasattr(aug, "tensors")  # augmented samples go through the per-sample path


def test_pad_crop_flip_is_a_shifted_window() -> None:
    x = torch.arange(2 * 4 * 4, dtype=torch.float32).reshape(2, 4, 4) + 1
    torch.manual_seed(3)
    for _ in range(20):
        y = pad_crop_flip(x, 2, flip=True)
        assert y.shape == x.shape
        # every output is a 4x4 window of the zero-padded (optionally mirrored) input
        found = False
        for src in (x, x.flip(-1)):
            padded = torch.nn.functional.pad(src, (2, 2, 2, 2))
            for t in range(5):
                for left in range(5):
                    found |= bool(torch.equal(padded[:, t:t + 4, left:left + 4], y))
        assert found
    assert torch.equal(pad_crop_flip(x, 0, flip=False), x)


@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").is_dir(), reason="dataset-fashion-mnist not installed")
def test_debian_fashion_mnist() -> None:
    ds = build_dataset("idx", root="/usr/share/datasets/fashion-mnist", split="test")
    assert len(ds) == 10_000 and ds.num_classes == 10 and ds.class_names[7] == "Sneaker"


def test_cli_truncated_file_one_line_nothing_written(tmp_path: Path, tiny, capsys) -> None:
    from al.cli import main

    images, labels = tiny
    root = write_set(tmp_path / "d", images, labels, gz=True)
    gz = root / "t10k-images-idx3-ubyte.gz"
    gz.write_bytes(gzip.compress(gzip.decompress(gz.read_bytes())[:-5]))
    load_split.cache_clear()
    cfg = tmp_path / "run.toml"
    cfg.write_text(f'seed = 0\nthreads = 1\ndevice = "cpu"\n[data]\nname = "idx"\nroot = "{root}"\n'
                   '[model]\nname = "resnet20"\n[al]\ninitial_fraction = 0.25\ncycle_fraction = 0.25\ncycles = 1\n'
                   '[train]\nepochs = 1\nbatch_size = 4\n')
    assert main(["run", str(cfg), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "t10k-images-idx3-ubyte.gz is truncated" in err[0]
    assert not (tmp_path / "out").exists()


def test_augmented_pool_evaluates_on_plain_images(tmp_path: Path, tiny) -> None:
    """`[data.options] augment = true` crops and flips the training pool only: the validation split and
    the scoring view are the images as they are (the same tensors as a reader without augmentation)."""
    from al.config import load_config
    from al.prepare import prepare

    images, labels = tiny
    root = write_set(tmp_path / "d", images, labels, gz=False)
    cfg = tmp_path / "run.toml"
    cfg.write_text(f'seed = 0\nthreads = 1\ndevice = "cpu"\n[data]\nname = "idx"\nroot = "{root}"\n'
                   'options = { augment = true, pad = 2, flip = true }\n'
                   '[model]\nname = "resnet20"\n[al]\ninitial_fraction = 0.25\ncycle_fraction = 0.25\ncycles = 1\n'
                   '[train]\nepochs = 1\nbatch_size = 4\n')
    p = prepare(load_config(cfg))
    plain = build_dataset("idx", root=str(root), split="test")
    assert p.pool.augment and not p.val.augment
    for i in range(len(plain)):
        torch.manual_seed(i)  # an augmented view would crop / flip differently per draw
        assert torch.equal(p.val[i][0], plain[i][0])
