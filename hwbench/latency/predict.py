"""Latency predictor: the per-layer roofline, calibrated on measurements.

Terms (per-layer roofline times and op classes) come from `hwbench.latency.terms`.

Model. latency = [c0 + lambda * n_layers + sum_k alpha_k C_k + sum_k beta_k A_k + gamma W + sigma S_T]
                 * exp(s * r_model)
with C_k = sum of c_l over class k, A_k = sum of a_l over class k, W = sum of w_l and the cache-spill
term S_T = sum of a_l over layers whose activation working set exceeds T bytes. Coefficients are
non-negative (c0: fixed overhead in ms, lambda: ms per layer, alpha/beta/gamma/sigma: inverse
efficiencies), fitted by non-negative least squares (scipy.optimize.nnls) on relative errors (rows
divided by the measured latency: every pair counts equally), separately per (device, backend,
precision). Two feature sets (`FEATURE_SETS`): "roofline" (one compute and one traffic efficiency,
6 coefficients) and "classes" (per op class, dilated convs charged by valid taps, 15). The per-model
correction r_model is the mean log(measured / fitted) over that model's *training* points (0 for a
model without any) and s in `SHRINK_CANDIDATES` its weight.

Hyper-parameters (`Hyper`: feature set, T from `SPILL_CANDIDATES` or no spill term, s) are chosen
by inner cross-validation on the training points only (`select_hyper`, smallest mean |relative
error|, ties to the simpler choice), with the folds of the evaluation protocol. Several records of
one (model, input) pair are merged (median of their latencies).

Evaluation (`PROTOCOLS`). `leave_one_out(records, "pair")` holds out each (model, resolution) pair
and fits (hyper-parameters included) on the rest of its group: the held-out model's other
resolutions are training data, which is what the per-model correction uses. `leave_one_out(records,
"model")` holds out every resolution of one model at once and selects hyper-parameters by
leave-one-model-out inside the training models: the honest figure for an unseen model (here
trained on 4 models only). `loo_summary` gives the fraction within +-10 %, the metric of nn-Meter
(which reports 99 % within +-10 % on a mobile CPU with per-kernel predictors trained on thousands of
samples); ours has at most 15 coefficients per device/backend/precision.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from hwbench.errors import UserError, unknown
from hwbench.latency.measure import Measurement
from hwbench.latency.terms import (  # noqa: F401  (re-exported: the predictor's public names)
    COMPUTE_CLASSES,
    FEATURES,
    FUSED_BACKENDS,
    OP_CLASSES,
    LayerTerm,
    Terms,
    conv_class,
    layer_terms,
    valid_fraction,
)

log = logging.getLogger(__name__)

SPILL_CANDIDATES = (2 << 20, 4 << 20, 8 << 20, 16 << 20, 32 << 20)  # T in bytes (None = no spill term)
SHRINK_CANDIDATES = (0.0, 0.5, 1.0)  # weight of the per-model correction (pair protocol)
MIN_POINTS_FOR_SPILL = 6
MIN_FOLDS_FOR_CV = 3
WITHIN = 0.10
PROTOCOLS = {
    "pair": "leave-one-(model, resolution)-out: the held-out model's other resolutions are in the training set",
    "model": "leave-one-model-out: no resolution of the held-out model is in the training set (an unseen model)",
}


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


def _merge(*groups: tuple[str, tuple[str, ...]]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return groups


_COMPUTE = tuple(f"compute_{k}" for k in COMPUTE_CLASSES)
_ACT = tuple(f"act_{k}" for k in OP_CLASSES)
# Feature sets: fitted column -> the `FEATURES` columns it sums. Chosen per fit by inner cross-validation.
FEATURE_SETS: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    # overhead + one inverse efficiency for compute, one for activation traffic (6 coefficients)
    "roofline": _merge(("overhead", ("overhead",)), ("layers", ("layers",)), ("compute", _COMPUTE), ("act", _ACT),
                       ("weights", ("weights",)), ("spill", ("spill",))),
    # per op class; dilated convs apart, charged for the kernel taps inside the input only (15 coefficients)
    "classes": _merge(("overhead", ("overhead",)), ("layers", ("layers",)),
                      *((f"compute_{k}", (f"compute_{k}",)) for k in ("conv", "pointwise", "depthwise", "linear")),
                      ("compute_dilated_valid", ("compute_dilated_valid",)),
                      *((f"act_{k}", (f"act_{k}",)) for k in OP_CLASSES),
                      ("weights", ("weights",)), ("spill", ("spill",))),
}


def design(rows: np.ndarray, feature_set: str) -> np.ndarray:
    """Columns of `feature_set` from full `FEATURES` rows (n, len(FEATURES)) -> (n, len(set))."""
    idx = {k: i for i, k in enumerate(FEATURES)}
    rows = np.atleast_2d(rows)
    return np.stack([rows[:, [idx[c] for c in src]].sum(axis=1) for _, src in FEATURE_SETS[feature_set]], axis=1)


def _log_ratios(models: np.ndarray, y: np.ndarray, fitted: np.ndarray) -> dict[str, float]:
    """Per model: mean log(measured / fitted) over its points (the per-model correction before shrinkage)."""
    return {str(m): float(np.mean(np.log(y[models == m] / fitted[models == m]))) for m in dict.fromkeys(models)}


def _folds(models: np.ndarray, protocol: str) -> list[np.ndarray]:
    """Held-out index sets: one point each ("pair") or all points of one model ("model")."""
    if protocol not in PROTOCOLS:
        raise unknown("leave-one-out protocol", protocol, PROTOCOLS)
    if protocol == "pair":
        return [np.array([i]) for i in range(len(models))]
    return [np.flatnonzero(models == m) for m in dict.fromkeys(models)]


@dataclass(frozen=True)
class Hyper:
    """Hyper-parameters chosen by inner cross-validation on the training points only."""

    feature_set: str = "roofline"
    spill_bytes: float | None = None
    shrink: float = 0.0  # weight of the per-model correction


def cv_errors(rows: Mapping[float | None, np.ndarray], y: np.ndarray, models: np.ndarray, protocol: str,
              feature_sets: Sequence[str] | None = None,
              shrinks: Sequence[float] = SHRINK_CANDIDATES) -> dict[Hyper, np.ndarray]:
    """Relative cross-validated errors of every hyper-parameter combination.

    `rows[T]` are the full `FEATURES` rows with spill threshold T; folds follow `protocol`. For each fold
    the coefficients and the per-model log-ratios come from the other folds only.
    """
    out: dict[Hyper, np.ndarray] = {}
    folds = _folds(models, protocol)
    for fs in FEATURE_SETS if feature_sets is None else feature_sets:
        for t, full in rows.items():
            X = design(full, fs)
            errs = np.empty((len(shrinks), len(y)))
            for fold in folds:
                keep = np.setdiff1d(np.arange(len(y)), fold)
                coef = fit_nnls(X[keep], y[keep])
                lr = _log_ratios(models[keep], y[keep], X[keep] @ coef)
                base = X[fold] @ coef
                shift = np.array([lr.get(str(m), 0.0) for m in models[fold]])
                for j, s in enumerate(shrinks):
                    errs[j, fold] = (base * np.exp(s * shift) - y[fold]) / y[fold]
            for j, s in enumerate(shrinks):
                out[Hyper(fs, t, float(s))] = errs[j]
    return out


def select_hyper(terms: Sequence[Terms], y: np.ndarray, models: Sequence[str], protocol: str = "pair") -> Hyper:
    """(feature set, spill threshold, correction weight) with the smallest mean |inner CV error|.

    Inner folds follow `protocol` on the given (training) points; ties go to the simpler choice (earlier
    feature set, no spill term, no correction). Too few points or models: the defaults of `Hyper`.
    """
    models = np.asarray(models)
    n_folds = len(_folds(models, protocol))
    if len(y) < MIN_POINTS_FOR_SPILL or n_folds < MIN_FOLDS_FOR_CV:
        return Hyper()
    rows: dict[float | None, np.ndarray] = {}
    for t in (None, *SPILL_CANDIDATES):
        full = np.stack([tt.row(t) for tt in terms])
        if t is not None and not full[:, FEATURES.index("spill")].any():
            continue  # no layer above T: same as no spill term
        rows[t] = full
    shrinks = SHRINK_CANDIDATES if protocol == "pair" else (0.0,)  # "model": the held-out model has no points
    best, best_err = Hyper(), math.inf
    for h, e in cv_errors(rows, y, models, protocol, shrinks=shrinks).items():
        err = float(np.mean(np.abs(e)))
        if err < best_err - 1e-12:
            best, best_err = h, err
    return best


@dataclass
class Calibration:
    """Fitted coefficients for one (device, backend, precision)."""

    device: str
    backend: str
    precision: str
    coef: dict[str, float]  # feature-set column -> coefficient (overhead ms, ms per layer, inverse efficiencies)
    spill_bytes: float | None  # cache-spill threshold T (None: no spill term)
    n_points: int
    fit_rms_rel_err: float
    pairs: list[tuple[str, tuple[int, ...]]] = field(default_factory=list)
    feature_set: str = "roofline"
    shrink: float = 0.0  # weight of the per-model correction
    model_log_ratio: dict[str, float] = field(default_factory=dict)  # per model: mean log(measured / fitted)
    cv: str = "pair"  # protocol of the inner cross-validation that chose the hyper-parameters

    def correction(self, model: str) -> float:
        """Multiplicative per-model correction: exp(shrink * mean log-ratio); 1 for a model without points."""
        return math.exp(self.shrink * self.model_log_ratio.get(model, 0.0))

    def predict_base(self, terms: Terms) -> float:
        """The calibrated roofline alone (no per-model correction)."""
        X = design(terms.row(self.spill_bytes), self.feature_set)[0]
        return float(X @ np.array([self.coef[name] for name, _ in FEATURE_SETS[self.feature_set]]))

    def predict(self, terms: Terms) -> float:
        return self.predict_base(terms) * self.correction(terms.model)

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


def fit_group(group: GroupKey, points: Mapping[Pair, float], *, cv: str = "pair") -> Calibration:
    """Fit one group's coefficients on its (model, input) -> latency points.

    The hyper-parameters (`Hyper`) are chosen by inner cross-validation over `points` with folds of
    protocol `cv`, so a caller that held a point out never lets it influence anything here.
    """
    if not points:
        raise UserError(f"no measurements for {'/'.join(group)}")
    pairs = list(points)
    terms = [_terms(group, p) for p in pairs]
    y = np.array([points[p] for p in pairs])
    models = np.array([p[0] for p in pairs])
    hyper = select_hyper(terms, y, models, cv)
    X = design(np.stack([t.row(hyper.spill_bytes) for t in terms]), hyper.feature_set)
    coef = fit_nnls(X, y)
    fitted = X @ coef
    lr = _log_ratios(models, y, fitted)
    rel = (fitted * np.exp([hyper.shrink * lr[str(m)] for m in models]) - y) / y
    names = [name for name, _ in FEATURE_SETS[hyper.feature_set]]
    return Calibration(device=group[0], backend=group[1], precision=group[2],
                       coef=dict(zip(names, map(float, coef), strict=True)), spill_bytes=hyper.spill_bytes,
                       n_points=len(pairs), fit_rms_rel_err=float(np.sqrt(np.mean(rel ** 2))), pairs=pairs,
                       feature_set=hyper.feature_set, shrink=hyper.shrink, model_log_ratio=lr, cv=cv)


def calibrate(records: Iterable[Measurement]) -> dict[GroupKey, Calibration]:
    """One calibration per (device, backend, precision) found in `records`."""
    return {g: fit_group(g, pts) for g, pts in _points(records).items()}


def leave_one_out(records: Iterable[Measurement], protocol: str = "pair") -> list[dict[str, Any]]:
    """Hold out each fold of `protocol` (see `PROTOCOLS`), fit on the rest of its group, predict it.

    "pair": each (model, input) pair in turn; "model": all inputs of one model at once. The inner
    hyper-parameter search uses the same protocol on the training points only.
    """
    if protocol not in PROTOCOLS:
        raise unknown("leave-one-out protocol", protocol, PROTOCOLS)
    rows = []
    for group, pts in _points(records).items():
        pairs = list(pts)
        for fold in _folds(np.array([p[0] for p in pairs]), protocol):
            held = {pairs[i] for i in fold}
            rest = {p: v for p, v in pts.items() if p not in held}
            cal = fit_group(group, rest, cv=protocol) if rest else None
            for pair in (pairs[i] for i in fold):
                measured = pts[pair]
                terms = _terms(group, pair)
                pred = cal.predict(terms) if cal else math.nan
                rows.append({"device": group[0], "backend": group[1], "precision": group[2], "model": pair[0],
                             "input": list(pair[1]), "measured_ms": measured, "predicted_ms": pred,
                             "roofline_ms": terms.roofline_ms, "rel_err": (pred - measured) / measured,
                             "train_points": len(rest), "protocol": protocol,
                             "feature_set": cal.feature_set if cal else None,
                             "correction": cal.correction(pair[0]) if cal else math.nan})
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
                    "rel_err": (pred - measured) / measured if measured else None, "train_points": cal.n_points,
                    "protocol": "all data", "feature_set": cal.feature_set, "correction": cal.correction(model)})
    if not out:
        raise UserError("no calibration group matches --device/--backend/--precision; "
                        f"available: {', '.join('/'.join(g) for g in pts) or 'none'}")
    return out
