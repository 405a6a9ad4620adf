"""The committed changes as the outbox: what an order's or case's write tells is
read from its table's stream (service.changes), at least once, and its work is
made exactly once."""

from __future__ import annotations

from datetime import timedelta

from chalicelib.store import queues
from chalicelib.store.records import OutboxRecord
from shophook.driver import forget_stream_positions
from simulator.scenarios import taobao_order
from tests.support import NOW, tell_changes, told

PAID = taobao_order("3110001", NOW - timedelta(hours=2))[1]


def queued_deliveries() -> int:
    url = queues.client().get_queue_url(QueueName=queues.DELIVERIES.queue_name())["QueueUrl"]
    attributes = queues.client().get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def rows() -> dict[str, str]:
    return {row.outbox_id: row.state for row in OutboxRecord.scan()}


def test_a_change_read_again_from_its_stream_makes_nothing_twice(every_event, aws_calls):
    assert every_event.deliver(PAID).status == 200
    assert sorted(row.type for row in told()) == ["order.created", "order.paid"]
    made, sent = rows(), queued_deliveries()
    assert sent == 2
    # Lambda reads a batch again after a failure or a timeout: from the start here.
    forget_stream_positions()
    aws_calls.clear()
    assert tell_changes() >= 1
    assert (rows(), queued_deliveries()) == (made, sent)
    assert "SendMessageBatch" not in aws_calls.operations


def test_a_record_whose_work_could_not_be_stored_is_read_again(every_event, faults):
    assert every_event.deliver(PAID).status == 200
    faults.fail_next("TransactWriteItems", code="InternalServerError")
    tell_changes()
    assert faults.injected == 1
    assert list(OutboxRecord.scan()) == []
    # The record failed with its delivery rows unwritten; the next poll reads it
    # again, and both deliveries are there once.
    tell_changes()
    assert sorted(row.type for row in OutboxRecord.scan()) == ["order.created", "order.paid"]
    assert queued_deliveries() == 2


def test_an_event_nobody_subscribed_to_writes_and_sends_nothing(stack, aws_calls):
    assert stack.deliver(PAID).status == 200
    aws_calls.clear()
    assert tell_changes() == 1
    told_with = [op for op in aws_calls.operations if op not in {"GetRecords", "DescribeTable"}]
    # The shop's subscriptions read once: no outbox row, no message.
    assert "Query" in told_with
    assert not {"PutItem", "TransactWriteItems", "SendMessageBatch"} & set(told_with)
    assert rows() == {}
