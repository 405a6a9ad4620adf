"""The baseline: what most AWS users would write for the same webhooks. A plain
Lambda handler that verifies the platform's signature (the same verifier),
makes the processing idempotent with Powertools' idempotency utility on a
DynamoDB persistence layer, reads the order, and writes the order and an
event-log row with boto3. No rules, no deadlines, no outbox.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)

from chalicelib.domain.state import entity_of
from chalicelib.platforms import registry
from chalicelib.platforms.base import InboundRequest, WebhookRejectedError
from chalicelib.settings import settings
from chalicelib.store import codec

PREFIX = os.environ.get("BASELINE_TABLE_PREFIX", "baseline-")
config = IdempotencyConfig(event_key_jmespath="message_id", expires_after_seconds=30 * 86400)
persistence = DynamoDBPersistenceLayer(table_name=f"{PREFIX}idempotency")


@cache
def _tables() -> tuple[Any, Any]:
    dynamodb = boto3.resource("dynamodb")
    return dynamodb.Table(f"{PREFIX}orders"), dynamodb.Table(f"{PREFIX}events")


@idempotent_function(data_keyword_argument="message", config=config, persistence_store=persistence)
def store(message: dict[str, Any]) -> dict[str, Any]:
    orders, events = _tables()
    key = message["entity"]
    held = orders.get_item(Key={"pk": key}).get("Item")
    modified = message["modified"]
    if held is None or held["modified"] <= modified:
        orders.put_item(Item={"pk": key, "modified": modified, "document": message["event"]})
    events.put_item(
        Item={
            "pk": key,
            "sk": f"{message['received_at']}#{message['message_id']}",
            "event": message["event"],
        }
    )
    return {"stored": key}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    platform = registry()[event["pathParameters"]["platform"]]
    query = event.get("multiValueQueryStringParameters") or {}
    request = InboundRequest(query, event.get("headers") or {}, (event.get("body") or "").encode())
    now = datetime.now(UTC)
    try:
        delivery = platform.verify(request, settings().platform(platform.name).credentials, now)
    except WebhookRejectedError as rejection:
        return {"statusCode": rejection.status, "body": json.dumps({"code": rejection.code})}
    inbound = platform.parse(delivery)
    kind, entity_id = entity_of(inbound.event)
    config.register_lambda_context(context)
    store(
        message={
            "message_id": f"{platform.name}:{inbound.message_id}",
            "entity": f"{platform.name}#{kind}#{entity_id}",
            "modified": str(getattr(inbound.event, "modified", "") or ""),
            "event": codec.EVENT.encode(inbound.event),
            "received_at": now.isoformat(),
        }
    )
    return {"statusCode": 200, "body": json.dumps(platform.ack())}


def create_tables() -> None:
    client = boto3.client("dynamodb")
    for name, keys in (
        ("idempotency", [("id", "HASH")]),
        ("orders", [("pk", "HASH")]),
        ("events", [("pk", "HASH"), ("sk", "RANGE")]),
    ):
        client.create_table(
            TableName=f"{PREFIX}{name}",
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": n, "KeyType": t} for n, t in keys],
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n, _ in keys],
        )
