"""The Taobao-style message channel (platforms.md 1.4) on moto against the
simulated platform: shops are permitted on connect and cancelled on disconnect
as queued work; the schedule drains the channel in batches, stores each
message through the push's store-once path and confirms exactly what it
stored, held already or quarantined; what was not confirmed comes back and
changes nothing the second time."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
import requests
import time_machine

import app as app_module
from chalicelib.service import channel, oauth, shops
from chalicelib.settings import platform_variable
from chalicelib.store.records import EventLogRecord, OutboxRecord, QuarantineRecord
from shophook.driver import run_schedules
from simulator.scenarios import Message, taobao_order
from simulator.server import CHANNEL_LEASE, publish
from tests.integration.test_observability import metric_names, output_lines
from tests.support import JD_SHOP, NOW, TAOBAO_SHOP, approve, connect_with_tokens, drain, set_env

STORY = taobao_order("3930001", NOW - timedelta(days=5))
ORDER = f"/shops/{TAOBAO_SHOP}/orders/3930001"
CASE = f"/shops/{TAOBAO_SHOP}/after-sales/R3930001"
AFTER_LEASE = NOW + CHANNEL_LEASE + timedelta(seconds=1)
CONSUME, CONFIRM = "taobao.tmc.messages.consume", "taobao.tmc.messages.confirm"


@pytest.fixture
def tmc(stack, simulator, monkeypatch) -> str:
    """The channel on, the demo shops connected with sessions (and so permitted)."""
    set_env(monkeypatch, {platform_variable("taobao", "tmc"): "1"})
    connect_with_tokens(simulator)
    drain(NOW)
    return simulator


def publish_at(simulator: str, messages: list[Message], thin: bool, at: datetime = NOW) -> None:
    with time_machine.travel(at, tick=False):
        publish(simulator, messages, thin=thin)


def drained(at: datetime, budget_seconds: float = channel.RUN_BUDGET_SECONDS) -> list:
    """A run of the drain at `at`, by the simulator's clock too (its leases)."""
    with time_machine.travel(at, tick=False):
        return channel.drain(at, budget_seconds)


def channel_calls(simulator: str, method: str | None = None) -> list[dict]:
    calls = requests.get(f"{simulator}/_sim/calls", timeout=5).json()
    return [c for c in calls if c["channel"] and (method is None or c["method"] == method)]


def on_channel(simulator: str, at: datetime = NOW) -> dict:
    with time_machine.travel(at, tick=False):
        return requests.get(f"{simulator}/_sim/channel", timeout=5).json()["taobao"]


def fail_next(simulator: str, faults: list[str]) -> None:
    answer = requests.post(f"{simulator}/_sim/faults", json={"taobao": faults}, timeout=5)
    answer.raise_for_status()


def confirmed_ids(simulator: str) -> list[str]:
    return [
        message_id
        for call in channel_calls(simulator, CONFIRM)
        if json.loads(call["answer"]).get("tmc_messages_confirm_response")
        for message_id in call["params"]["s_message_ids"].split(",")
    ]


def test_a_connect_permits_the_shop_and_a_disconnect_cancels_it_as_queued_work(tmc, stack):
    assert on_channel(tmc)["permitted"] == ["Demo Taobao-style shop"]
    (permit,) = channel_calls(tmc, "taobao.tmc.user.permit")
    assert permit["params"]["session"] and permit["carried_out"]

    # The platform busy: the cancel is retried after its wait, never lost.
    fail_next(tmc, ["rate_limit"])
    answer = stack.request(
        "POST",
        f"/shops/{TAOBAO_SHOP}/disconnect",
        headers={"Authorization": f"Bearer {stack.api_key}"},
    )
    assert answer.status == 200
    drain(NOW)
    assert on_channel(tmc)["permitted"] == ["Demo Taobao-style shop"]
    drain(NOW + timedelta(minutes=2))
    assert on_channel(tmc)["permitted"] == []
    cancels = channel_calls(tmc, "taobao.tmc.user.cancel")
    assert [call["carried_out"] for call in cancels] == [False, True]
    # The app's own call: no shop session is sent, the nick names the shop.
    assert "session" not in cancels[1]["params"]
    assert cancels[1]["params"]["nick"] == "Demo Taobao-style shop"
    rows = OutboxRecord.scan(OutboxRecord.kind == "channel")
    assert sorted((row.type, row.state) for row in rows) == [
        ("cancel", "sent"),
        ("permit", "sent"),
    ]


def test_a_seller_connecting_by_oauth_is_permitted_without_waiting_on_the_platform(
    stack, simulator, monkeypatch
):
    set_env(monkeypatch, {platform_variable("taobao", "tmc"): "1"})
    started = oauth.start("taobao", NOW, "203.0.113.9")
    query = approve(started.authorize_url, "2200000077")
    finished = oauth.finish("taobao", query, started.browser_nonce, NOW)
    assert finished.shop.shop_id == "taobao:2200000077"
    assert channel_calls(simulator) == []
    drain(NOW)
    permits = channel_calls(simulator, "taobao.tmc.user.permit")
    assert len(permits) == 1 and on_channel(simulator)["permitted"] == [finished.shop.name]


def test_the_channel_is_drained_stored_once_and_exactly_what_was_kept_is_confirmed(
    tmc, stack, capfd
):
    # Repeated by the platform, and out of order.
    publish_at(tmc, [*reversed(STORY), STORY[1], STORY[9]], thin=False)
    capfd.readouterr()
    (report,) = drained(NOW)
    assert (report.consumed, report.confirmed, report.redelivered) == (14, 12, 2)
    assert not report.failed
    assert sorted(confirmed_ids(tmc)) == sorted(message.message_id for message in STORY)
    assert on_channel(tmc)["waiting"] == on_channel(tmc)["leased"] == 0
    drain(NOW)
    assert stack.get(ORDER).body["status"] == "completed"
    assert stack.get(CASE).body["status"] == "refunded"
    names = metric_names(output_lines(capfd))
    assert {"TmcConsumed", "TmcConfirmed", "TmcRedelivered", "TmcRunFailed"} <= set(names)


