"""Optimisation pieces of `al.train`: SGD parameter groups and the learning-rate schedule (poly, with an
optional linear warm-up)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import nn

from al.runtime import EagerSGD  # torch's SGD without importing torch._dynamo
from hwbench.errors import UserError

NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)


def poly_lr(base_lr: float, iteration: int, total_iters: int, power: float = 0.9) -> float:
    """Poly schedule: `base_lr * (1 - iteration / total_iters) ** power` (iteration 0-based)."""
    return base_lr * (1.0 - iteration / max(total_iters, 1)) ** power


def scheduled_lr(cfg: Any, iteration: int, total_iters: int) -> float:
    """Poly schedule times a linear warm-up: `(it + 1) / warmup_steps` over the first `warmup_steps` steps."""
    lr = poly_lr(cfg.lr, iteration, total_iters, cfg.poly_power)
    return lr * min(1.0, (iteration + 1) / cfg.warmup_steps) if cfg.warmup_steps else lr


def param_groups(modules: Iterable[nn.Module], weight_decay: float) -> list[dict[str, Any]]:
    """Two SGD groups: `decay` (conv/linear weights) and `no_decay` (norm-layer params, biases)."""
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    seen: set[int] = set()
    for root in modules:
        for module in root.modules():
            for pname, p in module.named_parameters(recurse=False):
                if not p.requires_grad or id(p) in seen:
                    continue
                seen.add(id(p))
                exempt = isinstance(module, NORM_TYPES) or pname.endswith("bias")
                (no_decay if exempt else decay).append(p)
    groups = [{"name": "decay", "params": decay, "weight_decay": weight_decay},
              {"name": "no_decay", "params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def make_optimizer(modules: Sequence[nn.Module], cfg: Any) -> torch.optim.SGD:
    groups = param_groups(modules, cfg.weight_decay)
    if not groups:
        raise UserError("train: the model has no trainable parameters")
    fused = getattr(cfg, "fused_sgd", False) or None  # None: torch's default (the per-parameter loop on CPU)
    return EagerSGD(groups, lr=cfg.lr, momentum=cfg.momentum, fused=fused)
