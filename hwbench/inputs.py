"""Input shapes: `--input HxW` strings and (N, C, H, W) checks (below every module that takes a size)."""

from __future__ import annotations

from collections.abc import Sequence

from hwbench.errors import UserError

DEFAULT_INPUT = (1, 3, 1024, 2048)  # (N, C, H, W): a full Cityscapes frame, as in the paper


def check_input_shape(input_shape: Sequence[int]) -> tuple[int, int, int, int]:
    """(N, C, H, W) of positive integers, else `UserError`."""
    try:
        shape = tuple(input_shape)
    except TypeError:
        raise UserError(f"input shape must be (N, C, H, W), got {input_shape!r}") from None
    if len(shape) != 4 or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape):
        raise UserError(f"input shape must be 4 positive integers (N, C, H, W), got {list(shape)}")
    return shape  # type: ignore[return-value]


def parse_hw(text: str, what: str = "--input") -> tuple[int, int]:
    """'1024x2048' -> (1024, 2048); anything else is a `UserError` naming `what` (a flag or config key)."""
    parts = str(text).lower().replace("×", "x").split("x")
    try:
        h, w = (int(p) for p in parts)
    except ValueError:
        raise UserError(f"{what} must be HxW (e.g. 1024x2048), got {text!r}") from None
    if h <= 0 or w <= 0:
        raise UserError(f"{what} must be positive HxW (e.g. 1024x2048), got {text!r}")
    return h, w


def input_shape_from_hw(text: str | None, *, batch: int = 1, channels: int = 3) -> tuple[int, int, int, int]:
    """(N, C, H, W) from an `--input HxW` string (None: the paper's 1024x2048) and `--batch N`."""
    h, w = parse_hw(text) if text is not None else DEFAULT_INPUT[2:]
    return check_input_shape((batch, channels, h, w))
