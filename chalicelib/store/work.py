"""Outbox rows: outbound work as stored, and every write that moves it along
its lifecycle (domain.work). Each write is guarded by the row's generation or
state, so a stale message or a lost race changes nothing."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pynamodb.transactions import TransactWrite

from chalicelib.domain.ids import EntityKind, EntityRef
from chalicelib.domain.work import ACTIVE, DONE_STATES, STARTS, Work, WorkKind, WorkState
from chalicelib.store.errors import ConditionFailedError, read_or_none, storage_errors
from chalicelib.store.records import (
    UNSENT_SHARDS,
    Attempt,
    CaseRecord,
    OrderRecord,
    OutboxRecord,
    connection,
    due_from,
)

# How long a row may wait for its queue's consumer before it is sent again.
STUCK_AFTER = timedelta(minutes=3)


def sortable(moment: datetime) -> str:
    """UTC, fixed width: sorts as text the way the times sort."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def shard_of(key: str, shards: int) -> str:
    """A stable shard of a sparse sharded index for `key`."""
    return str(int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % shards)


def unsent_marks(outbox_id: str, now: datetime) -> tuple[str, str]:
    """(shard, requeue time) of the sparse `unsent` index: the row is sent again
    at that time unless its consumer has seen it by then."""
    return shard_of(outbox_id, UNSENT_SHARDS), sortable(now + STUCK_AFTER)


@dataclass(frozen=True)
class NewWork:
    """Outbound work to store: an event, an action or a delivery."""

    outbox_id: str
    kind: WorkKind
    work_type: str
    shop_id: str
    payload: dict[str, Any]
    order_group: str | None = None
    # Events and deliveries: when, then which change and which of its events,
    # so that sorting by it is the order the events happened in.
    position: str | None = None
    subscription_id: str | None = None
    event_id: str | None = None
    # Actions: the order or case acted on (EntityRef.stream).
    subject: str | None = None


def _pending_mark(kind: WorkKind, subscription_id: str | None) -> str | None:
    """A delivery not done yet is listed under its subscription (sparse index)."""
    return subscription_id if kind is WorkKind.DELIVERY else None


def new_row(work: NewWork, now: datetime) -> OutboxRecord:
    shard, requeue_at = unsent_marks(work.outbox_id, now)
    return OutboxRecord(
        work.outbox_id,
        kind=work.kind,
        type=work.work_type,
        shop_id=work.shop_id,
        payload=json.dumps(work.payload, ensure_ascii=False, default=str),
        state=STARTS[work.kind],
        created_at=now,
        order_group=work.order_group,
        unsent_shard=shard,
        requeue_at=requeue_at,
        position=work.position or f"{sortable(now)}#{work.outbox_id}",
        subscription_id=work.subscription_id,
        event_id=work.event_id,
        subject=work.subject,
        pending_subscription=_pending_mark(work.kind, work.subscription_id),
    )


def held_row(work: NewWork, now: datetime, why: str) -> OutboxRecord:
    """A delivery recorded but not sent (its subscription is disabled): finished
    as cancelled, so that a replay of its time range sends it."""
    row = new_row(work, now)
    row.state = WorkState.CANCELLED
    row.error = why
    row.finished_at = now
    row.unsent_shard = row.requeue_at = row.pending_subscription = None
    return row


def work_of(row: OutboxRecord) -> Work:
    return Work(
        row.outbox_id,
        WorkKind(row.kind),
        row.type,
        int(row.generation),
        row.order_group,
        row.subscription_id,
    )


def read(outbox_id: str) -> OutboxRecord | None:
    return read_or_none(OutboxRecord, outbox_id, "the outbox")


def read_many(outbox_ids: Iterable[str]) -> dict[str, OutboxRecord]:
    with storage_errors("read the outbox"):
        return {row.outbox_id: row for row in OutboxRecord.batch_get(list(outbox_ids))}


_ENTITY_RECORDS: dict[EntityKind, type[OrderRecord | CaseRecord]] = {
    EntityKind.ORDER: OrderRecord,
    EntityKind.CASE: CaseRecord,
}


