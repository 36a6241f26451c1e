"""Latency predictor: NNLS recovers known coefficients; leave-one-out on synthetic records."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pytest

import hwbench.latency.predict as P
from hwbench.cli import main
from hwbench.latency.measure import Measurement

TRUE = {"overhead": 0.8, "layers": 0.02, "compute_conv": 2.5, "compute_pointwise": 4.0, "compute_depthwise": 11.0,
        "compute_linear": 0.0, "act_conv": 1.5, "act_pointwise": 0.0, "act_depthwise": 3.0, "act_linear": 0.0,
        "act_memory": 1.7, "weights": 0.6, "spill": 2.0}
TRUE_SPILL = 8 << 20  # bytes: one of predict.SPILL_CANDIDATES
COEF = np.array([TRUE[k] for k in P.FEATURES])


def synthetic_terms(model: str, hw: tuple[int, int]) -> P.Terms:
    """Deterministic layers whose compute/traffic scale with the pixel count, mixed per model."""
    rng = np.random.default_rng(zlib.crc32(model.encode()))
    pixels = hw[0] * hw[1] / (128 * 256)
    layers = []
    for _ in range(int(rng.integers(8, 20))):
        cls = str(rng.choice(["conv", "pointwise", "depthwise", "memory"]))
        act_bytes = float(rng.uniform(0.5, 12.0)) * 2**20 * pixels
        layers.append(P.LayerTerm(cls, 0.0 if cls == "memory" else float(rng.uniform(0.1, 5)) * pixels,
                                  act_bytes / 2**20 * 0.05, float(rng.uniform(0.0, 0.3)), act_bytes))
    per_class = {}
    for t in layers:
        per_class[t.cls] = per_class.get(t.cls, 0.0) + max(t.compute_ms, t.act_ms + t.weight_ms)
    return P.Terms(model=model, input=(1, 3, *hw), roofline_ms=sum(per_class.values()), per_class=per_class,
                   layers=tuple(layers))


def true_latency(t: P.Terms) -> float:
    return float(t.row(TRUE_SPILL) @ COEF)


def test_fit_nnls_recovers_coefficients():
    rng = np.random.default_rng(0)
    X = np.column_stack([np.ones(40), rng.integers(20, 400, 40), rng.uniform(0.1, 50, (40, len(P.FEATURES) - 2))])
    for k in ("compute_linear", "act_linear"):
        X[:, P.FEATURES.index(k)] = 0.0  # an absent class (no linear layers): its coefficient must stay 0
    y = X @ COEF
    np.testing.assert_allclose(P.fit_nnls(X, y), COEF, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(P.fit_nnls(X, y, relative=False), COEF, rtol=1e-6, atol=1e-9)


def test_fit_nnls_keeps_coefficients_non_negative():
    X = np.array([[1.0, 1.0], [1.0, 2.0], [1.0, 3.0]])
    y = np.array([3.0, 2.0, 1.0])  # a negative slope is not allowed
    coef = P.fit_nnls(X, y)
    assert (coef >= 0).all() and coef[1] == 0.0


def test_conv_class():
    assert P.conv_class(1, 9) == "conv" and P.conv_class(1, 1) == "pointwise" and P.conv_class(32, 9) == "depthwise"


def _records(models, sizes, noise=0.0, backend="torch"):
    rng = np.random.default_rng(1)
    out = []
    for m in models:
        for hw in sizes:
            ms = true_latency(synthetic_terms(m, hw)) * (1 + noise * rng.standard_normal())
            out.append(Measurement.from_samples([ms], model=m, device="host", backend=backend, precision="fp32",
                                                input=(1, 3, *hw), warmup=1))
    return out


@pytest.fixture
def synthetic(monkeypatch):
    monkeypatch.setattr(P, "layer_terms", lambda model, shape, **kw: synthetic_terms(model, tuple(shape[2:])))


MODELS = [f"m{i}" for i in range(8)]
SIZES = [(96, 192), (128, 256), (192, 384), (256, 512)]


def test_calibrate_and_leave_one_out_exact(synthetic):
    recs = _records(MODELS, SIZES)
    (cal,) = P.calibrate(recs).values()
    assert cal.spill_bytes == TRUE_SPILL  # the spill threshold is found by inner leave-one-out
    for k, v in TRUE.items():
        assert cal.coef[k] == pytest.approx(v, rel=1e-4, abs=1e-7), k
    rows = P.leave_one_out(recs)
    assert len(rows) == len(MODELS) * len(SIZES)
    assert max(abs(r["rel_err"]) for r in rows) < 1e-6
    assert P.loo_summary(rows)["fraction_within"] == 1.0


def test_leave_one_out_with_noise_and_groups(synthetic):
    recs = _records(MODELS, SIZES, noise=0.02) + _records(MODELS, SIZES, backend="onnxruntime")
    rows = P.leave_one_out(recs)
    assert {r["backend"] for r in rows} == {"torch", "onnxruntime"}
    s = P.loo_summary([r for r in rows if r["backend"] == "torch"])
    assert s["pairs"] == 32 and s["fraction_within"] >= 0.9
    pred = P.predict(recs, "m1", (1, 3, 160, 320), backend="onnxruntime")
    (row,) = pred
    assert row["measured_ms"] is None
    assert row["predicted_ms"] == pytest.approx(true_latency(synthetic_terms("m1", (160, 320))), rel=1e-5)


def test_duplicate_records_are_merged(synthetic):
    recs = _records(MODELS[:3], SIZES) * 2
    assert sum(len(v) for v in P._points(recs).values()) == 12


def test_cli_predict(synthetic, tmp_path, capsys):
    f = tmp_path / "m.jsonl"
    f.write_text("".join(json.dumps(r.to_dict()) + "\n" for r in _records(MODELS, SIZES)))
    assert main(["predict", "--measurements", str(f), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 32 and all(abs(r["rel_err"]) < 1e-6 for r in rows)
    assert main(["predict", "--measurements", str(f), "--model", "m2", "--input", "192x384", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["measured_ms"] == pytest.approx(row["predicted_ms"], rel=1e-6)
    assert main(["predict", "--measurements", str(tmp_path / "none.jsonl")]) == 2
    assert main(["predict", "--measurements", str(f), "--backend", "tensorrt"]) == 2
    assert main(["predict", "--measurements", str(f), "--model", "m2"]) == 2


def test_real_layer_terms_classes():
    """On a real zoo model: MobileNetV3 has depthwise convs; the sum of classes is the roofline."""
    t = P.layer_terms("deeplabv3plus_mobilenetv3_small", (1, 3, 64, 128), device="nominal-device",
                      precision="fp32", backend="torch")
    assert t.per_class["depthwise"] > 0 and t.per_class["conv"] > 0 and t.per_class["pointwise"] > 0
    assert sum(t.per_class.values()) == pytest.approx(t.roofline_ms)
    assert t.n_layers > 100 and all(layer.act_bytes > 0 for layer in t.layers)
    row = t.row()
    assert row[P.FEATURES.index("layers")] == t.n_layers and row[P.FEATURES.index("spill")] == 0.0
    assert t.row(1.0)[P.FEATURES.index("spill")] == pytest.approx(sum(layer.act_ms for layer in t.layers))
