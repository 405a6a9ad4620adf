"""Benchmark 8: what a message costs through the Taobao-style message channel
(platforms.md 1.4) beside the same message pushed (1.1), in the same run:
platform API calls and DynamoDB requests per message, the channel's consume
and confirm amortised over its batches.

Counts, not timings: deterministic for a given number of messages."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import requests

from bench.meter import metering
from bench.report import Report
from simulator.webhooks import Message


@dataclass(frozen=True)
class PerMessage:
    route: str
    messages: int
    api_calls: int
    dynamodb: int
    sqs: int


def _stories(first: int, orders: int, start: datetime) -> list[Message]:
    from simulator.platforms.taobao import taobao_order

    return [
        message
        for number in range(first, first + orders)
        for message in taobao_order(f"78{number:05d}", start)[:2]  # created, paid
    ]


def _channel_calls(simulator: str) -> int:
    calls = requests.get(f"{simulator}/_sim/calls", timeout=10).json()
    return sum(1 for call in calls if call["channel"])


def _pushed(messages: list[Message], now: datetime) -> PerMessage:
    import app
    from bench import stack
    from simulator.scenarios import DEMO_CREDENTIALS

    with metering() as meter:
        for message in messages:
            webhook = message.signed(DEMO_CREDENTIALS["taobao"], now)
            answer = app.app(stack.proxy_event(webhook), stack.LambdaContext())
            assert answer["statusCode"] == 200, answer
    return PerMessage("push", len(messages), 0, meter.dynamodb_requests(), meter.sqs_requests())


def _drained(messages: list[Message], now: datetime, simulator: str) -> PerMessage:
    from chalicelib.service import channel
    from simulator.server import publish

    publish(simulator, messages, thin=False)
    before = _channel_calls(simulator)
    with metering() as meter:
        # Every batch, however slow the local moto is: counts, not time.
        (report,) = channel.drain(now, budget_seconds=3600)
    assert report.confirmed == len(messages) and not report.failed, report
    return PerMessage(
        "message channel",
        len(messages),
        _channel_calls(simulator) - before,
        meter.dynamodb_requests(),
        meter.sqs_requests(),
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
            _drained(_stories(orders, orders, start), now, simulator),
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
        )
    report.notes.append(
        "A drain takes up to 200 messages a consume and confirms up to 200 ids a call, and "
        "ends on a consume that returns nothing: ceil(n/200) consumes + ceil(n/200) "
        "confirms + 1. Each message then goes through the push's store-once path, so its "
        "DynamoDB requests are the push's."
    )
    report.notes.append(
        "Whole contents here. Real TMC contents are thin: each thin trade or refund adds one "
        "detail call (taobao.trade.fullinfo.get / taobao.refund.get) as queued work, which "
        "comes with the thin-message completion (not measured in this run)."
    )
    return report
