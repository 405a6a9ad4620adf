"""The read API: canonical orders and after-sale cases of one shop."""

from __future__ import annotations

import base64
import binascii
import functools
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pynamodb.exceptions import DoesNotExist, PynamoDBException

from chalicelib.domain.model import OPEN_CASE_STATUSES, SHANGHAI, CaseStatus
from chalicelib.domain.rules import decide_case
from chalicelib.domain.views import case_view, order_view
from chalicelib.service import policy
from chalicelib.service.changes import sortable
from chalicelib.service.errors import ApiError, StorageUnavailableError, read_or_none
from chalicelib.store import codec
from chalicelib.store.records import (
    CaseRecord,
    DeadlineRecord,
    EventLogRecord,
    OrderRecord,
    ShopRecord,
    entity_key,
)

MAX_PAGE = 100


def _platform(shop_id: str) -> str:
    return shop_id.partition(":")[0]


def _not_found(kind: str, entity_id: str) -> ApiError:
    return ApiError(404, f"{kind}_not_found", f"no {kind} '{entity_id}' in this shop")


def owned(record_type: type[OrderRecord | CaseRecord], shop_id: str, entity_id: str) -> Any:
    """The shop's order or case record; 404 when it has none by that id."""
    record = read_or_none(record_type, entity_key(_platform(shop_id), entity_id), entity_id)
    if record is None or record.shop_id != shop_id:
        raise _not_found("case" if record_type is CaseRecord else "order", entity_id)
    return record


def order(shop_id: str, order_id: str, language: str) -> dict[str, Any]:
    record = owned(OrderRecord, shop_id, order_id)
    state = codec.ORDER.decode(record.document)
    # A courier scan may arrive before the trade itself: such an order is not shown yet.
    if state.snapshot is None:
        raise _not_found("order", order_id)
    return order_view(state, record.version, language)


def _decided_views(
    records: list[CaseRecord], shop_id: str, language: str, now: datetime
) -> list[dict[str, Any]]:
    """Cases as the rules see them now, with their orders as they are now: what a
    reader sees never depends on the order the platform's messages arrived in."""
    if not records:
        return []
    platform = _platform(shop_id)
    cases = [codec.CASE.decode(record.document) for record in records]
    order_keys = {entity_key(platform, case.snapshot.order_id) for case in cases}
    try:
        shop = ShopRecord.get(shop_id)
        orders = {
            order.entity_key: codec.ORDER.decode(order.document)
            for order in OrderRecord.batch_get(order_keys)
        }
    except (DoesNotExist, PynamoDBException) as error:
        raise StorageUnavailableError("could not read the cases' context") from error
    shop_policy = policy.for_shop(shop)
    return [
        case_view(
            decide_case(
                shop_policy, case, orders.get(entity_key(platform, case.snapshot.order_id)), now
            ),
            record.version,
            language,
        )
        for case, record in zip(cases, records, strict=True)
    ]


def case(shop_id: str, case_id: str, language: str, now: datetime) -> dict[str, Any]:
    record = owned(CaseRecord, shop_id, case_id)
    return _decided_views([record], shop_id, language, now)[0]


def _statuses(status: str | None) -> set[str] | None:
    if status is None:
        return None
    if status == "open":
        return set(OPEN_CASE_STATUSES)
    if status in CaseStatus.__members__.values():
        return {status}
    allowed = ", ".join(["open", *CaseStatus])
    raise ApiError(400, "invalid_status", f"status must be one of {allowed}", "status")


def _decode_cursor(cursor: str | None) -> dict[str, Any] | None:
    if cursor is None:
        return None
    try:
        decoded = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, binascii.Error):
        decoded = None
    if not isinstance(decoded, dict):
        raise ApiError(400, "invalid_cursor", "cursor is not one this API returned", "cursor")
    return decoded


def _parse_limit(limit: str | None) -> int:
    if limit is None:
        return 50
    if not limit.isdigit() or not 1 <= int(limit) <= MAX_PAGE:
        raise ApiError(400, "invalid_limit", f"limit must be 1 to {MAX_PAGE}", "limit")
    return int(limit)


def paged(
    query: Callable[..., Any], limit: str | None, cursor: str | None, what: str
) -> tuple[list[Any], str | None]:
    """One page of `query(limit=..., last_evaluated_key=...)`, and the cursor to the next."""
    try:
        results = query(limit=_parse_limit(limit), last_evaluated_key=_decode_cursor(cursor))
        records = list(results)
    except PynamoDBException as error:
        if cursor is not None and error.cause_response_code == "ValidationException":
            raise ApiError(
                400, "invalid_cursor", "cursor is not one this API returned", "cursor"
            ) from None
        raise StorageUnavailableError(f"could not list {what}") from error
    next_key = results.last_evaluated_key
    next_cursor = (
        base64.urlsafe_b64encode(json.dumps(next_key).encode()).decode() if next_key else None
    )
    return records, next_cursor


def cases(
    shop_id: str,
    status: str | None,
    limit: str | None,
    cursor: str | None,
    language: str,
    now: datetime,
) -> dict[str, Any]:
    statuses = _statuses(status)
    records, next_cursor = paged(
        functools.partial(
            CaseRecord.by_shop.query,
            shop_id,
            filter_condition=CaseRecord.status.is_in(*statuses) if statuses else None,
        ),
        limit,
        cursor,
        "cases",
    )
    return {"items": _decided_views(records, shop_id, language, now), "next_cursor": next_cursor}


def parse_time(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ApiError(
            400, f"invalid_{name}", f"{name} must be an ISO 8601 time with an offset", name
        )
    return moment


def deadlines(shop_id: str, before: str | None, limit: str | None) -> dict[str, Any]:
    """The shop's pending deadlines, soonest first (read from a sparse index)."""
    cutoff = parse_time(before, "before")
    page = _parse_limit(limit)
    try:
        rows = list(
            DeadlineRecord.pending_by_shop.query(
                shop_id,
                range_key_condition=DeadlineRecord.due_key <= sortable(cutoff) if cutoff else None,
                limit=page,
            )
        )
    except PynamoDBException as error:
        raise StorageUnavailableError("could not list deadlines") from error
    return {
        "items": [
            {
                "entity": f"{row.entity_kind}:{row.entity_key.split('#', 2)[2]}",
                "rule": row.rule,
                "due_at": row.due_at.astimezone(SHANGHAI).isoformat(),
                "state": row.state,
            }
            for row in rows
        ]
    }


def case_timeline(shop_id: str, case_id: str) -> list[dict[str, Any]]:
    """Every message received for a case, in arrival order, applied or not."""
    try:
        entries = list(EventLogRecord.query(f"{_platform(shop_id)}#case#{case_id}"))
    except PynamoDBException as error:
        raise StorageUnavailableError("could not read the event log") from error
    timeline = []
    for entry in entries:
        if entry.shop_id != shop_id:
            continue
        event = codec.EVENT.decode(entry.event)
        timeline.append(
            {
                "received_at": entry.received_at.astimezone(SHANGHAI).isoformat(timespec="seconds"),
                "topic": entry.topic,
                "status": getattr(event, "status", None),
                "modified": getattr(event, "modified", None),
                "outcome": entry.outcome,
                "message_id": entry.message_id,
            }
        )
    return timeline
