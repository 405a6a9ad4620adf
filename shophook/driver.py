"""The local driver: runs what `chalice local` does not, the app's schedules and
SQS consumers, in-process, with the same events Lambda would send them.

Queues are polled the way Lambda's event source mapping does it: receive,
invoke the function with the records, delete the records it did not report as
failed; a failed record comes back when its visibility timeout ends, and SQS
moves it to the DLQ after the redrive count.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from types import ModuleType
from typing import Any

from chalice.app import ScheduledEventConfig, SQSEventConfig

from chalicelib.settings import settings
from chalicelib.store import queues


def scheduled_handlers(app_module: ModuleType) -> dict[str, Callable[..., Any]]:
    return {
        source.name: getattr(app_module, source.name)
        for source in app_module.app.event_sources
        if isinstance(source, ScheduledEventConfig)
    }


def run_schedules(app_module: ModuleType, now: datetime) -> dict[str, Any]:
    """Invoke every scheduled function once; return what each returned."""
    event = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": now.isoformat(),
        "region": settings().region,
        "resources": [],
        "detail": {},
    }
    return {name: handler(event, None) for name, handler in scheduled_handlers(app_module).items()}


@dataclass(frozen=True)
class Consumer:
    name: str
    handler: Callable[..., Any]
    queue_url: str
    queue_arn: str
    batch_size: int


def consumers(app_module: ModuleType) -> list[Consumer]:
    found = []
    for source in app_module.app.event_sources:
        if not isinstance(source, SQSEventConfig):
            continue
        url = queues.client().get_queue_url(QueueName=source.queue)["QueueUrl"]
        arn = queues.client().get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        found.append(
            Consumer(
                source.name,
                getattr(app_module, source.name),
                url,
                arn["Attributes"]["QueueArn"],
                source.batch_size,
            )
        )
    return found


def _lambda_record(message: dict[str, Any], consumer: Consumer) -> dict[str, Any]:
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {},
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": consumer.queue_arn,
        "awsRegion": settings().region,
    }


def _invoke(consumer: Consumer, batch: list[dict[str, Any]]) -> int:
    """One invocation; delete what succeeded; return how many did."""
    answer = consumer.handler({"Records": [_lambda_record(m, consumer) for m in batch]}, None)
    failed = {item["itemIdentifier"] for item in (answer or {}).get("batchItemFailures", [])}
    done = [message for message in batch if message["MessageId"] not in failed]
    for message in done:
        queues.client().delete_message(
            QueueUrl=consumer.queue_url, ReceiptHandle=message["ReceiptHandle"]
        )
    return len(done)


def poll(consumer: Consumer, wait_seconds: int = 0) -> int:
    """Receive what the function takes at once (its batch size) and invoke it, as
    Lambda does: a FIFO group's next message is not handed out while one is in
    flight, so a group stays in order however many pollers run. `wait_seconds`
    long-polls, as Lambda's pollers do. Returns how many messages were received."""
    received = (
        queues.client()
        .receive_message(
            QueueUrl=consumer.queue_url,
            MaxNumberOfMessages=consumer.batch_size,
            MessageSystemAttributeNames=["All"],
            WaitTimeSeconds=wait_seconds,
        )
        .get("Messages", [])
    )
    if received:
        _invoke(consumer, received)
    return len(received)


def start_pollers(
    app_module: ModuleType, stop: threading.Event, per_queue: int
) -> list[threading.Thread]:
    """Lambda's SQS event sources, continuously: `per_queue` long-polling threads per
    queue (each FIFO group is in one thread's hands at a time), until `stop` is set."""

    def keep_polling(consumer: Consumer) -> None:
        while not stop.is_set():
            try:
                poll(consumer, wait_seconds=1)
            except Exception:  # a failing handler must not stop the other pollers
                logging.getLogger("shophook.driver").exception("a queue consumer failed")
                stop.wait(1)

    threads = [
        threading.Thread(target=keep_polling, args=(consumer,), daemon=True)
        for consumer in consumers(app_module)
        for _ in range(per_queue)
    ]
    for thread in threads:
        thread.start()
    return threads


def drain(app_module: ModuleType, rounds: int = 100) -> dict[str, int]:
    """Poll every queue until none has a visible message (tests, `shophook local`);
    returns the messages received per consumer."""
    every = consumers(app_module)
    received = {consumer.name: 0 for consumer in every}
    for _ in range(rounds):
        got = {consumer.name: poll(consumer) for consumer in every}
        for name, count in got.items():
            received[name] += count
        if not any(got.values()):
            break
    return received
