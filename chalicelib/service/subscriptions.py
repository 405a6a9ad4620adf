"""Integrator subscriptions (platforms.md section 4): where to deliver which
events of which shops, the delivery log, and replays.

A subscription belongs to the key that created it and covers only shops in
that key's scope. Its URL must be https on a public address; the address is
checked again, and pinned, at every delivery (service.fanout).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import datetime
from typing import Any

from chalicelib import integrators
from chalicelib.domain.events import EVENT_TYPES
from chalicelib.domain.model import SHANGHAI
from chalicelib.service import outbox
from chalicelib.service.commands import DeliveryListQuery, ReplayRequest, SubscriptionRequest
from chalicelib.service.errors import (
    ConflictError,
    InvalidInputError,
    NotAllowedError,
    NotFoundError,
)
from chalicelib.service.keys import Principal
from chalicelib.settings import settings
from chalicelib.store import subscriptions, vault, work
from chalicelib.store.records import OutboxRecord, SubscriptionRecord

# One transaction fans an event out to every subscription of its shop (100 items at most).
MAX_SUBSCRIPTIONS_PER_SHOP = 50
MAX_REPLAY = 1000


def delivery_id(event_id: str, subscription_id: str) -> str:
    return "dlv_" + hashlib.sha256(f"{event_id}|{subscription_id}".encode()).hexdigest()[:24]


def signing_secret(subscription: SubscriptionRecord) -> str:
    return vault.open_document(
        {"subscription_id": subscription.subscription_id}, subscription.sealed_secret
    )["secret"]


def _view(subscription: SubscriptionRecord) -> dict[str, Any]:
    return {
        "id": subscription.subscription_id,
        "url": subscription.url,
        "event_types": sorted(subscription.event_types),
        "shops": sorted(subscription.shops),
        "created_at": subscription.created_at.astimezone(SHANGHAI).isoformat(),
    }


def create(principal: Principal, command: SubscriptionRequest, now: datetime) -> dict[str, Any]:
    for index, event_type in enumerate(command.event_types):
        if event_type not in EVENT_TYPES:
            raise InvalidInputError(
                "unknown_event_type",
                f"'{event_type}' is not one of {', '.join(EVENT_TYPES)}",
                f"event_types[{index}]",
            )
    for index, shop_id in enumerate(command.shops):
        if shop_id not in principal.shops:
            raise NotFoundError(
                "shop_not_found", f"no shop '{shop_id}' for this api key", f"shops[{index}]"
            )
    problem = integrators.url_problem(
        command.url, resolve=True, allow_loopback=settings().allow_loopback_webhooks
    )
    if problem is not None:
        raise NotAllowedError("url_not_allowed", problem, "url")
    for shop_id in set(command.shops):
        if subscriptions.route_count(shop_id) >= MAX_SUBSCRIPTIONS_PER_SHOP:
            raise ConflictError(
                "too_many_subscriptions",
                f"shop '{shop_id}' has {MAX_SUBSCRIPTIONS_PER_SHOP} subscriptions already",
                "shops",
            )
    subscription_id = "sub_" + secrets.token_hex(12)
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    subscription = SubscriptionRecord(
        subscription_id,
        key_id=principal.key_id,
        url=command.url,
        event_types=set(command.event_types),
        shops=set(command.shops),
        sealed_secret=vault.seal_document({"subscription_id": subscription_id}, {"secret": secret}),
        created_at=now,
    )
    subscriptions.create(subscription)
    # The secret is shown this once; ShopHook keeps it sealed.
    return {**_view(subscription), "secret": secret}


def owned(principal: Principal, subscription_id: str) -> SubscriptionRecord:
    subscription = subscriptions.read(subscription_id)
    if subscription is None or subscription.key_id != principal.key_id:
        raise NotFoundError("subscription_not_found", f"no subscription '{subscription_id}'")
    return subscription


def listing(principal: Principal) -> dict[str, Any]:
    return {"items": [_view(found) for found in subscriptions.of_key(principal.key_id)]}


def show(principal: Principal, subscription_id: str) -> dict[str, Any]:
    return _view(owned(principal, subscription_id))


def delete(principal: Principal, subscription_id: str) -> None:
    """Deliveries still queued for it are cancelled when their turn comes."""
    subscriptions.delete(owned(principal, subscription_id))


def _local(moment: datetime | None) -> str | None:
    return moment.astimezone(SHANGHAI).isoformat() if moment else None


def delivery_view(delivery: OutboxRecord) -> dict[str, Any]:
    return {
        "id": delivery.outbox_id,
        "event_id": delivery.event_id,
        "type": delivery.type,
        "state": delivery.state,
        "created_at": _local(delivery.created_at),
        "finished_at": _local(delivery.finished_at),
        "error": delivery.error,
        "attempts": [
            {
                "attempt": attempt.attempt,
                "at": _local(attempt.at),
                "outcome": attempt.outcome,
                "status_code": attempt.status_code,
                "latency_ms": attempt.latency_ms,
                "error": attempt.error,
            }
            for attempt in delivery.attempts
        ],
    }


def deliveries(
    principal: Principal, subscription_id: str, query: DeliveryListQuery
) -> dict[str, Any]:
    """The delivery log, newest first."""
    owned(principal, subscription_id)
    rows, next_cursor = subscriptions.deliveries_page(subscription_id, query.limit, query.start)
    return {"items": [delivery_view(row) for row in rows], "next_cursor": next_cursor}


def _to_replay(subscription_id: str, command: ReplayRequest) -> list[OutboxRecord]:
    """The deliveries a replay names: one by id, or a time range."""
    if (command.delivery_id is None) == (command.since is None):
        raise InvalidInputError(
            "invalid_body",
            'send {"delivery_id": ...} or {"since": <iso time>, "until"?: <iso time>}',
            "body",
        )
    if command.delivery_id is not None:
        row = work.read(command.delivery_id)
        if row is None or row.subscription_id != subscription_id:
            raise NotFoundError(
                "delivery_not_found", f"no delivery '{command.delivery_id}'", "delivery_id"
            )
        return [row]
    assert command.since is not None
    return subscriptions.deliveries_between(
        subscription_id, command.since, command.until, MAX_REPLAY
    )


def replay(
    principal: Principal, subscription_id: str, command: ReplayRequest, now: datetime
) -> dict[str, Any]:
    """Deliver again what an integrator asks for, delivered or not."""
    owned(principal, subscription_id)
    ready = outbox.again(_to_replay(subscription_id, command), now)
    return {"replayed": len(ready), "delivery_ids": [item.outbox_id for item in ready]}
