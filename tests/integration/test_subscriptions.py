"""Integrator subscriptions: the API, Standard Webhooks deliveries to a real
loopback HTTP server, retries, the delivery log, replays, and the SSRF guard."""

from __future__ import annotations

import json
import socket
from datetime import timedelta

import pytest
import time_machine

from chalicelib.domain.retry import INTEGRATOR_DELIVERIES
from chalicelib.service import keys
from chalicelib.store import queues
from chalicelib.store.records import OutboxRecord
from tests.integration.subscribers import (
    LATER,
    ORDER_EVENTS,
    Subscriber,
    call,
    deliveries,
    oracle_signature,
    subscribe,
    trade_messages,
)
from tests.support import JD_SHOP, NOW, TAOBAO_SHOP, drain, set_env, tell_changes


def test_a_subscriber_receives_each_event_signed_and_in_order(
    stack, loopback_webhooks, httpserver, log_stream
):
    subscriber = Subscriber(httpserver, "/hook")
    created = subscribe(stack, subscriber.url)
    assert created["secret"].startswith("whsec_")
    for message in trade_messages():
        stack.deliver(message)
    drain(LATER)
    assert subscriber.types() == ORDER_EVENTS
    first = subscriber.received[0]
    headers = first.headers
    assert headers["webhook-id"].startswith("evt_")
    assert headers["webhook-timestamp"] == str(int(LATER.timestamp()))
    assert headers["webhook-signature"] == oracle_signature(
        created["secret"], headers["webhook-id"], headers["webhook-timestamp"], first.data
    )
    body = json.loads(first.data)
    assert body["data"]["order"]["order_id"] == "3500001"
    assert set(body) == {"type", "timestamp", "data"}
    log = deliveries(stack, created["id"])
    assert [entry["state"] for entry in log] == ["delivered"] * 4
    assert log[0]["attempts"][0]["status_code"] == 200
    assert log[0]["attempts"][0]["latency_ms"] >= 0
    # Redelivering the webhooks changes nothing and sends nothing more.
    for message in trade_messages():
        stack.deliver(message)
    drain(LATER)
    assert len(subscriber.received) == 4
    logged = log_stream.getvalue()
    assert "delivered" in logged and created["secret"].removeprefix("whsec_") not in logged


def test_a_failing_subscriber_is_retried_and_delays_no_one_else(
    stack, loopback_webhooks, httpserver
):
    failing = Subscriber(httpserver, "/failing", statuses=(503, 429, 500, 200))
    healthy = Subscriber(httpserver, "/healthy")
    broken = subscribe(stack, failing.url)
    subscribe(stack, healthy.url)
    for message in trade_messages():
        stack.deliver(message)
    drain(LATER)
    assert healthy.types() == ORDER_EVENTS
    # The failing subscriber's first event waits; the order's later events wait behind it.
    assert failing.types() == ["order.created"]
    moment = LATER
    for attempt in (1, 2, 3):
        moment += timedelta(seconds=INTEGRATOR_DELIVERIES.wait_seconds(attempt, 0.999999) + 1)
        drain(moment)
    assert failing.types() == ["order.created"] * 3 + ORDER_EVENTS
    first = next(d for d in deliveries(stack, broken["id"]) if d["type"] == "order.created")
    assert [a["status_code"] for a in first["attempts"]] == [503, 429, 500, 200]
    assert first["state"] == "delivered"


def test_a_4xx_fails_at_once_and_replay_by_id_delivers_it(stack, loopback_webhooks, httpserver):
    subscriber = Subscriber(httpserver, "/gone", statuses=(410, 200))
    created = subscribe(stack, subscriber.url, event_types=["order.created"])
    stack.deliver(trade_messages()[0])
    drain(LATER)
    (failed,) = deliveries(stack, created["id"])
    assert (failed["state"], failed["error"]) == ("failed", "answered HTTP 410")
    replay = call(
        stack, "POST", f"/subscriptions/{created['id']}/replay", {"delivery_id": failed["id"]}
    )
    assert (replay.status, replay.body["replayed"]) == (202, 1)
    drain(LATER)
    (delivered,) = deliveries(stack, created["id"])
    assert delivered["state"] == "delivered"
    assert [a["status_code"] for a in delivered["attempts"]] == [410, 200]
    assert len({request.headers["webhook-id"] for request in subscriber.received}) == 1


