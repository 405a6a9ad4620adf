"""Benchmark 6: the seller console's dashboard and after-sales list, with 10 and
with 1,000 open cases in the shop (and another shop's 2,000 cases in the same
tables): render time and DynamoDB requests per page. Beside it, the baseline a
handler-writer would start from: read every case of the shop and count, sort
and cut in memory."""

from __future__ import annotations

import functools
import os
from datetime import UTC, datetime, timedelta
from time import perf_counter
from typing import Any

from bench.meter import metering
from bench.report import Report, summary

OPEN_CASES = (10, 1_000)
OTHER_SHOP_CASES = 2_000
SHOP, OTHER_SHOP = "taobao:2200000001", "taobao:2200000002"


def _states(shop_id: str, count: int, now: datetime, prefix: str) -> list[Any]:
    """`count` refund-only requests on paid orders, decided as ingest would."""
    from chalicelib.domain.change import write
    from chalicelib.domain.model import (
        CaseKind,
        CaseSnapshot,
        CaseState,
        CaseStatus,
        OrderSnapshot,
        OrderState,
        OrderStatus,
    )
    from chalicelib.domain.rules import decide_case, decide_order
    from chalicelib.policies import default_policy

    policy = default_policy("taobao")
    writes = []
    for number in range(count):
        asked = now - timedelta(minutes=7 * number % 2800)
        order_id = f"{prefix}{number:06d}"
        paid = asked - timedelta(hours=1)
        snapshot = OrderSnapshot(
            order_id, OrderStatus.PAID, "WAIT_SELLER_SEND_GOODS", 9900, 0, True, "浙江省", (), paid
        )
        order = decide_order(
            policy, OrderState("taobao", order_id, shop_id, snapshot, paid_at=paid), now
        )
        case = CaseState(
            "taobao",
            f"R{order_id}",
            shop_id,
            CaseSnapshot(
                f"R{order_id}",
                order_id,
                CaseKind.REFUND_ONLY,
                CaseStatus.REQUESTED,
                "WAIT_SELLER_AGREE",
                9900,
                "no longer wanted",
                False,
                asked,
            ),
            status_times=((CaseStatus.REQUESTED, asked),),
        )
        writes += [write(None, order), write(None, decide_case(policy, case, order, now))]
    return writes


def _fill(shop_id: str, count: int, now: datetime, prefix: str) -> None:
    from chalicelib.store.entities import deadline_row, entity_record
    from chalicelib.store.records import CaseRecord, DeadlineRecord, OrderRecord

    writes = _states(shop_id, count, now, prefix)
    rows = [entity_record(entity) for entity in writes]
    for record_type in (OrderRecord, CaseRecord):
        with record_type.batch_write() as batch:
            for row in rows:
                if isinstance(row, record_type):
                    batch.save(row)
    # Their deadline index rows, as a commit would write them.
    with DeadlineRecord.batch_write() as batch:
        for entity in writes:
            for deadline in entity.new.deadlines:
                batch.save(deadline_row(entity, deadline))


def _baseline_dashboard(shop_id: str, now: datetime) -> int:
    """Every case of the shop, decoded; counted, sorted and cut in memory."""
    from chalicelib.domain.model import OPEN_CASE_STATUSES, DeadlineState
    from chalicelib.store import codec
    from chalicelib.store.records import CaseRecord

    states = [codec.CASE.decode(record.document) for record in CaseRecord.by_shop.query(shop_id)]
    open_cases = [state for state in states if state.snapshot.status in OPEN_CASE_STATUSES]
    pending = [
        min(d.due_at for d in state.deadlines if d.state is DeadlineState.PENDING)
        for state in open_cases
        if any(d.state is DeadlineState.PENDING for d in state.deadlines)
    ]
    return len(sorted(pending)[:10]) + len(open_cases)


def console(runs: int = 20) -> Report:
    from moto import mock_aws

    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        SHOPHOOK_TABLE_PREFIX="bench-",
        POWERTOOLS_METRICS_DISABLED="true",
        POWERTOOLS_LOG_LEVEL="WARNING",
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)
    report = Report(
        "6-console",
        f"6. Seller console: a page's DynamoDB requests and render time ({runs} runs each; "
        f"another shop's {OTHER_SHOP_CASES:,} cases in the same tables)",
        ["page", "open cases", "requests", "items read", "median ms", "p95 ms"],
    )
    for open_cases in OPEN_CASES:
        with mock_aws():
            from chalice.test import Client

            import app
            from chalicelib.service import console as console_service
            from chalicelib.service import shops
            from chalicelib.store.records import create_tables

            create_tables()
            now = datetime.now(UTC)
            for shop_id in (SHOP, OTHER_SHOP):
                shops.connect(shop_id, "bench shop", now)
            _fill(SHOP, open_cases, now, "31")
            _fill(OTHER_SHOP, OTHER_SHOP_CASES, now, "41")
            cookie = console_service.start(SHOP, now)
            client = Client(app.app)
            session = {"cookie": f"shophook_console={cookie}"}
            pages = {
                "dashboard": functools.partial(client.http.get, "/console", headers=session),
                "after-sales list": functools.partial(
                    client.http.get, "/console/after-sales", headers=session
                ),
                "baseline: read all, count in memory": functools.partial(
                    _baseline_dashboard, SHOP, now
                ),
            }
            for name, load in pages.items():
                timings = []
                for _ in range(runs):
                    with metering() as meter:
                        started = perf_counter()
                        load()
                        timings.append((perf_counter() - started) * 1000)
                stats = summary(timings)
                report.add(
                    name,
                    f"{open_cases:,}",
                    meter.dynamodb_requests(),
                    meter.items_read,
                    stats["median"],
                    stats["p95"],
                )
    report.notes.append(
        "A console page reads sparse keys-only indexes (open cases by next deadline, breached "
        "cases) and one page of items: its requests do not grow with the shop's cases or the "
        "table. Its counts read index keys (about 100 bytes each; a Query counts some 6,000); "
        "the baseline reads every case document (some 3 KB each)."
    )
    report.notes.append(
        "Times are in-process moto's, which filters every stored item in Python for an index "
        "query; DynamoDB reads only the index range the items-read column counts."
    )
    return report
