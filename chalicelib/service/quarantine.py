"""The quarantine: well-signed messages that could not be applied, kept whole."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from chalicelib.service import ingest
from chalicelib.service.errors import NotFoundError
from chalicelib.store import entities
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
    return entities.quarantined()


def get(key: str) -> QuarantineRecord:
    record = entities.quarantined_one(key)
    if record is None:
        raise NotFoundError("not_quarantined", f"nothing quarantined under '{key}'")
    return record


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
        entities.release(record)
    return reply.status
