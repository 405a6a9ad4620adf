"""Integrator subscriptions and the per-shop routes the fan-out reads."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from pynamodb.transactions import TransactWrite

from chalicelib.store.errors import read_or_none, storage_errors
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


def of_key(key_id: str) -> list[SubscriptionRecord]:
    with storage_errors("list subscriptions"):
        return list(SubscriptionRecord.by_key.query(key_id))


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
    """Deliveries of the events that happened from `since` (to `until`), oldest first."""
    condition = (
        OutboxRecord.position.between(sortable(since), sortable(until) + "~")
        if until is not None
        else OutboxRecord.position >= sortable(since)
    )
    with storage_errors("read the deliveries"):
        return list(
            OutboxRecord.by_subscription.query(
                subscription_id, range_key_condition=condition, limit=limit
            )
        )
