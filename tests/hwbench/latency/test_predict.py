"""Latency predictor: NNLS recovers known coefficients; leave-one-out on synthetic records."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pytest

import hwbench.latency.predict as P
from hwbench.cli import main
from hwbench.latency.measure import Measurement

TRUE = {"overhead": 0.8, "layers": 0.02, "conv": 2.5, "pointwise": 4.0, "depthwise": 11.0, "linear": 0.0,
        "memory": 1.7}


def synthetic_terms(model: str, hw: tuple[int, int]) -> P.Terms:
    """Deterministic per-class roofline terms that scale with the pixel count, mixed per model."""
    rng = np.random.default_rng(zlib.crc32(model.encode()))
    mix = rng.uniform(0.2, 3.0, size=len(P.OP_CLASSES))
    mix[P.OP_CLASSES.index("linear")] = 0.0
    pixels = hw[0] * hw[1] / (128 * 256)
    per_class = {k: float(m * pixels) for k, m in zip(P.OP_CLASSES, mix, strict=True)}
    return P.Terms(model=model, input=(1, 3, *hw), roofline_ms=sum(per_class.values()),
                   n_layers=int(rng.integers(50, 300)), per_class=per_class)


def true_latency(t: P.Terms) -> float:
    return float(t.row() @ np.array([TRUE[k] for k in P.FEATURES]))


def test_fit_nnls_recovers_coefficients():
    rng = np.random.default_rng(0)
    X = np.column_stack([np.ones(40), rng.integers(20, 400, 40), rng.uniform(0.1, 50, (40, 5))])
    X[:, 5] = 0.0  # an absent class (no linear layers): its coefficient must stay 0
    coef_true = np.array([TRUE[k] for k in P.FEATURES])
    y = X @ coef_true
    coef = P.fit_nnls(X, y)
    np.testing.assert_allclose(coef, coef_true, rtol=1e-6, atol=1e-9)
    coef_abs = P.fit_nnls(X, y, relative=False)
    np.testing.assert_allclose(coef_abs, coef_true, rtol=1e-6, atol=1e-9)


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


MODELS = [f"m{i}" for i in range(6)]
SIZES = [(128, 256), (192, 384), (256, 512)]


def test_calibrate_and_leave_one_out_exact(synthetic):
    recs = _records(MODELS, SIZES)
    (cal,) = P.calibrate(recs).values()
    for k, v in TRUE.items():
        assert cal.coef[k] == pytest.approx(v, rel=1e-5, abs=1e-8)
    rows = P.leave_one_out(recs)
    assert len(rows) == len(MODELS) * len(SIZES)
    assert max(abs(r["rel_err"]) for r in rows) < 1e-6
    assert P.loo_summary(rows)["fraction_within"] == 1.0


def test_leave_one_out_with_noise_and_groups(synthetic):
    recs = _records(MODELS, SIZES, noise=0.02) + _records(MODELS, SIZES, backend="onnxruntime")
    rows = P.leave_one_out(recs)
    assert {r["backend"] for r in rows} == {"torch", "onnxruntime"}
    s = P.loo_summary([r for r in rows if r["backend"] == "torch"])
    assert s["pairs"] == 18 and s["fraction_within"] >= 0.9
    pred = P.predict(recs, "m1", (1, 3, 160, 320), backend="onnxruntime")
    (row,) = pred
    assert row["measured_ms"] is None
    assert row["predicted_ms"] == pytest.approx(true_latency(synthetic_terms("m1", (160, 320))), rel=1e-5)


def test_duplicate_records_are_merged(synthetic):
    recs = _records(MODELS[:3], SIZES) * 2
    assert sum(len(v) for v in P._points(recs).values()) == 9


def test_cli_predict(synthetic, tmp_path, capsys):
    f = tmp_path / "m.jsonl"
    f.write_text("".join(json.dumps(r.to_dict()) + "\n" for r in _records(MODELS, SIZES)))
    assert main(["predict", "--measurements", str(f), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 18 and all(abs(r["rel_err"]) < 1e-6 for r in rows)
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
    assert t.n_layers > 100
