"""Latency predictor: the per-layer roofline, calibrated on measurements.

Terms. For a (model, input) pair, `hwbench.count` gives the per-layer table (MACs, activation
elements read and written, weight elements). With P the device's peak (ops/s) and B its memory
bandwidth at the measured precision (`profiles/`; the measured `host` profile here), every
charged layer l has a compute time c_l = 2 MACs_l / P, an activation-traffic time
a_l = (in_l + out_l) bytes / B and a weight-traffic time w_l = weight bytes / B (ms); its plain
roofline time is max(c_l, a_l + w_l). Layers fall into op classes (`OP_CLASSES`):
    conv       dense k x k convolution (k > 1)
    pointwise  1 x 1 convolution (groups = 1)
    depthwise  grouped / depthwise convolution
    linear     fully connected
    memory     everything else the roofline charges (norm, activation, add, pooling, resize)
Norm/activation/add rows are charged for CPU backends (eager torch runs them; onnxruntime's
fusions are absorbed by the fit) and left out for TensorRT, which fuses them.

Model. latency = c0 + lambda * n_layers + sum_k alpha_k C_k + sum_k beta_k A_k + gamma W + sigma S_T
with C_k = sum of c_l over class k, A_k = sum of a_l over class k, W = sum of w_l and the cache-spill
term S_T = sum of a_l over layers whose activation working set exceeds T bytes (on this CPU torch
slows down superlinearly once feature maps leave the cache). Coefficients are non-negative
(c0: fixed overhead in ms, lambda: ms per layer, alpha/beta/gamma/sigma: inverse efficiencies),
fitted by non-negative least squares (scipy.optimize.nnls) on relative errors (rows divided by
the measured latency: every pair counts equally), separately per (device, backend, precision).
T is chosen from `SPILL_CANDIDATES` (or no spill term) by leave-one-out inside the training data.
Several records of one (model, input) pair are merged (median of their latencies).

Evaluation. `leave_one_out` holds out each (model, resolution) pair, fits (T selection included)
on the rest of its group and predicts it; `loo_summary` gives the fraction within +-10 %, the
metric of nn-Meter (which reports 99 % within +-10 % on a mobile CPU with per-kernel predictors
trained on thousands of samples); ours has at most 14 coefficients per device/backend/precision.
"""

from __future__ import annotations

import functools
import logging
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

import numpy as np

from hwbench.errors import UserError
from hwbench.latency.measure import Measurement

log = logging.getLogger(__name__)

OP_CLASSES = ("conv", "pointwise", "depthwise", "linear", "memory")
COMPUTE_CLASSES = OP_CLASSES[:-1]
FEATURES = ("overhead", "layers", *(f"compute_{k}" for k in COMPUTE_CLASSES),
            *(f"act_{k}" for k in OP_CLASSES), "weights", "spill")  # design-matrix columns
FUSED_BACKENDS = {"tensorrt": True}  # roofline fuse= per backend (default False: charge norm/act/add)
SPILL_CANDIDATES = (2 << 20, 4 << 20, 8 << 20, 16 << 20, 32 << 20)  # T in bytes (None = no spill term)
MIN_POINTS_FOR_SPILL = 6
WITHIN = 0.10


# ------------------------------------------------------------------------------ feature terms
class LayerTerm(NamedTuple):
    cls: str
    compute_ms: float
    act_ms: float
    weight_ms: float
    act_bytes: float  # activation working set of one call (bytes)


@dataclass(frozen=True)
class Terms:
    """Roofline terms of one (model, input) on one device/precision/backend."""

    model: str
    input: tuple[int, ...]
    roofline_ms: float  # plain roofline latency: sum over charged layers of max(compute, memory)
    per_class: dict[str, float]  # op class -> roofline ms
    layers: tuple[LayerTerm, ...]

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    def row(self, spill_bytes: float | None = None) -> np.ndarray:
        """One design-matrix row (order `FEATURES`)."""
        f = dict.fromkeys(FEATURES, 0.0)
        f["overhead"], f["layers"] = 1.0, float(len(self.layers))
        for t in self.layers:
            if t.cls != "memory":
                f[f"compute_{t.cls}"] += t.compute_ms
            f[f"act_{t.cls}"] += t.act_ms
            f["weights"] += t.weight_ms
            if spill_bytes is not None and t.act_bytes > spill_bytes:
                f["spill"] += t.act_ms
        return np.array([f[k] for k in FEATURES])


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


