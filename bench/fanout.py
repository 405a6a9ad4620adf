"""Benchmark 5: outbound fan-out to 10 loopback subscribers, one of them
hanging, against the same run with all 10 healthy: deliveries per second and
the healthy subscribers' latency (webhook received by ShopHook -> delivered)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bench import stack
from bench.report import Report, summary
from bench.webhooks import _run, handlers

SUBSCRIBERS = 10
SHOP = "taobao:2200000001"
ORDERS = 6
EVENTS = ["order.created", "order.paid", "order.shipped", "order.completed"]
# Lambda runs as many consumers as there are active message groups; so do these pollers.
POLLERS = 24
HANG_SECONDS = 60
DEADLINE_SECONDS = 60


class Subscriber:
    def __init__(self, hangs: bool) -> None:
        self.hangs = hangs
        self.arrivals: list[float] = []
        subscriber = self

        class Endpoint(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["content-length"]))
                if subscriber.hangs:
                    time.sleep(HANG_SECONDS)
                subscriber.arrivals.append(time.perf_counter())
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"


def _scenario(hanging: bool, first_id: int) -> dict[str, Any]:
    from chalicelib.service import keys, subscriptions
    from chalicelib.service.commands import SubscriptionRequest
    from simulator.scenarios import taobao_order

    # Each scenario starts on empty tables: moto copies every table a transaction
    # touches, so the second scenario would otherwise run on the first's rows,
    # slower whatever its subscribers do.
    stack.empty_tables()
    now = datetime.now(UTC)
    integrator = keys.authenticate(f"Bearer {keys.create_key('bench', [SHOP], now)[1]}")
    endpoints = [Subscriber(hangs=hanging and index == 0) for index in range(SUBSCRIBERS)]
    for endpoint in endpoints:
        wanted = SubscriptionRequest(url=endpoint.url, event_types=EVENTS, shops=[SHOP])
        subscriptions.create(integrator, wanted, now)
    messages = [
        message
        for number in range(first_id, first_id + ORDERS)
        for message in taobao_order(str(number), now)[:4]
    ]
    # Latency is counted from each webhook's arrival: the stream is sent one by one
    # (each signed as it is sent).
    sent_at = time.perf_counter()
    _run(handlers()["ShopHook"], messages, fresh_queues=False)
    expected = ORDERS * len(EVENTS)
    healthy = [e for e in endpoints if not e.hangs]
    started = time.perf_counter()
    while time.perf_counter() - started < DEADLINE_SECONDS:
        if all(len(e.arrivals) >= expected for e in healthy):
            break
        time.sleep(0.05)
    finished = max((max(e.arrivals) for e in healthy if e.arrivals), default=sent_at)
    latencies = [(arrival - sent_at) * 1000 for e in healthy for arrival in e.arrivals]
    delivered = sum(len(e.arrivals) for e in healthy)
    for endpoint in endpoints:
        endpoint.server.shutdown()
    return {
        "delivered": delivered,
        "expected": expected * len(healthy),
        "rate": delivered / max(finished - sent_at, 1e-9),
        "latency": summary(latencies or [0.0]),
    }


def fanout() -> Report:
    import os

    os.environ["SHOPHOOK_ALLOW_LOOPBACK_WEBHOOKS"] = "1"
    stack.start()  # reads the settings afresh
    import app as app_module
    from chalicelib.domain.endpoints import TIMEOUTS_TO_OPEN_CIRCUIT
    from shophook.driver import start_pollers

    stop = threading.Event()
    start_pollers(app_module, stop, POLLERS // 2)
    results = {
        "all 10 healthy (baseline)": _scenario(hanging=False, first_id=3_800_000),
        "1 of 10 hanging": _scenario(hanging=True, first_id=3_900_000),
    }
    stop.set()
    report = Report(
        "5-fanout",
        f"5. Fan-out: {ORDERS * len(EVENTS)} events to {SUBSCRIBERS} loopback subscribers "
        f"(latency of the healthy ones, ms, from webhook sent to delivered)",
        [
            "scenario",
            "delivered to healthy",
            "deliveries/s",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "max ms",
            "p99 vs baseline",
        ],
    )
    base = results["all 10 healthy (baseline)"]["latency"]["p99"]
    for name, result in results.items():
        latency = result["latency"]
        report.add(
            name,
            f"{result['delivered']}/{result['expected']}",
            result["rate"],
            latency["median"],
            latency["p95"],
            latency["p99"],
            latency["max"],
            f"{latency['p99'] / base:.2f}x",
        )
    report.notes.append(
        f"The hanging subscriber holds each request {HANG_SECONDS}s; ShopHook gives up after "
        "5s (SHOPHOOK_INTEGRATOR_TIMEOUT_SECONDS), and after "
        f"{TIMEOUTS_TO_OPEN_CIRCUIT} timeouts in a row opens the subscription's circuit: one "
        "probe at a time, the rest wait in their groups. Pollers emulate Lambda's "
        f"per-message-group concurrency ({POLLERS} threads over the two queues), as "
        "`shophook local` does with fewer."
    )
    return report
