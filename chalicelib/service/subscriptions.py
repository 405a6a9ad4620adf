"""Integrator subscriptions (platforms.md section 4): where to deliver which
events of which shops, changing them, rotating their secrets, disabling and
enabling them, the delivery log and its health, and replays.

A subscription belongs to the key that created it and covers only shops in
that key's scope. Its URL must be https on a public address; the address is
checked again, and pinned, at every delivery (service.fanout). Operators (the
CLI) and the seller console reach every subscription through the functions
that take no Principal.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import datetime
from typing import TYPE_CHECKING, Any

from chalicelib import integrators
from chalicelib.domain.endpoints import DisabledReason, overlap_ends, previous_secret_signs
from chalicelib.domain.events import EVENT_TYPES, SUBSCRIPTION_DISABLED, subscription_disabled
from chalicelib.domain.model import SHANGHAI
from chalicelib.domain.work import WorkKind
from chalicelib.observability import emit, logger
from chalicelib.service import outbox
from chalicelib.service.errors import (
    ConflictError,
    InvalidInputError,
    NotAllowedError,
    NotFoundError,
)
from chalicelib.settings import settings
from chalicelib.store import subscriptions, vault, work
from chalicelib.store.errors import ConditionFailedError
from chalicelib.store.records import OutboxRecord, SubscriptionRecord
from chalicelib.store.work import NewWork, sortable

if TYPE_CHECKING:  # only named: service.keys imports this module to revoke a key
    from chalicelib.service.commands import (
        DeliveryListQuery,
        ReplayRequest,
        SubscriptionRequest,
        SubscriptionUpdate,
    )
    from chalicelib.service.keys import Principal

# One transaction fans an event out to every subscription of its shop (100 items at most).
MAX_SUBSCRIPTIONS_PER_SHOP = 50
MAX_REPLAY = 1000
WHY_NOT_SENT = {
    DisabledReason.FAILING: "every delivery failed for 5 days",
    DisabledReason.KEY_REVOKED: "its api key was revoked",
    DisabledReason.INTEGRATOR: "disabled by its integrator",
    DisabledReason.OPERATOR: "disabled by an operator",
}


def delivery_id(event_id: str, subscription_id: str) -> str:
    return "dlv_" + hashlib.sha256(f"{event_id}|{subscription_id}".encode()).hexdigest()[:24]


def _new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _sealed(subscription_id: str, secret: str, previous: str | None = None) -> bytes:
    document = {"secret": secret, **({"previous_secret": previous} if previous else {})}
    return vault.seal_document({"subscription_id": subscription_id}, document)


def _opened(subscription: SubscriptionRecord) -> dict[str, str]:
    return vault.open_document(
        {"subscription_id": subscription.subscription_id}, subscription.sealed_secret
    )


def signing_secrets(subscription: SubscriptionRecord, now: datetime) -> tuple[str, ...]:
    """The secrets a delivery is signed with now: the current one, and for a
    day after a rotation the one it replaced."""
    opened = _opened(subscription)
    previous = opened.get("previous_secret")
    if previous and previous_secret_signs(subscription.previous_secret_until, now):
        return opened["secret"], previous
    return (opened["secret"],)


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(SHANGHAI).isoformat() if moment else None


def _view(subscription: SubscriptionRecord) -> dict[str, Any]:
    return {
        "id": subscription.subscription_id,
        "url": subscription.url,
        "event_types": sorted(subscription.event_types),
        "shops": sorted(subscription.shops),
        "created_at": _iso(subscription.created_at),
        "enabled": subscription.enabled,
        "disabled_reason": subscription.disabled_reason,
    }


def health(subscription: SubscriptionRecord) -> dict[str, Any]:
    """How its deliveries are going: the last attempt, failures since the last
    delivery, whether its circuit is open, and how many are dead-lettered."""
    return {
        "last_attempt_at": _iso(subscription.last_attempt_at),
        "last_outcome": subscription.last_outcome,
        "last_status_code": subscription.last_status_code,
        "failures_in_a_row": int(subscription.failures_in_a_row),
        "failing_since": _iso(subscription.failing_since),
        "circuit_open": subscription.circuit_opened_at is not None,
        "dead_lettered": int(subscription.dead_lettered),
    }


def _shown(subscription: SubscriptionRecord) -> dict[str, Any]:
    return {**_view(subscription), "health": health(subscription)}


def _checked_event_types(event_types: list[str]) -> None:
    for index, event_type in enumerate(event_types):
        if event_type not in EVENT_TYPES:
            raise InvalidInputError(
                "unknown_event_type",
                f"'{event_type}' is not one of {', '.join(EVENT_TYPES)}",
                f"event_types[{index}]",
            )


def _checked_url(url: str) -> None:
    problem = integrators.url_problem(
        url, resolve=True, allow_loopback=settings().allow_loopback_webhooks
    )
    if problem is not None:
        raise NotAllowedError("url_not_allowed", problem, "url")


def create(principal: Principal, command: SubscriptionRequest, now: datetime) -> dict[str, Any]:
    _checked_event_types(command.event_types)
    for index, shop_id in enumerate(command.shops):
        if shop_id not in principal.shops:
            raise NotFoundError(
                "shop_not_found", f"no shop '{shop_id}' for this api key", f"shops[{index}]"
            )
    _checked_url(command.url)
    for shop_id in set(command.shops):
        if subscriptions.route_count(shop_id) >= MAX_SUBSCRIPTIONS_PER_SHOP:
            raise ConflictError(
                "too_many_subscriptions",
                f"shop '{shop_id}' has {MAX_SUBSCRIPTIONS_PER_SHOP} subscriptions already",
                "shops",
            )
    subscription_id = "sub_" + secrets.token_hex(12)
    secret = _new_secret()
    subscription = SubscriptionRecord(
        subscription_id,
        key_id=principal.key_id,
        url=command.url,
        event_types=set(command.event_types),
        shops=set(command.shops),
        sealed_secret=_sealed(subscription_id, secret),
        created_at=now,
    )
    subscriptions.create(subscription)
    # The secret is shown this once; ShopHook keeps it sealed.
    return {**_shown(subscription), "secret": secret}


def get(subscription_id: str) -> SubscriptionRecord:
    subscription = subscriptions.read(subscription_id)
    if subscription is None:
        raise NotFoundError("subscription_not_found", f"no subscription '{subscription_id}'")
    return subscription


def owned(principal: Principal, subscription_id: str) -> SubscriptionRecord:
    subscription = subscriptions.read(subscription_id)
    if subscription is None or subscription.key_id != principal.key_id:
        raise NotFoundError("subscription_not_found", f"no subscription '{subscription_id}'")
    return subscription


def listing(principal: Principal) -> dict[str, Any]:
    return {"items": [_shown(found) for found in subscriptions.of_key(principal.key_id)]}


def show(principal: Principal, subscription_id: str) -> dict[str, Any]:
    return _shown(owned(principal, subscription_id))


def shown(subscription_id: str) -> dict[str, Any]:
    """Any subscription, with its key and health (the operator's and the console's view)."""
    subscription = get(subscription_id)
    return {**_shown(subscription), "key_id": subscription.key_id}


def every() -> list[dict[str, Any]]:
    """Every subscription, oldest first (the operator's listing)."""
    return [
        {**_shown(subscription), "key_id": subscription.key_id}
        for subscription in subscriptions.every()
    ]


def on_shop(shop_id: str) -> list[dict[str, Any]]:
    """The subscriptions on a shop with their delivery health (the seller console)."""
    routes = subscriptions.routes(shop_id)
    found = subscriptions.read_many(route.subscription_id for route in routes)
    return [_shown(subscription) for subscription in found]


def update(
    principal: Principal, subscription_id: str, command: SubscriptionUpdate, now: datetime
) -> dict[str, Any]:
    """A new URL (checked as a new subscription's is), event types, or enabled."""
    subscription = owned(principal, subscription_id)
    if command.event_types is not None:
        _checked_event_types(command.event_types)
    if command.url is not None:
        _checked_url(command.url)
    url = command.url or subscription.url
    event_types = set(command.event_types or subscription.event_types)
    if (url, event_types) != (subscription.url, subscription.event_types):
        try:
            subscriptions.edit(subscription, url, event_types)
        except ConditionFailedError:
            raise NotFoundError(
                "subscription_not_found", f"no subscription '{subscription_id}'"
            ) from None
    if command.enabled is True:
        enable(subscription)
    elif command.enabled is False:
        disable(subscription, DisabledReason.INTEGRATOR, now)
    return show(principal, subscription_id)


def rotate_secret(principal: Principal, subscription_id: str, now: datetime) -> dict[str, str]:
    """A new signing secret, shown this once; the one it replaces keeps signing
    too for a day (domain.endpoints.SECRET_OVERLAP)."""
    subscription = owned(principal, subscription_id)
    secret = _new_secret()
    sealed = _sealed(subscription_id, secret, previous=_opened(subscription)["secret"])
    try:
        subscriptions.rotate(subscription, sealed, overlap_ends(now))
    except ConditionFailedError:
        raise ConflictError(
            "changed_meanwhile", "the secret was rotated meanwhile; rotate again"
        ) from None
    return {"secret": secret}


def delete(principal: Principal, subscription_id: str) -> None:
    """Deliveries still queued for it are cancelled when their turn comes."""
    subscriptions.delete(owned(principal, subscription_id))


def disable(subscription: SubscriptionRecord, reason: DisabledReason, now: datetime) -> bool:
    """Stop delivering to it: its pending deliveries are cancelled, and what
    happens while it is disabled is recorded, not sent (a replay of that time
    sends it), except for a revoked key's, which is never enabled again. When it
    was failing, the key's other enabled subscriptions hear of it. False if it
    was disabled already."""
    why = f"not sent: the subscription is disabled ({WHY_NOT_SENT[reason]})"
    keep_routes = reason is not DisabledReason.KEY_REVOKED
    if not subscriptions.disable(subscription, reason, now, keep_routes):
        return False
    cancelled = work.cancel_pending_deliveries(subscription.subscription_id, now, why)
    logger.info(
        "subscription disabled",
        extra={
            "subscription_id": subscription.subscription_id,
            "reason": reason,
            "cancelled": cancelled,
        },
    )
    emit("SubscriptionsDisabled", reason=reason)
    if reason is DisabledReason.FAILING:
        _announce_disabled(subscription, reason, now)
    return True


def _announce_disabled(
    subscription: SubscriptionRecord, reason: DisabledReason, now: datetime
) -> None:
    """A `subscription.disabled` event to the key's other enabled subscriptions
    that take it."""
    disabled = {**_view(subscription), "enabled": False, "disabled_reason": reason}
    event = subscription_disabled(disabled, sorted(subscription.shops)[0], now)
    payload = {"type": event.type, "timestamp": now.isoformat(), "data": event.data}
    rows = [
        work.new_row(
            NewWork(
                outbox_id=delivery_id(event.event_id, other.subscription_id),
                kind=WorkKind.DELIVERY,
                work_type=event.type,
                shop_id=event.shop_id,
                payload=payload,
                order_group=f"subscription#{subscription.subscription_id}",
                position=f"{sortable(now)}#{event.event_id}",
                subscription_id=other.subscription_id,
                event_id=event.event_id,
            ),
            now,
        )
        for other in subscriptions.of_key(subscription.key_id)
        if other.subscription_id != subscription.subscription_id
        and other.enabled
        and SUBSCRIPTION_DISABLED in other.event_types
    ]
    if rows:
        work.save(rows)
        outbox.SQS.send([work.work_of(row) for row in rows])


def enable(subscription: SubscriptionRecord) -> bool:
    """Deliver to it again, from a clean health; what it missed is recovered by
    a replay. A revoked key's subscription stays disabled. False if it was
    enabled already."""
    if subscription.disabled_reason == DisabledReason.KEY_REVOKED:
        raise ConflictError(
            "key_revoked", "the api key of this subscription was revoked", "enabled"
        )
    return subscriptions.enable(subscription)


def disable_of_key(key_id: str, now: datetime) -> int:
    """Disable every subscription a revoked key made; returns how many were enabled."""
    return sum(
        disable(subscription, DisabledReason.KEY_REVOKED, now)
        for subscription in subscriptions.of_key(key_id)
    )


def delivery_view(delivery: OutboxRecord) -> dict[str, Any]:
    return {
        "id": delivery.outbox_id,
        "event_id": delivery.event_id,
        "type": delivery.type,
        "state": delivery.state,
        "created_at": _iso(delivery.created_at),
        "finished_at": _iso(delivery.finished_at),
        "error": delivery.error,
        "attempts": [
            {
                "attempt": attempt.attempt,
                "at": _iso(attempt.at),
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
    return replay_any(owned(principal, subscription_id), command, now)


def replay_any(
    subscription: SubscriptionRecord, command: ReplayRequest, now: datetime
) -> dict[str, Any]:
    """Deliver again the deliveries a replay names, of any subscription (an
    operator's, or an integrator's own)."""
    ready = outbox.again(_to_replay(subscription.subscription_id, command), now)
    return {"replayed": len(ready), "delivery_ids": [item.outbox_id for item in ready]}
