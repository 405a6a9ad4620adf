"""Reconciliation (platforms.md 2.3) on moto against the simulated platforms:
what was never pushed is pulled and stored once, through the webhook's path;
what is held already costs one read; a refusal resumes from the cursor; the
schedule fans out one queued pull per shop; a new shop's history is pulled in
the background, visible on GET /shops/{shop_id}."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests

from chalicelib.domain.pulls import BACKFILL, windows
from chalicelib.domain.work import AttemptResult, WorkKind, WorkState
from chalicelib.platforms import registry
from chalicelib.platforms.api import CallOutcome
from chalicelib.platforms.base import ApiSession
from chalicelib.service import keys, oauth, reconcile
from chalicelib.store.records import OutboxRecord, ShopRecord
from simulator.scenarios import DEMO_CREDENTIALS, DEMO_SHOPS, Message, taobao_order
from simulator.server import api_urls, hold_records, issue_session
from tests.support import JD_SHOP, NOW, TAOBAO_SHOP, approve, drain

START = NOW - timedelta(hours=2)
SINCE = START - timedelta(minutes=1)
# Created, paid, and a refund asked an hour later: what has happened by NOW.
STORY = [taobao_order("3910001", START, return_requested_after=1)[i] for i in (0, 1, 8)]
JD_ORDER, JD_REFUND = "3920001", "39200017"


def jd_refund(status: str, hours: float) -> Message:
    """A JD-style refund apply made an hour into START, as it stands `hours` in."""
    return Message(
        "jd",
        f"jd-refund-{JD_REFUND}-{status}",
        "jd_pop_refund_apply" if status == "0" else "jd_pop_refund_status",
        {
            "id": JD_REFUND,
            "orderId": JD_ORDER,
            "venderId": JD_SHOP.partition(":")[2],
            "applyRefundSum": "59.90",
            "status": status,
            "reason": "no longer wanted",
            "applyTime": (START + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S"),
            "modified": (START + timedelta(hours=hours)).strftime("%Y-%m-%d %H:%M:%S"),
        },
    )


def queries(simulator: str) -> list[dict]:
    return [
        call for call in requests.get(f"{simulator}/_sim/calls", timeout=5).json() if call["query"]
    ]


def test_what_was_never_pushed_is_pulled_stored_once_and_shown(outbound, simulator):
    hold_records(simulator, STORY)
    report = reconcile.pull_shop(TAOBAO_SHOP, NOW, since=SINCE)
    drain(NOW)
    assert report.caught_up and report.refused is None
    assert {healed.entity for healed in report.healed} == {"order:3910001", "case:R3910001"}
    order = outbound.get(f"/shops/{TAOBAO_SHOP}/orders/3910001").body
    case = outbound.get(f"/shops/{TAOBAO_SHOP}/after-sales/R3910001").body
    assert (order["status"], case["status"]) == ("paid", "requested")
    assert ShopRecord.get(TAOBAO_SHOP).pull_cursor == NOW

    # Again, from the same point: every record is held, nothing is healed.
    requests.post(f"{simulator}/_sim/reset", timeout=5)
    hold_records(simulator, STORY)
    again = reconcile.pull_shop(TAOBAO_SHOP, NOW, since=SINCE)
    assert (again.records, again.healed) == (2, [])
    assert outbound.get(f"/shops/{TAOBAO_SHOP}/orders/3910001").body == order


def test_a_record_held_already_costs_one_read_and_no_write(outbound, simulator, aws_calls):
    for message in STORY:
        assert outbound.deliver(message).status == 200
    hold_records(simulator, STORY)
    aws_calls.clear()
    report = reconcile.pull_shop(TAOBAO_SHOP, NOW, since=SINCE)
    assert (report.records, report.healed) == (2, [])
    operations = aws_calls.operations
    assert operations.count("TransactGetItems") == report.records
    assert "TransactWriteItems" not in operations and "SendMessageBatch" not in operations
    # Beside the records: the shop read and its token opened (the cursor is at now
    # already: not written).
    assert sorted(set(operations) - {"TransactGetItems"}) == ["Decrypt", "GetItem"]


def test_nothing_to_heal_costs_one_call_per_listing_per_window(outbound, simulator):
    report = reconcile.pull_shop(TAOBAO_SHOP, NOW + timedelta(minutes=15))
    assert (report.planned, report.windows, report.pages) == (1, 1, 2)
    assert [call["method"] for call in queries(simulator)] == [
        "taobao.trades.sold.increment.get",
        "taobao.refunds.receive.get",
    ]


def test_a_rate_limit_ends_the_run_and_the_next_resumes_from_the_cursor(outbound, simulator):
    hold_records(simulator, STORY)
    before = ShopRecord.get(TAOBAO_SHOP).pull_cursor
    requests.post(f"{simulator}/_sim/faults", json={"taobao": ["rate_limit"]}, timeout=5)
    refused = reconcile.pull_shop(TAOBAO_SHOP, NOW, since=SINCE)
    assert refused.refused is not None and refused.refused.outcome is CallOutcome.RETRYABLE
    assert (refused.windows, refused.healed) == (0, [])
    assert ShopRecord.get(TAOBAO_SHOP).pull_cursor == before
    resumed = reconcile.pull_shop(TAOBAO_SHOP, NOW, since=SINCE)
    assert resumed.caught_up and len(resumed.healed) == 2


def test_a_jd_refund_apply_that_changed_after_its_apply_time_is_re_read_by_id(outbound, simulator):
    # Its apply was pushed; its refund was not, and the list (by apply time) is past it.
    assert outbound.deliver(jd_refund("0", 1)).status == 200
    hold_records(simulator, [jd_refund("0", 1), jd_refund("3", 1.5)])
    report = reconcile.pull_shop(JD_SHOP, NOW, since=START + timedelta(hours=1, minutes=30))
    assert report.reread == 1
    assert [healed.entity for healed in report.healed] == [f"case:refund-{JD_REFUND}"]
    case = outbound.get(f"/shops/{JD_SHOP}/after-sales/refund-{JD_REFUND}").body
    assert case["status"] == "refunded"
    methods = [call["method"] for call in queries(simulator)]
    assert methods[-1] == "jingdong.pop.afs.soa.refundapply.queryById"


def test_a_window_with_more_than_a_page_is_read_page_by_page(simulator):
    hold_records(simulator, [taobao_order(f"39300{n:02d}", START)[1] for n in range(101)])
    session = ApiSession(
        api_urls(simulator)["taobao"],
        DEMO_CREDENTIALS["taobao"],
        str(issue_session(simulator, TAOBAO_SHOP.partition(":")[2])["access_token"]),
        NOW,
    )
    window = next(windows(SINCE, NOW))
    taobao = registry()["taobao"]
    first = taobao.pull(session, TAOBAO_SHOP, "taobao.trades.sold.increment.get", window, None)
    assert (len(first.records), first.next_page) == (100, "2")
    last = taobao.pull(session, TAOBAO_SHOP, "taobao.trades.sold.increment.get", window, "2")
    assert (len(last.records), last.next_page) == (1, None)


def test_the_schedule_queues_one_pull_per_shop_per_slot_and_the_queue_runs_them(
    outbound, simulator
):
    hold_records(simulator, STORY)
    ShopRecord(TAOBAO_SHOP).update(actions=[ShopRecord.pull_cursor.set(SINCE)])
    assert reconcile.schedule(NOW) == len(DEMO_SHOPS)
    assert reconcile.schedule(NOW + timedelta(minutes=5)) == 0  # the same 15-minute slot
    drain(NOW)
    pulls = list(OutboxRecord.scan(OutboxRecord.kind == WorkKind.PULL))
    assert sorted(row.shop_id for row in pulls) == sorted(DEMO_SHOPS)
    assert {row.state for row in pulls} == {WorkState.PULLED}
    case = outbound.get(f"/shops/{TAOBAO_SHOP}/after-sales/R3910001").body
    assert case["status"] == "requested"


def test_a_queued_run_out_of_time_queues_its_continuation(outbound, simulator, monkeypatch):
    ShopRecord(TAOBAO_SHOP).update(actions=[ShopRecord.pull_cursor.set(SINCE)])
    monkeypatch.setattr(reconcile, "RUN_BUDGET_SECONDS", 0.0)
    reconcile.schedule(NOW)
    (row,) = OutboxRecord.scan(OutboxRecord.shop_id == TAOBAO_SHOP)
    assert reconcile.attempt(row, NOW).result is AttemptResult.DONE
    first = next(windows(SINCE, NOW))
    assert ShopRecord.get(TAOBAO_SHOP).pull_cursor == first.end
    (continuation,) = [
        r
        for r in OutboxRecord.scan(OutboxRecord.shop_id == TAOBAO_SHOP)
        if r.outbox_id != row.outbox_id
    ]
    assert continuation.kind == WorkKind.PULL and "from-" in continuation.outbox_id


def test_a_queued_run_the_platform_refuses_is_retried(outbound, simulator):
    reconcile.schedule(NOW)
    (row,) = OutboxRecord.scan(OutboxRecord.shop_id == TAOBAO_SHOP)
    requests.post(f"{simulator}/_sim/faults", json={"taobao": ["rate_limit"]}, timeout=5)
    tried = reconcile.attempt(row, NOW + timedelta(minutes=15))
    assert (tried.result, tried.error) == (AttemptResult.RETRY, "7: App Call Limited")


def test_a_new_shop_is_backfilled_in_the_background_its_progress_shown(
    stack, simulator, monkeypatch
):
    started = oauth.start("taobao", NOW, "127.0.0.1")
    granted = approve(started.authorize_url, "2200000079")
    shop_id = oauth.finish("taobao", granted, started.browser_nonce, NOW).shop.shop_id
    (queued,) = OutboxRecord.scan(OutboxRecord.shop_id == shop_id)
    assert (queued.kind, queued.type, queued.state) == (WorkKind.PULL, "backfill", "pending")
    record = ShopRecord.get(shop_id)
    assert (record.backfill_since, record.backfill_until) == (NOW - BACKFILL, NOW)
    # One window a run here: the run after it is queued, and the progress shows.
    monkeypatch.setattr(reconcile, "RUN_BUDGET_SECONDS", 0.0)
    assert reconcile.attempt(queued, NOW).result is AttemptResult.DONE
    assert OutboxRecord.count() == 2
    _, key = keys.create_key("erp", [shop_id], NOW)
    shown = stack.get(f"/shops/{shop_id}", key)
    assert shown.status == 200
    backfill = shown.body["backfill"]
    assert 0 < backfill["progress"] < 0.01 and not backfill["done"]
    assert shown.body["reconcile"]["cursor"] == next(windows(NOW - BACKFILL, NOW)).end.isoformat()
    assert set(shown.body) == {
        "shop_id",
        "platform",
        "name",
        "status",
        "connected_at",
        "reconcile",
        "backfill",
    }
    assert stack.get(f"/shops/{TAOBAO_SHOP}", key).status == 404


@pytest.mark.parametrize("shop_id", [TAOBAO_SHOP, JD_SHOP])
def test_get_shop_shows_a_shop_added_by_the_operator(stack, shop_id):
    shown = stack.get(f"/shops/{shop_id}").body
    assert (shown["status"], shown["backfill"]) == ("connected", None)
    assert shown["reconcile"]["cursor"] == NOW.isoformat()
