"""Integrator subscriptions (platforms.md section 4): where to deliver which
events of which shops, the delivery log, and replays.

A subscription belongs to the key that created it and covers only shops in
that key's scope. Its URL must be https on a public address; the address is
checked again, and pinned, at every delivery (service.deliver).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import ipaddress
import secrets
import socket
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from pynamodb.exceptions import PynamoDBException
from pynamodb.transactions import TransactWrite
from requests_hardened.ip_filter import InvalidIPAddress, filter_host

from chalicelib.config import loopback_webhooks_allowed
from chalicelib.domain.events import EVENT_TYPES
from chalicelib.domain.model import SHANGHAI
from chalicelib.service.changes import sortable
from chalicelib.service.errors import ApiError, StorageUnavailableError, read_or_none
from chalicelib.service.queries import paged, parse_time
from chalicelib.store import vault
from chalicelib.store.records import (
    ApiKeyRecord,
    OutboxRecord,
    SubscriptionRecord,
    SubscriptionRouteRecord,
    connection,
)

# One transaction fans an event out to every subscription of its shop (100 items at most).
MAX_SUBSCRIPTIONS_PER_SHOP = 50
MAX_REPLAY = 1000
MAX_URL_LENGTH = 2048


def delivery_id(event_id: str, subscription_id: str) -> str:
    return "dlv_" + hashlib.sha256(f"{event_id}|{subscription_id}".encode()).hexdigest()[:24]


def _is_loopback_literal(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def url_problem(url: str, resolve: bool) -> str | None:
    """Why ShopHook will not deliver to `url`, or None. With `resolve`, every
    address the host resolves to must be public (delivery checks again)."""
    if len(url) > MAX_URL_LENGTH:
        return f"the URL is longer than {MAX_URL_LENGTH} characters"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "the URL cannot be parsed"
    host = parts.hostname or ""
    if not host:
        return "the URL has no host"
    if parts.username or parts.password:
        return "the URL must not carry credentials"
    loopback_http = loopback_webhooks_allowed() and _is_loopback_literal(host)
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback_http):
        return "the URL must be https"
    if not resolve:
        return None
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        resolved = {info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)}
    except (socket.gaierror, UnicodeError):
        return f"the host '{host}' does not resolve"
    for address in resolved:
        try:
            filter_host(address.partition("%")[0], port, allow_loopback=loopback_http)
        except (InvalidIPAddress, requests.RequestException):
            return (
                f"the host '{host}' resolves to {address}, a loopback, private, "
                "link-local, multicast or metadata address"
            )
    return None


def signing_secret(subscription: SubscriptionRecord) -> str:
    return vault.open_document(
        {"subscription_id": subscription.subscription_id}, subscription.sealed_secret
    )["secret"]


def _strings(body: dict[str, Any], name: str) -> list[str]:
    given = body.get(name)
    if not isinstance(given, list) or not given:
        raise ApiError(400, "invalid_body", f"'{name}' must be a non-empty list", name)
    for index, value in enumerate(given):
        if not isinstance(value, str) or not value:
            raise ApiError(400, "invalid_body", "must be a non-empty string", f"{name}[{index}]")
    return given


def _view(subscription: SubscriptionRecord) -> dict[str, Any]:
    return {
        "id": subscription.subscription_id,
        "url": subscription.url,
        "event_types": sorted(subscription.event_types),
        "shops": sorted(subscription.shops),
        "created_at": subscription.created_at.astimezone(SHANGHAI).isoformat(),
    }


def create(key: ApiKeyRecord, raw_body: Any, now: datetime) -> dict[str, Any]:
    if not isinstance(raw_body, dict):
        raise ApiError(400, "invalid_body", "the body must be a JSON object", "body")
    url = raw_body.get("url")
    if not isinstance(url, str) or not url:
        raise ApiError(400, "invalid_body", "'url' must be a non-empty string", "url")
    event_types = _strings(raw_body, "event_types")
    for index, event_type in enumerate(event_types):
        if event_type not in EVENT_TYPES:
            raise ApiError(
                400,
                "unknown_event_type",
                f"'{event_type}' is not one of {', '.join(EVENT_TYPES)}",
                f"event_types[{index}]",
            )
    shops = _strings(raw_body, "shops")
    for index, shop_id in enumerate(shops):
        if shop_id not in key.shops:
            raise ApiError(
                404, "shop_not_found", f"no shop '{shop_id}' for this api key", f"shops[{index}]"
            )
    problem = url_problem(url, resolve=True)
    if problem is not None:
        raise ApiError(422, "url_not_allowed", problem, "url")
    for shop_id in set(shops):
        if _route_count(shop_id) >= MAX_SUBSCRIPTIONS_PER_SHOP:
            raise ApiError(
                409,
                "too_many_subscriptions",
                f"shop '{shop_id}' has {MAX_SUBSCRIPTIONS_PER_SHOP} subscriptions already",
                "shops",
            )
    subscription_id = "sub_" + secrets.token_hex(12)
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    subscription = SubscriptionRecord(
        subscription_id,
        key_id=key.key_id,
        url=url,
        event_types=set(event_types),
        shops=set(shops),
        sealed_secret=vault.seal_document({"subscription_id": subscription_id}, {"secret": secret}),
        created_at=now,
    )
    try:
        with TransactWrite(connection=connection()) as write:
            write.save(subscription)
            for shop_id in subscription.shops:
                write.save(
                    SubscriptionRouteRecord(
                        shop_id, subscription_id, event_types=subscription.event_types
                    )
                )
    except PynamoDBException as error:
        raise StorageUnavailableError("could not save the subscription") from error
    # The secret is shown this once; ShopHook keeps it sealed.
    return {**_view(subscription), "secret": secret}


def _route_count(shop_id: str) -> int:
    try:
        return SubscriptionRouteRecord.count(shop_id)
    except PynamoDBException as error:
        raise StorageUnavailableError("could not count the shop's subscriptions") from error


def owned(key: ApiKeyRecord, subscription_id: str) -> SubscriptionRecord:
    subscription = read_or_none(SubscriptionRecord, subscription_id, "the subscription")
    if subscription is None or subscription.key_id != key.key_id:
        raise ApiError(404, "subscription_not_found", f"no subscription '{subscription_id}'")
    return subscription


def listing(key: ApiKeyRecord) -> dict[str, Any]:
    try:
        found = list(SubscriptionRecord.by_key.query(key.key_id))
    except PynamoDBException as error:
        raise StorageUnavailableError("could not list subscriptions") from error
    return {"items": [_view(subscription) for subscription in found]}


def show(key: ApiKeyRecord, subscription_id: str) -> dict[str, Any]:
    return _view(owned(key, subscription_id))


def delete(key: ApiKeyRecord, subscription_id: str) -> None:
    """Deliveries still queued for it are cancelled when their turn comes."""
    subscription = owned(key, subscription_id)
    try:
        with TransactWrite(connection=connection()) as write:
            write.delete(subscription)
            for shop_id in subscription.shops:
                write.delete(SubscriptionRouteRecord(shop_id, subscription_id))
    except PynamoDBException as error:
        raise StorageUnavailableError("could not delete the subscription") from error


def delivery_view(delivery: OutboxRecord) -> dict[str, Any]:
    return {
        "id": delivery.outbox_id,
        "event_id": delivery.event_id,
        "type": delivery.type,
        "state": delivery.state,
        "created_at": delivery.created_at.astimezone(SHANGHAI).isoformat(),
        "finished_at": (
            delivery.finished_at.astimezone(SHANGHAI).isoformat() if delivery.finished_at else None
        ),
        "error": delivery.error,
        "attempts": [
            {
                "attempt": attempt.attempt,
                "at": attempt.at.astimezone(SHANGHAI).isoformat(),
                "outcome": attempt.outcome,
                "status_code": attempt.status_code,
                "latency_ms": attempt.latency_ms,
                "error": attempt.error,
            }
            for attempt in delivery.attempts
        ],
    }


def deliveries(
    key: ApiKeyRecord, subscription_id: str, limit: str | None, cursor: str | None
) -> dict[str, Any]:
    """The delivery log, newest first."""
    owned(key, subscription_id)
    rows, next_cursor = paged(
        functools.partial(
            OutboxRecord.by_subscription.query, subscription_id, scan_index_forward=False
        ),
        limit,
        cursor,
        "deliveries",
    )
    return {"items": [delivery_view(row) for row in rows], "next_cursor": next_cursor}


def to_replay(key: ApiKeyRecord, subscription_id: str, raw_body: Any) -> list[OutboxRecord]:
    """The deliveries a replay request names: one by id, or a time range."""
    owned(key, subscription_id)
    body = raw_body if isinstance(raw_body, dict) else None
    if body is None or ("delivery_id" in body) == ("since" in body):
        raise ApiError(
            400,
            "invalid_body",
            'send {"delivery_id": ...} or {"since": <iso time>, "until"?: <iso time>}',
            "body",
        )
    try:
        if "delivery_id" in body:
            wanted = str(body["delivery_id"])
            row = read_or_none(OutboxRecord, wanted, "the delivery")
            if row is None or row.subscription_id != subscription_id:
                raise ApiError(404, "delivery_not_found", f"no delivery '{wanted}'", "delivery_id")
            return [row]
        since = parse_time(_text_or_none(body, "since"), "since")
        if since is None:
            raise ApiError(400, "invalid_since", "since must be an ISO 8601 time", "since")
        until = parse_time(_text_or_none(body, "until"), "until")
        condition = (
            OutboxRecord.position.between(sortable(since), sortable(until) + "~")
            if until is not None
            else OutboxRecord.position >= sortable(since)
        )
        return list(
            OutboxRecord.by_subscription.query(
                subscription_id, range_key_condition=condition, limit=MAX_REPLAY
            )
        )
    except PynamoDBException as error:
        raise StorageUnavailableError("could not read the deliveries") from error


def _text_or_none(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise ApiError(400, f"invalid_{name}", f"{name} must be an ISO 8601 time", name)
    return value
