"""The local driver: runs what `chalice local` does not, the app's schedules,
in-process, with the same events Lambda would send them."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from types import ModuleType
from typing import Any

from chalice.app import ScheduledEventConfig

from chalicelib.config import aws_region


def scheduled_handlers(app_module: ModuleType) -> dict[str, Callable[..., Any]]:
    return {
        source.name: getattr(app_module, source.name)
        for source in app_module.app.event_sources
        if isinstance(source, ScheduledEventConfig)
    }


def run_schedules(app_module: ModuleType, now: datetime) -> dict[str, Any]:
    """Invoke every scheduled function once; return what each returned."""
    event = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": now.isoformat(),
        "region": aws_region(),
        "resources": [],
        "detail": {},
    }
    return {name: handler(event, None) for name, handler in scheduled_handlers(app_module).items()}
