"""Seller actions: checked against the case or order as it is, then queued in
the outbox in a transaction guarded by the version that was checked."""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING, Any

from chalicelib.domain.actions import Action, ReturnAddress, refusal
from chalicelib.domain.change import Stored, order_ref_of, ref_of
from chalicelib.domain.ids import EntityKind, platform_of
from chalicelib.domain.model import CaseState, OrderState, OrderStatus
from chalicelib.domain.work import WorkKind
from chalicelib.platforms import registry
from chalicelib.platforms.base import UnsupportedActionError
from chalicelib.service import outbox
from chalicelib.service.errors import ConflictError, InvalidInputError, NotFoundError
from chalicelib.service.queries import owned
from chalicelib.store import work
from chalicelib.store.errors import ConditionFailedError
from chalicelib.store.work import NewWork

if TYPE_CHECKING:  # named only: the commands (pydantic) load with a request
    from chalicelib.service.commands import ActionRequest, ShipRequest

SHIPPABLE = frozenset({OrderStatus.PAID})


def _queue(
    checked: Stored, shop_id: str, action: str, payload: dict[str, Any], now: datetime
) -> dict[str, str]:
    """Queue the action unless what it was checked against changed meanwhile."""
    action_id = "act_" + secrets.token_hex(12)
    ref = ref_of(checked.state)
    queued = NewWork(
        action_id,
        WorkKind.ACTION,
        action,
        shop_id,
        {**payload, "origin": "seller"},
        order_group=order_ref_of(ref, checked.state).key,
        subject=ref.stream,
    )
    try:
        sent = work.save_guarded(queued, ref, checked.version, now)
    except ConditionFailedError:
        raise ConflictError(
            "changed_meanwhile", "it changed while the action was queued; look again"
        ) from None
    outbox.SQS.send([sent])
    return {"action_id": action_id, "state": "queued"}


def request(shop_id: str, case_id: str, command: ActionRequest, now: datetime) -> dict[str, str]:
    action = command.action
    if action is Action.REFUSE and command.reason is None:
        raise InvalidInputError("invalid_body", "'reason' is required to refuse", "reason")
    if action is Action.AGREE_RETURN and command.return_address is None:
        raise InvalidInputError(
            "invalid_body", "'return_address' is required to agree a return", "return_address"
        )
    address = (
        ReturnAddress(**command.return_address.model_dump()) if command.return_address else None
    )
    stored = owned(shop_id, EntityKind.CASE, case_id)
    case = stored.state
    assert isinstance(case, CaseState)
    why = refusal(action, case.snapshot)
    if why is not None:
        raise ConflictError("action_not_allowed", why, "action")
    try:
        registry()[platform_of(shop_id)].action_request(
            shop_id, action, case.snapshot, command.reason or "", address
        )
    except UnsupportedActionError as error:
        raise ConflictError("action_not_allowed", str(error), "action") from None
    payload = {
        "action": action,
        "case_id": case_id,
        "reason": command.reason or "",
        "return_address": asdict(address) if address else None,
    }
    return _queue(stored, shop_id, action, payload, now)


def ship(shop_id: str, order_id: str, command: ShipRequest, now: datetime) -> dict[str, str]:
    stored = owned(shop_id, EntityKind.ORDER, order_id)
    order = stored.state
    assert isinstance(order, OrderState)
    if order.snapshot is None or order.snapshot.status not in SHIPPABLE:
        status = order.snapshot.status if order.snapshot else "unknown"
        raise ConflictError(
            "action_not_allowed", f"only a paid order can be shipped; it is {status}"
        )
    payload = {
        "action": "ship",
        "order_id": order_id,
        "tracking_no": command.tracking_no,
        "carrier": command.carrier,
    }
    return _queue(stored, shop_id, "ship", payload, now)


def show(shop_id: str, case_id: str, action_id: str) -> dict[str, Any]:
    """An action on a case (or, with no case, on an order) of the shop."""
    row = work.read(action_id)
    payload = json.loads(row.payload) if row is not None else {}
    if (
        row is None
        or row.kind != WorkKind.ACTION
        or row.shop_id != shop_id
        or payload.get("case_id") != case_id
    ):
        raise NotFoundError("action_not_found", f"no action '{action_id}' on case '{case_id}'")
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
