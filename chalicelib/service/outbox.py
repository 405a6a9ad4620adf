"""The sending side of the outbox: committed rows handed to their SQS queues,
rows whose enqueue failed sent again, and finished rows given another go."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from pynamodb.exceptions import PynamoDBException

from chalicelib.observability import emit, logger
from chalicelib.service.changes import PENDING, QUEUED, STUCK_AFTER, sortable, unsent_marks
from chalicelib.service.errors import StorageUnavailableError
from chalicelib.store import queues
from chalicelib.store.queues import ALL_QUEUES, DELIVERIES, OUTBOX, Message, Queue
from chalicelib.store.records import UNSENT_SHARDS, OutboxRecord, due_from

# A row sent again and still unseen waits twice as long each time, up to this.
LONGEST_REQUEUE_WAIT = timedelta(hours=6)


def queue_for(row: OutboxRecord) -> Queue:
    return DELIVERIES if row.kind == "delivery" else OUTBOX


def _message(row: OutboxRecord) -> Message:
    order = row.order_group or row.outbox_id
    # Deliveries keep order per subscriber and order; a slow subscriber holds up only itself.
    group = f"{row.subscription_id}#{order}" if row.kind == "delivery" else f"{row.kind}#{order}"
    return Message(
        body={"outbox_id": row.outbox_id, "generation": row.generation},
        group=group,
        deduplication_id=f"{row.outbox_id}.{row.generation}",
    )


def enqueue(rows: Iterable[OutboxRecord]) -> None:
    """Hand committed rows to their queues. A failure loses nothing: the rows stay
    marked unsent, and `requeue` sends them again."""
    rows = list(rows)
    for queue in ALL_QUEUES:
        mine = [row for row in rows if queue_for(row) is queue]
        if not mine:
            continue
        try:
            queues.send(queue, [_message(row) for row in mine])
        except queues.QueueUnavailableError:
            logger.warning("enqueue failed; the requeue schedule will send these", exc_info=True)
            emit("OutboxEnqueueFailures", len(mine), queue=queue.name)


def requeue(now: datetime) -> int:
    """Send again the rows no consumer has seen for STUCK_AFTER (read from a
    sparse index, never a scan); each repeat waits twice as long."""
    stuck = due_from(OutboxRecord.unsent, UNSENT_SHARDS, OutboxRecord.requeue_at, sortable(now))
    for row in stuck:
        wait = min(STUCK_AFTER * 2 ** (row.requeues + 1), LONGEST_REQUEUE_WAIT)
        try:
            row.update(
                actions=[
                    OutboxRecord.requeue_at.set(sortable(now + wait)),
                    OutboxRecord.requeues.add(1),
                ],
                condition=OutboxRecord.unsent_shard.exists(),
            )
        except PynamoDBException:
            logger.info("seen by its consumer meanwhile", extra={"outbox_id": row.outbox_id})
    enqueue(stuck)
    if stuck:
        emit("OutboxRequeued", len(stuck))
    return len(stuck)


def again(rows: Iterable[OutboxRecord], now: datetime) -> list[OutboxRecord]:
    """Give finished (or dead-lettered) rows another go: a new generation, so any
    message of the old one still around does nothing; then enqueue them."""
    ready = []
    for row in rows:
        if row.kind == "event":
            continue
        shard, requeue_at = unsent_marks(row.outbox_id, now)
        try:
            row.update(
                actions=[
                    OutboxRecord.generation.add(1),
                    OutboxRecord.state.set(QUEUED if row.kind == "action" else PENDING),
                    OutboxRecord.error.remove(),
                    OutboxRecord.finished_at.remove(),
                    OutboxRecord.unsent_shard.set(shard),
                    OutboxRecord.requeue_at.set(requeue_at),
                ]
            )
        except PynamoDBException as error:
            raise StorageUnavailableError("could not reset the row for another go") from error
        ready.append(row)
    enqueue(ready)
    return ready


@dataclass(frozen=True)
class DeadLettered:
    letter: queues.DeadLetter
    row: OutboxRecord | None


def dead_lettered(queue: Queue, limit: int) -> list[DeadLettered]:
    """What sits in the queue's DLQ, with the outbox row each message is about."""
    letters = queues.dead_letters(queue, limit)
    rows = {
        row.outbox_id: row
        for row in OutboxRecord.batch_get([letter.body["outbox_id"] for letter in letters])
    }
    return [DeadLettered(letter, rows.get(letter.body["outbox_id"])) for letter in letters]


def replay_dead_letter(queue: Queue, held: DeadLettered, now: datetime) -> bool:
    """Give a dead-lettered row another go and take its message off the DLQ;
    False if the row had moved on (the stale message is dropped all the same)."""
    replayed = held.row is not None and held.row.state == "dead_lettered"
    if replayed:
        again([held.row], now)
    queues.forget_dead_letter(queue, held.letter)
    return replayed
