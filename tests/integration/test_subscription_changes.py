"""Changing a subscription (PATCH), rotating its secret, and revoking the key
that made it: end to end, from the API through the queues to a loopback
endpoint (pytest-httpserver), at frozen times."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import time_machine
from standardwebhooks import Webhook, WebhookVerificationError

from chalicelib.service import keys, subscriptions
from chalicelib.store.records import OutboxRecord, SubscriptionRouteRecord
from shophook.cli import main
from tests.integration.subscribers import (
    LATER,
    ORDER_EVENTS,
    Subscriber,
    call,
    deliveries,
    subscribe,
    trade_messages,
)
from tests.support import JD_SHOP, NOW, TAOBAO_SHOP, drain, tell_changes


def test_patch_changes_the_url_and_event_types_and_the_routes_follow(
    stack, loopback_webhooks, httpserver
):
    old = Subscriber(httpserver, "/old")
    new = Subscriber(httpserver, "/new")
    created = subscribe(stack, old.url, event_types=["order.created"])
    changed = call(
        stack,
        "PATCH",
        f"/subscriptions/{created['id']}",
        {"url": new.url, "event_types": ["order.paid", "order.shipped"]},
    )
    assert changed.status == 200
    assert (changed.body["url"], changed.body["event_types"]) == (
        new.url,
        ["order.paid", "order.shipped"],
    )
    (route,) = SubscriptionRouteRecord.query(TAOBAO_SHOP)
    assert route.event_types == {"order.paid", "order.shipped"}
    for message in trade_messages():
        stack.deliver(message)
    drain(LATER)
    assert (old.types(), new.types()) == ([], ["order.paid", "order.shipped"])


def test_patch_refuses_what_create_refuses_and_another_keys_subscription(
    stack, loopback_webhooks, httpserver
):
    created = subscribe(stack, httpserver.url_for("/x"))
    path = f"/subscriptions/{created['id']}"
    private = call(stack, "PATCH", path, {"url": "https://10.0.0.1/hook"})
    assert (private.status, private.body["code"], private.body["field"]) == (
        422,
        "url_not_allowed",
        "url",
    )
    unknown = call(stack, "PATCH", path, {"event_types": ["order.paid", "order.eaten"]})
    assert (unknown.status, unknown.body["field"]) == (400, "event_types[1]")
    empty = call(stack, "PATCH", path, {})
    assert (empty.status, empty.body["code"], empty.body["field"]) == (400, "invalid_body", "body")
    typed = call(stack, "PATCH", path, {"enabled": "no"})
    assert (typed.status, typed.body["field"]) == (400, "enabled")
    _, jd_only = keys.create_key("jd integrator", [JD_SHOP], NOW)
    assert call(stack, "PATCH", path, {"enabled": False}, api_key=jd_only).status == 404
    assert call(stack, "POST", f"{path}/rotate-secret", api_key=jd_only).status == 404
    assert call(stack, "GET", path).body["url"] == httpserver.url_for("/x")


def test_a_subscription_disabled_by_patch_records_what_it_misses_and_a_replay_recovers_it(
    stack, loopback_webhooks, httpserver
):
    subscriber = Subscriber(httpserver, "/paused")
    created = subscribe(stack, subscriber.url)
    path = f"/subscriptions/{created['id']}"
    paused = call(stack, "PATCH", path, {"enabled": False})
    assert (paused.body["enabled"], paused.body["disabled_reason"]) == (False, "integrator")
    for message in trade_messages():
        stack.deliver(message)
    drain(LATER)
    assert subscriber.received == []
    assert {entry["state"] for entry in deliveries(stack, created["id"])} == {"cancelled"}
    resumed = call(stack, "PATCH", path, {"enabled": True})
    assert (resumed.body["enabled"], resumed.body["disabled_reason"]) == (True, None)
    since = (NOW - timedelta(minutes=1)).isoformat()
    assert call(stack, "POST", f"{path}/replay", {"since": since}).body["replayed"] == 4
    drain(LATER)
    assert subscriber.types() == ORDER_EVENTS


def _verifies(secret: str, request, at) -> bool:
    """The standardwebhooks package's own verifier, at the delivery's time."""
    headers = {name.lower(): value for name, value in request.headers.items()}
    with time_machine.travel(at, tick=False):
        try:
            Webhook(secret).verify(request.data, headers)
        except WebhookVerificationError:
            return False
    return True


def test_a_rotated_secret_signs_beside_the_old_one_for_a_day_then_alone(
    stack, loopback_webhooks, httpserver
):
    subscriber = Subscriber(httpserver, "/rotating")
    created = subscribe(stack, subscriber.url, event_types=["order.created"])
    old_secret = created["secret"]
    rotated = call(stack, "POST", f"/subscriptions/{created['id']}/rotate-secret")
    assert rotated.status == 200 and set(rotated.body) == {"secret"}
    new_secret = rotated.body["secret"]
    assert new_secret.startswith("whsec_") and new_secret != old_secret
    assert new_secret not in json.dumps(call(stack, "GET", "/subscriptions").body)

    stack.deliver(trade_messages()[0])
    drain(LATER)
    (during,) = subscriber.received
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    assert _verifies(old_secret, during, LATER) and _verifies(new_secret, during, LATER)

    # A day later the same delivery, replayed, is signed with the new secret only.
    a_day_on = LATER + timedelta(hours=24, seconds=1)
    (delivery,) = deliveries(stack, created["id"])
    call(stack, "POST", f"/subscriptions/{created['id']}/replay", {"delivery_id": delivery["id"]})
    drain(a_day_on)
    after = subscriber.received[1]
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    assert _verifies(new_secret, after, a_day_on)
    assert not _verifies(old_secret, after, a_day_on)


@pytest.mark.usefixtures("cli_isolation")
def test_revoking_a_key_disables_its_subscriptions_and_cancels_their_queued_deliveries(
    stack, loopback_webhooks, httpserver, capsys
):
    assert main(["keys", "create", "--name", "erp", "--shop", TAOBAO_SHOP, "--json"]) == 0
    made = json.loads(capsys.readouterr().out)
    subscriber = Subscriber(httpserver, "/revoked")
    created = subscribe(stack, subscriber.url, event_types=["order.paid"], api_key=made["key"])
    # The order's events are fanned out (order.paid's delivery queued), not yet sent.
    stack.deliver(trade_messages()[1])
    tell_changes(LATER)
    (queued,) = OutboxRecord.by_subscription.query(created["id"])
    assert queued.state == "pending"

    with time_machine.travel(LATER, tick=False):
        assert main(["keys", "revoke", made["key_id"]]) == 0
    assert "subscriptions disabled: 1" in capsys.readouterr().out
    (cancelled,) = OutboxRecord.by_subscription.query(created["id"])
    assert (cancelled.state, cancelled.error) == (
        "cancelled",
        "not sent: the subscription is disabled (its api key was revoked)",
    )
    drain(LATER)
    # Another order paid afterwards reaches it neither: its routes are gone.
    stack.deliver(trade_messages("3500002")[1])
    drain(LATER)
    assert subscriber.received == []
    assert [row.outbox_id for row in OutboxRecord.by_subscription.query(created["id"])] == [
        cancelled.outbox_id
    ]
    assert list(SubscriptionRouteRecord.query(TAOBAO_SHOP)) == []


def test_a_shops_subscriptions_are_listed_with_their_delivery_health(
    stack, loopback_webhooks, httpserver
):
    """What the seller console shows on its integrations page."""
    failing = Subscriber(httpserver, "/unwell", statuses=(503,))
    unwell = subscribe(stack, failing.url, event_types=["order.created"])
    subscribe(stack, httpserver.url_for("/elsewhere"), shops=[JD_SHOP])
    stack.deliver(trade_messages()[0])
    drain(LATER)
    (listed,) = subscriptions.on_shop(TAOBAO_SHOP)
    assert listed["id"] == unwell["id"] and "secret" not in listed
    assert listed["health"] | {"last_attempt_at": None, "failing_since": None} == {
        "last_attempt_at": None,
        "last_outcome": "failed",
        "last_status_code": 503,
        "failures_in_a_row": 1,
        "failing_since": None,
        "circuit_open": False,
        "dead_lettered": 0,
    }