def test_replay_by_time_range_sends_those_deliveries_again(stack, loopback_webhooks, httpserver):
    subscriber = Subscriber(httpserver, "/range")
    created = subscribe(stack, subscriber.url)
    for message in trade_messages():
        stack.deliver(message)
    drain(LATER)
    since = (NOW - timedelta(minutes=1)).isoformat()
    replay = call(stack, "POST", f"/subscriptions/{created['id']}/replay", {"since": since})
    assert replay.body["replayed"] == 4
    drain(LATER)
    assert subscriber.types() == ORDER_EVENTS * 2
    nothing = call(
        stack,
        "POST",
        f"/subscriptions/{created['id']}/replay",
        {"since": (NOW + timedelta(days=1)).isoformat()},
    )
    assert nothing.body["replayed"] == 0


def test_after_the_budget_a_delivery_is_dead_lettered(stack, loopback_webhooks, httpserver):
    subscriber = Subscriber(httpserver, "/down", statuses=(503,))
    created = subscribe(stack, subscriber.url, event_types=["order.created"])
    stack.deliver(trade_messages()[0])
    moment = LATER
    for _ in range(INTEGRATOR_DELIVERIES.attempts + 1):
        drain(moment)
        moment += timedelta(seconds=INTEGRATOR_DELIVERIES.longest_wait_seconds + 1)
    (dead,) = deliveries(stack, created["id"])
    assert dead["state"] == "dead_lettered"
    assert len(dead["attempts"]) == INTEGRATOR_DELIVERIES.attempts
    span = dead["attempts"][-1]["at"], dead["attempts"][0]["at"]
    assert span[0] > span[1]
    with time_machine.travel(moment, tick=False):
        (letter,) = queues.dead_letters(queues.DELIVERIES, limit=10, hold_seconds=0)
    assert letter.body["outbox_id"] == dead["id"]


def test_deleting_a_subscription_cancels_what_is_queued_for_it(
    stack, loopback_webhooks, httpserver
):
    subscriber = Subscriber(httpserver, "/deleted")
    created = subscribe(stack, subscriber.url, event_types=["order.created"])
    stack.deliver(trade_messages()[0])
    # Fanned out, then deleted before the delivery's turn.
    tell_changes(LATER)
    assert call(stack, "DELETE", f"/subscriptions/{created['id']}").status == 204
    drain(LATER)
    assert subscriber.received == []
    (row,) = OutboxRecord.by_subscription.query(created["id"])
    assert row.state == "cancelled"


def test_the_api_validates_and_keeps_subscriptions_to_their_key(
    stack, loopback_webhooks, httpserver
):
    url = httpserver.url_for("/x")
    bad = call(
        stack,
        "POST",
        "/subscriptions",
        {"url": url, "event_types": ["order.eaten"], "shops": [TAOBAO_SHOP]},
    )
    assert (bad.status, bad.body["field"]) == (400, "event_types[0]")
    _, jd_only = keys.create_key("jd integrator", [JD_SHOP], NOW)
    foreign = call(
        stack,
        "POST",
        "/subscriptions",
        {"url": url, "event_types": ORDER_EVENTS, "shops": [TAOBAO_SHOP]},
        api_key=jd_only,
    )
    assert (foreign.status, foreign.body["field"]) == (404, "shops[0]")
    created = subscribe(stack, url)
    listed = call(stack, "GET", "/subscriptions").body["items"]
    assert [item["id"] for item in listed] == [created["id"]]
    assert "secret" not in listed[0] and "secret" not in json.dumps(listed)
    for method, path in (
        ("GET", f"/subscriptions/{created['id']}"),
        ("GET", f"/subscriptions/{created['id']}/deliveries"),
        ("POST", f"/subscriptions/{created['id']}/replay"),
        ("DELETE", f"/subscriptions/{created['id']}"),
    ):
        answer = call(stack, method, path, {"since": NOW.isoformat()}, api_key=jd_only)
        assert answer.status == 404, (method, path)
    assert call(stack, "GET", "/subscriptions", api_key=jd_only).body["items"] == []
    assert call(stack, "GET", "/subscriptions", api_key="shk_nope").status == 401
    replay = call(stack, "POST", f"/subscriptions/{created['id']}/replay", {"until": "x"})
    assert (replay.status, replay.body["field"]) == (400, "until")
    replay = call(
        stack, "POST", f"/subscriptions/{created['id']}/replay", {"until": NOW.isoformat()}
    )
    assert (replay.status, replay.body["field"]) == (400, "body")