def test_thin_contents_from_the_channel_are_completed_then_decided(tmc, stack):
    # As the real channel hands them out: trades without items, refunds without fees.
    publish_at(tmc, STORY, thin=True)
    (report,) = drained(NOW)
    assert (report.consumed, report.confirmed) == (len(STORY), len(STORY))
    assert stack.get(ORDER).status == 404, "nothing applied before the detail is in"
    drain(NOW)
    detail_calls = [
        call["method"]
        for call in requests.get(f"{tmc}/_sim/calls", timeout=5).json()
        if call["method"] in ("taobao.trade.fullinfo.get", "taobao.refund.get")
    ]
    assert set(detail_calls) == {"taobao.trade.fullinfo.get", "taobao.refund.get"}
    order, case = stack.get(ORDER).body, stack.get(CASE).body
    assert (order["status"], len(order["items"])) == ("completed", 1)
    assert case["status"] == "refunded" and case["decisions"]


def test_the_same_message_pushed_and_consumed_is_stored_once(tmc, stack):
    assert stack.deliver(STORY[1]).status == 200
    publish_at(tmc, [STORY[1]], thin=False)
    (report,) = drained(NOW)
    assert (report.consumed, report.confirmed, report.redelivered) == (1, 1, 1)
    assert len(list(EventLogRecord.query("taobao#order#3930001"))) == 1


def test_a_malformed_message_is_quarantined_and_confirmed(tmc):
    broken = Message(
        "taobao",
        "tb-broken-1",
        STORY[1].topic,
        {**STORY[1].payload, "status": "PAID?"},
        "2200000001",
    )
    publish_at(tmc, [broken], thin=False)
    (report,) = drained(NOW)
    assert (report.consumed, report.confirmed) == (1, 1)
    (held,) = QuarantineRecord.scan()
    assert held.field == "content.status"
    assert confirmed_ids(tmc) == ["tb-broken-1"]


def test_a_message_whose_storing_failed_is_not_confirmed_and_comes_back(tmc, stack, faults):
    publish_at(tmc, STORY[:3], thin=False)
    faults.fail_next("TransactWriteItems", code="InternalServerError")
    (failed,) = drained(NOW)
    assert failed.unstored == 1 and failed.failed
    assert failed.confirmed == 2
    assert (on_channel(tmc)["waiting"], on_channel(tmc)["leased"]) == (0, 1)

    # Nothing to take before the lease ends; then it comes back and is stored.
    (early,) = drained(NOW + timedelta(minutes=1))
    assert early.consumed == 0
    (again,) = drained(AFTER_LEASE)
    assert (again.consumed, again.confirmed, again.unstored) == (1, 1, 0)
    assert on_channel(tmc)["redelivered"] == 1
    drain(AFTER_LEASE)
    assert stack.get(ORDER).body["status"] == "shipped"


def test_a_crash_between_storing_and_confirming_only_causes_a_redelivery_that_changes_nothing(
    tmc, stack
):
    publish_at(tmc, STORY[:9], thin=False)
    fail_next(tmc, ["none", "server_error"])  # the consume, then its confirm
    (crashed,) = drained(NOW)
    assert crashed.refused is not None and crashed.failed
    assert crashed.confirmed == 0
    drain(NOW)
    shown = stack.get(CASE).body
    rows = sorted(row.outbox_id for row in OutboxRecord.scan())

    (redelivered,) = drained(AFTER_LEASE)
    assert (redelivered.consumed, redelivered.redelivered, redelivered.confirmed) == (9, 9, 9)
    drain(AFTER_LEASE)
    assert stack.get(CASE).body == shown
    assert sorted(row.outbox_id for row in OutboxRecord.scan()) == rows


def test_batches_of_at_most_200_and_a_run_stops_taking_batches_when_its_time_is_up(tmc):
    many = [message for n in range(21) for message in taobao_order(f"394{n:04}", NOW)[4:8]]
    many += [message for n in range(21, 63) for message in taobao_order(f"394{n:04}", NOW)[:4]]
    publish_at(tmc, many[:250], thin=False)
    # No time left: one batch, the rest for the next run.
    (first,) = drained(NOW, budget_seconds=0)
    assert (first.batches, first.consumed, first.confirmed) == (1, 200, 200)
    (rest,) = drained(NOW)
    assert (rest.batches, rest.consumed, rest.confirmed) == (1, 50, 50)
    consumes = channel_calls(tmc, CONSUME)
    assert {call["params"]["quantity"] for call in consumes} == {"200"}
    confirms = channel_calls(tmc, CONFIRM)
    assert [len(call["params"]["s_message_ids"].split(",")) for call in confirms] == [200, 50]


def test_the_schedule_drains_only_when_the_channel_is_on(stack, simulator, monkeypatch):
    connect_with_tokens(simulator)
    publish_at(simulator, STORY[:2], thin=False)
    run_schedules(app_module, NOW)
    assert channel_calls(simulator) == []
    set_env(monkeypatch, {platform_variable("taobao", "tmc"): "1"})
    answered = run_schedules(app_module, NOW)
    assert answered["drain_channels"]["taobao"]["confirmed"] == 2


def test_disconnecting_a_shop_of_a_platform_without_a_channel_queues_nothing(tmc):
    shops.disconnect(JD_SHOP, NOW)
    assert not list(OutboxRecord.scan(OutboxRecord.type == "cancel"))
