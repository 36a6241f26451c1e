"""Latency predictor: the per-layer roofline, calibrated on measurements.

Method. For a (model, input) pair, `hwbench.count` gives the per-layer table (MACs, elements
read and written, weights); each charged layer l gets its roofline time
    r_l = max(2 * MACs_l / P, bytes_l / B)                                   [ms]
with P the device's peak (ops/s) and B its memory bandwidth at the measured precision
(`hwbench.latency.roofline`; unfused for eager torch, fused as in TensorRT/onnxruntime otherwise).
Layers are grouped into op classes k (registry `OP_CLASSES`):
    conv       dense k x k convolution (k > 1)
    pointwise  1 x 1 convolution (groups = 1)
    depthwise  grouped / depthwise convolution
    linear     fully connected
    memory     everything else the roofline charges (norm, activation, add, pooling, resize)
and summed: R_k = sum_{l in k} r_l. The prediction is
    t_hat = c0 + lambda * n_layers + sum_k theta_k * R_k
theta_k >= 0 is the inverse efficiency of class k (1 = the class runs at its roofline, 5 = at 20%
of it), c0 >= 0 a fixed per-inference overhead (ms) and lambda >= 0 a per-layer dispatch cost
(ms per charged layer). All are fitted by non-negative least squares (scipy.optimize.nnls) on
relative errors (each row divided by the measured latency, so every pair counts equally and the
fit minimises sum ((t_hat - t) / t)^2), separately per (device, backend, precision).
Several records of one (model, input) pair are merged (median of their latencies).

Evaluation. `leave_one_out` holds out each (model, resolution) pair, fits on the rest of its
group and predicts it; `loo_summary` reports the fraction within +-10 %. This is nn-Meter's
protocol and metric (it reports 99 % of models within +-10 % on a mobile CPU with per-kernel
predictors); ours is a 7-parameter model per device/backend/precision.
"""

from __future__ import annotations

import functools
import logging
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from hwbench.errors import UserError
from hwbench.latency.measure import Measurement

log = logging.getLogger(__name__)

OP_CLASSES = ("conv", "pointwise", "depthwise", "linear", "memory")
FEATURES = ("overhead", "layers", *OP_CLASSES)  # columns of the design matrix
FUSED_BACKENDS = {"torch": False, "onnxruntime": True, "tensorrt": True}  # roofline fuse= per backend
WITHIN = 0.10


# ------------------------------------------------------------------------------ feature terms
@dataclass(frozen=True)
class Terms:
    """Roofline terms of one (model, input) on one device/precision/backend."""

    model: str
    input: tuple[int, ...]
    roofline_ms: float  # plain roofline latency (sum of all charged layers)
    n_layers: int  # charged layers
    per_class: dict[str, float]  # op class -> R_k in ms

    def row(self) -> np.ndarray:
        return np.array([1.0, float(self.n_layers), *(self.per_class.get(k, 0.0) for k in OP_CLASSES)])


def conv_class(groups: int, kernel_elems: int) -> str:
    """Op class of a convolution from its groups and kernel size (kh * kw)."""
    if groups > 1:
        return "depthwise"
    return "pointwise" if kernel_elems == 1 else "conv"


def _layer_class(kind: str, category: str, module: Any) -> str:
    if category != "compute":
        return "memory"
    if "Linear" in kind or kind in ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm"):
        return "linear"
    groups = int(getattr(module, "groups", 1) or 1)
    k = getattr(module, "kernel_size", (3, 3))
    return conv_class(groups, int(np.prod(k)))


