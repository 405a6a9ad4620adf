"""Powertools logging and metrics, set up once for the whole app.

Logs are JSON with the shop and message ids as keys; traces go to X-Ray; each metric is a CloudWatch
EMF line written when it happens, so nothing has to be flushed at the end of an
invocation. Service name and namespace come from POWERTOOLS_SERVICE_NAME and
POWERTOOLS_METRICS_NAMESPACE (defaults below).
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "shophook")
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "ShopHook")

logger = Logger(service=SERVICE)
# Patches botocore, so every DynamoDB call is a subsegment; off outside Lambda.
tracer = Tracer(service=SERVICE)


def emit(name: str, value: float = 1, unit: str = MetricUnit.Count, **dimensions: str) -> None:
    """One metric data point with its own dimensions (platform, reason, ...)."""
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
