"""Where a model's starting weights come from: the `weights` entry of run and experiment configs.

    "none"       random initialisation (the default)
    "pretrain"   the `al pretrain` checkpoint of the model's backbone (trained first if missing)
    PATH         a local torchvision-format classifier checkpoint of the backbone (or a full
                 checkpoint of the model), loaded with `hwbench.load_weights`; `~` and `$VARS`
                 are expanded

A checkpoint is identified by its SHA-256: `resolve` returns it, the run's resolved config and
`state.json` record it, and `load` refuses a file whose content changed since (a config may pin
it in advance with `weights_sha256`). A DeepLab model's backbone takes the checkpoint and its head
keeps its seeded random initialisation; a classifier takes all of it except a classifier layer
sized for another number of classes.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hwbench.errors import UserError
from hwbench.io import file_problem

NONE = "none"
PRETRAIN = "pretrain"


@dataclass(frozen=True)
class WeightsRef:
    """A resolved `weights` entry: what was asked for, the file, and its SHA-256."""

    spec: str
    path: str
    sha256: str

    def record(self) -> dict[str, str]:
        return {"weights": self.spec, "path": self.path, "sha256": self.sha256}


def resolve(spec: str | None, model: str, *, sha256: str | None = None, where: str = "model.weights",
            check_fit: bool = True) -> WeightsRef | None:
    """Resolve a `weights` entry of `model` (None / "none" -> None); `sha256` pins the expected content.

    A missing, unreadable, non-checkpoint or ill-fitting file, or a SHA-256 other than the pinned
    one, is a one-line `UserError` naming `where` and the fix.
    """
    from al.pretrain.cache import file_sha256

    if spec is None or spec == NONE:
        if sha256:
            raise UserError(f"{where}_sha256 is set but {where} is \"none\"; drop it or give the checkpoint")
        return None
    if not isinstance(spec, str) or not spec.strip():
        raise UserError(f"{where}: give \"none\", \"pretrain\" or the path of a checkpoint file")
    if sha256 is not None and not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise UserError(f"{where}_sha256 must be 64 lowercase hex digits (a SHA-256), got {sha256!r}")
    if spec == PRETRAIN:
        from al.pretrain import pretrained_checkpoint

        meta = pretrained_checkpoint(model)
        ref = WeightsRef(PRETRAIN, meta["path"], meta["sha256"])
    else:
        path = Path(os.path.expanduser(os.path.expandvars(spec)))
        what = file_problem(path)
        if what is not None:
            raise UserError(f"{where}: checkpoint {str(path)!r} {what}; give \"none\", \"pretrain\" or the path "
                            "of a torchvision-format .pth file")
        try:
            digest = file_sha256(path)
        except OSError as e:
            raise UserError(f"{where}: cannot read {str(path)!r}: {e.strerror or e}") from None
        ref = WeightsRef(spec, str(path.resolve()), digest)
    if sha256 is not None and sha256 != ref.sha256:
        raise UserError(f"{where}: {ref.path} has SHA-256 {ref.sha256[:16]}..., not the {sha256[:16]}... "
                        "this config pins; restore that file or start over with --force")
    if check_fit:
        _check_fit(ref, model, where)
    return ref


def resolve_models(cfg: Any, models: Sequence[str], *, known: Sequence[str] = ()) -> tuple[Any, dict[str, WeightsRef]]:
    """The starting weights of `models` for an experiment config with `weights` / `weights_sha256` /
    `weights_for(model)`; returns the config with the SHA-256s filled in, and model -> `WeightsRef`.
    A per-model `weights` entry must name one of `models` or `known` (models of the config this
    invocation does not train, e.g. chain models without --chain)."""
    if isinstance(cfg.weights, dict):
        allowed = dict.fromkeys((*models, *known))
        stray = sorted(set(cfg.weights) - set(allowed))
        if stray:
            raise UserError(f"weights: {stray[0]!r} is not a model of this experiment; models: "
                            f"{', '.join(allowed)}")
    refs = {}
    for m in dict.fromkeys(models):
        ref = resolve(cfg.weights_for(m), m, sha256=cfg.weights_sha256.get(m), where=f"weights ({m})")
        if ref is not None:
            refs[m] = ref
    return dataclasses.replace(cfg, weights_sha256={m: r.sha256 for m, r in refs.items()}), refs


def _check_fit(ref: WeightsRef, model: str, where: str) -> None:
    """Load the checkpoint into `model` once (1 class head; only the backbone matters) to fail early."""
    from hwbench import load_weights
    from hwbench.models import create_model

    try:
        load_weights(create_model(model, num_classes=2), ref.path, new_head=True, state=_state_dict(ref.path, ref.sha256))
    except UserError as e:
        raise UserError(f"{where}: {e}") from None


_STATES: dict[tuple[str, str], Any] = {}  # (path, SHA-256) -> state dict read from it, this process
_STATES_MAX = 4


def _state_dict(path: str, digest: str) -> Any:
    """The state dict of the file at `path` whose content has SHA-256 `digest`, read once per process
    (an experiment's worker builds the same starting model for every cycle of every cell)."""
    from hwbench.models.weights import read_state_dict

    key = (path, digest)
    if key not in _STATES:
        while len(_STATES) >= _STATES_MAX:
            _STATES.pop(next(iter(_STATES)))
        _STATES[key] = read_state_dict(path)
    return _STATES[key]


def load(model: Any, ref: WeightsRef | None) -> Any:
    """Load `ref` into `model` (nothing for None) after checking that the file still has its SHA-256."""
    if ref is None:
        return model
    from al.pretrain.cache import file_sha256
    from hwbench import load_weights

    try:
        digest = file_sha256(ref.path)
    except OSError as e:
        raise UserError(f"weights {ref.path}: {e.strerror or e}; restore the file or start over with --force") from None
    if digest != ref.sha256:
        raise UserError(f"weights {ref.path} changed (SHA-256 {digest[:16]}..., expected {ref.sha256[:16]}...); "
                        "restore the file or start over with --force")
    # a classifier's head keeps its init if sizes differ
    return load_weights(model, ref.path, new_head=True, state=_state_dict(ref.path, digest))
