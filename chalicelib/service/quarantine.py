"""The quarantine: well-signed messages that could not be applied, kept whole."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pynamodb.exceptions import DoesNotExist

from chalicelib.service import ingest
from chalicelib.service.errors import ApiError
from chalicelib.store.records import QuarantineRecord


def summary(record: QuarantineRecord) -> dict[str, Any]:
    return {
        "key": record.message_key,
        "platform": record.platform,
        "field": record.field,
        "error": record.error,
        "deliveries": int(record.deliveries),
        "last_received_at": record.last_received_at.isoformat(),
    }


def held() -> list[QuarantineRecord]:
    # An operator's view of what is usually a handful of rows.
    return sorted(QuarantineRecord.scan(), key=lambda record: record.last_received_at)


def get(key: str) -> QuarantineRecord:
    try:
        return QuarantineRecord.get(key)
    except DoesNotExist:
        raise ApiError(404, "not_quarantined", f"nothing quarantined under '{key}'") from None


def detail(record: QuarantineRecord) -> dict[str, Any]:
    return {
        **summary(record),
        "message_id": record.message_id,
        "first_received_at": record.first_received_at.isoformat(),
        "params": json.loads(record.params),
        "body": record.raw_body.decode("utf-8", errors="replace"),
    }


def reprocess(record: QuarantineRecord, now: datetime) -> int:
    """Run the message through ingest again; on success it leaves the quarantine.
    Returns the HTTP status the platform would have got."""
    reply = ingest.reprocess(record.platform, record.raw_body, json.loads(record.params), now)
    if reply.status == 200:
        record.delete()
    return reply.status
