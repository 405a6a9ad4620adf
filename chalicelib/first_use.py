"""Modules imported when first used rather than with their importer, for what a
cold start may never need (app.py's services other than the webhook's)."""

from __future__ import annotations

import importlib
from typing import Any


class OnFirstUse:
    """Stands for the module named `__name__`: the first read of one of its
    attributes imports it, and every read is the module's own. Importing is
    left to the import system, which makes a second thread wait for the module
    to finish (`chalice local` serves requests on threads; importlib's
    LazyLoader does not make them wait on Python 3.11)."""

    def __init__(self, name: str) -> None:
        self.__name__ = name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(importlib.import_module(self.__name__), attribute)
