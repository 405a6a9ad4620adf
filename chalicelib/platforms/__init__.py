"""One module per marketplace. A module that defines `PLATFORM` is a platform:
adding a marketplace means adding its module here, nothing else."""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from chalicelib.platforms.base import Platform


@cache
def registry() -> dict[str, Platform]:
    platforms: dict[str, Platform] = {}
    for module_info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        platform = getattr(module, "PLATFORM", None)
        if platform is not None:
            platforms[platform.name] = platform
    return platforms
