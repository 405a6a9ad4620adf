"""The read API: a shop's canonical orders, after-sale cases and deadlines."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from chalicelib.domain.change import ShopSettings, Stored, shop_policy
from chalicelib.domain.ids import EntityKind, EntityRef, platform_of
from chalicelib.domain.model import OPEN_CASE_STATUSES, SHANGHAI, CaseState, OrderState
from chalicelib.domain.rules import decide_case
from chalicelib.domain.views import case_view, order_view
from chalicelib.policies import default_policy
from chalicelib.service.errors import NotFoundError
from chalicelib.store import entities

if TYPE_CHECKING:  # named only: the commands (pydantic) load with a request
    from chalicelib.service.commands import CaseListQuery, DeadlineQuery


def owned(shop_id: str, kind: EntityKind, entity_id: str) -> Stored:
    """The shop's order or case; NotFoundError when it has none by that id."""
    stored = entities.read(EntityRef(platform_of(shop_id), kind, entity_id))
    if stored is None or stored.state.shop_id != shop_id:
        raise NotFoundError(f"{kind}_not_found", f"no {kind} '{entity_id}' in this shop")
    return stored


def order(shop_id: str, order_id: str, language: str) -> dict[str, Any]:
    stored = owned(shop_id, EntityKind.ORDER, order_id)
    state = stored.state
    assert isinstance(state, OrderState)
    # A courier scan may arrive before the trade itself: such an order is not shown yet.
    if state.snapshot is None:
        raise NotFoundError("order_not_found", f"no order '{order_id}' in this shop")
    return order_view(state, stored.version, language)


def decided_cases(
    shop_id: str, cases: list[Stored], now: datetime, shop: ShopSettings | None = None
) -> list[tuple[CaseState, int]]:
    """Cases as the rules see them now, with their orders as they are now: what a
    reader sees never depends on the order the platform's messages arrived in."""
    if not cases:
        return []
    platform = platform_of(shop_id)
    states = [stored.state for stored in cases]
    held_orders = entities.orders(
        {EntityRef.order(platform, state.snapshot.order_id) for state in states}
    )
    policy = shop_policy(default_policy(platform), shop or entities.ENTITIES.shop(shop_id))
    return [
        (
            decide_case(
                policy,
                state,
                held_orders.get(EntityRef.order(platform, state.snapshot.order_id)),
                now,
            ),
            stored.version,
        )
        for state, stored in zip(states, cases, strict=True)
    ]


def case(shop_id: str, case_id: str, language: str, now: datetime) -> dict[str, Any]:
    stored = owned(shop_id, EntityKind.CASE, case_id)
    [(state, version)] = decided_cases(shop_id, [stored], now)
    return case_view(state, version, language)


def cases(shop_id: str, query: CaseListQuery, language: str, now: datetime) -> dict[str, Any]:
    statuses = None
    if query.status == "open":
        statuses = frozenset(OPEN_CASE_STATUSES)
    elif query.status is not None:
        statuses = frozenset({query.status})
    page, next_cursor = entities.cases_page(shop_id, statuses, query.limit, query.start)
    return {
        "items": [
            case_view(state, version, language)
            for state, version in decided_cases(shop_id, page, now)
        ],
        "next_cursor": next_cursor,
    }


def deadlines(shop_id: str, query: DeadlineQuery) -> dict[str, Any]:
    """The shop's pending deadlines, soonest first."""
    return {
        "items": [
            {
                "entity": f"{deadline.entity.kind}:{deadline.entity.entity_id}",
                "rule": deadline.rule,
                "due_at": deadline.due_at.astimezone(SHANGHAI).isoformat(),
                "state": deadline.state,
            }
            for deadline in entities.pending_deadlines(shop_id, query.before, query.limit)
        ]
    }


def case_timeline(shop_id: str, case_id: str) -> list[dict[str, Any]]:
    """Every message received for a case, in arrival order, applied or not."""
    return [
        {
            "received_at": entry.received_at.astimezone(SHANGHAI).isoformat(timespec="seconds"),
            "topic": entry.topic,
            "status": getattr(entry.event, "status", None),
            "modified": getattr(entry.event, "modified", None),
            "outcome": entry.outcome,
            "message_id": entry.message_id,
        }
        for entry in entities.log(EntityRef.case(platform_of(shop_id), case_id))
        if entry.shop_id == shop_id
    ]
