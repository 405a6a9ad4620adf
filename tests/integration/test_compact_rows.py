"""Documents and payloads are stored deflated (DynamoDB bills writes by the
kilobyte), read back as the text they were, and rows stored as plain text
before still read."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import boto3
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.ids import EntityRef
from chalicelib.store import entities
from chalicelib.store.records import CompressedTextAttribute, OrderRecord, OutboxRecord
from simulator.scenarios import taobao_order
from tests.support import NOW, told

ATTRIBUTE = CompressedTextAttribute()


@given(st.text(max_size=3000))
def test_any_text_reads_back_as_it_was_stored(text):
    assert ATTRIBUTE.deserialize(ATTRIBUTE.serialize(text)) == text


def _dynamodb() -> Any:
    return boto3.client("dynamodb", region_name="us-east-1")


def _stored(record: type[OrderRecord | OutboxRecord], key: str) -> dict:
    """The item as DynamoDB holds it, typed values and all."""
    name = record._hash_keyname
    return _dynamodb().get_item(TableName=record.Meta.table_name, Key={name: {"S": key}})["Item"]


def test_an_order_and_its_events_are_stored_deflated_and_read_back_whole(stack, every_event):
    stack.deliver(taobao_order("3090001", NOW - timedelta(hours=2))[1])
    (event, *_) = told()
    stored = _stored(OutboxRecord, event.outbox_id)["payload"]
    assert set(stored) == {"B"}
    assert len(stored["B"]) < len(event.payload.encode())
    assert json.loads(event.payload)["type"] == event.type
    ref = EntityRef.order("taobao", "3090001")
    document = _stored(OrderRecord, ref.key)["document"]
    assert set(document) == {"B"}
    assert entities.read(ref).state.order_id == "3090001"


def test_rows_stored_as_plain_text_before_still_read(stack, every_event):
    stack.deliver(taobao_order("3090002", NOW - timedelta(hours=2))[1])
    ref = EntityRef.order("taobao", "3090002")
    order = OrderRecord.get(ref.key)
    (event, *_) = told()
    for table, item, name, text in (
        (OrderRecord, _stored(OrderRecord, ref.key), "document", order.document),
        (OutboxRecord, _stored(OutboxRecord, event.outbox_id), "payload", event.payload),
    ):
        _dynamodb().put_item(TableName=table.Meta.table_name, Item={**item, name: {"S": text}})
    assert _stored(OrderRecord, ref.key)["document"] == {"S": order.document}
    assert entities.read(ref).state.order_id == "3090002"
    assert OrderRecord.get(ref.key).document == order.document
    assert OutboxRecord.get(event.outbox_id).payload == event.payload
