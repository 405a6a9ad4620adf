"""The deterministic half of the benchmarks, kept in `make test`: AWS requests
per webhook for ShopHook and the baseline over the bench's generated stream
(the timings stay in `make bench`)."""

from __future__ import annotations

import app
from bench.baseline import handler as baseline
from bench.webhooks import metered


def test_requests_per_webhook_shophook_and_the_baseline(stack):
    baseline.create_tables()
    stream, meters = metered({"ShopHook": app.app, "baseline": baseline.handler}, orders=4)
    count = len(stream)
    unique = len({webhook.message_id for webhook in stream})
    assert count > unique  # the stream carries duplicates
    shophook, base = meters["ShopHook"].requests, meters["baseline"].requests
    # One read per webhook, one transaction per new message, at most one send.
    assert shophook["dynamodb:TransactGetItems"] == count
    assert shophook["dynamodb:TransactWriteItems"] == unique
    assert shophook["sqs:SendMessageBatch"] <= unique
    assert meters["ShopHook"].dynamodb_requests() == count + unique
    # Powertools idempotency: a conditional put per webhook (all a duplicate costs),
    # then a read, the writes, and the completion update per new message.
    assert base["dynamodb:UpdateItem"] == unique and base["dynamodb:GetItem"] == unique
    assert count + unique <= base["dynamodb:PutItem"] <= count + 2 * unique
    ratio = meters["ShopHook"].dynamodb_requests() / meters["baseline"].dynamodb_requests()
    assert ratio < 0.5
