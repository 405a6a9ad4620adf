"""The SQS queues outbound work travels on, and the few calls made to them.

Both are FIFO queues: a message group per order keeps one order's work in
order, while other orders (and other subscribers) go on. Each has a
dead-letter queue that takes a message after its retry budget; the redrive
count is the budget, so SQS and the consumer agree on when that is.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.domain.retry import INTEGRATOR_DELIVERIES, PLATFORM_CALLS, RetryPolicy
from chalicelib.settings import settings

# Lambda's visibility timeout rule: at least six times the consumer's timeout.
VISIBILITY_SECONDS = 6 * 60
RETENTION_SECONDS = 14 * 24 * 3600
BATCH = 10


@dataclass(frozen=True)
class Queue:
    name: str
    retry: RetryPolicy
    purpose: str

    @property
    def url_variable(self) -> str:
        return f"SHOPHOOK_{self.name.upper()}_QUEUE_URL"

    def queue_name(self, prefix: str | None = None) -> str:
        return f"{settings().table_prefix if prefix is None else prefix}{self.name}.fifo"

    def dead_letter_name(self, prefix: str | None = None) -> str:
        return f"{settings().table_prefix if prefix is None else prefix}{self.name}-dlq.fifo"

    def url(self) -> str:
        """From the environment (the functions), else looked up by name (the CLI)."""
        return settings().queue_url(self.url_variable) or _url_of(self.queue_name())


# Platform actions and canonical events (fanned out to subscriptions).
OUTBOX = Queue("outbox", PLATFORM_CALLS, "platform actions and events to fan out")
# One message per (event, subscription).
DELIVERIES = Queue("deliveries", INTEGRATOR_DELIVERIES, "integrator webhook deliveries")
ALL_QUEUES = (OUTBOX, DELIVERIES)


class QueueUnavailableError(Exception):
    """SQS could not be reached, or the queue is not configured."""


@dataclass(frozen=True)
class Message:
    body: dict[str, Any]
    group: str
    deduplication_id: str


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    receipt_handle: str
    body: dict[str, Any]
    group: str
    receive_count: int


@cache
def client() -> Any:
    return boto3.client("sqs", region_name=settings().region)


@cache
def _url_of(queue_name: str) -> str:
    try:
        return client().get_queue_url(QueueName=queue_name)["QueueUrl"]
    except (BotoCoreError, ClientError) as error:
        raise QueueUnavailableError(f"no queue {queue_name}: {error}") from error


def send(queue: Queue, messages: Iterable[Message], url: str | None = None) -> int:
    """Send in batches of ten; return how many SQS accepted."""
    pending = list(messages)
    accepted = 0
    for start in range(0, len(pending), BATCH):
        chunk = pending[start : start + BATCH]
        try:
            answer = client().send_message_batch(
                QueueUrl=url or queue.url(),
                Entries=[
                    {
                        "Id": str(index),
                        "MessageBody": json.dumps(message.body),
                        "MessageGroupId": message.group[:128],
                        "MessageDeduplicationId": message.deduplication_id[:128],
                    }
                    for index, message in enumerate(chunk)
                ],
            )
        except (BotoCoreError, ClientError) as error:
            raise QueueUnavailableError(str(error)) from error
        accepted += len(answer.get("Successful", []))
    return accepted


def retry_later(queue: Queue, receipt_handle: str, seconds: int) -> None:
    """Keep the message hidden for `seconds`; it comes back as the next attempt."""
    try:
        client().change_message_visibility(
            QueueUrl=queue.url(), ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
        )
    except (BotoCoreError, ClientError) as error:
        # The queue's own visibility timeout still brings it back, only sooner or later.
        raise QueueUnavailableError(str(error)) from error


def dead_letter_url(queue: Queue) -> str:
    source = queue.url()
    return source[: -len(".fifo")] + "-dlq.fifo"


def dead_letters(queue: Queue, limit: int, hold_seconds: int = 60) -> list[DeadLetter]:
    """Up to `limit` messages from the queue's DLQ, each hidden for `hold_seconds`
    (SQS cannot list a queue without receiving from it)."""
    found: dict[str, DeadLetter] = {}
    while len(found) < limit:
        answer = client().receive_message(
            QueueUrl=dead_letter_url(queue),
            MaxNumberOfMessages=min(BATCH, limit - len(found)),
            VisibilityTimeout=hold_seconds,
            MessageSystemAttributeNames=["All"],
        )
        received = [m for m in answer.get("Messages", []) if m["MessageId"] not in found]
        if not received:
            break
        for message in received:
            attributes = message.get("Attributes", {})
            found[message["MessageId"]] = DeadLetter(
                message_id=message["MessageId"],
                receipt_handle=message["ReceiptHandle"],
                body=json.loads(message["Body"]),
                group=attributes.get("MessageGroupId", ""),
                receive_count=int(attributes.get("ApproximateReceiveCount", 0)),
            )
    return list(found.values())


def forget_dead_letter(queue: Queue, letter: DeadLetter) -> None:
    client().delete_message(QueueUrl=dead_letter_url(queue), ReceiptHandle=letter.receipt_handle)


def create_queues() -> dict[str, str]:
    """Every queue and its DLQ (local stack and tests; on AWS they come from infra/).
    Returns {url variable: queue URL}."""
    urls = {}
    for queue in ALL_QUEUES:
        fifo = {"FifoQueue": "true", "MessageRetentionPeriod": str(RETENTION_SECONDS)}
        dead = client().create_queue(QueueName=queue.dead_letter_name(), Attributes=fifo)
        arn = client().get_queue_attributes(QueueUrl=dead["QueueUrl"], AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        source = client().create_queue(
            QueueName=queue.queue_name(),
            Attributes={
                **fifo,
                "VisibilityTimeout": str(VISIBILITY_SECONDS),
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": arn, "maxReceiveCount": queue.retry.attempts}
                ),
            },
        )
        urls[queue.url_variable] = source["QueueUrl"]
    return urls
