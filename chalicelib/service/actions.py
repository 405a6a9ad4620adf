"""Seller actions: checked against the case or order as it is, then queued in
the outbox in a transaction guarded by the version that was checked."""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict
from datetime import datetime
from typing import Any

from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from chalicelib.domain.actions import Action, ReturnAddress, refusal
from chalicelib.domain.model import OrderStatus
from chalicelib.platforms import registry
from chalicelib.platforms.base import UnsupportedActionError
from chalicelib.service import outbox
from chalicelib.service.changes import order_group, outbox_row
from chalicelib.service.errors import (
    ApiError,
    StorageUnavailableError,
    condition_failed,
    read_or_none,
)
from chalicelib.service.queries import owned
from chalicelib.store import codec
from chalicelib.store.records import (
    CaseRecord,
    OrderRecord,
    OutboxRecord,
    connection,
)

SHIPPABLE = frozenset({OrderStatus.PAID})


def _text(body: dict[str, Any], name: str, required: bool) -> str:
    value = body.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip():
        raise ApiError(400, "invalid_body", f"'{name}' must be a non-empty string", name)
    return value.strip()


def _address(body: dict[str, Any], required: bool) -> ReturnAddress | None:
    given = body.get("return_address")
    if given is None and not required:
        return None
    if not isinstance(given, dict):
        raise ApiError(
            400,
            "invalid_body",
            '\'return_address\' must be {"address", "name", "mobile", "postcode"?}',
            "return_address",
        )
    parts = {}
    for part in ("address", "name", "mobile", "postcode"):
        value = given.get(part)
        if part == "postcode" and value is None:  # optional: Taobao-style returns need it
            continue
        if not isinstance(value, str) or not value.strip():
            raise ApiError(
                400, "invalid_body", f"return_address.{part} is required", f"return_address.{part}"
            )
        parts[part] = value.strip()
    return ReturnAddress(**parts)


def _body(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ApiError(400, "invalid_body", "the body must be a JSON object", "body")
    return raw


def _queue(
    guard: Any,
    shop_id: str,
    action_id: str,
    action: str,
    payload: dict,
    now: datetime,
    group: str,
) -> None:
    """Queue the action unless the record it was checked against changed meanwhile."""
    row = outbox_row(action_id, "action", action, shop_id, payload, now, group)
    try:
        with TransactWrite(connection=connection()) as write:
            write.condition_check(
                type(guard), guard.entity_key, condition=type(guard).version == guard.version
            )
            write.save(row)
    except TransactWriteError as error:
        if condition_failed(error):
            raise ApiError(
                409, "changed_meanwhile", "it changed while the action was queued; look again"
            ) from None
        raise StorageUnavailableError("could not queue the action") from error
    outbox.enqueue([row])


def request(shop_id: str, case_id: str, raw_body: Any, now: datetime) -> dict[str, str]:
    body = _body(raw_body)
    try:
        action = Action(_text(body, "action", required=True))
    except ValueError:
        raise ApiError(
            400, "invalid_action", f"action must be one of {', '.join(Action)}", "action"
        ) from None
    reason = _text(body, "reason", required=action is Action.REFUSE)
    address = _address(body, required=action is Action.AGREE_RETURN)
    record = owned(CaseRecord, shop_id, case_id)
    held = codec.CASE.decode(record.document)
    case = held.snapshot
    why = refusal(action, case)
    if why is not None:
        raise ApiError(409, "action_not_allowed", why, "action")
    try:
        registry()[shop_id.partition(":")[0]].action_request(shop_id, action, case, reason, address)
    except UnsupportedActionError as error:
        raise ApiError(409, "action_not_allowed", str(error), "action") from None
    action_id = "act_" + secrets.token_hex(12)
    payload = {
        "action": action,
        "case_id": case_id,
        "reason": reason,
        "return_address": asdict(address) if address else None,
        "origin": "seller",
    }
    _queue(record, shop_id, action_id, action, payload, now, order_group(held))
    return {"action_id": action_id, "state": "queued"}


def ship(shop_id: str, order_id: str, raw_body: Any, now: datetime) -> dict[str, str]:
    body = _body(raw_body)
    tracking_no = _text(body, "tracking_no", required=True)
    carrier = _text(body, "carrier", required=True)
    record = owned(OrderRecord, shop_id, order_id)
    order = codec.ORDER.decode(record.document)
    if order.snapshot is None or order.snapshot.status not in SHIPPABLE:
        status = order.snapshot.status if order.snapshot else "unknown"
        raise ApiError(
            409, "action_not_allowed", f"only a paid order can be shipped; it is {status}"
        )
    action_id = "act_" + secrets.token_hex(12)
    payload = {
        "action": "ship",
        "order_id": order_id,
        "tracking_no": tracking_no,
        "carrier": carrier,
    }
    _queue(
        record, shop_id, action_id, "ship", {**payload, "origin": "seller"}, now, order_group(order)
    )
    return {"action_id": action_id, "state": "queued"}


def show(shop_id: str, action_id: str) -> dict[str, Any]:
    row = read_or_none(OutboxRecord, action_id, "the action")
    if row is None or row.kind != "action" or row.shop_id != shop_id:
        raise ApiError(404, "action_not_found", f"no action '{action_id}' in this shop")
    payload = json.loads(row.payload)
    shown = {
        "action_id": row.outbox_id,
        "action": row.type,
        "state": row.state,
        "created_at": row.created_at.isoformat(),
        **{key: payload[key] for key in ("case_id", "order_id") if key in payload},
    }
    if row.error:
        shown["error"] = row.error
    return shown
