"""User-facing errors: the CLI turns these into one line on stderr and exit status 2."""

from __future__ import annotations

from collections.abc import Iterable


class UserError(Exception):
    """Bad input from the user (unknown name, malformed value, broken file).

    The message is one line that names the problem and, where possible, the fix.
    """


def unknown(what: str, name: str, known: Iterable[str]) -> UserError:
    """`error: unknown model 'resnet51'; known: a, b, c`."""
    return UserError(f"unknown {what} {name!r}; known: {', '.join(sorted(known))}")


def missing_package(package: str, extra: str | None = None) -> UserError:
    """One-line install hint for an optional package."""
    hint = f"pip install 'hwbench[{extra}]'" if extra else f"pip install {package}"
    return UserError(f"{package} is not installed; install it with: {hint}")
