"""`hwbench export --score`: the score inside the graph equals al's scoring on the same input."""

import json

import numpy as np
import pytest
import torch

from al.strategies import LossPredictionModule, collect
from al.strategies.scoring import ImageScorer
from hwbench import score_graph as sg
from hwbench.cli import main as hwbench_main
from hwbench.export import export_and_check
from hwbench.latency.roofline import roofline

MODEL = "deeplabv3plus_mobilenetv3_small"


@pytest.mark.parametrize("pixel", ["entropy", "margin"])
@pytest.mark.parametrize("agg", sg.AGGREGATIONS)
def test_graph_maths_equals_al_scoring(pixel, agg):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 7, 9, 11, generator=g) * 4                      # (N, K, H, W)
    logits[2] = 0.0                                                         # a constant map (minmax -> 0)
    ours = sg.aggregate(sg.PIXEL_SCORES[pixel](logits), agg)
    ref = ImageScorer(pixel, agg)(logits)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6)
    cls = torch.randn(5, 10, generator=g)                                   # classification logits (N, K)
    torch.testing.assert_close(sg.PIXEL_SCORES[pixel](cls), ImageScorer(pixel)(cls), rtol=1e-5, atol=1e-6)


class _Frames(torch.utils.data.Dataset):
    def __init__(self, x):
        self.x = x

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return torch.from_numpy(self.x[i]), torch.zeros(self.x.shape[2:], dtype=torch.int64)


def _ort(path, frames):
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    outs = [sess.run(None, {"input": f[None]}) for f in frames]
    names = [o.name for o in sess.get_outputs()]
    return names, np.concatenate([o[0] for o in outs]), np.concatenate([o[1] for o in outs])


def _rel(a, b):
    return float(np.max(np.abs(a.astype(np.float64) - b) / np.maximum(np.abs(b), 1e-12)))


def test_exported_entropy_equals_al_scoring_and_coreset_embedding(tmp_path, capsys):
    out = tmp_path / "s.onnx"
    res = export_and_check(MODEL, (64, 128), out, score="entropy")
    assert res.passed
    frames = np.random.default_rng(0).standard_normal((4, 3, 64, 128)).astype(np.float32)
    names, score, emb = _ort(out, frames)
    assert names == ["score", "embedding"] and score.shape == (4,) and emb.shape == (4, 16)  # 17 numbers a frame
    torch.manual_seed(0)                                    # the export's weights (seed 0)
    from hwbench.models import create_model

    model = create_model(MODEL).eval()
    ev = collect(model, _Frames(frames), np.arange(4), {"image_score", "embedding"}, device="cpu", batch_size=2,
                 score_fn=ImageScorer("entropy", "mean"), show_progress=False)
    rel_score, rel_emb = _rel(score, ev.image_score), _rel(emb, ev.embedding)
    with capsys.disabled():
        print(f"\nexported entropy vs al.strategies.scoring: max relative error {rel_score:.2e} (score), "
              f"{rel_emb:.2e} (embedding)")
    assert rel_score <= 1e-4 and rel_emb <= 1e-4


def test_exported_margin_minmax_equals_al_scoring(tmp_path):
    out = tmp_path / "m.onnx"
    assert export_and_check(MODEL, (32, 64), out, score="margin", aggregation="minmax").passed
    frames = np.random.default_rng(1).standard_normal((2, 3, 32, 64)).astype(np.float32)
    _, score, _ = _ort(out, frames)
    torch.manual_seed(0)
    from hwbench.models import create_model

    model = create_model(MODEL).eval()
    with torch.no_grad():
        ref = ImageScorer("margin", "minmax")(model(torch.from_numpy(frames))).numpy()
    assert _rel(score, ref) <= 1e-4