def _device_rates(device: str, precision: str, backend: str) -> tuple[float, float]:
    """(peak TOPS, bandwidth GB/s) of a device profile; nominal figures for a free-form label."""
    from hwbench.profiles import list_profiles, load_profile

    if device in list_profiles():
        prof = load_profile(device)
        engines = ("cpu", "gpu") if device == "host" else ("gpu", "gpu+dla", "dla")
        for eng in engines:
            try:
                return prof.peak_tops(precision, engine=eng), prof.mem_bw_gbps
            except UserError:
                continue
        if device == "host":  # host is measured at fp32 only; the fit absorbs the scale
            return prof.peak_tops("fp32", engine=prof.peak[0].engine), prof.mem_bw_gbps
    log.warning("no profile figures for device %r at %s; using nominal 1 TOPS / 100 GB/s "
                "(the fitted efficiencies absorb the scale)", device, precision)
    return 1.0, 100.0


@functools.lru_cache(maxsize=256)
def layer_terms(model: str, input_shape: tuple[int, ...], *, device: str, precision: str, backend: str,
                num_classes: int = 19) -> Terms:
    """Per-class roofline terms of a zoo model at `input_shape` (N, C, H, W) on `device`."""
    import torch

    from hwbench.count import count
    from hwbench.latency.roofline import layer_category, roofline
    from hwbench.models import create_model
    from hwbench.profiles import BYTES_PER_ELEMENT

    tops, bw = _device_rates(device, precision, backend)
    c = count(model, tuple(input_shape), num_classes=num_classes, ops="all")
    with torch.device("meta"):
        module = create_model(model, num_classes=num_classes)
    modules = dict(module.named_modules())
    rl = roofline(c.layers, tops=tops, mem_bw_gbps=bw, bytes_per_elem=BYTES_PER_ELEMENT.get(precision, 4),
                  fuse=FUSED_BACKENDS.get(backend, True))
    per_class: dict[str, float] = defaultdict(float)
    for t in rl.layers:
        per_class[_layer_class(t.kind, layer_category(t.kind), modules.get(t.name))] += t.latency_ms
    return Terms(model=model, input=tuple(int(d) for d in input_shape), roofline_ms=rl.latency_ms,
                 n_layers=len(rl.layers), per_class=dict(per_class))


# ------------------------------------------------------------------------------------ fitting
def fit_nnls(X: np.ndarray, y: np.ndarray, *, relative: bool = True) -> np.ndarray:
    """Non-negative least squares for y ~ X @ coef; `relative` divides each row by y."""
    from scipy.optimize import nnls

    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] != y.shape[0]:
        raise ValueError(f"X {X.shape} and y {y.shape} do not match")
    w = 1.0 / y if relative else np.ones_like(y)
    A = X * w[:, None]
    scale = np.linalg.norm(A, axis=0)
    scale[scale == 0] = 1.0  # all-zero column: its coefficient stays 0
    coef, _ = nnls(A / scale, y * w, maxiter=50 * X.shape[1])
    return coef / scale


@dataclass
class Calibration:
    """Fitted coefficients for one (device, backend, precision)."""

    device: str
    backend: str
    precision: str
    coef: dict[str, float]  # FEATURES -> coefficient (overhead in ms, layers in ms/layer, classes: 1/efficiency)
    n_points: int
    fit_rms_rel_err: float
    pairs: list[tuple[str, tuple[int, ...]]] = field(default_factory=list)

    def predict(self, terms: Terms) -> float:
        return float(terms.row() @ np.array([self.coef[k] for k in FEATURES]))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["pairs"] = [[m, list(s)] for m, s in self.pairs]
        return d


GroupKey = tuple[str, str, str]  # (device, backend, precision)


