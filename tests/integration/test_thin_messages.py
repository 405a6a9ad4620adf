"""Thin messages (platforms.md 1.3, 1.4) on moto against the simulated platform:
a Taobao-style trade content without `items` or refund content without
`refund_fee` is stored once and acked, then completed by its queued detail
call, which stores the record through the store-once path and runs the rules;
a detail call that keeps failing ends dead-lettered and listed."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta

import requests
import time_machine

from chalicelib.domain.retry import PLATFORM_CALLS
from chalicelib.domain.work import WorkKind, WorkState
from chalicelib.store.records import EventLogRecord, OutboxRecord, ShopRecord
from simulator.scenarios import Message, taobao_order
from simulator.server import hold_records
from tests.integration.test_observability import metric_names, output_lines
from tests.support import NOW, TAOBAO_SHOP, drain

START = NOW - timedelta(hours=2)


def paid_and_asked(tid: str) -> list[Message]:
    """Created, paid, and a refund asked an hour later: what has happened by NOW."""
    story = taobao_order(tid, START, return_requested_after=1)
    return [story[i] for i in (0, 1, 8)]


def thin(messages: list[Message]) -> list[Message]:
    return [replace(message, thin=True) for message in messages]


def fault(simulator: str, *faults: str) -> None:
    requests.post(f"{simulator}/_sim/faults", json={"taobao": list(faults)}, timeout=5)


def detail_calls(simulator: str) -> list[dict]:
    return [
        call
        for call in requests.get(f"{simulator}/_sim/calls", timeout=5).json()
        if call["method"] in ("taobao.trade.fullinfo.get", "taobao.refund.get")
    ]


def fetches() -> list[OutboxRecord]:
    return sorted(
        OutboxRecord.scan(OutboxRecord.kind == WorkKind.FETCH), key=lambda row: row.outbox_id
    )


def as_seen(stack, tid: str) -> tuple[dict, dict]:
    """The order and its case as the API shows them, without their ids and versions
    (a fetch reads the latest record: the versions before it are never written)."""
    order = stack.get(f"/shops/{TAOBAO_SHOP}/orders/{tid}").body
    case = stack.get(f"/shops/{TAOBAO_SHOP}/after-sales/R{tid}").body
    for shown in (order, case):
        shown.pop("order_id")
        shown.pop("version")
    case.pop("case_id")
    for item in order["items"]:
        item.pop("item_id")
    return order, case


def drain_retries() -> datetime:
    """Drain again after each backoff, past the retry budget (a message past it
    moves to the dead-letter queue); returns when the last drain ran."""
    moment = NOW
    for _ in range(PLATFORM_CALLS.attempts + 1):
        drain(moment)
        moment += timedelta(seconds=PLATFORM_CALLS.longest_wait_seconds + 1)
    return moment


def test_a_thin_push_is_acked_then_completed_with_the_rules_applied(outbound, simulator):
    full, thin_story = paid_and_asked("3960001"), paid_and_asked("3960002")
    hold_records(simulator, thin_story)
    for message in full:
        assert outbound.deliver(message).status == 200
    for message in thin(thin_story):
        assert outbound.deliver(message).status == 200
    # Held and acked, nothing applied: no order or case yet, one fetch each.
    assert outbound.get(f"/shops/{TAOBAO_SHOP}/orders/3960002").status == 404
    assert sorted(row.type for row in fetches()) == ["case", "order", "order"]
    assert {row.state for row in fetches()} == {WorkState.PENDING}
    logged = list(EventLogRecord.query("taobao#order#3960002"))
    assert {entry.outcome for entry in logged} == {"fetching"}
    drain(NOW)
    assert {row.state for row in fetches()} == {WorkState.FETCHED}
    assert sorted(call["method"] for call in detail_calls(simulator)) == [
        "taobao.refund.get",
        "taobao.trade.fullinfo.get",
        "taobao.trade.fullinfo.get",
    ]
    order, case = as_seen(outbound, "3960002")
    assert (order["status"], order["total_fen"], len(order["items"])) == ("paid", 19900, 1)
    assert (case["status"], case["amount_fen"]) == ("requested", 19900)
    assert case["decisions"], "the after-sale rules ran on the fetched case"
    # The same state as the same story pushed in full.
    assert (order, case) == as_seen(outbound, "3960001")


def test_a_redelivered_thin_push_is_a_duplicate_and_queues_nothing(outbound, simulator):
    message = thin(paid_and_asked("3960003"))[1]
    assert outbound.deliver(message).status == 200
    assert outbound.deliver(message).status == 200
    assert len(fetches()) == 1


def test_a_detail_call_refused_for_a_while_is_retried_then_stored(outbound, simulator, capfd):
    story = paid_and_asked("3960004")
    hold_records(simulator, story)
    fault(simulator, "rate_limit", "server_error")
    assert outbound.deliver(thin(story)[1]).status == 200
    (row,) = fetches()
    drain_retries()
    row = OutboxRecord.get(row.outbox_id)
    assert [attempt.outcome for attempt in row.attempts] == ["retry", "retry", "done"]
    assert row.state == WorkState.FETCHED
    assert outbound.get(f"/shops/{TAOBAO_SHOP}/orders/3960004").body["status"] == "paid"
    emitted = [
        line["outcome"] for line in output_lines(capfd) if "DetailFetches" in metric_names([line])
    ]
    assert emitted == ["retrying", "retrying", "fetched"]


def test_a_detail_call_that_keeps_failing_ends_dead_lettered_and_listed(
    outbound, simulator, cli_isolation, capsys
):
    from shophook import cli

    story = paid_and_asked("3960005")
    hold_records(simulator, story)
    fault(simulator, *["server_error"] * PLATFORM_CALLS.attempts)
    assert outbound.deliver(thin(story)[1]).status == 200
    (row,) = fetches()
    later = drain_retries()
    assert OutboxRecord.get(row.outbox_id).state == WorkState.DEAD_LETTERED
    assert len(detail_calls(simulator)) == PLATFORM_CALLS.attempts
    with time_machine.travel(later, tick=False):
        capsys.readouterr()
        assert cli.main(["dlq", "list", "--json"]) == 0
        (listed,) = json.loads(capsys.readouterr().out)
    assert (listed["outbox_id"], listed["state"]) == (row.outbox_id, "dead_lettered")
    assert "500" in listed["error"]


def test_a_detail_the_platform_does_not_have_fails_for_good(outbound, simulator):
    # Nothing held: the platform refuses the tid as an invalid argument.
    assert outbound.deliver(thin(paid_and_asked("3960006"))[1]).status == 200
    drain(NOW)
    (row,) = fetches()
    assert row.state == WorkState.FAILED and "tid" in row.error
    assert len(detail_calls(simulator)) == 1
    assert drain(NOW + timedelta(hours=2))["deliver_outbox"] == 0


def test_a_session_expired_during_a_fetch_is_refreshed_and_the_call_made_once_more(
    outbound, simulator
):
    from chalicelib.service.tokens import unsealed

    before = unsealed(ShopRecord.get(TAOBAO_SHOP)).access_token
    story = paid_and_asked("3960007")
    hold_records(simulator, story)
    fault(simulator, "invalid_session")
    assert outbound.deliver(thin(story)[1]).status == 200
    drain(NOW)
    first, second = detail_calls(simulator)
    assert first["params"]["session"] == before
    assert second["params"]["session"] == unsealed(ShopRecord.get(TAOBAO_SHOP)).access_token
    assert second["params"]["session"] != before
    (row,) = fetches()
    assert row.state == WorkState.FETCHED and len(row.attempts) == 1
    assert outbound.get(f"/shops/{TAOBAO_SHOP}/orders/3960007").body["status"] == "paid"
