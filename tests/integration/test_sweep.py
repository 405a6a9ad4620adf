"""The deadline sweeper on moto, with time moved by time-machine."""

from __future__ import annotations

import json
from datetime import UTC, timedelta

import pytest
import time_machine

from chalicelib.service.sweep import sweep
from chalicelib.store.entities import ENTITIES
from chalicelib.store.records import DEADLINE_SHARDS, DeadlineRecord
from chalicelib.store.work import sortable
from simulator.scenarios import Message, taobao_order
from tests.support import NOW, TAOBAO_SHOP, tell_changes, told

PAID = NOW - timedelta(hours=40)


def unshipped(tid: str) -> Message:
    """Only the payment of an order: nothing ships."""
    return taobao_order(tid, PAID - timedelta(hours=0.1))[1]


def told_types(at=NOW) -> list[str]:
    return sorted(row.type for row in told(at))


def test_a_paid_order_with_no_shipment_is_breached_when_its_window_ends(stack, every_event):
    assert stack.deliver(unshipped("600001")).status == 200
    order = stack.get(f"/shops/{TAOBAO_SHOP}/orders/600001").body
    assert order["flags"] == []
    # Paid 40h ago: the seller's 24h target is already missed, the platform's 48h not yet.
    assert "after_sale.deadline_breached" in told_types()
    due = PAID + timedelta(hours=48)
    with time_machine.travel(due, tick=False):
        assert sweep(due).events == []
    with time_machine.travel(due + timedelta(seconds=1), tick=False):
        report = sweep(due + timedelta(seconds=1))
    assert "after_sale.deadline_breached" in report.events
    order = stack.get(f"/shops/{TAOBAO_SHOP}/orders/600001").body
    assert [flag["rule"] for flag in order["flags"]] == ["platform.ship_by"]
    # Breached, it leaves the indexes: its row is gone (the order holds its truth).
    assert DeadlineRecord.count("taobao#order#600001#platform.ship_by") == 0


def test_the_warning_at_three_quarters_is_sent_once(stack, every_event):
    late_pay = NOW - timedelta(hours=10)
    stack.deliver(taobao_order("600002", late_pay - timedelta(hours=0.1))[1])
    warn_at = late_pay + timedelta(hours=36)  # 75% of the platform's 48h
    for _ in range(3):
        sweep(warn_at)
    due_events = [
        json.loads(row.payload)["data"]["deadline"]["rule"]
        for row in told(warn_at)
        if row.type == "after_sale.deadline_due"
    ]
    assert due_events.count("platform.ship_by") == 1


def test_a_met_deadline_leaves_the_index_and_is_never_swept(stack, aws_calls):
    messages = taobao_order("600003", NOW - timedelta(hours=30))
    for message in messages[:3]:  # created, paid, shipped 20h after payment
        stack.deliver(message)
    assert DeadlineRecord.count("taobao#order#600003#platform.ship_by") == 0
    aws_calls.clear()
    due = {d.entity.deadline_key(d.rule) for d in ENTITIES.due(NOW + timedelta(days=30))}
    assert aws_calls.operations == ["Query"] * DEADLINE_SHARDS
    # Shipped in time: the ship deadlines are met and gone from the index; the
    # pickup scan never came, so the fake-shipment check is what is due.
    assert due == {"taobao#order#600003#platform.fake_shipment"}


def test_the_schedule_runs_the_sweep_through_the_lambda_handler(stack):
    stack.deliver(unshipped("600004"))
    later = PAID + timedelta(hours=49)
    with time_machine.travel(later.astimezone(UTC), tick=False):
        answer = stack.client.lambda_.invoke(
            "sweep_deadlines",
            stack.client.events.generate_cw_event(
                source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
            ),
        )
    assert answer.payload["entities"] >= 1
    assert (
        stack.get(f"/shops/{TAOBAO_SHOP}/orders/600004").body["flags"][0]["rule"]
        == "platform.ship_by"
    )


@pytest.mark.parametrize("stored", [1_000, 10_000])
def test_sweep_reads_grow_with_due_deadlines_not_with_the_table(stack, aws_scanned, stored):
    for number in range(10):
        stack.deliver(unshipped(f"70{number:04d}"))
    future = sortable(NOW + timedelta(days=365))
    with DeadlineRecord.batch_write() as batch:
        for number in range(stored - DeadlineRecord.count()):
            batch.save(
                DeadlineRecord(
                    f"taobao#order#filler{number}#platform.ship_by",
                    entity_key=f"taobao#order#filler{number}",
                    entity_kind="order",
                    shop_id=TAOBAO_SHOP,
                    rule="platform.ship_by",
                    due_at=NOW + timedelta(days=365),
                    state="pending",
                    due_shard=str(number % DEADLINE_SHARDS),
                    next_check=future,
                    pending_shop=TAOBAO_SHOP,
                    due_key=future,
                )
            )
    assert DeadlineRecord.count() == stored
    aws_scanned.clear()
    report = sweep(PAID + timedelta(hours=49))
    # Only the ten platform ship-by deadlines are due (the seller's 24h ones were
    # already breached at ingest and left the index).
    assert (report.due, report.entities) == (10, 10)
    assert aws_scanned.items_read("Query") == 10
    assert aws_scanned.calls("Query") == DEADLINE_SHARDS
    assert aws_scanned.calls("GetItem") == 10


def test_the_local_driver_runs_every_schedule_of_the_app(stack, every_event):
    import app as app_module
    from shophook.driver import run_schedules, scheduled_handlers

    assert set(scheduled_handlers(app_module)) == {
        "sweep_deadlines",
        "refresh_tokens",
        "requeue_outbox",
        "reconcile_shops",
        "drain_channels",
    }
    stack.deliver(unshipped("600005"))
    tell_changes()
    with time_machine.travel((PAID + timedelta(hours=49)).astimezone(UTC), tick=False):
        results = run_schedules(app_module, NOW)
    assert results["sweep_deadlines"]["entities"] == 1
    assert results["refresh_tokens"] == {"refreshed": [], "failed": []}
    # The demo shops here have no tokens: nothing to pull.
    assert results["reconcile_shops"] == {"queued": 0}
    # No queue consumer ran in this test, so the order's deliveries are still
    # unseen: sent again.
    assert results["requeue_outbox"]["requeued"] >= 1
    assert DeadlineRecord.count("taobao#order#600005#platform.ship_by") == 0
