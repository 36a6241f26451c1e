"""A tiny scoring graph (score = mean pixel, embedding = per-channel mean) and frame folders."""

import numpy as np
import pytest


def tiny_scoring_onnx(path, h=16, w=32):
    """An ONNX file with the outputs of `hwbench export --score`: score (1,), embedding (1, 3)."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, h, w])
    s = helper.make_tensor_value_info("score", TensorProto.FLOAT, [1])
    e = helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [1, 3])
    g = helper.make_graph([helper.make_node("ReduceMean", ["input"], ["score"], axes=[1, 2, 3], keepdims=0),
                           helper.make_node("ReduceMean", ["input"], ["embedding"], axes=[2, 3], keepdims=0)],
                          "tiny", [x], [s, e])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 7
    onnx.save(m, str(path))
    return path


def write_frames(folder, n, h=16, w=32, seed=0, ext=".npy"):
    """n seeded frames with runs of near-identical ones (a slowly changing scene)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (h, w, 3))
    for i in range(n):
        if i % 7 == 0:
            base = rng.integers(0, 256, (h, w, 3))
        img = np.clip(base + rng.integers(-3, 4, base.shape), 0, 255).astype(np.uint8)
        if ext == ".npy":
            np.save(folder / f"f{i:04d}.npy", img)
        else:
            from PIL import Image

            Image.fromarray(img).save(folder / f"f{i:04d}{ext}")
    return folder


@pytest.fixture
def tiny_onnx(tmp_path):
    return tiny_scoring_onnx(tmp_path / "tiny.onnx")
