"""One module per marketplace. A module that defines `PLATFORM` is a platform:
adding a marketplace means adding its module here, nothing else."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import Any

from chalicelib.platforms.base import Platform


def platforms_in(package: str, path: Iterable[str]) -> dict[str, Any]:
    """The `PLATFORM` of every module in `package` that defines one, by its name
    (the simulator finds its platforms the same way)."""
    import importlib  # with the first message, not at every cold start
    import pkgutil

    platforms: dict[str, Any] = {}
    for module_info in pkgutil.iter_modules(path):
        module = importlib.import_module(f"{package}.{module_info.name}")
        platform = getattr(module, "PLATFORM", None)
        if platform is not None:
            platforms[platform.name] = platform
    return platforms


@cache
def registry() -> dict[str, Platform]:
    return platforms_in(__name__, __path__)