def save_guarded(work: NewWork, guard: EntityRef, version: int, now: datetime) -> Work:
    """Store the work unless the entity it was decided on has changed since
    `version` (ConditionFailedError)."""
    row = new_row(work, now)
    record = _ENTITY_RECORDS[guard.kind]
    with storage_errors("queue the work"), TransactWrite(connection=connection()) as write:
        write.condition_check(record, guard.key, condition=record.version == version)
        write.save(row)
    return work_of(row)


def save(rows: Iterable[OutboxRecord], with_record: Any = None) -> None:
    """Store new rows, with another record written in the same transaction (a
    shop whose new status the rows announce)."""
    with storage_errors("store outbound work"), TransactWrite(connection=connection()) as write:
        if with_record is not None:
            write.save(with_record)
        for row in rows:
            write.save(row)


def save_new(rows: Iterable[OutboxRecord]) -> list[OutboxRecord]:
    """Store the rows not stored yet, each on its own; return those stored (one
    already there was made by an earlier run of the same schedule)."""
    stored = []
    for row in rows:
        try:
            with storage_errors("store outbound work"):
                row.save(condition=OutboxRecord.outbox_id.does_not_exist())
        except ConditionFailedError:
            continue
        stored.append(row)
    return stored


# What one DynamoDB transaction may hold.
TRANSACTION_ITEMS = 100


def save_new_together(rows: Sequence[OutboxRecord]) -> list[OutboxRecord]:
    """Store the rows not stored yet, and return those stored: up to 100 in one
    transaction when none of them is there (the usual case: one request), each
    on its own when one is (the same work made again, by a stream record read
    twice)."""
    stored: list[OutboxRecord] = []
    for start in range(0, len(rows), TRANSACTION_ITEMS):
        chunk = rows[start : start + TRANSACTION_ITEMS]
        if len(chunk) == 1:
            stored += save_new(chunk)
            continue
        try:
            with (
                storage_errors("store outbound work"),
                TransactWrite(connection=connection()) as write,
            ):
                for row in chunk:
                    write.save(row, condition=OutboxRecord.outbox_id.does_not_exist())
        except ConditionFailedError:
            stored += save_new(chunk)
            continue
        stored += chunk
    return stored


def unsent_due(now: datetime) -> list[OutboxRecord]:
    """Rows no consumer has seen by their requeue time (a sparse index, never a scan)."""
    with storage_errors("read unsent work"):
        return due_from(OutboxRecord.unsent, UNSENT_SHARDS, OutboxRecord.requeue_at, sortable(now))


def postpone(row: OutboxRecord, until: datetime) -> bool:
    """Note that the row is being sent again; False if its consumer saw it meanwhile."""
    try:
        with storage_errors("postpone the requeue"):
            row.update(
                actions=[
                    OutboxRecord.requeue_at.set(sortable(until)),
                    OutboxRecord.requeues.add(1),
                ],
                condition=OutboxRecord.unsent_shard.exists(),
            )
    except ConditionFailedError:
        return False
    return True


def restart(row: OutboxRecord, now: datetime) -> Work:
    """Take a finished action or delivery back to its start for another go, as a
    new generation: a message of the old one still around then does nothing."""
    shard, requeue_at = unsent_marks(row.outbox_id, now)
    with storage_errors("reset the row for another go"):
        row.update(
            actions=[
                OutboxRecord.generation.add(1),
                OutboxRecord.state.set(STARTS[WorkKind(row.kind)]),
                OutboxRecord.error.remove(),
                OutboxRecord.finished_at.remove(),
                OutboxRecord.unsent_shard.set(shard),
                OutboxRecord.requeue_at.set(requeue_at),
                *_pending_again(row),
            ]
        )
    return work_of(row)


def _pending_again(row: OutboxRecord) -> list[Any]:
    mark = _pending_mark(WorkKind(row.kind), row.subscription_id)
    return [OutboxRecord.pending_subscription.set(mark)] if mark else []


@dataclass(frozen=True)
class AttemptRecord:
    """One try at outbound work, as the delivery log shows it."""

    attempt: int
    at: datetime
    outcome: str
    state: WorkState
    error: str | None = None
    status_code: int | None = None
    latency_ms: float | None = None
    # A platform call whose outcome is still unknown: keep the call note.
    call_unresolved: bool = False