def _points(records: Iterable[Measurement]) -> dict[GroupKey, dict[tuple[str, tuple[int, ...]], float]]:
    """Median latency per (model, input) in each (device, backend, precision) group."""
    acc: dict[GroupKey, dict[tuple[str, tuple[int, ...]], list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        if len(r.input) != 4 or not r.latency_ms or r.latency_ms <= 0:
            log.warning("skipping %s/%s: no input shape or latency", r.model, r.backend)
            continue
        acc[(r.device, r.backend, r.precision)][(r.model, tuple(int(d) for d in r.input))].append(r.latency_ms)
    return {g: {p: float(np.median(v)) for p, v in pts.items()} for g, pts in acc.items()}


def _terms(group: GroupKey, pair: tuple[str, tuple[int, ...]]) -> Terms:
    device, backend, precision = group
    return layer_terms(pair[0], pair[1], device=device, precision=precision, backend=backend)


def fit_group(group: GroupKey, points: Mapping[tuple[str, tuple[int, ...]], float]) -> Calibration:
    """Fit one group's coefficients on its (model, input) -> latency points."""
    if not points:
        raise UserError(f"no measurements for {'/'.join(group)}")
    pairs = list(points)
    X = np.stack([_terms(group, p).row() for p in pairs])
    y = np.array([points[p] for p in pairs])
    coef = fit_nnls(X, y)
    rel = (X @ coef - y) / y
    return Calibration(device=group[0], backend=group[1], precision=group[2],
                       coef=dict(zip(FEATURES, map(float, coef), strict=True)), n_points=len(pairs),
                       fit_rms_rel_err=float(np.sqrt(np.mean(rel ** 2))), pairs=pairs)


def calibrate(records: Iterable[Measurement]) -> dict[GroupKey, Calibration]:
    """One calibration per (device, backend, precision) found in `records`."""
    return {g: fit_group(g, pts) for g, pts in _points(records).items()}


def leave_one_out(records: Iterable[Measurement]) -> list[dict[str, Any]]:
    """Hold out each (model, input) pair, fit on the rest of its group, predict it."""
    rows = []
    for group, pts in _points(records).items():
        for pair, measured in pts.items():
            rest = {p: v for p, v in pts.items() if p != pair}
            terms = _terms(group, pair)
            pred = fit_group(group, rest).predict(terms) if rest else math.nan
            rows.append({"device": group[0], "backend": group[1], "precision": group[2], "model": pair[0],
                         "input": list(pair[1]), "measured_ms": measured, "predicted_ms": pred,
                         "roofline_ms": terms.roofline_ms, "rel_err": (pred - measured) / measured,
                         "train_points": len(rest)})
    return rows


def loo_summary(rows: Sequence[Mapping[str, Any]], within: float = WITHIN) -> dict[str, Any]:
    """Fraction of held-out pairs predicted within +-`within`, and error statistics."""
    errs = np.array([abs(r["rel_err"]) for r in rows if not math.isnan(r["rel_err"])])
    if errs.size == 0:
        return {"pairs": 0, "within": within, "fraction_within": math.nan, "mean_abs_rel_err": math.nan,
                "max_abs_rel_err": math.nan}
    return {"pairs": int(errs.size), "within": within, "fraction_within": float(np.mean(errs <= within)),
            "mean_abs_rel_err": float(errs.mean()), "max_abs_rel_err": float(errs.max())}


def predict(records: Iterable[Measurement], model: str, input_shape: Sequence[int], *,
            device: str | None = None, backend: str | None = None,
            precision: str | None = None) -> list[dict[str, Any]]:
    """Predicted latency of `model` at `input_shape` in every matching calibrated group."""
    records = list(records)
    pts = _points(records)
    shape = tuple(int(d) for d in input_shape)
    out = []
    for group, cal in calibrate(records).items():
        if (device and group[0] != device) or (backend and group[1] != backend) or (precision and group[2] != precision):
            continue
        terms = _terms(group, (model, shape))
        measured = pts[group].get((model, shape))
        pred = cal.predict(terms)
        out.append({"device": group[0], "backend": group[1], "precision": group[2], "model": model,
                    "input": list(shape), "predicted_ms": pred, "measured_ms": measured,
                    "roofline_ms": terms.roofline_ms,
                    "rel_err": (pred - measured) / measured if measured else None, "train_points": cal.n_points})
    if not out:
        raise UserError("no calibration group matches --device/--backend/--precision; "
                        f"available: {', '.join('/'.join(g) for g in pts) or 'none'}")
    return out
