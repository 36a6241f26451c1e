"""The active-learning score inside the exported graph: `hwbench export MODEL --score entropy`.

`ScoringGraph(model, score, aggregation)` wraps a zoo model so that one forward pass returns what
the on-device scorer needs instead of a C x H x W logit map:

    x (N, 3, H, W) -> score (N,), embedding (N, D)

- `entropy`: per pixel the Shannon entropy (nats) of softmax(logits) over the classes, written as
  H = log S - sum(e * z) / S with z = logits - max(logits), e = exp(z), S = sum(e) (stable; the
  same formula as `al.strategies.scoring`, which this package may not import: the tests check the
  two agree on the same input to a relative error <= 1e-4);
- `margin`: 1 - (p1 - p2), p1 >= p2 the two largest class probabilities (TopK in ONNX);
- `llal`: the LLAL loss-prediction head (`hwbench.models.loss_head.LossPredictionModule`) on the
  model's four feature taps; its predicted loss is the score (aggregation does not apply).
Per-pixel maps (segmentation) are reduced per image by `aggregation`: `mean` (default), `sum`,
`max` or `minmax` (mean of the per-image min-max normalised map; a constant map scores 0), the
options of `al.strategies.scoring.AGGREGATIONS` without an ignore mask (a device has no labels).
Classification logits (N, K) give the score of the class distribution directly.

`embedding` is what the Core-Set strategy uses (`al.strategies.evidence`): the model's
`embedding_tap` feature, globally average pooled, (N, C) (DeepLabv3+: the stride-4 low-level
feature; classifiers: the penultimate feature). The device uses it for its near-duplicate filter.

Cost: the scoring ops run at the model's output resolution (after the final upsampling), as the
server-side scoring does. They add no conv/linear MACs (except the LLAL head's 1x1 convs); the
counter lists them as `unsupported` element-wise operators and the roofline charges the bytes
they read and write (e.g. `exp`, `amax`, `sum` over the full-resolution logits).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hwbench.errors import UserError, unknown

SCORES = ("entropy", "margin", "llal")
AGGREGATIONS = ("mean", "sum", "max", "minmax")
OUTPUT_NAMES = ("score", "embedding")


def pixel_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy (nats) of softmax over dim 1: (N, K, H, W) -> (N, H, W); (N, K) -> (N,)."""
    z = logits.float()
    z = z - z.amax(1, keepdim=True)
    e = z.exp()
    s = e.sum(1)
    return s.log() - (e * z).sum(1) / s


def pixel_margin(logits: torch.Tensor) -> torch.Tensor:
    """1 - (p1 - p2) of softmax over dim 1: (N, K, H, W) -> (N, H, W); (N, K) -> (N,)."""
    top2 = F.softmax(logits.float(), dim=1).topk(2, dim=1).values                  # (N, 2[, H, W])
    return 1.0 - (top2[:, 0] - top2[:, 1])


PIXEL_SCORES = {"entropy": pixel_entropy, "margin": pixel_margin}


def aggregate(m: torch.Tensor, how: str) -> torch.Tensor:
    """(N, H, W) pixel map -> (N,) per-image score."""
    flat = m.flatten(1)                                                            # (N, P)
    if how == "mean":
        return flat.mean(1)
    if how == "sum":
        return flat.sum(1)
    if how == "max":
        return flat.amax(1)
    if how == "minmax":
        lo, hi = flat.amin(1, keepdim=True), flat.amax(1, keepdim=True)            # (N, 1)
        span = hi - lo
        ok = span > 0
        norm = (flat - lo) / torch.where(ok, span, torch.ones_like(span))
        return torch.where(ok[:, 0], norm.mean(1), torch.zeros_like(span[:, 0]))
    raise unknown("aggregation", how, AGGREGATIONS)


def pooled(f: torch.Tensor) -> torch.Tensor:
    """Global average pool: (N, C, h, w) -> (N, C); (N, C) unchanged."""
    return f.flatten(2).mean(2) if f.dim() > 2 else f