def test_exported_llal_uses_the_trained_head_of_a_checkpoint(tmp_path):
    from hwbench.models import create_model

    torch.manual_seed(5)
    model = create_model(MODEL).eval()
    head = LossPredictionModule(model.task, model.feature_taps, model.feature_channels).eval()
    for p in head.parameters():                             # not the fresh initialisation
        p.data.normal_(0, 0.05)
    ckpt = tmp_path / "cycle.pt"
    torch.save({"cycle": 0, "model": model.state_dict(), "aux": head.state_dict()}, ckpt)
    out = tmp_path / "l.onnx"
    assert export_and_check(MODEL, (32, 64), out, score="llal", weights=str(ckpt)).passed
    frames = np.random.default_rng(2).standard_normal((2, 3, 32, 64)).astype(np.float32)
    _, score, _ = _ort(out, frames)
    ev = collect(model, _Frames(frames), np.arange(2), {"predicted_loss"}, device="cpu", batch_size=2, aux=head,
                 show_progress=False)
    assert _rel(score, ev.predicted_loss) <= 1e-4


def test_llal_checkpoint_without_head_is_a_one_line_error(tmp_path, capsys):
    from hwbench.models import create_model

    ckpt = tmp_path / "plain.pt"
    torch.save({"model": create_model(MODEL).state_dict()}, ckpt)
    rc = hwbench_main(["export", MODEL, "--score", "llal", "--weights", str(ckpt), "--input", "32x64",
                       "--out", str(tmp_path / "x.onnx")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: ") and "no trained LLAL head" in err and err.count("\n") == 1
    assert not (tmp_path / "x.onnx").exists()


@pytest.mark.parametrize("argv, match", [
    (["--score", "variance"], "unknown score"),
    (["--score", "entropy", "--aggregation", "median"], "unknown aggregation"),
    (["--score", "entropy", "--weights", "/no/such.pt"], "not found"),
])
def test_export_bad_score_options(tmp_path, capsys, argv, match):
    rc = hwbench_main(["export", MODEL, "--input", "32x64", "--out", str(tmp_path / "x.onnx"), *argv])
    err = capsys.readouterr().err
    assert rc == 2 and match in err and err.count("\n") == 1


def test_roofline_charges_the_scoring_bytes_by_hand():
    """Entropy + mean at P = H*W pixels, K = 19 classes: the roofline reads/writes, in elements,
    amax K*P + P, exp 2*K*P, two sums 2*(K*P + P), log 2*P, mean P + 1, and the embedding's pooling
    of the 16-channel stride-4 feature P + 16 (sub/mul/div fuse into neighbours: not charged)."""
    from hwbench.count import count

    h, w, k = 64, 128, 19
    p = h * w
    base = count(MODEL, (1, 3, h, w))
    scored = count(sg.scoring_model(MODEL, "entropy", meta=True), (1, 3, h, w))
    assert scored.macs == base.macs                                   # no conv/linear MACs added
    rb = roofline(base.layers, tops=1.0, mem_bw_gbps=10.0, bytes_per_elem=2)
    rs = roofline(scored.layers, tops=1.0, mem_bw_gbps=10.0, bytes_per_elem=2)
    assert rs.bytes_moved - rb.bytes_moved == 2 * (5 * k * p + 7 * p + 17)


def test_latency_and_deploy_accept_the_scoring_graph(capsys):
    assert hwbench_main(["latency", MODEL, "--mode", "roofline", "--device", "tx2", "--input", "128x256",
                         "--json"]) == 0
    bare = json.loads(capsys.readouterr().out)[0]
    assert hwbench_main(["latency", MODEL, "--mode", "roofline", "--device", "tx2", "--input", "128x256",
                         "--score", "entropy", "--json"]) == 0
    scored = json.loads(capsys.readouterr().out)[0]
    assert scored["model"] == MODEL + "+entropy" and scored["latency_ms"] > bare["latency_ms"]
    assert hwbench_main(["deploy", MODEL, "--device", "tx2", "--fps", "30", "--input", "128x256",
                         "--score", "llal", "--json"]) == 0
    v = json.loads(capsys.readouterr().out)[0]
    assert v["model"] == MODEL + "+llal" and v["latency_ms"] > bare["latency_ms"]


def test_measure_times_the_scoring_graph(capsys, tmp_path):
    assert hwbench_main(["measure", MODEL, "--input", "32x64", "--iters", "2", "--warmup-ms", "0",
                         "--score", "entropy", "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)[0]
    assert rec["model"] == MODEL + "+entropy" and rec["iters"] == 2
    rc = hwbench_main(["measure", "--onnx", str(tmp_path / "x.onnx"), "--score", "entropy"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
