"""`hwbench.count`, `hwbench.latency` and `hwbench.deploy` are both modules and public functions
(DESIGN §4). Importing a submodule rebinds the package attribute to the module, so such a module
forwards calls to its function of the same name."""

from __future__ import annotations

import sys
import types
from typing import Any


class _CallableModule(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return getattr(self, self.__name__.rsplit(".", 1)[-1])(*args, **kwargs)


def make_callable(module_name: str) -> None:
    """Make module `module_name` callable as its function of the same (last) name."""
    sys.modules[module_name].__class__ = _CallableModule
