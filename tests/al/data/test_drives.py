"""The embedded drives: split by drive, near-duplicate statistics, determinism, stream and frame directories."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from al.cli import main as al_main
from al.data import build_dataset
from al.data.drive_io import read_frames, stream, write_frames
from al.data.drive_stats import (
    NEAR_DUP_LABEL,
    NEAR_DUP_THUMB,
    class_frequencies,
    near_duplicate_rate,
    thumbnails,
)
from al.data.drives import RARE_SCENES, drive_info, render_drive
from al.data.synthetic import generate
from hwbench.errors import UserError

SIZE = (32, 64)


def _thumb_brute(img: np.ndarray) -> np.ndarray:
    """8x16 thumbnail by explicit loops over the blocks (the oracle for `thumbnails`)."""
    h, w, _ = img.shape
    by, bx = h // 8, w // 16
    out = np.zeros((8, 16, 3))
    for i in range(8):
        for j in range(16):
            out[i, j] = img[i * by:(i + 1) * by, j * bx:(j + 1) * bx].reshape(-1, 3).mean(0) / 255.0
    return out


def _near_dup_brute(img_a, lab_a, img_b, lab_b) -> bool:
    """The definition, pair by pair: images are arrays or precomputed brute-force thumbnails."""
    ta = img_a if img_a.shape == (8, 16, 3) else _thumb_brute(img_a)
    tb = img_b if img_b.shape == (8, 16, 3) else _thumb_brute(img_b)
    dist = float(np.mean(np.abs(ta - tb)))
    return dist <= NEAR_DUP_THUMB and float(np.mean(lab_a == lab_b)) >= NEAR_DUP_LABEL


def test_splits_are_sets_of_drives_never_frames() -> None:
    splits = {s: build_dataset("synthetic_streets", split=s, n=n, size=SIZE, drive_frames=6)
              for s, n in (("train", 30), ("val", 14), ("test", 12))}
    ids = {s: ds.drive_ids for s, ds in splits.items()}
    assert len(splits["val"].drives) == 3 and splits["val"].drives[-1].n_frames == 6  # 14 = 6 + 6 + 2
    for s, arr in ids.items():
        # each drive's frames are consecutive, numbered 0.. within the drive, timestamps k / fps
        for d in np.unique(arr):
            where = np.flatnonzero(arr == d)
            assert np.array_equal(where, np.arange(where[0], where[-1] + 1))
            np.testing.assert_array_equal(splits[s].frame_indices[where], np.arange(where.size))
            np.testing.assert_allclose(splits[s].timestamps_s[where], np.arange(where.size) / 10.0)
    assert not set(ids["train"]) & set(ids["val"]) and not set(ids["train"]) & set(ids["test"])
    assert not set(ids["val"]) & set(ids["test"])
    # content: no held-out frame is a near-duplicate of any pool frame (brute force over all pairs),
    # while consecutive pool frames of a drive are
    pool_img, pool_lab = generate(0, "train", 30, SIZE, 6)
    pool_thumbs = [_thumb_brute(x) for x in pool_img]
    for s in ("val", "test"):
        img, lab = generate(0, s, len(splits[s]), SIZE, 6)
        for i in range(len(img)):
            t = _thumb_brute(img[i])
            assert not any(_near_dup_brute(t, lab[i], pool_thumbs[j], pool_lab[j]) for j in range(len(pool_img)))
    assert _near_dup_brute(pool_img[0], pool_lab[0], pool_img[1], pool_lab[1])
    info = splits["test"].frame_info(7)
    assert info["drive_id"] == "test-00001" and info["frame_index"] == 1 and info["timestamp_s"] == pytest.approx(0.1)


def test_near_duplicate_rate_matches_brute_force() -> None:
    img, lab = generate(3, "train", 40, SIZE, 8)
    ids = build_dataset("synthetic_streets", n=40, size=SIZE, seed=3, drive_frames=8).drive_ids
    for k in (0, 17):
        np.testing.assert_allclose(thumbnails(img[k:k + 1])[0], _thumb_brute(img[k]), atol=1e-6)
    for lag in (1, 3):
        got = near_duplicate_rate(img, lab, ids, lag=lag, random_pairs=300)
        pairs = [(i, i + lag) for i in range(40 - lag) if ids[i] == ids[i + lag]]
        expect = np.mean([_near_dup_brute(img[a], lab[a], img[b], lab[b]) for a, b in pairs])
        assert got["within_pairs"] == len(pairs) == 5 * (8 - lag)
        assert got["within_rate"] == pytest.approx(expect)
    assert got["across_rate"] == 0.0  # frames of different drives are never near-duplicates here
    # class frequencies against a hand count
    freq = class_frequencies(lab, ids, [str(c) for c in range(8)])
    for c in (0, 5, 6):
        assert freq[c]["pixel_share"] == pytest.approx((lab == c).sum() / lab.size)
        assert freq[c]["frame_share"] == pytest.approx(np.mean([(lab[i] == c).any() for i in range(40)]))
        assert freq[c]["drive_share"] == pytest.approx(np.mean([(lab[d * 8:(d + 1) * 8] == c).any() for d in range(5)]))


def test_drives_deterministic_and_different() -> None:
    a_img, a_lab, a_info = render_drive(5, "val", 2, SIZE, 6)
    b_img, b_lab, b_info = render_drive(5, "val", 2, SIZE, 6)
    assert np.array_equal(a_img, b_img) and np.array_equal(a_lab, b_lab) and a_info == b_info
    assert a_info == drive_info(5, "val", 2, 6)
    c_img, c_lab, _ = render_drive(6, "val", 2, SIZE, 6)
    assert not np.array_equal(a_img, c_img)
    # frames of a drive differ (motion, noise) but little; drives differ in layout
    assert all(not np.array_equal(a_img[k], a_img[k + 1]) for k in range(5))
    assert (a_lab[0] != c_lab[0]).mean() > 0.2
    with pytest.raises(UserError, match="unknown split 'pool'"):
        render_drive(0, "pool", 0, SIZE)


def test_rare_scenes_and_classes_in_a_minority_of_drives() -> None:
    ds = build_dataset("synthetic_streets", split="train", size=SIZE)  # 50 drives
    infos = ds.drives
    for scene in RARE_SCENES:
        share = np.mean([scene in d.rare_scenes for d in infos])
        assert 0.04 <= share <= 0.2, (scene, share)
    assert 0.1 < np.mean([bool(d.rare_scenes) for d in infos]) < 0.5
    _, y = ds.tensors()
    lab = y.numpy()
    freq = {f["class"]: f for f in class_frequencies(lab, ds.drive_ids, ds.class_names)}
    for rare in ("person", "pole/sign"):
        assert 0.05 < freq[rare]["drive_share"] < 0.5
    assert freq["road"]["drive_share"] == 1.0
    for split in ("val", "test"):  # stratified: every split of 20 drives has every rare scene
        held = build_dataset("synthetic_streets", split=split, size=SIZE).drives
        assert all(any(s in d.rare_scenes for d in held) for s in RARE_SCENES)


def test_stream_and_frame_directory_round_trip(tmp_path) -> None:
    frames = list(stream(1, "test", [0, 2], size=SIZE, drive_frames=4, gap_s=2.0))
    assert [f.drive_id for f in frames] == ["test-00000"] * 4 + ["test-00002"] * 4
    assert [f.frame_index for f in frames] == [0, 1, 2, 3] * 2
    np.testing.assert_allclose([f.timestamp_s for f in frames], [0, .1, .2, .3, 2.4, 2.5, 2.6, 2.7])
    img, lab, _ = render_drive(1, "test", 2, SIZE, 4)
    assert np.array_equal(frames[5].image, img[1]) and np.array_equal(frames[5].label, lab[1])
    for fmt in ("png", "npy"):
        out = write_frames(tmp_path / f"d [{fmt}]", frames, fmt=fmt)
        back = list(read_frames(out))
        assert len(back) == 8 and all(np.array_equal(a.image, b.image) and np.array_equal(a.label, b.label)
                                      for a, b in zip(frames, back, strict=True))
        assert [b.timestamp_s for b in back] == [round(f.timestamp_s, 6) for f in frames]
        assert back[4].drive_id == "test-00002" and back[4].weather == frames[4].weather
        lines = (out / "manifest.jsonl").read_text().splitlines()
        assert json.loads(lines[0])["file"] == f"frames/000000.{fmt}"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left
    with pytest.raises(UserError, match="not an empty directory"):
        write_frames(tmp_path / "d [png]", frames)


@pytest.mark.parametrize("manifest, match", [
    (b"\x8f\x00\xffgarbage\n", "not a manifest line"),
    (b'{"file": "frames/000000.png", "timest', "not a manifest line"),
    (b'{"file": "frames/000000.png", "timestamp_s": NaN}\n', "finite and non-decreasing"),
    (b'{"file": "frames/000000.png", "timestamp_s": 1.0}\n{"file": "frames/000001.png", "timestamp_s": 0.5}\n',
     "finite and non-decreasing"),
    (b'{"file": "../../etc/passwd", "timestamp_s": 0}\n', "escapes"),
])
def test_bad_frame_directories(tmp_path, manifest, match) -> None:
    out = write_frames(tmp_path / "d", stream(0, "val", [0], size=SIZE, drive_frames=2))
    (out / "manifest.jsonl").write_bytes(manifest)
    with pytest.raises(UserError, match=match):
        list(read_frames(out))


def test_corrupt_frame_file(tmp_path) -> None:
    out = write_frames(tmp_path / "d", stream(0, "val", [0], size=SIZE, drive_frames=2), fmt="npy")
    (out / "frames" / "000001.npy").write_bytes(b"\x93NUMPY truncated")
    with pytest.raises(UserError, match="cannot read"):
        list(read_frames(out))


def test_cli_stats_and_drives(tmp_path, capsys) -> None:
    assert al_main(["data", "stats", "--frames", "24", "--size", "32x64", "--drive-frames", "6", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert [s["split"] for s in stats] == ["train", "val", "test"] and all(s["drives"] == 4 for s in stats)
    assert stats[0]["near_duplicates"]["within_rate"] == 1.0 and math.isfinite(stats[0]["classes"][0]["pixel_share"])
    out = tmp_path / "frames"
    assert al_main(["data", "drives", str(out), "--drives", "1-2", "--size", "32x64", "--drive-frames", "3",
                    "--format", "npy"]) == 0
    assert len(list((out / "frames").iterdir())) == 6
    capsys.readouterr()
    for argv, msg in ((["data", "drives", str(tmp_path / "x"), "--drives", "3-1"], "bad entry"),
                      (["data", "stats", "--size", "8x8"], "--size must be HxW"),
                      (["data", "stats", "cityscapes"], "only synthetic_streets"),
                      (["data", "drives", str(out)], "not an empty directory"),
                      (["data", "drives", str(tmp_path / "y"), "--gap-s", "nan"], "finite")):
        assert al_main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and msg in err and len(err.strip().splitlines()) == 1