class ScoringGraph(nn.Module):
    """A model plus its image-level score: forward(x) -> (score (N,), embedding (N, D))."""

    output_names = OUTPUT_NAMES

    def __init__(self, model: nn.Module, score: str = "entropy", aggregation: str = "mean", *,
                 loss_head: nn.Module | None = None, name: str | None = None) -> None:
        super().__init__()
        if score not in SCORES:
            raise unknown("score", score, SCORES)
        if aggregation not in AGGREGATIONS:
            raise unknown("aggregation", aggregation, AGGREGATIONS)
        if not hasattr(model, "embedding_tap") or not hasattr(model, "feature_taps"):
            raise UserError(f"{type(model).__name__} declares no feature taps; --score needs a zoo model")
        if score == "llal" and loss_head is None:
            loss_head = default_loss_head(model)
        self.model = model
        self.loss_head = loss_head if score == "llal" else None
        self.score, self.aggregation = score, aggregation
        base = getattr(model, "name", None) or type(model).__name__
        self.name = name or f"{base}+{score}" + ("" if aggregation == "mean" or score == "llal" else f"-{aggregation}")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, feats = self.model(x, return_features=True)                      # (N, K[, H, W]), taps
        emb = pooled(feats[self.model.embedding_tap]).float()                    # (N, D)
        if self.loss_head is not None:
            return self.loss_head(feats).float().reshape(-1), emb                # (N,)
        m = PIXEL_SCORES[self.score](logits)                                     # (N, H, W) or (N,)
        return (m if m.dim() == 1 else aggregate(m, self.aggregation)), emb


def default_loss_head(model: nn.Module) -> nn.Module:
    """A freshly initialised LLAL head for `model` (load trained weights with `--weights`)."""
    from hwbench.models.loss_head import LossPredictionModule

    return LossPredictionModule(model.task, model.feature_taps, model.feature_channels)


def scoring_model(model: str | nn.Module, score: str, aggregation: str = "mean", *,
                  num_classes: int | None = None, weights: str | None = None, meta: bool = False) -> ScoringGraph:
    """The zoo model `model` (or a module) wrapped with its score, in eval mode.

    `weights`: a checkpoint with the model's state dict (bare, or under "model" / "state_dict", as
    `al run` writes them); for `llal` its "aux" entry is the trained loss-prediction head.
    `meta=True` builds on the meta device (shapes only: counting and theoretical latency)."""
    if isinstance(model, str):
        from hwbench.models import create_model

        kw: dict[str, Any] = {} if num_classes is None else {"num_classes": num_classes}
        if meta:
            with torch.device("meta"):
                module = create_model(model, **kw)
                module.name = model
                return ScoringGraph(module, score, aggregation).eval()
        torch.manual_seed(0)   # reproducible weights, hence a reproducible file (and TensorRT cache key)
        module = create_model(model, **kw)
        module.name = model
    else:
        module = model
    head = None
    if weights is not None:
        head = _load(module, weights, score)
    elif score == "llal":
        torch.manual_seed(1)
        head = default_loss_head(module)
    return ScoringGraph(module, score, aggregation, loss_head=head).eval()


def _load(module: nn.Module, weights: str, score: str) -> nn.Module | None:
    from pathlib import Path

    from hwbench.models.weights import load_weights

    load_weights(module, weights)
    if score != "llal":
        return None
    obj = torch.load(Path(weights), weights_only=True, map_location="cpu")
    aux = obj.get("aux") if isinstance(obj, dict) else None
    if not isinstance(aux, dict):
        raise UserError(f"{weights} has no trained LLAL head ('aux'); pass a checkpoint of an `al run` "
                        "with strategy llal, or leave --weights out for an untrained head (latency only)")
    head = default_loss_head(module)
    try:
        head.load_state_dict(aux)
    except RuntimeError as e:
        raise UserError(f"{weights}: its 'aux' entry does not fit the LLAL head of this model "
                        f"({str(e).splitlines()[0][:160]})") from None
    return head


# ------------------------------------------------------------------ CLI glue (latency, deploy, measure)
def check_score_arguments(score: str | None, aggregation: str) -> None:
    """`UserError` for an unknown --score / --aggregation, before any model is built."""
    if score is not None and score not in SCORES:
        raise unknown("score", score, SCORES)
    if aggregation not in AGGREGATIONS:
        raise unknown("aggregation", aggregation, AGGREGATIONS)


def costed_models(names: list[str], score: str | None, aggregation: str = "mean", *,
                  num_classes: int | None = None) -> list[str | ScoringGraph]:
    """The names unchanged without `score`; else their scoring graphs on the meta device (counting)."""
    check_score_arguments(score, aggregation)
    if score is None:
        return list(names)
    return [scoring_model(n, score, aggregation, num_classes=num_classes, meta=True) for n in names]

