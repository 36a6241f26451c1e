"""Load local checkpoints (torchvision format) into zoo models, `weights_only=True`."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from hwbench.errors import UserError

log = logging.getLogger(__name__)

_WRAPPER_KEYS = ("state_dict", "model")
_MAX_KEYS_SHOWN = 8


def load_weights(model: nn.Module, path: str | Path, *, new_head: bool = False,
                 state: Mapping[str, torch.Tensor] | None = None) -> nn.Module:
    """Load the checkpoint at `path` into `model` strictly and return `model`.

    Accepts a bare state dict or one wrapped as `{"state_dict": ...}` / `{"model": ...}`
    (a `module.` prefix from DataParallel is stripped). A DeepLab model also accepts a classifier
    checkpoint of its backbone (e.g. torchvision's resnet18): it goes into `model.backbone`, and
    only the classifier keys (`fc.*`, `classifier.*`) are ignored. With `new_head`, a classifier
    also takes a checkpoint trained for another number of classes: classifier keys whose shapes
    differ keep the model's own (initial) values. Any other mismatch is a `UserError` listing
    the missing and unexpected keys. `state`: the file's state dict as `read_state_dict(path)` gave it
    (a caller's cache; only read from, never modified), so the file is not read again.
    """
    state = read_state_dict(path) if state is None else dict(state)
    target, prefix = model, ""
    backbone = getattr(model, "backbone", None)
    if backbone is not None and not any(k.startswith(("backbone.", "head.")) for k in state):
        target, prefix = backbone, "backbone."
        drop = tuple(getattr(backbone, "classifier_prefixes", ()))
        dropped = [k for k in state if drop and k.startswith(drop)]
        if dropped:
            log.info("ignoring %d classifier keys of the backbone checkpoint", len(dropped))
        state = {k: v for k, v in state.items() if k not in set(dropped)}
    elif new_head and getattr(model, "classifier_prefixes", ()):
        own = model.state_dict()
        head = tuple(model.classifier_prefixes)
        kept = {k: own[k] for k in own if k.startswith(head) and k in state and state[k].shape != own[k].shape}
        if kept:
            log.info("keeping the model's own %d classifier tensors (other number of classes)", len(kept))
        state = {**state, **kept}
    _load_strict(target, state, Path(path), prefix)
    return model


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The state dict of the checkpoint at `path` (unwrapped, `module.` prefix stripped); a file
    that is none is a `UserError`."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"checkpoint {str(path)!r} is a directory; pass the path of a local .pth/.pt file")
    if not path.is_file():
        raise UserError(f"checkpoint {str(path)!r} not found; pass the path of a local .pth/.pt file")
    try:
        obj = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as e:  # pickle errors, zip errors, disallowed globals: all mean "not a checkpoint"
        raise UserError(f"{str(path)!r} is not a PyTorch checkpoint loadable with weights_only=True "
                        f"({_load_error(e)}); save one with torch.save(model.state_dict(), path)") from None
    for key in _WRAPPER_KEYS:
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping) or not obj or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        raise UserError(f"{str(path)!r} holds no state dict (expected a mapping of names to tensors, "
                        f"bare or under 'state_dict' / 'model')")
    state = dict(obj)
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def _load_error(e: Exception) -> str:
    """The cause inside torch.load's message: its first line is generic advice to pass
    weights_only=False (which we never do); the `WeightsUnpickler error:` part names the problem."""
    text = str(e)
    if "WeightsUnpickler error:" in text:
        detail = text.split("WeightsUnpickler error:", 1)[1].strip().split("\n\n")[0]
        return " ".join(detail.split()).split(". ")[0] or type(e).__name__
    return text.strip().splitlines()[0] if text.strip() else type(e).__name__


def _load_strict(target: nn.Module, state: dict[str, torch.Tensor], path: Path, prefix: str) -> None:
    own = target.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shape = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in own
             if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or shape:
        parts = []
        if missing:
            parts.append(f"missing keys: {_short([prefix + k for k in missing])}")
        if unexpected:
            parts.append(f"unexpected keys: {_short([prefix + k for k in unexpected])}")
        if shape:
            parts.append(f"shape mismatch (checkpoint vs model): {_short([prefix + s for s in shape])}")
        raise UserError(f"checkpoint {str(path)!r} does not fit the model; {'; '.join(parts)}")
    target.load_state_dict(state, strict=True)


def _short(keys: list[str]) -> str:
    shown = ", ".join(keys[:_MAX_KEYS_SHOWN])
    return shown + (f" ... ({len(keys) - _MAX_KEYS_SHOWN} more)" if len(keys) > _MAX_KEYS_SHOWN else "")