def _device_rates(device: str, precision: str) -> tuple[float, float]:
    """(peak TOPS, bandwidth GB/s) of a device profile; nominal figures for a free-form label."""
    from hwbench.profiles import list_profiles, load_profile

    if device in list_profiles():
        prof = load_profile(device)
        for eng in ("cpu", "gpu", "gpu+dla", "dla"):
            try:
                return prof.peak_tops(precision, engine=eng), prof.mem_bw_gbps
            except UserError:
                continue
        if prof.peak:  # e.g. host measured at fp32 only: the fitted efficiencies absorb the scale
            return prof.peak[0].tops, prof.mem_bw_gbps
    log.warning("no profile figures for device %r at %s; using nominal 1 TOPS / 100 GB/s "
                "(the fitted efficiencies absorb the scale)", device, precision)
    return 1.0, 100.0


@functools.lru_cache(maxsize=256)
def _classified_layers(model: str, input_shape: tuple[int, ...], num_classes: int) -> tuple[tuple[Any, str], ...]:
    """(LayerCount, op class) for every row of the count table (cached: counting is the slow part)."""
    import torch

    from hwbench.count import count as count_ops
    from hwbench.latency.roofline import layer_category
    from hwbench.models import create_model

    c = count_ops(model, tuple(input_shape), num_classes=num_classes, ops="all")
    with torch.device("meta"):
        modules = dict(create_model(model, num_classes=num_classes).named_modules())
    return tuple((layer, _layer_class(layer.kind, layer_category(layer.kind), modules.get(layer.name)))
                 for layer in c.layers)


@functools.lru_cache(maxsize=512)
def layer_terms(model: str, input_shape: tuple[int, ...], *, device: str, precision: str, backend: str,
                num_classes: int = 19) -> Terms:
    """Per-layer roofline terms of a zoo model at `input_shape` (N, C, H, W) on `device`."""
    from hwbench.count import ops_from_macs
    from hwbench.latency.roofline import charged
    from hwbench.profiles import BYTES_PER_ELEMENT

    tops, bw = _device_rates(device, precision)
    nbytes = BYTES_PER_ELEMENT.get(precision, 4)
    fuse = FUSED_BACKENDS.get(backend, False)
    layers, per_class = [], defaultdict(float)
    for layer, cls in _classified_layers(model, tuple(input_shape), num_classes):
        if not charged(layer, fuse=fuse):
            continue
        act = (layer.input_elems + layer.output_elems) * nbytes
        t = LayerTerm(cls, ops_from_macs(layer.macs) / (tops * 1e12) * 1e3, act / (bw * 1e9) * 1e3,
                      layer.weight_elems * nbytes / (bw * 1e9) * 1e3, act / max(layer.calls, 1))
        layers.append(t)
        per_class[cls] += max(t.compute_ms, t.act_ms + t.weight_ms)
    return Terms(model=model, input=tuple(int(d) for d in input_shape), roofline_ms=sum(per_class.values()),
                 per_class=dict(per_class), layers=tuple(layers))


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


