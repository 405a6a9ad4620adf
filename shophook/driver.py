"""The local driver: runs what `chalice local` does not, the app's schedules and
SQS consumers, in-process, with the same events Lambda would send them.

Queues are polled the way Lambda's event source mapping does it: receive,
invoke the function with the records, delete the records it did not report as
failed; a failed record comes back when its visibility timeout ends, and SQS
moves it to the DLQ after the redrive count.

The orders' and cases' DynamoDB streams are read the way Lambda reads them:
each shard in order from where the function last got to, a batch at a time; a
batch is read again from its first failed record, until it is handled (the
event source mapping skips none: infra's MaximumRetryAttempts -1).
"""

from __future__ import annotations

import base64
import functools
import logging
import os
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from types import ModuleType
from typing import Any

import boto3
from botocore.config import Config
from chalice.app import ScheduledEventConfig, SQSEventConfig

from chalicelib.settings import settings
from chalicelib.store import queues
from chalicelib.store.entities import STREAMED

STREAM_BATCH = 100


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
    """Lambda's event sources, continuously, until `stop` is set: `per_queue`
    long-polling threads per queue (each FIFO group is in one thread's hands at a
    time) and one reading the streams."""

    def keep_polling(consumer: Consumer) -> None:
        while not stop.is_set():
            try:
                poll(consumer, wait_seconds=1)
            except Exception:  # a failing handler must not stop the other pollers
                logging.getLogger("shophook.driver").exception("a queue consumer failed")
                stop.wait(1)

    def keep_reading_streams() -> None:
        while not stop.is_set():
            try:
                if not poll_streams(app_module):
                    # Lambda polls a stream's shards about four times a second.
                    stop.wait(0.25)
            except Exception:  # a failing handler must not stop the pollers
                logging.getLogger("shophook.driver").exception("the stream consumer failed")
                stop.wait(1)

    threads = [
        threading.Thread(target=keep_polling, args=(consumer,), daemon=True)
        for consumer in consumers(app_module)
        for _ in range(per_queue)
    ] + [threading.Thread(target=keep_reading_streams, daemon=True)]
    for thread in threads:
        thread.start()
    return threads


def _streams_client() -> Any:
    return _streams_client_at(settings().region, os.environ.get("AWS_ENDPOINT_URL"))


@functools.cache
def _streams_client_at(region: str, endpoint: str | None) -> Any:
    # Account-based endpoints (botocore's default for calls naming a stream ARN)
    # are not served by moto; the regional endpoint is the same service.
    return boto3.client(
        "dynamodbstreams", region_name=region, config=Config(account_id_endpoint_mode="disabled")
    )


@dataclass
class _Shard:
    """Where the function got to in one shard, as Lambda keeps it between polls."""

    stream_arn: str
    shard_id: str
    after: str | None = None  # the last sequence number handled
    iterator: str | None = None  # where the next read starts, while nothing failed

    def next_iterator(self) -> str:
        if self.iterator is None:
            where = (
                {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": self.after}
                if self.after
                else {"ShardIteratorType": "TRIM_HORIZON"}
            )
            self.iterator = _streams_client().get_shard_iterator(
                StreamArn=self.stream_arn, ShardId=self.shard_id, **where
            )["ShardIterator"]
        return self.iterator


_SHARDS: list[_Shard] = []
_SHARDS_LOCK = threading.Lock()


def forget_stream_positions() -> None:
    """Read the streams from their start again: their tables were made anew (moto
    names a new table's stream and shard as it named the old one's)."""
    with _SHARDS_LOCK:
        _SHARDS.clear()


def _shards() -> list[_Shard]:
    if not _SHARDS:
        # Every table's shards or none: a table being made anew is found next time.
        dynamodb = boto3.client("dynamodb", region_name=settings().region)
        found = []
        for table in STREAMED:
            stream_arn = dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
            described = _streams_client().describe_stream(StreamArn=stream_arn)
            found += [
                _Shard(stream_arn, shard["ShardId"])
                for shard in described["StreamDescription"]["Shards"]
            ]
        _SHARDS.extend(found)
    return _SHARDS


def _as_json(image: dict[str, Any]) -> dict[str, Any]:
    # Lambda's event is JSON: binary values arrive base64-encoded.
    return {
        name: {"B": base64.b64encode(value["B"]).decode()} if "B" in value else value
        for name, value in image.items()
    }


def _lambda_stream_record(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    images = record["dynamodb"]
    return {
        "eventID": record["eventID"],
        "eventName": record["eventName"],
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": settings().region,
        "dynamodb": {
            **images,
            **{
                name: _as_json(images[name])
                for name in ("Keys", "NewImage", "OldImage")
                if name in images
            },
            # What Lambda hands a function: whole epoch seconds, not a datetime.
            "ApproximateCreationDateTime": int(images["ApproximateCreationDateTime"].timestamp()),
        },
        "eventSourceARN": stream_arn,
    }


def poll_streams(app_module: ModuleType) -> int:
    """One batch from each shard of the streamed tables, handed to the app's
    stream function; returns how many records it handled (a failed record is
    handed again by a later poll)."""
    with _SHARDS_LOCK:
        return sum(_poll_shard(app_module, shard) for shard in _shards())


def drain_streams(app_module: ModuleType) -> int:
    """Poll the streams until a poll hands the function nothing it handles;
    returns how many records it handled."""
    handled = 0
    while polled := poll_streams(app_module):
        handled += polled
    return handled


def _poll_shard(app_module: ModuleType, shard: _Shard) -> int:
    read = _streams_client().get_records(ShardIterator=shard.next_iterator(), Limit=STREAM_BATCH)
    records = read["Records"]
    if not records:
        shard.iterator = read.get("NextShardIterator")
        return 0
    # Until the function answers, the next read starts after what it had handled:
    # an invocation that dies is handed the same batch again.
    shard.iterator = None
    event = {"Records": [_lambda_stream_record(record, shard.stream_arn) for record in records]}
    answer = app_module.tell_changes(event, None) or {}
    failed = {item["itemIdentifier"] for item in answer.get("batchItemFailures", [])}
    sequence = [record["dynamodb"]["SequenceNumber"] for record in records]
    handled = next((i for i, number in enumerate(sequence) if number in failed), len(sequence))
    if handled:
        shard.after = sequence[handled - 1]
    if handled == len(sequence):
        shard.iterator = read.get("NextShardIterator")
    return handled


def drain(app_module: ModuleType, rounds: int = 100) -> dict[str, int]:
    """Poll every queue and stream until none has anything new (tests, `shophook
    local`); returns the messages and records received per consumer."""
    every = consumers(app_module)
    received = {consumer.name: 0 for consumer in every} | {"tell_changes": 0}
    for _ in range(rounds):
        got = {consumer.name: poll(consumer) for consumer in every}
        got["tell_changes"] = poll_streams(app_module)
        for name, count in got.items():
            received[name] += count
        if not any(got.values()):
            break
    return received