@pytest.fixture
def dns(monkeypatch):
    """A resolver the test controls for *.example.test names (the rest resolve as usual)."""
    answers: dict[str, str] = {}
    real = socket.getaddrinfo

    def resolve(host, port, *args, **kwargs):
        if isinstance(host, str) and host in answers:
            family = socket.AF_INET6 if ":" in answers[host] else socket.AF_INET
            return [(family, socket.SOCK_STREAM, 6, "", (answers[host], port or 0))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    return answers


REFUSED = [
    "https://127.0.0.1/hook",
    "https://10.0.0.1/hook",
    "https://172.16.5.4/hook",
    "https://172.31.255.254/hook",
    "https://192.168.1.1/hook",
    "https://169.254.169.254/latest/meta-data/",
    "https://[::1]/hook",
    "https://[::ffff:127.0.0.1]/hook",
    "https://[::ffff:10.0.0.1]/hook",
    "https://[fd00:ec2::254]/hook",
    # Deprecated IPv6 forms Python calls global: IPv4-compatible (127.0.0.1 and
    # the metadata address) and site-local.
    "https://[::7f00:1]/hook",
    "https://[::a9fe:a9fe]/hook",
    "https://[fec0::1]/hook",
    "https://compat.example.test/hook",
    "https://224.0.0.1/hook",
    "https://0.0.0.0/hook",
    "https://internal.example.test/hook",
    "https://user:secret@hooks.example.test/hook",
    "http://hooks.example.test/hook",
    "ftp://hooks.example.test/hook",
    "https:///nohost",
]


@pytest.mark.parametrize("url", REFUSED)
def test_unsafe_subscription_urls_are_refused(stack, dns, url):
    dns["internal.example.test"] = "10.20.30.40"
    dns["hooks.example.test"] = "93.184.216.34"
    dns["compat.example.test"] = "::a9fe:a9fe"
    answer = call(
        stack,
        "POST",
        "/subscriptions",
        {"url": url, "event_types": ORDER_EVENTS, "shops": [TAOBAO_SHOP]},
    )
    assert (answer.status, answer.body["code"], answer.body["field"]) == (
        422,
        "url_not_allowed",
        "url",
    )


def test_loopback_http_needs_the_local_flag(stack, httpserver, monkeypatch):
    body = {"url": httpserver.url_for("/hook"), "event_types": ORDER_EVENTS, "shops": [TAOBAO_SHOP]}
    assert call(stack, "POST", "/subscriptions", body).status == 422
    set_env(monkeypatch, {"SHOPHOOK_ALLOW_LOOPBACK_WEBHOOKS": "1"})
    assert call(stack, "POST", "/subscriptions", body).status == 201


def test_dns_rebinding_after_subscribing_is_refused_at_delivery(stack, dns):
    dns["hooks.example.test"] = "93.184.216.34"
    created = subscribe(stack, "https://hooks.example.test/hook", event_types=["order.created"])
    # The name now points inside: the delivery resolves again and refuses to connect.
    dns["hooks.example.test"] = "169.254.169.254"
    stack.deliver(trade_messages()[0])
    drain(LATER)
    (refused,) = deliveries(stack, created["id"])
    assert refused["state"] == "failed"
    assert "does not deliver to" in refused["error"]


def test_a_delivery_connects_to_the_address_it_checked(dns, httpserver, monkeypatch):
    from chalicelib.hardened_session import session

    subscriber = Subscriber(httpserver, "/pinned")
    dns["hooks.example.test"] = "127.0.0.1"
    port = httpserver.port
    answer = session(True, (1, 5)).post(f"http://hooks.example.test:{port}/pinned", data=b"{}")
    assert answer.status_code == 200
    assert subscriber.received[0].headers["Host"] == f"hooks.example.test:{port}"


@pytest.mark.parametrize("address", ["::7f00:1", "::a9fe:a9fe", "fec0::1", "100.64.0.1"])
def test_a_delivery_refuses_to_connect_to_a_deprecated_or_internal_address(dns, address):
    from requests_hardened.ip_filter import InvalidIPAddress

    from chalicelib.hardened_session import session

    dns["hooks.example.test"] = address
    with pytest.raises(InvalidIPAddress):
        session(False, (1, 5)).post("https://hooks.example.test/hook", data=b"{}")
