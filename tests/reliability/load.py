"""Bounded load on loopback: worker threads feed webhooks (both platforms,
duplicates, shuffled, many messages racing on the same orders) to the webhook
use case against a moto server in its own process, for at most `--seconds`,
then stop by themselves. Prints one JSON line: throughput, p50/p99, and the
counts that must be zero (lost, applied twice, 5xx).

`python -m tests.reliability.load --seconds 10 --threads 8`
"""

from __future__ import annotations

import argparse
import json
import queue
import random
import statistics
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

from bench import stack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--orders", type=int, default=60)
    args = parser.parse_args()
    # Before the app is imported: table names are fixed then.
    stack.start((sys.executable, "-m", "tests.reliability.moto_serialized"))

    from chalicelib.platforms.base import InboundRequest
    from chalicelib.service import ingest
    from chalicelib.store.records import CaseRecord, EventLogRecord, OrderRecord
    from simulator.scenarios import DEMO_CREDENTIALS, jd_order, taobao_order

    start = datetime.now(UTC) - timedelta(days=6)
    messages = []
    for number in range(args.orders):
        build = taobao_order if number % 2 else jd_order
        messages += build(f"47{number:05d}", start)
    rng = random.Random(7)
    sends = [m for m in messages for _ in range(rng.choice([1, 1, 2, 3]))]
    rng.shuffle(sends)
    work: queue.Queue = queue.Queue()
    for message in sends:
        work.put(message)

    latencies: list[float] = []
    acked: set[tuple[str, str]] = set()
    sent: Counter[tuple[str, str]] = Counter()
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    deadline = time.monotonic() + args.seconds

    def worker() -> None:
        while time.monotonic() < deadline:
            try:
                message = work.get_nowait()
            except queue.Empty:
                return
            webhook = message.signed(DEMO_CREDENTIALS[message.platform], datetime.now(UTC))
            query = webhook.path.partition("?")[2]
            request = InboundRequest(parse_qs(query), webhook.headers, webhook.body)
            began = time.perf_counter()
            reply = ingest.receive(message.platform, request, datetime.now(UTC))
            with lock:
                latencies.append((time.perf_counter() - began) * 1000)
                statuses[reply.status] += 1
                sent[message.platform, message.message_id] += 1
                if reply.status == 200:
                    acked.add((message.platform, message.message_id))
            if reply.status == 503:
                work.put(message)  # the platform sends it again

    began = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(args.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began

    logged = {(row.platform, row.message_id) for row in EventLogRecord.scan()}
    lost = sum(1 for message in acked if message not in logged)
    applied: Counter[str] = Counter()
    per_message: Counter[str] = Counter()
    for row in EventLogRecord.scan():
        if row.outcome == "applied":
            applied[row.stream] += 1
            per_message[f"{row.platform}#{row.message_id}"] += 1
    twice = sum(1 for n in per_message.values() if n > 1)
    # Each write bumps a version: an order's are its applied messages and its
    # cases' notes; a case's, its messages and its re-decisions by order changes.
    for row in OrderRecord.scan():
        platform, _, order_id = row.entity_key.partition("#")
        twice += row.version != applied[f"{platform}#order#{order_id}"] + len(row.case_ids or ())
    for row in CaseRecord.scan():
        platform, _, case_id = row.entity_key.partition("#")
        twice += row.version < applied[f"{platform}#case#{case_id}"]
    ordered = sorted(latencies)
    print(
        json.dumps(
            {
                "threads": args.threads,
                "webhooks": len(latencies),
                "distinct": len(sent),
                "duplicates": sum(sent.values()) - len(sent),
                "seconds": round(elapsed, 2),
                "per_second": round(len(latencies) / elapsed, 1),
                "p50_ms": round(statistics.median(ordered), 1) if ordered else None,
                "p99_ms": round(ordered[int(0.99 * (len(ordered) - 1))], 1) if ordered else None,
                "retried_503": statuses[503],
                "server_errors": sum(
                    n for status, n in statuses.items() if status >= 500 and status != 503
                ),
                "lost": lost,
                "applied_twice": twice,
                "unfinished": work.qsize(),
            }
        )
    )


if __name__ == "__main__":
    main()
