"""The numpy paths of ondevice.py with nothing newer than numpy 1.13 (JetPack 4.6's system numpy).

Also run under Python 3.6 with numpy 1.13.3 itself (test_fleet_numpy113.py: no onnxruntime there,
which needs numpy >= 1.16): policies, the real-time model, decoding, resizing, the synthetic source,
the engine's input buffers. Oracles: brute-force loops and hand-computed values.
"""

import io
import math

import numpy as np

from hwbench import ondevice as od


def _brute_window_topk(scores, window, k):
    kept = []
    for w0 in range(0, len(scores), window):
        idx = [i for i in range(w0, min(w0 + window, len(scores))) if math.isfinite(scores[i])]
        kept += sorted(idx, key=lambda i: (-scores[i], i))[:k]
    return kept


def test_policies_match_brute_force():
    rs = np.random.RandomState(0)
    for _ in range(5):
        n = 200
        s = rs.rand(n)
        s[rs.rand(n) < 0.2] = np.nan
        t = od.frame_times_us(n, 30.0)
        cfg = od.policy_config("window-topk", k=2, window=7)
        want = _brute_window_topk(list(s), 7, 2)
        assert list(od.select_stream(cfg, t, s)) == want
        assert list(od.select_stream_fast(cfg, t, s)) == want
        cfg = od.policy_config("threshold", threshold=0.5, budget_frames=5, period_s=1.0)
        got = list(od.select_stream_fast(cfg, t, s))
        assert got == list(od.select_stream(cfg, t, s))
        per = {}
        for i in range(n):            # brute force: threshold, then at most 5 per 1 s period
            if math.isfinite(s[i]) and s[i] >= 0.5 and per.get(t[i] // 1000000, 0) < 5:
                per[t[i] // 1000000] = per.get(t[i] // 1000000, 0) + 1
        assert len(got) == sum(per.values())


def test_realtime_model_by_hand():
    t = [0, 10, 20, 30, 40, 50]
    assert list(od.scored_mask(t, 25)) == [True, False, False, True, False, False]
    assert list(od.scored_mask_fixed(np.asarray(t), 25)) == [True, False, False, True, False, False]
    assert od.threshold_from_scores([1, 2, 3, 4, np.nan], 0.5) == 2.5


def test_decode_resize_preprocess():
    img = np.arange(2 * 4 * 3, dtype=np.uint8).reshape(2, 4, 3)
    buf = io.BytesIO()
    np.save(buf, img)
    assert np.array_equal(od.decode_image(buf.getvalue(), ".npy"), img)
    up = od.resize_bilinear(img, 2, 4)
    assert np.array_equal(up, img.astype(np.float64))
    half = od.resize_bilinear(np.array([[[0.0], [10.0]]]), 1, 1)       # (1, 2, 1) -> (1, 1, 1): the mean
    assert half.shape == (1, 1, 1) and abs(half[0, 0, 0] - 5.0) < 1e-12
    x = od.preprocess(img, (2, 4))
    assert x.shape == (1, 3, 2, 4) and x.dtype == np.float32
    want = (img[0, 0, 0] / 255.0 - od.IMAGENET_MEAN[0]) / od.IMAGENET_STD[0]
    assert abs(float(x[0, 0, 0, 0]) - want) < 1e-6


def test_synthetic_source_and_dedup_policy():
    src = od.SyntheticSource(5, (8, 16), 30.0, seed=1)
    frames = list(src.frames(0))
    assert [f.index for f in frames] == [0, 1, 2, 3, 4] and frames[0].ext == ".npy"
    assert list(src.frames(3))[0].data == frames[3].data                # a resumed run sees the same frames
    cfg = od.policy_config("threshold", threshold=0.0, dedup_dist=0.1)
    pol = od.StreamPolicy(cfg)
    e = np.array([1.0, 0.0])
    kept = [c.index for i in range(3) for c in pol.step(i, i, 1.0, e * (i + 1))]   # same direction: duplicates
    assert kept == [0]
    st = pol.state()
    pol2 = od.StreamPolicy(cfg)
    pol2.load_state(st)
    assert [c.index for c in pol2.step(3, 3, 1.0, np.array([0.0, 1.0]))] == [3]


def test_engine_input_buffers_use_randomstate():
    """EngineRunner fills its inputs with RandomState(seed) normals (default_rng needs numpy 1.17)."""

    class Cuda(object):
        @staticmethod
        def pagelocked_empty(shape, dtype):
            return np.empty(shape, dtype)

        @staticmethod
        def mem_alloc(n):
            return 1

    runner = od.EngineRunner.__new__(od.EngineRunner)
    runner.cuda, runner.inputs, runner.outputs, runner.bindings = Cuda(), [], [], []
    host, _ = runner._alloc((1, 2), np.float32, True, np.random.RandomState(0))
    assert np.allclose(host, np.random.RandomState(0).standard_normal((1, 2)).astype(np.float32))


def test_numpy_version_check():
    assert od.version_tuple("1.13.3") == (1, 13, 3) and od.version_tuple("1.10.0rc1") == (1, 10, 0)
    assert od.check_numpy() is np