def record_attempt(row: OutboxRecord, tried: AttemptRecord) -> None:
    """Log the attempt on the row and move it to its new state. A row replayed
    meanwhile is left to its new generation (which has its own message)."""
    entry = Attempt(
        attempt=tried.attempt,
        at=tried.at,
        outcome=tried.outcome,
        status_code=tried.status_code,
        latency_ms=round(tried.latency_ms, 1) if tried.latency_ms is not None else None,
        error=tried.error,
    )
    finished = tried.state not in ACTIVE
    actions = [
        OutboxRecord.attempts.set(OutboxRecord.attempts.append([entry])),
        OutboxRecord.state.set(tried.state),
        OutboxRecord.unsent_shard.remove(),
        OutboxRecord.requeue_at.remove(),
        # A done attempt may carry a note (the platform had done it already); the
        # row shows an error only while it is not done.
        OutboxRecord.error.set(tried.error)
        if tried.error and tried.state not in DONE_STATES
        else OutboxRecord.error.remove(),
    ]
    if finished or not tried.call_unresolved:
        actions.append(OutboxRecord.call_unresolved_since.remove())
    if finished:
        actions.append(OutboxRecord.finished_at.set(tried.at))
        actions.append(OutboxRecord.pending_subscription.remove())
    try:
        with storage_errors("record the attempt"):
            row.update(actions=actions, condition=OutboxRecord.generation == row.generation)
    except ConditionFailedError:
        return


def note_call(row: OutboxRecord, now: datetime) -> None:
    """Write down that a platform call is going out, before it does: if its answer
    is then lost, the next attempt knows the platform may have carried it out.
    ConditionFailedError: the row was finished or replayed meanwhile."""
    with storage_errors("note the call before making it"):
        row.update(
            actions=[
                OutboxRecord.call_unresolved_since.set(OutboxRecord.call_unresolved_since | now)
            ],
            condition=(OutboxRecord.generation == row.generation)
            & OutboxRecord.state.is_in(*ACTIVE),
        )


def _fanned_out(now: datetime) -> list[Any]:
    return [
        OutboxRecord.state.set(WorkState.FANNED_OUT),
        OutboxRecord.finished_at.set(now),
        OutboxRecord.unsent_shard.remove(),
        OutboxRecord.requeue_at.remove(),
    ]


def fan_out(event: OutboxRecord, deliveries: list[OutboxRecord], now: datetime) -> bool:
    """Store the event's deliveries with its new state, in one transaction; False
    if it was fanned out already, or one of the deliveries is there already."""
    try:
        with storage_errors("fan the event out"), TransactWrite(connection=connection()) as write:
            for delivery in deliveries:
                write.save(delivery, condition=OutboxRecord.outbox_id.does_not_exist())
            write.update(
                event, actions=_fanned_out(now), condition=OutboxRecord.state == WorkState.PENDING
            )
    except ConditionFailedError:
        return False
    return True


def mark_fanned_out(event: OutboxRecord, now: datetime) -> None:
    """The event's deliveries are stored: it is fanned out (if it was pending)."""
    try:
        with storage_errors("mark the event fanned out"):
            event.update(
                actions=_fanned_out(now), condition=OutboxRecord.state == WorkState.PENDING
            )
    except ConditionFailedError:
        return


def cancel_pending_deliveries(subscription_id: str, now: datetime, why: str) -> int:
    """Cancel every delivery of the subscription not done yet (read from the
    sparse index); their messages then find nothing to send. Returns how many.
    A delivery finished or replayed meanwhile is left as it is."""
    cancelled = 0
    with storage_errors("read the pending deliveries"):
        pending = list(OutboxRecord.pending_by_subscription.query(subscription_id))
    for row in pending:
        try:
            with storage_errors("cancel the delivery"):
                row.update(
                    actions=[
                        OutboxRecord.state.set(WorkState.CANCELLED),
                        OutboxRecord.error.set(why),
                        OutboxRecord.finished_at.set(now),
                        OutboxRecord.pending_subscription.remove(),
                        OutboxRecord.unsent_shard.remove(),
                        OutboxRecord.requeue_at.remove(),
                    ],
                    condition=(OutboxRecord.generation == row.generation)
                    & OutboxRecord.state.is_in(*ACTIVE),
                )
        except ConditionFailedError:
            continue
        cancelled += 1
    return cancelled
