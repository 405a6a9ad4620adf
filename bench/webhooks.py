"""Benchmarks 1 and 2: AWS requests, capacity units and cost per webhook; and
handler throughput and latency, ShopHook against the baseline on the same
moto server and the same generated stream."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from time import perf_counter, process_time
from typing import Any

from bench import stack
from bench.meter import PRICE_PER_MILLION, Meter, metering
from bench.report import Report, summary
from bench.stream import DUPLICATES, OUT_OF_ORDER, signed_now, webhooks

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def handlers() -> dict[str, Handler]:
    stack.start()
    import app
    from bench.baseline.handler import handler as baseline

    return {"ShopHook": app.app, "baseline": baseline}


def _empty_queues() -> None:
    """No queue consumer runs here: fresh queues for each run (untimed), as if
    the consumers had kept up, so moto's FIFO bookkeeping does not grow."""
    from chalicelib.settings import reload
    from chalicelib.store import queues

    suffix = uuid.uuid4().hex[:8]
    for queue in queues.ALL_QUEUES:
        made = queues.client().create_queue(
            QueueName=f"bench-{suffix}-{queue.name}.fifo", Attributes={"FifoQueue": "true"}
        )
        os.environ[queue.url_variable] = made["QueueUrl"]
    reload()


def _run(
    handler: Handler,
    stream: list,
    latencies: list[float] | None = None,
    cpu: list[float] | None = None,
    fresh_queues: bool = True,
) -> float:
    """Send the stream through the handler as Lambda would; return the seconds taken.
    `latencies` gets each call's wall time, `cpu` this process's CPU time for it
    (the moto server is another process: waiting on it is not CPU here)."""
    if fresh_queues:
        _empty_queues()
    began = perf_counter()
    for message in stream:
        event = stack.proxy_event(signed_now(message))
        started, started_cpu = perf_counter(), process_time()
        answer = handler(
            event, stack.LambdaContext(aws_request_id=event["requestContext"]["requestId"])
        )
        if latencies is not None:
            latencies.append((perf_counter() - started) * 1000)
        if cpu is not None:
            cpu.append((process_time() - started_cpu) * 1000)
        status = answer["statusCode"]
        if status != 200:
            raise RuntimeError(f"{status}: {answer.get('body')}")
    return perf_counter() - began


def metered(every: dict[str, Handler], orders: int) -> tuple[list, dict[str, Meter]]:
    """Each handler's AWS requests over the same stream (the same messages, new
    ids), with those of the stream consumer on what it committed (none commits
    to the baseline's tables, which have no stream)."""
    import app
    from shophook.driver import drain_streams

    meters: dict[str, Meter] = {}
    stream: list = []
    for offset, (name, handler) in enumerate(every.items()):
        stream = webhooks(orders, seed=1, first_id=offset * 10_000)
        _empty_queues()
        with metering() as meter:
            _run(handler, stream, fresh_queues=False)
            # ShopHook's stream consumer, run as Lambda runs it on what was committed.
            drain_streams(app)
        meters[name] = meter
    return stream, meters


def requests_and_cost(orders: int = 40) -> Report:
    """1. AWS requests, capacity units and cost per webhook."""
    stream, meters = metered(handlers(), orders)
    count = len(stream)
    report = Report(
        "1-requests-per-webhook",
        f"1. AWS requests per webhook: {count} webhooks ({orders} orders, both platforms, "
        f"{DUPLICATES:.0%} duplicates, {OUT_OF_ORDER:.0%} out of order)",
        [
            "handler",
            "DynamoDB req/webhook",
            "SQS req/webhook",
            "WRU/webhook",
            "RRU/webhook",
            "USD per million webhooks",
            "DynamoDB req vs baseline",
        ],
    )
    base = meters["baseline"].dynamodb_requests()
    for name, meter in meters.items():
        report.add(
            name,
            meter.dynamodb_requests() / count,
            meter.sqs_requests() / count,
            meter.write_units / count,
            meter.read_units / count,
            meter.cost_per_million(count),
            f"{meter.dynamodb_requests() / base:.2f}x",
        )
    for name, meter in meters.items():
        report.notes.append(
            f"{name}: " + ", ".join(f"{k} {v}" for k, v in sorted(meter.requests.items()))
        )
        report.notes.append(
            f"{name}, write units per webhook by table (items per webhook, mean bytes "
            "per item written, an update counted as 0): "
            + ", ".join(
                f"{table} {units / count:.2f} ({meter.items_written_by_table[table] / count:.2f}, "
                f"{meter.bytes_written_by_table[table] / meter.items_written_by_table[table]:.0f})"
                for table, units in meter.write_units_by_table.most_common()
            )
        )
    report.notes.append(
        "Prices: on-demand us-east-1, USD per million: "
        + ", ".join(f"{unit} {price}" for unit, price in PRICE_PER_MILLION.items())
        + ". Units estimated from item sizes (transactions bill twice)."
    )
    report.notes.append(
        "Targets: ShopHook at most 0.45x the baseline's DynamoDB requests (moonshot 0.4x) "
        "and at most 2.0x its cost per webhook (moonshot 1.0x)."
    )
    return report


def throughput(orders: int = 3, runs: int = 8) -> Report:
    """2. In-process handler throughput and latency, invoked with API Gateway proxy events."""
    every = handlers()
    latencies: dict[str, list[float]] = {name: [] for name in every}
    cpu: dict[str, list[float]] = {name: [] for name in every}
    rates: dict[str, list[float]] = {name: [] for name in every}
    for run in range(runs):
        # A fresh stream per run (new ids), on empty tables, each handler in turn.
        stack.empty_tables()
        for offset, (name, handler) in enumerate(every.items()):
            stream = webhooks(orders, seed=run, first_id=100_000 * (run + 1) + offset * 10_000)
            seconds = _run(handler, stream, latencies[name], cpu[name])
            rates[name].append(len(stream) / seconds)
    report = Report(
        "2-throughput",
        f"2. Handler throughput and latency in process ({runs} runs of "
        f"{len(webhooks(orders, 0))} webhooks each on empty tables, moto server on loopback)",
        [
            "handler",
            "events/s (median)",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "min ms",
            "max ms",
            "own CPU ms (median)",
            "throughput vs baseline",
        ],
    )
    base = summary(rates["baseline"])["median"]
    for name in every:
        rate, latency = summary(rates[name]), summary(latencies[name])
        report.add(
            name,
            rate["median"],
            latency["median"],
            latency["p95"],
            latency["p99"],
            latency["min"],
            latency["max"],
            summary(cpu[name])["median"],
            f"{rate['median'] / base:.2f}x",
        )
    report.notes.append(
        "ShopHook does strictly more per webhook: rules, deadlines and the event log, in one"
        " transaction (what a change tells is read from its table's stream, off this path)."
        " 'own CPU' is the handler's process alone; the rest of each call is waiting on the"
        " moto server (another process), whose transactions are its slowest calls."
    )
    report.notes.append(
        "Each run starts on empty tables: moto deep-copies every table a transaction "
        "touches (its stream records too), so ShopHook's transactions slow down on moto as "
        "data accumulates; "
        "DynamoDB's do not."
    )
    report.notes.append("Target: ShopHook at least 0.9x the baseline's throughput (moonshot 1.0x).")
    return report
