"""The deterministic half of the benchmarks, kept in `make test`: AWS requests
per webhook for ShopHook and the baseline over the bench's generated stream,
and what reconciliation costs (the timings stay in `make bench`)."""

from __future__ import annotations

import math

import pytest
import time_machine

import app
from bench.baseline import handler as baseline
from bench.reconcile import DAY, measure
from bench.webhooks import metered
from chalicelib.domain.pulls import OVERLAP, WINDOW
from chalicelib.settings import settings
from chalicelib.store.records import DeadlineRecord
from shophook.driver import STREAM_BATCH
from tests.support import DEMO_SHOPS, NOW


def test_requests_per_webhook_shophook_and_the_baseline(stack):
    baseline.create_tables()
    stream, meters = metered({"ShopHook": app.app, "baseline": baseline.handler}, orders=4)
    count = len(stream)
    unique = len({webhook.message_id for webhook in stream})
    assert count > unique  # the stream carries duplicates
    shophook, base = meters["ShopHook"].requests, meters["baseline"].requests
    # One read per webhook and one transaction per new message; what the changes
    # tell is read from their streams: no outbox row and no send for an event
    # nobody subscribed to (the bench's shops have no subscription), only a
    # read of each shop's subscriptions per stream batch, and the rules'
    # automatic actions.
    assert shophook["dynamodb:TransactGetItems"] == count
    assert shophook["dynamodb:TransactWriteItems"] == unique
    actions = meters["ShopHook"].items_written_by_table[f"{settings().table_prefix}outbox"]
    assert shophook["dynamodb:PutItem"] == actions
    assert shophook["sqs:SendMessageBatch"] <= actions
    assert shophook["dynamodb:Query"] <= 2 * len(DEMO_SHOPS) * math.ceil(unique / STREAM_BATCH)
    assert meters["ShopHook"].dynamodb_requests() == (
        count + unique + actions + shophook["dynamodb:Query"]
    )
    # One event-log row per new message, and it is the dedup key: no inbox row.
    written = meters["ShopHook"].items_written_by_table
    assert written[f"{settings().table_prefix}event-log"] == unique
    assert f"{settings().table_prefix}inbox" not in written
    # Deadline rows only for pending deadlines: every row is in the sweeper's index.
    assert all(row.due_shard is not None for row in DeadlineRecord.scan())
    assert DeadlineRecord.count() < written[f"{settings().table_prefix}deadlines"]
    # Powertools idempotency: a conditional put per webhook (all a duplicate costs),
    # then a read, the writes, and the completion update per new message.
    assert base["dynamodb:UpdateItem"] == unique and base["dynamodb:GetItem"] == unique
    assert count + unique <= base["dynamodb:PutItem"] <= count + 2 * unique
    ratio = meters["ShopHook"].dynamodb_requests() / meters["baseline"].dynamodb_requests()
    assert ratio < 0.5


def test_every_item_a_webhook_writes_fits_in_one_write_unit(stack):
    """Documents and outbox payloads deflated: no item a webhook writes is over
    1 KB, so each costs the least a write bills (2 units in a transaction). The
    clock is frozen: the documents carry its digits, and so their deflated sizes do."""
    with time_machine.travel(NOW, tick=False):
        _, meters = metered({"ShopHook": app.app}, orders=4)
    meter = meters["ShopHook"]
    transactional = {
        f"{settings().table_prefix}{table}"
        for table in ("orders", "cases", "deadlines", "event-log")
    }
    assert transactional <= set(meter.largest_written_by_table)
    assert max(meter.largest_written_by_table.values()) <= 1024, meter.largest_written_by_table
    # Two units for each item written in a transaction, one for an outbox row
    # the stream consumer puts.
    written = meter.items_written_by_table
    assert meter.write_units == sum(
        (2 if table in transactional else 1) * items for table, items in written.items()
    )


@pytest.mark.parametrize("platform", ["jd", "taobao"])
def test_reconciliation_calls_per_day_and_per_run_and_one_read_per_held_record(
    outbound, simulator, platform
):
    costs = measure(platform, 4, NOW, simulator)
    windows_a_day = math.ceil(DAY / (WINDOW - OVERLAP))
    assert costs.healed_orders == 4
    # One call per listing per window (two listings; no window holds a second page).
    assert costs.calls_to_heal == 2 * windows_a_day
    assert costs.calls_nothing_to_heal == 2
    # A record held already: one read, no write. (An order modified inside a window's
    # overlap with the next is listed by both.)
    assert costs.records_held >= 4
    assert (costs.reads_per_held, costs.writes_per_held) == (1.0, 0.0)
    # Besides: the shop read, its token opened, and for JD-style its open cases listed.
    expected = {"dynamodb:GetItem": 1, "kms:Decrypt": 1}
    if platform == "jd":
        expected["dynamodb:Query"] = 1
    assert costs.run_overhead == expected
