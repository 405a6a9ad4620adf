"""The committed changes as the outbox: what an order's or case's write tells is
read from its table's stream (service.changes), at least once, and its work is
made exactly once."""

from __future__ import annotations

import json
from datetime import timedelta

from chalicelib.domain.work import WorkKind, WorkState
from chalicelib.service import fanout
from chalicelib.store import queues, work
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


def test_a_change_read_again_from_its_stream_makes_nothing_twice(every_event):
    assert every_event.deliver(PAID).status == 200
    assert sorted(row.type for row in told()) == ["order.created", "order.paid"]
    made = rows()
    assert queued_deliveries() == 2
    # Lambda reads a batch again after a failure or a timeout: from the start here.
    # Its work is sent again (it may not have been), under the same deduplication ids.
    forget_stream_positions()
    assert tell_changes() >= 1
    assert (rows(), queued_deliveries()) == (made, 2)


def test_a_failed_record_is_read_again_before_any_later_write_is_told(every_event, faults):
    created, paid = taobao_order("3110002", NOW - timedelta(hours=2))[:2]
    for message in (created, paid):
        assert every_event.deliver(message).status == 200
    faults.fail_next("PutItem", code="InternalServerError")
    tell_changes()
    assert faults.injected == 1
    # The order's first write failed: its second is not told before it.
    assert rows() == {}
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


def test_an_event_row_from_before_the_streams_is_fanned_out_once(every_event):
    """Written by the code a deploy replaces, after the stream was on: the
    stream told its event too, and its fan-out finds the deliveries there."""
    assert every_event.deliver(PAID).status == 200
    (delivery, *_) = told()
    made = rows()
    event = work.new_row(
        work.NewWork(
            delivery.event_id,
            WorkKind.EVENT,
            delivery.type,
            delivery.shop_id,
            json.loads(delivery.payload),
            delivery.order_group,
            delivery.position,
        ),
        NOW,
    )
    event.save()
    fanout.fan_out(event, NOW)
    assert work.read(event.outbox_id).state == WorkState.FANNED_OUT
    assert {key: state for key, state in rows().items() if key != event.outbox_id} == made
