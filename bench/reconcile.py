"""Benchmark 7: what reconciliation (platforms.md 2.3) costs, each platform side
by side: platform API calls per healed order and per scheduled run with nothing
to heal, and the DynamoDB requests a pull adds per record ShopHook holds already.

Counts, not timings: deterministic, so `tests/integration/test_bench_counts.py`
asserts them over a smaller day."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import requests

from bench.meter import metering
from bench.report import Report
from simulator.webhooks import Message

DAY = timedelta(days=1)
SCHEDULED = timedelta(minutes=15)


def taobao_paid(order_id: str, start: datetime) -> list[Message]:
    from simulator.platforms.taobao import taobao_order

    return taobao_order(order_id, start)[:2]  # created, paid


def jd_paid(order_id: str, start: datetime) -> list[Message]:
    from simulator.platforms.jd import jd_order

    return jd_order(order_id, start)[:1]  # paid


# platform -> one order's pushes up to its payment
STORIES: dict[str, Callable[[str, datetime], list[Message]]] = {
    "taobao": taobao_paid,
    "jd": jd_paid,
}


@dataclass(frozen=True)
class Costs:
    platform: str
    orders: int  # orders whose every push was missed, over the last day
    healed_orders: int
    calls_to_heal: int  # platform API calls of the pull that healed them
    calls_nothing_to_heal: int  # of the next scheduled run, 15 minutes on
    records_held: int  # records a pull found held already (the day pulled again)
    reads_per_held: float  # DynamoDB requests per such record
    writes_per_held: float
    run_overhead: dict[str, int]  # DynamoDB and KMS requests a run makes besides its records


def _queries(simulator: str) -> int:
    calls = requests.get(f"{simulator}/_sim/calls", timeout=10).json()
    return sum(1 for call in calls if call["query"])


def measure(platform: str, orders: int, now: datetime, simulator: str) -> Costs:
    """One shop of `platform` (connected with a simulator session, pulled up to a
    day ago) misses every push of `orders` orders paid over the last day; a pull
    heals them; the next scheduled run has nothing to heal; pulling the day again
    finds every record held."""
    from chalicelib.service import reconcile
    from chalicelib.store.records import ShopRecord
    from simulator.platforms import registry
    from simulator.server import hold_records

    shop_id = f"{platform}:{registry()[platform].demo_seller}"
    since = now - DAY
    ShopRecord(shop_id).update(actions=[ShopRecord.pull_cursor.set(since)])
    requests.post(f"{simulator}/_sim/reset", timeout=10).raise_for_status()
    step = DAY / (orders + 1)
    hold_records(
        simulator,
        [
            message
            for number in range(orders)
            for message in STORIES[platform](f"77{number:05d}", since + step * (number + 1))
        ],
    )
    healing = reconcile.pull_shop(shop_id, now, budget_seconds=None)
    calls_to_heal = _queries(simulator)
    reconcile.pull_shop(shop_id, now + SCHEDULED, budget_seconds=None)
    calls_nothing = _queries(simulator) - calls_to_heal
    with metering() as meter:
        again = reconcile.pull_shop(shop_id, now, since=since, budget_seconds=None)
    assert again.healed == [], again.healed
    made = meter.requests
    reads = made["dynamodb:TransactGetItems"]
    writes = made["dynamodb:TransactWriteItems"] + made["dynamodb:PutItem"]
    overhead = {
        name: count
        for name, count in sorted(made.items())
        if name not in ("dynamodb:TransactGetItems", "dynamodb:TransactWriteItems")
    }
    return Costs(
        platform,
        orders,
        sum(1 for item in healing.healed if item.entity.startswith("order:")),
        calls_to_heal,
        calls_nothing,
        again.records,
        reads / again.records,
        writes / again.records,
        overhead,
    )


def reconcile_costs(orders: int = 40) -> Report:
    """7. Reconciliation: API calls per healed order and per run, DynamoDB per held record."""
    import os

    from bench import stack
    from bench.stack import free_port

    stack.start()
    from chalicelib.platforms.oauth import tokens_from
    from chalicelib.service import shops
    from chalicelib.settings import reload
    from simulator.scenarios import DEMO_CREDENTIALS, DEMO_SHOPS
    from simulator.server import issue_session, serve, shophook_settings

    port = free_port()
    server = serve("127.0.0.1", port, DEMO_CREDENTIALS)
    simulator = f"http://127.0.0.1:{port}"
    os.environ.update(shophook_settings(simulator))
    reload()
    now = datetime.now(UTC)
    for shop_id, name in DEMO_SHOPS.items():
        session = issue_session(simulator, shop_id.partition(":")[2])
        shops.connect(shop_id, name, now, tokens_from(session, now))
    try:
        measured = [measure(platform, orders, now, simulator) for platform in sorted(STORIES)]
    finally:
        server.shutdown()
    report = Report(
        "7-reconcile",
        f"7. Reconciliation: {orders} orders per shop whose pushes were all missed, "
        "paid over the last day (30-minute windows, 5 minutes of overlap)",
        [
            "platform",
            "orders healed",
            "API calls to heal them",
            "API calls per healed order",
            "API calls per run, nothing to heal",
            "records held, pulled again",
            "DynamoDB reads per held record",
            "DynamoDB writes per held record",
        ],
    )
    for costs in measured:
        report.add(
            costs.platform,
            f"{costs.healed_orders}/{costs.orders}",
            costs.calls_to_heal,
            costs.calls_to_heal / costs.healed_orders,
            costs.calls_nothing_to_heal,
            costs.records_held,
            costs.reads_per_held,
            costs.writes_per_held,
        )
    for costs in measured:
        report.notes.append(
            f"{costs.platform}: besides its records, a run made "
            + ", ".join(f"{name} {count}" for name, count in costs.run_overhead.items())
        )
    report.notes.append(
        "A day is 58 windows; each costs one call per listing (two per platform), and one "
        "more per further page of 100 (Taobao-style, JD-style orders) or 50 (JD-style refund "
        "applies). A JD-style run also re-reads each refund apply the shop holds open: one "
        "call each (none open here). Calls per healed order fall as a shop's day gets busier."
    )
    report.notes.append(
        "A record held already costs its one TransactGetItems (event-log row, entity, shop) and "
        "no write: the target. Target met when reads = 1.0 and writes = 0.0."
    )
    return report