def loo_errors(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Relative leave-one-out errors of `fit_nnls` on (X, y)."""
    errs = np.empty(len(y))
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        errs[i] = (X[i] @ fit_nnls(X[keep], y[keep]) - y[i]) / y[i]
    return errs


def select_spill(terms: Sequence[Terms], y: np.ndarray,
                 candidates: Sequence[float | None] = (None, *SPILL_CANDIDATES)) -> float | None:
    """Spill threshold T with the smallest mean |leave-one-out error| on (terms, y); None = no term."""
    if len(y) < MIN_POINTS_FOR_SPILL:
        return None
    best, best_err = None, math.inf
    for t in candidates:
        X = np.stack([tt.row(t) for tt in terms])
        if t is not None and not X[:, FEATURES.index("spill")].any():
            continue  # no layer above T: same as no spill term
        err = float(np.mean(np.abs(loo_errors(X, y))))
        if err < best_err - 1e-12:
            best, best_err = t, err
    return best


@dataclass
class Calibration:
    """Fitted coefficients for one (device, backend, precision)."""

    device: str
    backend: str
    precision: str
    coef: dict[str, float]  # FEATURES -> coefficient (overhead ms, ms per layer, inverse efficiencies)
    spill_bytes: float | None  # cache-spill threshold T (None: no spill term)
    n_points: int
    fit_rms_rel_err: float
    pairs: list[tuple[str, tuple[int, ...]]] = field(default_factory=list)

    def predict(self, terms: Terms) -> float:
        return float(terms.row(self.spill_bytes) @ np.array([self.coef[k] for k in FEATURES]))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["pairs"] = [[m, list(s)] for m, s in self.pairs]
        return d


GroupKey = tuple[str, str, str]  # (device, backend, precision)
Pair = tuple[str, tuple[int, ...]]  # (model, input shape)


def _points(records: Iterable[Measurement]) -> dict[GroupKey, dict[Pair, float]]:
    """Median latency per (model, input) in each (device, backend, precision) group."""
    acc: dict[GroupKey, dict[Pair, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        if len(r.input) != 4 or not r.latency_ms or r.latency_ms <= 0:
            log.warning("skipping %s/%s: no input shape or latency", r.model, r.backend)
            continue
        acc[(r.device, r.backend, r.precision)][(r.model, tuple(int(d) for d in r.input))].append(r.latency_ms)
    return {g: {p: float(np.median(v)) for p, v in pts.items()} for g, pts in acc.items()}


def _terms(group: GroupKey, pair: Pair) -> Terms:
    device, backend, precision = group
    return layer_terms(pair[0], pair[1], device=device, precision=precision, backend=backend)


def fit_group(group: GroupKey, points: Mapping[Pair, float]) -> Calibration:
    """Fit one group's coefficients (and spill threshold) on its (model, input) -> latency points."""
    if not points:
        raise UserError(f"no measurements for {'/'.join(group)}")
    pairs = list(points)
    terms = [_terms(group, p) for p in pairs]
    y = np.array([points[p] for p in pairs])
    spill = select_spill(terms, y)
    X = np.stack([t.row(spill) for t in terms])
    coef = fit_nnls(X, y)
    rel = (X @ coef - y) / y
    return Calibration(device=group[0], backend=group[1], precision=group[2],
                       coef=dict(zip(FEATURES, map(float, coef), strict=True)), spill_bytes=spill,
                       n_points=len(pairs), fit_rms_rel_err=float(np.sqrt(np.mean(rel ** 2))), pairs=pairs)


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
    pts = _points(records)
    shape = tuple(int(d) for d in input_shape)
    out = []
    for group, gpts in pts.items():
        if (device and group[0] != device) or (backend and group[1] != backend) or (precision and group[2] != precision):
            continue
        cal = fit_group(group, gpts)
        terms = _terms(group, (model, shape))
        measured = gpts.get((model, shape))
        pred = cal.predict(terms)
        out.append({"device": group[0], "backend": group[1], "precision": group[2], "model": model,
                    "input": list(shape), "predicted_ms": pred, "measured_ms": measured,
                    "roofline_ms": terms.roofline_ms,
                    "rel_err": (pred - measured) / measured if measured else None, "train_points": cal.n_points})
    if not out:
        raise UserError("no calibration group matches --device/--backend/--precision; "
                        f"available: {', '.join('/'.join(g) for g in pts) or 'none'}")
    return out
