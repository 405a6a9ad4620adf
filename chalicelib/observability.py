"""Powertools logging and metrics, set up once for the whole app.

Logs are JSON with the shop and message ids as keys; traces go to X-Ray; each metric is a CloudWatch
EMF line written when it happens, so nothing has to be flushed at the end of an
invocation. Service name and namespace come from POWERTOOLS_SERVICE_NAME and
POWERTOOLS_METRICS_NAMESPACE (defaults below).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.shared import constants

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "shophook")
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "ShopHook")

logger = Logger(service=SERVICE)


def tracing_on() -> bool:
    """Powertools' own rule: in Lambda, not emulated, not turned off."""
    in_lambda = bool(os.environ.get(constants.LAMBDA_TASK_ROOT_ENV))
    emulated = os.environ.get(constants.SAM_LOCAL_ENV) or os.environ.get(
        constants.CHALICE_LOCAL_ENV
    )
    turned_off = os.environ.get(constants.TRACER_DISABLED_ENV, "false").lower() in ("1", "true")
    return in_lambda and not emulated and not turned_off


class _Untraced:
    """What the code asks of the Tracer, where tracing is off."""

    def capture_method(self, method: Callable | None = None, **_: Any) -> Any:
        return method if method is not None else (lambda undecorated: undecorated)


def _tracer() -> Any:
    if not tracing_on():
        # Even a disabled Powertools Tracer loads the X-Ray SDK, some 300 ms of
        # every cold start; only a traced function pays for it.
        return _Untraced()
    from aws_lambda_powertools import Tracer

    # Patches botocore, so every DynamoDB call is a subsegment.
    return Tracer(service=SERVICE)


tracer = _tracer()


def emit(name: str, value: float = 1, unit: str = "Count", **dimensions: str) -> None:
    """One metric data point with its own dimensions (platform, reason, ...)."""
    # Imported with the first metric, not at every cold start.
    from aws_lambda_powertools.metrics import single_metric
    from aws_lambda_powertools.metrics.functions import is_metrics_disabled

    # single_metric prints even when POWERTOOLS_METRICS_DISABLED is set; honour it here.
    if is_metrics_disabled():
        return
    with single_metric(name=name, unit=unit, value=value, namespace=NAMESPACE) as metric:
        for dimension, dimension_value in dimensions.items():
            metric.add_dimension(name=dimension, value=dimension_value)


DEADLINE_METRICS = {
    "after_sale.deadline_breached": "DeadlinesBreached",
    "after_sale.deadline_due": "DeadlineWarnings",
}


def count_deadline_events(event_types: list[str]) -> None:
    """Breaches and warnings, whether ingest or the sweeper found them."""
    for event_type, metric in DEADLINE_METRICS.items():
        found = event_types.count(event_type)
        if found:
            emit(metric, found)
