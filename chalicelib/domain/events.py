"""What a state change tells the outside world: the canonical events of
platforms.md section 4, derived by comparing the state before and after."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib.domain.model import (
    CaseState,
    Deadline,
    DeadlineState,
    OrderState,
    OrderStatus,
    Outcome,
)
from chalicelib.domain.views import case_view, order_view

ORDER_STATUS_EVENTS = {
    OrderStatus.PAID: "order.paid",
    OrderStatus.SHIPPED: "order.shipped",
    OrderStatus.COMPLETED: "order.completed",
    OrderStatus.CLOSED: "order.closed",
}
FLAG_EVENTS = {
    "platform.fake_shipment": "shipment.suspected_fake",
    "platform.free_shipping_surcharge": "compliance.flagged",
}
SHOP_NEEDS_RECONNECT = "shop.needs_reconnect"
SUBSCRIPTION_DISABLED = "subscription.disabled"
# What integrators may subscribe to (platforms.md section 4, and the shop's own).
EVENT_TYPES = (
    "order.created",
    *ORDER_STATUS_EVENTS.values(),
    "after_sale.opened",
    "after_sale.updated",
    "after_sale.decided",
    "after_sale.deadline_due",
    "after_sale.deadline_breached",
    "shipment.updated",
    *FLAG_EVENTS.values(),
    SHOP_NEEDS_RECONNECT,
    SUBSCRIPTION_DISABLED,
)


@dataclass(frozen=True)
class OutboundEvent:
    event_id: str
    type: str
    shop_id: str
    data: dict[str, Any]


@dataclass(frozen=True)
class AutoAction:
    action_id: str
    action: str
    shop_id: str
    case_id: str


def _event(entity: str, shop_id: str, kind: str, discriminator: str, data: dict) -> OutboundEvent:
    # Deterministic ids: the same change always yields the same event id, which
    # integrators see as `webhook-id` and can deduplicate on.
    digest = hashlib.sha256(f"{entity}|{kind}|{discriminator}".encode()).hexdigest()[:32]
    return OutboundEvent(f"evt_{digest}", kind, shop_id, data)


def _deadline_events(
    entity: str, shop_id: str, held: Iterable[Deadline], new: Iterable[Deadline], subject: dict
) -> list[OutboundEvent]:
    before = {deadline.rule: deadline for deadline in held}
    events = []
    for deadline in new:
        was = before.get(deadline.rule)
        data = {
            **subject,
            "deadline": {"rule": deadline.rule, "due_at": deadline.due_at.isoformat()},
        }
        key = f"{deadline.rule}|{deadline.due_at.isoformat()}"
        if deadline.state is DeadlineState.BREACHED and (
            was is None or was.state is not DeadlineState.BREACHED
        ):
            events.append(_event(entity, shop_id, "after_sale.deadline_breached", key, data))
        elif (
            deadline.state is DeadlineState.PENDING
            and deadline.warned
            and not (was is not None and was.warned)
        ):
            events.append(_event(entity, shop_id, "after_sale.deadline_due", key, data))
    return events


def subscription_disabled(
    subscription: dict[str, Any], shop_id: str, disabled_at: datetime
) -> OutboundEvent:
    """A subscription given up on, for its key's other subscriptions; `shop_id`
    is one of its shops (work is kept per shop)."""
    return _event(
        f"subscription#{subscription['id']}",
        shop_id,
        SUBSCRIPTION_DISABLED,
        disabled_at.isoformat(),
        {"subscription": subscription},
    )


def order_changes(held: OrderState | None, new: OrderState, version: int) -> list[OutboundEvent]:
    if new.snapshot is None or new.shop_id is None:
        return []
    entity, shop = f"{new.platform}#order#{new.order_id}", new.shop_id
    view = order_view(new, version)
    subject = {"order": view}
    visible_before = held is not None and held.snapshot is not None
    events = []
    if not visible_before:
        events.append(_event(entity, shop, "order.created", "", subject))
    status = new.snapshot.status
    if status in ORDER_STATUS_EVENTS and (not visible_before or held.snapshot.status != status):
        events.append(_event(entity, shop, ORDER_STATUS_EVENTS[status], status, subject))
    if new.scans is not None and (held is None or held.scans != new.scans):
        events.append(_event(entity, shop, "shipment.updated", str(version), subject))
    held_flags = {flag.rule for flag in held.flags} if held is not None else set()
    for flag in new.flags:
        if flag.rule in FLAG_EVENTS and flag.rule not in held_flags:
            events.append(_event(entity, shop, FLAG_EVENTS[flag.rule], flag.rule, subject))
    held_deadlines = held.deadlines if held is not None else ()
    return events + _deadline_events(entity, shop, held_deadlines, new.deadlines, subject)


def case_changes(held: CaseState | None, new: CaseState, version: int) -> list[OutboundEvent]:
    entity, shop = f"{new.platform}#case#{new.case_id}", new.shop_id
    subject = {"after_sale": case_view(new, version)}
    events = []
    if held is None:
        events.append(_event(entity, shop, "after_sale.opened", "", subject))
    elif held.snapshot != new.snapshot:
        events.append(_event(entity, shop, "after_sale.updated", str(version), subject))
    decided = sorted((d.rule, d.outcome) for d in new.decisions)
    if decided and decided != sorted((d.rule, d.outcome) for d in (held.decisions if held else ())):
        events.append(_event(entity, shop, "after_sale.decided", repr(decided), subject))
    held_deadlines = held.deadlines if held is not None else ()
    return events + _deadline_events(entity, shop, held_deadlines, new.deadlines, subject)


def auto_actions(held: CaseState | None, new: CaseState) -> list[AutoAction]:
    """Actions the rules took on the shop's behalf, newly decided by this change."""
    before = {(d.rule, d.outcome) for d in held.decisions} if held is not None else set()
    return [
        AutoAction(
            action_id="act_"
            + hashlib.sha256(f"{new.platform}#{new.case_id}|{d.rule}".encode()).hexdigest()[:24],
            action="agree_refund",
            shop_id=new.shop_id,
            case_id=new.case_id,
        )
        for d in new.decisions
        if d.outcome is Outcome.AUTO_ACTION and (d.rule, d.outcome) not in before
    ]
