"""The deadline sweeper: reads only the deadlines whose time has come, from the
sharded `due` index (never a scan), and re-decides their entities with the
same rules and the same write shape as ingest."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from pynamodb.exceptions import PynamoDBException, TransactWriteError
from pynamodb.transactions import TransactGet, TransactWrite

from chalicelib.domain.rules import decide_case, decide_order
from chalicelib.observability import count_deadline_events, emit, logger, tracer
from chalicelib.policies import default_policy
from chalicelib.service import outbox, policy
from chalicelib.service.changes import sortable, stage_change
from chalicelib.service.errors import StorageUnavailableError, condition_failed
from chalicelib.store import codec
from chalicelib.store.records import (
    DEADLINE_SHARDS,
    CaseRecord,
    DeadlineRecord,
    OrderRecord,
    ShopRecord,
    connection,
    due_from,
    found,
)

MAX_ATTEMPTS = 3


@dataclass
class SweepReport:
    due: int = 0
    entities: int = 0
    events: list[str] = field(default_factory=list)


def due_deadlines(now: datetime) -> list[DeadlineRecord]:
    return due_from(DeadlineRecord.due, DEADLINE_SHARDS, DeadlineRecord.next_check, sortable(now))


@tracer.capture_method(capture_response=False)
def sweep(now: datetime) -> SweepReport:
    rows = due_deadlines(now)
    by_entity: dict[str, list[DeadlineRecord]] = defaultdict(list)
    for row in rows:
        by_entity[row.entity_key].append(row)
    report = SweepReport(due=len(rows), entities=len(by_entity))
    for entity_rows in by_entity.values():
        try:
            report.events += _sweep_entity(entity_rows, now)
        except StorageUnavailableError:
            # The rows stay due: the next sweep takes them up again.
            logger.exception("deadline sweep failed", extra={"entity": entity_rows[0].entity_key})
    count_deadline_events(report.events)
    emit("DeadlinesDue", report.due)
    return report


def _sweep_entity(rows: list[DeadlineRecord], now: datetime) -> list[str]:
    first = rows[0]
    platform, kind, entity_id = first.entity_key.split("#", 2)
    key = f"{platform}#{entity_id}"
    refresh = frozenset(row.rule for row in rows)
    for _ in range(MAX_ATTEMPTS):
        try:
            if kind == "case":
                with TransactGet(connection=connection()) as read:
                    case_future = read.get(CaseRecord, key)
                    order_future = read.get(OrderRecord, first.order_key)
                    shop_future = read.get(ShopRecord, first.shop_id)
                record, order_record, shop = (
                    found(case_future),
                    found(order_future),
                    found(shop_future),
                )
                held = codec.decoded(record)
                new = decide_case(policy.for_shop(shop), held, codec.decoded(order_record), now)
            else:
                record = OrderRecord.get(key)
                held = codec.decoded(record)
                new = decide_order(default_policy(platform), held, now)
            with TransactWrite(connection=connection()) as write:
                outbound = stage_change(write, record, held, new, now, refresh)
            outbox.enqueue(outbound)
            return [row.type for row in outbound]
        except TransactWriteError as error:
            if condition_failed(error):
                continue
            raise StorageUnavailableError("could not write the sweep") from error
        except PynamoDBException as error:
            raise StorageUnavailableError("could not read for the sweep") from error
    raise StorageUnavailableError("the entity kept changing during the sweep")
