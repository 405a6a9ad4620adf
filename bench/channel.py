"""Benchmark 8: what a message costs through the Taobao-style message channel
(platforms.md 1.4) beside the same message pushed (1.1), in the same run:
platform API calls and DynamoDB, SQS and KMS requests per message, the channel's
consume and confirm amortised over its batches. The channel is measured with
whole contents and with thin ones (what the real channel hands out), a thin
message's queued detail fetch run to completion and counted with it.

Counts, not timings: deterministic for a given number of messages."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import requests

from bench.meter import Meter, metering
from bench.report import Report
from simulator.webhooks import Message

if TYPE_CHECKING:
    from shophook.driver import Consumer


@dataclass(frozen=True)
class PerMessage:
    route: str
    messages: int
    api_calls: int
    dynamodb: int
    sqs: int
    kms: int


def _stories(first: int, orders: int, start: datetime) -> list[Message]:
    from simulator.platforms.taobao import taobao_order

    return [
        message
        for number in range(first, first + orders)
        for message in taobao_order(f"78{number:05d}", start)[:2]  # created, paid
    ]


def _platform_calls(simulator: str) -> int:
    """Every call the simulated platform has answered: the channel's and the detail calls."""
    return len(requests.get(f"{simulator}/_sim/calls", timeout=10).json())


def _outbox_consumer(groups: list[str]) -> Consumer:
    """The outbox's consumer as Lambda runs it, noting each message's group in `groups`."""
    import app
    from shophook.driver import consumers

    (outbox,) = (found for found in consumers(app) if found.name == "deliver_outbox")

    def noting(event: dict[str, Any], context: Any) -> Any:
        groups.extend(record["attributes"]["MessageGroupId"] for record in event["Records"])
        return app.deliver_outbox(event, context)

    return replace(outbox, handler=noting)


def _run_fetches(meter: Meter) -> int:
    """The outbox's messages run one at a time (its batch size) until none is left, as
    Lambda runs them; only the detail fetches' requests (their receive, their work, their
    delete) are added to `meter`. What a fetched record's write tells is read from its
    table's stream, as for every route, and is not run here."""
    from chalicelib.domain.work import WorkKind
    from shophook.driver import poll

    groups: list[str] = []
    outbox = _outbox_consumer(groups)
    fetches = 0
    while True:
        with metering() as one:
            received = poll(outbox)
        if not received:
            return fetches
        if groups[-1].startswith(f"{WorkKind.FETCH}#"):
            fetches += 1
            meter.requests.update(one.requests)


def _kms_requests(meter: Meter) -> int:
    return sum(n for name, n in meter.requests.items() if name.startswith("kms:"))


def _pushed(messages: list[Message], now: datetime) -> PerMessage:
    import app
    from bench import stack
    from simulator.scenarios import DEMO_CREDENTIALS

    with metering() as meter:
        for message in messages:
            webhook = message.signed(DEMO_CREDENTIALS["taobao"], now)
            answer = app.app(stack.proxy_event(webhook), stack.LambdaContext())
            assert answer["statusCode"] == 200, answer
    return PerMessage(
        "push, whole contents",
        len(messages),
        0,
        meter.dynamodb_requests(),
        meter.sqs_requests(),
        _kms_requests(meter),
    )


def _drained(messages: list[Message], now: datetime, simulator: str, thin: bool) -> PerMessage:
    """The channel drained; thin contents' detail fetches (queued work) then run to
    completion, each counted with the drain."""
    import app
    from chalicelib.service import channel
    from shophook.driver import drain
    from simulator.server import publish

    # Work queued before (the shop's channel permit, what the other routes' writes told)
    # runs first, uncounted: only this route's calls are on the platform's count.
    drain(app)
    publish(simulator, messages, thin=thin)
    before = _platform_calls(simulator)
    with metering() as meter:
        # Every batch, however slow the local moto is: counts, not time.
        (report,) = channel.drain(now, budget_seconds=3600)
    assert report.confirmed == len(messages) and not report.failed, report
    fetches = _run_fetches(meter) if thin else 0
    assert fetches == (len(messages) if thin else 0), fetches
    return PerMessage(
        "message channel, thin contents" if thin else "message channel, whole contents",
        len(messages),
        _platform_calls(simulator) - before,
        meter.dynamodb_requests(),
        meter.sqs_requests(),
        _kms_requests(meter),
    )


