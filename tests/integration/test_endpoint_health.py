"""Failing and slow integrator endpoints: a subscription failing for five days
is disabled, announced and recovered by a replay; a hanging endpoint's circuit
opens and it is probed one delivery at a time until it answers. Time is moved
with time-machine (moto's queues follow it); nothing sleeps."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from chalicelib.domain.endpoints import FAILING_FOR, TIMEOUTS_TO_OPEN_CIRCUIT
from chalicelib.domain.retry import INTEGRATOR_DELIVERIES
from chalicelib.service.fanout import WAITING_FOR_PROBE
from chalicelib.settings import INTEGRATOR_TIMEOUT_VARIABLE
from shophook.cli import main
from tests.integration.subscribers import (
    LATER,
    HangingEndpoint,
    Subscriber,
    call,
    deliveries,
    subscribe,
    trade_messages,
)
from tests.support import NOW, PEER_TIMEOUT_SECONDS, drain, set_env


def _order_created(stack, order_id: str) -> None:
    stack.deliver(trade_messages(order_id)[0])


@pytest.mark.usefixtures("cli_isolation")
def test_a_subscription_failing_for_five_days_is_disabled_announced_and_recovered(
    stack, loopback_webhooks, httpserver, capsys
):
    failing = Subscriber(httpserver, "/failing", statuses=(503,))
    watcher = Subscriber(httpserver, "/watcher")
    broken = subscribe(stack, failing.url, event_types=["order.created"])
    watching = subscribe(stack, watcher.url, event_types=["subscription.disabled"])
    _order_created(stack, "3600001")
    drain(LATER)
    # Nearly five days of failures: still enabled, its delivery still retried.
    _order_created(stack, "3600002")
    drain(LATER + FAILING_FOR - timedelta(minutes=1))
    assert call(stack, "GET", f"/subscriptions/{broken['id']}").body["enabled"] is True
    _order_created(stack, "3600003")
    five_days_on = LATER + FAILING_FOR + timedelta(minutes=1)
    drain(five_days_on)
    shown = call(stack, "GET", f"/subscriptions/{broken['id']}").body
    assert (shown["enabled"], shown["disabled_reason"]) == (False, "failing")
    assert shown["health"]["failing_since"] is not None
    assert {entry["state"] for entry in deliveries(stack, broken["id"])} == {"cancelled"}
    capsys.readouterr()
    assert main(["subscriptions", "list", "--json"]) == 0
    listed = {row["id"]: row for row in json.loads(capsys.readouterr().out)}
    assert listed[broken["id"]]["disabled_reason"] == "failing"
    (announced,) = watcher.received
    body = json.loads(announced.data)
    assert body["type"] == "subscription.disabled"
    assert body["data"]["subscription"]["id"] == broken["id"]
    assert body["data"]["subscription"]["disabled_reason"] == "failing"
    assert [entry["type"] for entry in deliveries(stack, watching["id"])] == [
        "subscription.disabled"
    ]

    # What happens while it is disabled is recorded, not sent.
    _order_created(stack, "3600004")
    drain(five_days_on)
    attempted = len(failing.received)
    # Fixed, enabled again, and a replay of the whole time recovers every event.
    failing.statuses = [200]
    enabled = call(stack, "PATCH", f"/subscriptions/{broken['id']}", {"enabled": True})
    assert enabled.body["enabled"] is True and enabled.body["health"]["failing_since"] is None
    since = (NOW - timedelta(minutes=1)).isoformat()
    replayed = call(stack, "POST", f"/subscriptions/{broken['id']}/replay", {"since": since})
    assert replayed.body["replayed"] == 4
    # A replayed delivery goes out behind its order's earlier message, which
    # waits for the retry it was given before the subscription was disabled.
    drain(five_days_on + timedelta(seconds=INTEGRATOR_DELIVERIES.longest_wait_seconds))
    recovered = [json.loads(r.data)["data"]["order"]["order_id"] for r in failing.received]
    assert sorted(set(recovered[attempted:])) == ["3600001", "3600002", "3600003", "3600004"]
    assert {entry["state"] for entry in deliveries(stack, broken["id"])} == {"delivered"}


@pytest.fixture
def hanging(loopback_webhooks, monkeypatch):
    set_env(monkeypatch, {INTEGRATOR_TIMEOUT_VARIABLE: str(PEER_TIMEOUT_SECONDS)})
    endpoint = HangingEndpoint()
    yield endpoint
    endpoint.close()


def test_a_hanging_endpoint_is_probed_one_delivery_at_a_time_until_it_answers(stack, hanging):
    created = subscribe(stack, hanging.url, event_types=["order.created"])
    orders = [f"37000{number}" for number in range(1, 7)]
    for order_id in orders:
        _order_created(stack, order_id)
    drain(LATER)
    # Timeouts in a row open the circuit; then one probe goes out (and times
    # out too), and the other deliveries wait in their groups without a call.
    assert hanging.connections() == TIMEOUTS_TO_OPEN_CIRCUIT + 1
    health = call(stack, "GET", f"/subscriptions/{created['id']}").body["health"]
    assert (health["circuit_open"], health["last_outcome"]) == (True, "timed_out")
    log = deliveries(stack, created["id"])
    held = [entry for entry in log if entry["attempts"][0]["error"] == WAITING_FOR_PROBE]
    assert len(held) == len(orders) - TIMEOUTS_TO_OPEN_CIRCUIT - 1
    assert all(entry["state"] == "pending" for entry in log)

    # It answers again: the next probe gets through, the circuit closes, and
    # every delivery waiting goes out.
    hanging.recover()
    drain(LATER + timedelta(minutes=2))
    assert sorted(hanging.types()) == ["order.created"] * len(orders)
    health = call(stack, "GET", f"/subscriptions/{created['id']}").body["health"]
    assert (health["circuit_open"], health["failures_in_a_row"]) == (False, 0)
    assert {entry["state"] for entry in deliveries(stack, created["id"])} == {"delivered"}
