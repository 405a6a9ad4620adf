"""The committed changes are the outbox: every order or case write reaches this
consumer on its table's DynamoDB stream, with the item before and after. What
the write tells the outside world is decided again from the two, by the same
pure `domain.change.write` that ingest and the sweeper decided with, and becomes
work: an automatic action's outbox row, and one delivery per subscription that
wants an event (no event row: nothing is written for an event nobody wants).
So a webhook's request path writes no outbox row and sends no message.

A record is handled at least once (Lambda reads a batch again from the first
record that failed, and none after it is handled first): its rows are put only
if absent (in one transaction, or one by one once some are there), so a retry
makes none twice, and they are all sent again (a message for work done
already does nothing).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from chalicelib.domain.change import told
from chalicelib.domain.work import ACTIVE, WorkKind, WorkState
from chalicelib.observability import count_deadline_events, emit, logger
from chalicelib.service import fanout, outbox
from chalicelib.store import entities, work
from chalicelib.store import subscriptions as stored_subscriptions
from chalicelib.store.records import OutboxRecord, SubscriptionRouteRecord

Routes = Callable[[str], list[SubscriptionRouteRecord]]


def consume(event: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A stream-triggered invocation: its records in order, up to the first that
    fails, which is reported (with those after it unread) so that Lambda reads
    the batch again from there: a later write of the same item is never told
    before an earlier one."""
    # A shop's subscriptions, read once per invocation however many of its changes it holds.
    routes = functools.cache(stored_subscriptions.routes)
    for record in event["Records"]:
        try:
            tell(record, now, routes)
        except Exception:
            # Not a function error: the batch is read again from this record.
            logger.exception("a change could not be told; read again from it")
            return {"batchItemFailures": [{"itemIdentifier": record["dynamodb"]["SequenceNumber"]}]}
    return {"batchItemFailures": []}


def tell(
    stream_record: Mapping[str, Any],
    now: datetime,
    routes: Routes = stored_subscriptions.routes,
    queue: outbox.WorkQueue = outbox.SQS,
) -> list[OutboxRecord]:
    """Turn one committed write into its work, and send all of it: a row stored by
    an earlier read of the record may not have been sent (a message for work
    done already does nothing). Returns the rows stored now."""
    changed = entities.changed(stream_record)
    if changed is None:
        return []
    entity, outbound = told(changed.before, changed.after.state, changed.at)
    rows: list[OutboxRecord] = []
    for index, item in enumerate(outbound):
        row = entities.outbound_row(entity, item, index, changed.at, now)
        if item.kind is WorkKind.ACTION:
            rows.append(row)
        else:
            rows += fanout.deliveries_of(row, routes(item.shop_id), now)
    stored = work.save_new_together(rows)
    queue.send([work.work_of(row) for row in rows if WorkState(row.state) in ACTIVE])
    count_deadline_events([item.work_type for item in outbound])
    deliveries = sum(row.kind == WorkKind.DELIVERY for row in stored)
    if deliveries:
        emit("DeliveriesCreated", deliveries)
    return stored
