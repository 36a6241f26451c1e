"""Latency predictor: NNLS recovers known coefficients; both leave-one-out protocols on synthetic records."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pytest

import hwbench.latency.predict as P
from hwbench.cli import main
from hwbench.latency.measure import Measurement

TRUE = {"overhead": 0.8, "layers": 0.02, "compute_conv": 2.5, "compute_pointwise": 4.0, "compute_depthwise": 11.0,
        "compute_linear": 0.0, "compute_dilated_valid": 3.0, "act_conv": 1.5, "act_dilated": 0.5, "act_pointwise": 0.0,
        "act_depthwise": 3.0, "act_linear": 0.0, "act_memory": 1.7, "weights": 0.6, "spill": 2.0}
TRUE_SPILL = 8 << 20  # bytes: one of predict.SPILL_CANDIDATES
TRUE_SET = "classes"
COEF = np.array([TRUE[name] for name, _ in P.FEATURE_SETS[TRUE_SET]])


def synthetic_terms(model: str, hw: tuple[int, int]) -> P.Terms:
    """Deterministic layers whose compute/traffic scale with the pixel count, mixed per model."""
    rng = np.random.default_rng(zlib.crc32(model.encode()))
    pixels = hw[0] * hw[1] / (128 * 256)
    layers = []
    for _ in range(int(rng.integers(8, 20))):
        cls = str(rng.choice(["conv", "dilated", "pointwise", "depthwise", "memory"]))
        act_bytes = float(rng.uniform(0.5, 12.0)) * 2**20 * pixels
        frac = float(rng.uniform(0.1, 1.0)) ** (1 / pixels) if cls == "dilated" else 1.0  # more taps inside when larger
        layers.append(P.LayerTerm(cls, 0.0 if cls == "memory" else float(rng.uniform(0.1, 5)) * pixels,
                                  act_bytes / 2**20 * 0.05, float(rng.uniform(0.0, 0.3)), act_bytes, frac))
    per_class = {}
    for t in layers:
        per_class[t.cls] = per_class.get(t.cls, 0.0) + max(t.compute_ms, t.act_ms + t.weight_ms)
    return P.Terms(model=model, input=(1, 3, *hw), roofline_ms=sum(per_class.values()), per_class=per_class,
                   layers=tuple(layers))


MODEL_FACTOR = {"m0": 1.0}  # per-model multiplicative effect (test_per_model_correction)


def true_latency(t: P.Terms) -> float:
    """The per-class latency model written out layer by layer (independent of Terms.row / design):
    overhead + per-layer cost + compute / efficiency per class (dilated: only the taps inside the input)
    + activation and weight traffic + the spill penalty for activations larger than TRUE_SPILL."""
    ms = TRUE["overhead"] + TRUE["layers"] * len(t.layers)
    for layer in t.layers:
        if layer.cls == "dilated":
            ms += TRUE["compute_dilated_valid"] * layer.compute_ms * layer.valid_frac
        elif layer.cls != "memory":
            ms += TRUE[f"compute_{layer.cls}"] * layer.compute_ms
        ms += TRUE[f"act_{layer.cls}"] * layer.act_ms + TRUE["weights"] * layer.weight_ms
        if layer.act_bytes > TRUE_SPILL:
            ms += TRUE["spill"] * layer.act_ms
    return ms * MODEL_FACTOR.get(t.model, 1.0)


def test_fit_nnls_recovers_coefficients():
    rng = np.random.default_rng(0)
    names = [name for name, _ in P.FEATURE_SETS[TRUE_SET]]
    X = np.column_stack([np.ones(40), rng.integers(20, 400, 40), rng.uniform(0.1, 50, (40, len(names) - 2))])
    for k in ("compute_linear", "act_linear"):
        X[:, names.index(k)] = 0.0  # an absent class (no linear layers): its coefficient must stay 0
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
    assert P.conv_class(1, 9, dilation=6) == "dilated" and P.conv_class(1, 1, dilation=6) == "pointwise"


def test_valid_fraction_hand_counts():
    """Kernel taps inside the input, counted by hand on a 3x3 kernel."""
    assert P.valid_fraction((10, 10), 1) == 1.0
    # 3 x 3, padding 1 on 4 x 4: per axis the border rows/cols lose one of 3 taps -> (2*2 + 2*3) / 12 = 10/12
    assert P.valid_fraction((4, 4), 3, 1, 1, 1) == pytest.approx((10 / 12) ** 2)
    # dilation 12 on a 12-row map: only the centre tap; on 24 columns the +-12 taps each hit half -> 2/3
    assert P.valid_fraction((12, 24), 3, 1, 12, 12) == pytest.approx(1 / 3 * 2 / 3)
    # dilation 18 on 16 x 32: rows 1/3; columns (32 + 14 + 14) / 96
    assert P.valid_fraction((16, 32), 3, 1, 18, 18) == pytest.approx(1 / 3 * 60 / 96)
    # stride 2: output positions 0, 2, 4 of a 6-wide input with padding 1 -> taps -1..5: 8 of 9 inside
    assert P.valid_fraction((6, 6), 3, 2, 1, 1) == pytest.approx((8 / 9) ** 2)


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
    # feature set and spill threshold are found by inner leave-one-out; no per-model correction is needed
    assert cal.feature_set == TRUE_SET and cal.spill_bytes == TRUE_SPILL
    assert all(abs(v) < 1e-6 for v in cal.model_log_ratio.values())
    for k, v in TRUE.items():
        assert cal.coef[k] == pytest.approx(v, rel=1e-4, abs=1e-7), k
    # leave-one-model-out needs enough models to pin down 15 coefficients without the held-out one
    many = [f"m{i}" for i in range(16)]
    for protocol, models in (("pair", MODELS), ("model", many)):
        rows = P.leave_one_out(_records(models, SIZES), protocol)
        assert len(rows) == len(models) * len(SIZES) and {r["protocol"] for r in rows} == {protocol}
        assert max(abs(r["rel_err"]) for r in rows) < 1e-6
        assert P.loo_summary(rows)["fraction_within"] == 1.0
    lomo = P.leave_one_out(recs, "model")
    assert all(r["train_points"] == (len(MODELS) - 1) * len(SIZES) for r in lomo)


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


def test_per_model_correction(synthetic, monkeypatch):
    """A model 30 % slower than the roofline explains: leave-one-pair-out recovers it from the model's
    other resolutions (the fit absorbs part, the correction the rest); leave-one-model-out cannot and,
    with the other models exact, predicts exactly the roofline part: error 1 / 1.3 - 1."""
    monkeypatch.setitem(MODEL_FACTOR, "m3", 1.3)
    recs = _records(MODELS, SIZES)
    pair = [r for r in P.leave_one_out(recs, "pair") if r["model"] == "m3"]
    assert all(abs(r["rel_err"]) < 0.03 and r["correction"] > 1.05 for r in pair)
    lomo = [r for r in P.leave_one_out(recs, "model") if r["model"] == "m3"]
    assert all(r["correction"] == 1.0 and r["rel_err"] == pytest.approx(1 / 1.3 - 1, abs=1e-6) for r in lomo)
    with pytest.raises(P.UserError, match="protocol"):
        P.leave_one_out(recs, "bogus")


def test_inner_cv_never_sees_the_held_out_pair(synthetic, monkeypatch):
    """Every fit inside leave_one_out (inner CV included) gets training points without the held-out pair,
    and the prediction does not change when the held-out measurement is replaced by garbage."""
    recs = _records(MODELS[:5], SIZES)
    seen: list[set] = []
    real = P.select_hyper

    def spy(terms, y, models, protocol="pair"):
        seen.append({(t.model, t.input) for t in terms})
        return real(terms, y, models, protocol)

    monkeypatch.setattr(P, "select_hyper", spy)
    for protocol in P.PROTOCOLS:
        seen.clear()
        rows = P.leave_one_out(recs, protocol)
        held = [(r["model"], tuple(r["input"])) for r in rows]
        folds = len(held) if protocol == "pair" else 5
        assert len(seen) == folds
        for pts in seen:
            missing = {h for h in held if h not in pts}
            assert missing and (len(missing) == 1 if protocol == "pair" else {m for m, _ in missing} == {missing.pop()[0]})
        target = rows[7]
        bad = [Measurement.from_samples([1e6 if (r.model, r.input) == (target["model"], tuple(target["input"]))
                                         else r.latency_ms], model=r.model, device=r.device, backend=r.backend,
                                        precision=r.precision, input=r.input, warmup=1) for r in recs]
        again = next(r for r in P.leave_one_out(bad, protocol)
                     if (r["model"], r["input"]) == (target["model"], target["input"]))
        assert again["predicted_ms"] == pytest.approx(target["predicted_ms"], rel=1e-9)


def test_duplicate_records_are_merged(synthetic):
    recs = _records(MODELS[:3], SIZES) * 2
    assert sum(len(v) for v in P._points(recs).values()) == 12


def test_cli_predict(synthetic, tmp_path, capsys):
    f = tmp_path / "m.jsonl"
    f.write_text("".join(json.dumps(r.to_dict()) + "\n" for r in _records(MODELS, SIZES)))
    assert main(["predict", "--measurements", str(f), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)  # both protocols by default
    assert len(rows) == 64 and sorted({r["protocol"] for r in rows}) == ["model", "pair"]
    assert all(abs(r["rel_err"]) < 1e-6 for r in rows if r["protocol"] == "pair")
    assert main(["predict", "--measurements", str(f), "--protocol", "pair"]) == 0
    err = capsys.readouterr().err
    assert "leave-one-(model, resolution)-out" in err and "100% of 32 pairs" in err
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
    dil = [layer for layer in t.layers if layer.cls == "dilated"]  # ASPP: dilation 6 / 12 / 18 on a 4 x 8 map
    assert len(dil) == 3 and all(0 < layer.valid_frac < 0.5 for layer in dil)
    assert all(layer.valid_frac == 1.0 for layer in t.layers if layer.cls in ("pointwise", "memory"))
    assert sum(t.per_class.values()) == pytest.approx(t.roofline_ms)
    assert t.n_layers > 100 and all(layer.act_bytes > 0 for layer in t.layers)
    row = t.row()
    assert row[P.FEATURES.index("layers")] == t.n_layers and row[P.FEATURES.index("spill")] == 0.0
    assert t.row(1.0)[P.FEATURES.index("spill")] == pytest.approx(sum(layer.act_ms for layer in t.layers))
