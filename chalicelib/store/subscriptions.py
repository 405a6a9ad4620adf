"""Integrator subscriptions and the per-shop routes the fan-out reads."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from pynamodb.transactions import TransactWrite

from chalicelib.store.errors import ConditionFailedError, read_or_none, storage_errors
from chalicelib.store.pages import Key, page
from chalicelib.store.records import (
    OutboxRecord,
    SubscriptionRecord,
    SubscriptionRouteRecord,
    connection,
)
from chalicelib.store.work import sortable


def create(subscription: SubscriptionRecord) -> None:
    """The subscription and one route per shop, together."""
    with storage_errors("save the subscription"), TransactWrite(connection=connection()) as write:
        write.save(subscription)
        for shop_id in subscription.shops:
            write.save(
                SubscriptionRouteRecord(
                    shop_id, subscription.subscription_id, event_types=subscription.event_types
                )
            )


def delete(subscription: SubscriptionRecord) -> None:
    with storage_errors("delete the subscription"), TransactWrite(connection=connection()) as write:
        write.delete(subscription)
        for shop_id in subscription.shops:
            write.delete(SubscriptionRouteRecord(shop_id, subscription.subscription_id))


def read(subscription_id: str) -> SubscriptionRecord | None:
    return read_or_none(SubscriptionRecord, subscription_id, "the subscription")


def read_many(subscription_ids: Iterable[str]) -> list[SubscriptionRecord]:
    with storage_errors("read the subscriptions"):
        found = list(SubscriptionRecord.batch_get(list(subscription_ids)))
    return sorted(found, key=lambda subscription: subscription.subscription_id)


def of_key(key_id: str) -> list[SubscriptionRecord]:
    with storage_errors("list subscriptions"):
        return list(SubscriptionRecord.by_key.query(key_id))


def every() -> list[SubscriptionRecord]:
    """Every subscription (the operator's listing: a scan of a small table)."""
    with storage_errors("list subscriptions"):
        return sorted(SubscriptionRecord.scan(), key=lambda found: found.created_at)


def _route(subscription: SubscriptionRecord, shop_id: str) -> SubscriptionRouteRecord:
    return SubscriptionRouteRecord(shop_id, subscription.subscription_id)


def edit(subscription: SubscriptionRecord, url: str, event_types: set[str]) -> None:
    """A new URL or event types, and the routes the fan-out reads, together."""
    with storage_errors("change the subscription"), TransactWrite(connection=connection()) as write:
        write.update(
            subscription,
            actions=[
                SubscriptionRecord.url.set(url),
                SubscriptionRecord.event_types.set(event_types),
            ],
            condition=SubscriptionRecord.subscription_id.exists(),
        )
        for shop_id in subscription.shops:
            write.update(
                _route(subscription, shop_id),
                actions=[SubscriptionRouteRecord.event_types.set(event_types)],
            )


# An endpoint's delivery health starts afresh when its subscription is enabled.
_FRESH_HEALTH = (
    SubscriptionRecord.failing_since.remove(),
    SubscriptionRecord.failures_in_a_row.set(0),
    SubscriptionRecord.timeouts_in_a_row.set(0),
    SubscriptionRecord.circuit_opened_at.remove(),
    SubscriptionRecord.probe_until.remove(),
)


def _switch(
    subscription: SubscriptionRecord,
    what: str,
    actions: list[Any],
    condition: Any,
    route_change: Callable[[TransactWrite, SubscriptionRouteRecord], None],
) -> bool:
    """Change the subscription (if `condition` holds) and each of its routes, in
    one transaction; False if the condition did not hold."""
    try:
        with storage_errors(what), TransactWrite(connection=connection()) as write:
            write.update(subscription, actions=actions, condition=condition)
            for shop_id in subscription.shops:
                route_change(write, _route(subscription, shop_id))
    except ConditionFailedError:
        return False
    return True


def disable(
    subscription: SubscriptionRecord, reason: str, now: datetime, keep_routes: bool
) -> bool:
    """Disable it, and its routes with it (or drop them when it is never to be
    enabled again); False if it was disabled already."""

    def route_change(write: TransactWrite, route: SubscriptionRouteRecord) -> None:
        if keep_routes:
            write.update(route, actions=[SubscriptionRouteRecord.enabled.set(False)])
        else:
            write.delete(route)

    return _switch(
        subscription,
        "disable the subscription",
        [
            SubscriptionRecord.enabled.set(False),
            SubscriptionRecord.disabled_reason.set(reason),
            SubscriptionRecord.disabled_at.set(now),
        ],
        SubscriptionRecord.enabled.does_not_exist() | (SubscriptionRecord.enabled == True),  # noqa: E712 - a condition, not a test
        route_change,
    )


def enable(subscription: SubscriptionRecord) -> bool:
    """Enable it and its routes, with a clean delivery health; False if it was
    enabled already."""
    return _switch(
        subscription,
        "enable the subscription",
        [
            SubscriptionRecord.enabled.set(True),
            SubscriptionRecord.disabled_reason.remove(),
            SubscriptionRecord.disabled_at.remove(),
            *_FRESH_HEALTH,
        ],
        SubscriptionRecord.enabled == False,  # noqa: E712 - a condition, not a test
        lambda write, route: write.update(
            route, actions=[SubscriptionRouteRecord.enabled.set(True)]
        ),
    )


def rotate(subscription: SubscriptionRecord, sealed: bytes, previous_until: datetime) -> None:
    """The newly sealed secrets; ConditionFailedError if another rotation came first."""
    with storage_errors("rotate the secret"):
        subscription.update(
            actions=[
                SubscriptionRecord.sealed_secret.set(sealed),
                SubscriptionRecord.previous_secret_until.set(previous_until),
            ],
            condition=SubscriptionRecord.sealed_secret == subscription.sealed_secret,
        )


def _note(subscription: SubscriptionRecord, actions: list[Any]) -> bool:
    """Update the delivery health, unless the subscription was deleted meanwhile
    (an update would otherwise make a bare one). The record is refreshed."""
    try:
        with storage_errors("note the delivery health"):
            subscription.update(
                actions=actions, condition=SubscriptionRecord.subscription_id.exists()
            )
    except ConditionFailedError:
        return False
    return True


def note_attempt(
    subscription: SubscriptionRecord,
    at: datetime,
    outcome: str,
    status_code: int | None,
    failed: bool,
    timed_out: bool,
) -> bool:
    """One attempt's answer on the subscription's health: a delivery clears its
    failures; a failure counts (and so does a timeout); any HTTP answer closes
    the circuit (the endpoint answers again). A probe that got no answer keeps
    its lease to its end, so the next probe waits until then."""
    actions: list[Any] = [
        SubscriptionRecord.last_attempt_at.set(at),
        SubscriptionRecord.last_outcome.set(outcome),
        SubscriptionRecord.last_status_code.set(status_code)
        if status_code is not None
        else SubscriptionRecord.last_status_code.remove(),
        SubscriptionRecord.timeouts_in_a_row.add(1)
        if timed_out
        else SubscriptionRecord.timeouts_in_a_row.set(0),
    ]
    if failed:
        actions += [
            SubscriptionRecord.failing_since.set(SubscriptionRecord.failing_since | at),
            SubscriptionRecord.failures_in_a_row.add(1),
        ]
    else:
        actions += [
            SubscriptionRecord.failing_since.remove(),
            SubscriptionRecord.failures_in_a_row.set(0),
        ]
    if status_code is not None:
        actions += [
            SubscriptionRecord.circuit_opened_at.remove(),
            SubscriptionRecord.probe_until.remove(),
        ]
    return _note(subscription, actions)


def open_circuit(subscription: SubscriptionRecord, at: datetime) -> None:
    _note(
        subscription,
        [SubscriptionRecord.circuit_opened_at.set(at), SubscriptionRecord.probe_until.remove()],
    )


def claim_probe(subscription: SubscriptionRecord, now: datetime, until: datetime) -> bool:
    """The one delivery let through to an endpoint whose circuit is open: True
    for the attempt that takes the lease (or when the circuit closed meanwhile)."""
    try:
        with storage_errors("claim the probe"):
            subscription.update(
                actions=[SubscriptionRecord.probe_until.set(until)],
                condition=SubscriptionRecord.subscription_id.exists()
                & (
                    SubscriptionRecord.circuit_opened_at.does_not_exist()
                    | SubscriptionRecord.probe_until.does_not_exist()
                    | (SubscriptionRecord.probe_until < now)
                ),
            )
    except ConditionFailedError:
        return False
    return True


def count_dead_lettered(subscription_id: str, change: int) -> None:
    """How many of its deliveries are dead-lettered: +1 as one is, -1 as one is replayed."""
    _note(SubscriptionRecord(subscription_id), [SubscriptionRecord.dead_lettered.add(change)])


def routes(shop_id: str) -> list[SubscriptionRouteRecord]:
    """The subscriptions on a shop, in one Query (the fan-out's read)."""
    with storage_errors("read the subscriptions"):
        return list(SubscriptionRouteRecord.query(shop_id))


def route_count(shop_id: str) -> int:
    with storage_errors("count the shop's subscriptions"):
        return SubscriptionRouteRecord.count(shop_id)


def deliveries_page(
    subscription_id: str, limit: int, start: Key | None
) -> tuple[list[OutboxRecord], str | None]:
    """The delivery log, newest first."""
    query: Any = functools.partial(
        OutboxRecord.by_subscription.query, subscription_id, scan_index_forward=False
    )
    return page(query, limit, start, "deliveries")


def deliveries_between(
    subscription_id: str, since: datetime, until: datetime | None, limit: int
) -> list[OutboxRecord]:
    """Deliveries of the events that happened from `since` (to `until`), oldest first.
    From the start of `since`'s second: a change's events are positioned by the
    second its table's stream gives it."""
    start = sortable(since.replace(microsecond=0))
    condition = (
        OutboxRecord.position.between(start, sortable(until) + "~")
        if until is not None
        else OutboxRecord.position >= start
    )
    with storage_errors("read the deliveries"):
        return list(
            OutboxRecord.by_subscription.query(
                subscription_id, range_key_condition=condition, limit=limit
            )
        )
