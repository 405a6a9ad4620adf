"""Counts every AWS request a handler makes, and the DynamoDB capacity units it
would be billed on demand, by wrapping botocore's one call path (a measuring
instrument: the code under measurement is untouched)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from boto3.dynamodb.types import TypeSerializer
from botocore.client import BaseClient
from botocore.exceptions import ClientError

# On-demand list prices, us-east-1 (aws.amazon.com/dynamodb/pricing/on-demand,
# aws.amazon.com/sqs/pricing): USD per million.
PRICE_PER_MILLION = {"WRU": 0.625, "RRU": 0.125, "SQS FIFO request": 0.50}
# Not billed per request: the control plane, and the stream reads of Lambda's
# event source mapping (DynamoDB Streams reads by a Lambda trigger are free).
UNBILLED = {"dynamodb:DescribeTable", "dynamodbstreams"}
WRITES = {"PutItem", "UpdateItem", "DeleteItem"}
READS = {"GetItem", "Query", "Scan"}
_TYPES = {"S", "B", "N", "BOOL", "NULL", "SS", "NS", "BS", "L", "M"}
_SERIALIZER = TypeSerializer()


def _number_size(number: str) -> int:
    digits = number.lstrip("-").replace(".", "").partition("E")[0].strip("0") or "0"
    return math.ceil(len(digits) / 2) + 1


def _value_size(value: dict[str, Any]) -> int:
    """A typed value's size as DynamoDB bills it (its item-size rules)."""
    ((kind, data),) = value.items()
    sizes = {
        "S": lambda: len(data.encode()),
        "B": lambda: len(bytes(data)),
        "N": lambda: _number_size(data),
        "BOOL": lambda: 1,
        "NULL": lambda: 1,
        "SS": lambda: sum(len(text.encode()) for text in data),
        "NS": lambda: sum(_number_size(number) for number in data),
        "BS": lambda: sum(len(blob) for blob in data),
        "L": lambda: 3 + sum(1 + _value_size(element) for element in data),
        "M": lambda: 3 + sum(1 + len(k.encode()) + _value_size(v) for k, v in data.items()),
    }
    return sizes[kind]()


def _typed(item: dict[str, Any]) -> dict[str, Any]:
    """The item as DynamoDB's typed values: boto3's Table resource (the baseline)
    passes plain Python values here, typed further down botocore's call path."""
    if all(isinstance(v, dict) and len(v) == 1 and set(v) <= _TYPES for v in item.values()):
        return item
    return {name: _SERIALIZER.serialize(value) for name, value in item.items()}


def _size_kb(item: dict[str, Any] | None) -> float:
    # DynamoDB bills on attribute names plus values, binary as its bytes.
    typed = _typed(item or {})
    return sum(len(name.encode()) + _value_size(v) for name, v in typed.items()) / 1024


@dataclass
class Meter:
    requests: Counter = field(default_factory=Counter)
    write_units: float = 0.0
    read_units: float = 0.0
    items_read: int = 0
    # Where the write units go: by table, the units and the items written.
    write_units_by_table: Counter = field(default_factory=Counter)
    items_written_by_table: Counter = field(default_factory=Counter)
    bytes_written_by_table: Counter = field(default_factory=Counter)
    largest_written_by_table: Counter = field(default_factory=Counter)

    def _wrote(self, table: str, item: dict | None, transactional: bool) -> None:
        size = _size_kb(item)
        units = (2 if transactional else 1) * max(1, math.ceil(size))
        self.bytes_written_by_table[table] += size * 1024
        self.largest_written_by_table[table] = max(
            self.largest_written_by_table[table], round(size * 1024)
        )
        self.write_units += units
        self.write_units_by_table[table] += units
        self.items_written_by_table[table] += 1

    def record(self, service: str, operation: str, params: dict, answer: dict) -> None:
        if service in UNBILLED or f"{service}:{operation}" in UNBILLED:
            return
        self.requests[f"{service}:{operation}"] += 1
        if service != "dynamodb":
            return
        if operation in WRITES:
            self._wrote(params.get("TableName", ""), params.get("Item"), transactional=False)
        elif operation == "TransactWriteItems":
            for entry in params.get("TransactItems", []):
                body = entry.get("Put") or entry.get("Update") or entry.get("Delete") or {}
                if body:
                    self._wrote(body.get("TableName", ""), body.get("Item"), transactional=True)
        elif operation == "TransactGetItems":
            for response in answer.get("Responses", []) or [{}]:
                self.read_units += 2 * max(1, math.ceil(_size_kb(response.get("Item")) / 4))
        elif operation in READS:
            self.items_read += answer.get("ScannedCount", answer.get("Count", 0))
            items = answer.get("Items") or [answer.get("Item")]
            size = sum(_size_kb(item) for item in items if item)
            # Eventually consistent reads (what both handlers use): half a unit per 4 KB.
            self.read_units += 0.5 * max(1, math.ceil(size / 4))

    def dynamodb_requests(self) -> int:
        return sum(n for name, n in self.requests.items() if name.startswith("dynamodb:"))

    def sqs_requests(self) -> int:
        return sum(n for name, n in self.requests.items() if name.startswith("sqs:"))

    def cost_per_million(self, webhooks: int) -> float:
        """USD per million webhooks at on-demand list prices (DynamoDB and SQS)."""
        per_webhook = (
            self.write_units * PRICE_PER_MILLION["WRU"]
            + self.read_units * PRICE_PER_MILLION["RRU"]
            + self.sqs_requests() * PRICE_PER_MILLION["SQS FIFO request"]
        ) / webhooks
        return per_webhook

    def clear(self) -> None:
        self.requests.clear()
        self.write_units = self.read_units = 0.0
        self.write_units_by_table.clear()
        self.items_written_by_table.clear()
        self.bytes_written_by_table.clear()
        self.largest_written_by_table.clear()


@contextmanager
def metering() -> Iterator[Meter]:
    meter = Meter()
    original = BaseClient._make_api_call

    def measured(client: BaseClient, operation: str, params: dict) -> Any:
        service = client.meta.service_model.service_name
        try:
            answer = original(client, operation, params)
        except ClientError as error:
            # A refused conditional write is a billed request too.
            meter.record(service, operation, params, error.response)
            raise
        meter.record(service, operation, params, answer)
        return answer

    BaseClient._make_api_call = measured
    try:
        yield meter
    finally:
        BaseClient._make_api_call = original