def channel_costs(orders: int = 150) -> Report:
    """8. The message channel beside pushes: API calls and AWS requests per message."""
    from bench import stack
    from bench.stack import free_port

    stack.start()
    from chalicelib.platforms.oauth import tokens_from
    from chalicelib.service import shops
    from chalicelib.settings import platform_variable, reload
    from simulator.scenarios import DEMO_CREDENTIALS, TAOBAO_SHOP
    from simulator.server import issue_session, serve, shophook_settings

    port = free_port()
    server = serve("127.0.0.1", port, DEMO_CREDENTIALS)
    simulator = f"http://127.0.0.1:{port}"
    os.environ.update(shophook_settings(simulator))
    os.environ[platform_variable("taobao", "tmc")] = "1"
    reload()
    now = datetime.now(UTC)
    session = issue_session(simulator, TAOBAO_SHOP.partition(":")[2], "bench shop")
    shops.connect(TAOBAO_SHOP, "bench shop", now, tokens_from(session, now))
    start = now - timedelta(hours=1)
    try:
        measured = [
            _pushed(_stories(0, orders, start), now),
            _drained(_stories(orders, orders, start), now, simulator, thin=False),
            _drained(_stories(2 * orders, orders, start), now, simulator, thin=True),
        ]
    finally:
        server.shutdown()
    report = Report(
        "8-channel",
        f"8. The message channel beside pushes: {2 * orders} Taobao-style messages each way "
        "(a trade created, then paid), in the same run",
        [
            "route",
            "messages",
            "platform API calls",
            "API calls per message",
            "DynamoDB requests per message",
            "SQS requests per message",
            "KMS requests per message",
        ],
    )
    for costs in measured:
        report.add(
            costs.route,
            costs.messages,
            costs.api_calls,
            costs.api_calls / costs.messages,
            costs.dynamodb / costs.messages,
            costs.sqs / costs.messages,
            costs.kms / costs.messages,
        )
    report.notes.append(
        "A drain takes up to 200 messages a consume and confirms up to 200 ids a call, and "
        "ends on a consume that returns nothing: ceil(n/200) consumes + ceil(n/200) "
        "confirms + 1. Each message then goes through the push's store-once path, so its "
        "DynamoDB requests are the push's."
    )
    report.notes.append(
        "Thin contents (platforms.md 1.3): each message is stored once and confirmed, and "
        "queues its detail call (taobao.trade.fullinfo.get / taobao.refund.get) as FETCH "
        "work; counted here with the drain: each fetch's SQS send, receive and delete, its "
        "outbox row and shop reads, the session token's KMS decrypt, the detail call and the "
        "store-once of what it returns. What the writes tell is read from their tables' "
        "streams, on every route alike, and not run here."
    )
    whole, thin = measured[1:]
    report.notes.append(
        "What thin contents add per message over whole ones: "
        f"{(thin.api_calls - whole.api_calls) / thin.messages:.3f} platform API calls (the "
        f"detail call), {(thin.dynamodb - whole.dynamodb) / thin.messages:.3f} DynamoDB, "
        f"{(thin.sqs - whole.sqs) / thin.messages:.3f} SQS and "
        f"{(thin.kms - whole.kms) / thin.messages:.3f} KMS requests."
    )
    report.notes.append(
        "A trade's created and paid messages each fetch the trade as it is by then (paid): "
        "the second fetch finds that record held and writes nothing."
    )
    return report
