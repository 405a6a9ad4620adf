"""The sending side of the outbox: committed work handed to its SQS queue,
work whose enqueue failed sent again, and finished work given another go."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from chalicelib.domain.work import Work, WorkKind, WorkState
from chalicelib.observability import emit, logger
from chalicelib.store import queues, subscriptions, work
from chalicelib.store.errors import StorageUnavailableError
from chalicelib.store.queues import ALL_QUEUES, DELIVERIES, OUTBOX, Message, Queue
from chalicelib.store.records import OutboxRecord

# Work sent again and still unseen waits twice as long each time, up to this.
LONGEST_REQUEUE_WAIT = timedelta(hours=6)


class WorkQueue(Protocol):
    def send(self, items: Sequence[Work]) -> None:
        """Hand committed work to its queues. A failure loses nothing: the work
        stays marked unsent, and `requeue` sends it again."""
        ...


def queue_for(kind: WorkKind) -> Queue:
    return DELIVERIES if kind is WorkKind.DELIVERY else OUTBOX


def _message(item: Work) -> Message:
    order = item.order_group or item.outbox_id
    # Deliveries keep order per subscriber and order; a slow subscriber holds up only itself.
    group = (
        f"{item.subscription_id}#{order}"
        if item.kind is WorkKind.DELIVERY
        else f"{item.kind}#{order}"
    )
    return Message(
        body={"outbox_id": item.outbox_id, "generation": item.generation},
        group=group,
        deduplication_id=f"{item.outbox_id}.{item.generation}",
    )


class SqsQueues:
    """WorkQueue on the SQS FIFO queues."""

    def send(self, items: Sequence[Work]) -> None:
        for queue in ALL_QUEUES:
            mine = [item for item in items if queue_for(item.kind) is queue]
            if not mine:
                continue
            try:
                queues.send(queue, [_message(item) for item in mine])
            except queues.QueueUnavailableError:
                logger.warning(
                    "enqueue failed; the requeue schedule will send these", exc_info=True
                )
                emit("OutboxEnqueueFailures", len(mine), queue=queue.name)


SQS = SqsQueues()


def requeue(now: datetime, queue: WorkQueue = SQS) -> int:
    """Send again the work no consumer has seen for STUCK_AFTER; each repeat
    waits twice as long."""
    stuck = work.unsent_due(now)
    for row in stuck:
        wait = min(work.STUCK_AFTER * 2 ** (row.requeues + 1), LONGEST_REQUEUE_WAIT)
        try:
            postponed = work.postpone(row, now + wait)
        except StorageUnavailableError:
            # Sent all the same: the next requeue finds it again, and a message it
            # does not need does nothing.
            logger.warning("could not postpone the requeue", extra={"outbox_id": row.outbox_id})
            continue
        if not postponed:
            logger.info("seen by its consumer meanwhile", extra={"outbox_id": row.outbox_id})
    queue.send([work.work_of(row) for row in stuck])
    if stuck:
        emit("OutboxRequeued", len(stuck))
    return len(stuck)


def again(rows: Sequence[OutboxRecord], now: datetime, queue: WorkQueue = SQS) -> list[Work]:
    """Give finished (or dead-lettered) actions and deliveries another go."""
    ready = []
    for row in rows:
        if row.kind == WorkKind.EVENT:
            continue
        was_dead = row.state == WorkState.DEAD_LETTERED
        ready.append(work.restart(row, now))
        if was_dead and row.kind == WorkKind.DELIVERY:
            # The subscription's count of dead-lettered deliveries (its health).
            subscriptions.count_dead_lettered(row.subscription_id, -1)
    queue.send(ready)
    return ready


@dataclass(frozen=True)
class DeadLettered:
    letter: queues.DeadLetter
    row: OutboxRecord | None


def dead_lettered(queue: Queue, limit: int) -> list[DeadLettered]:
    """What sits in the queue's DLQ, with the outbox row each message is about."""
    letters = queues.dead_letters(queue, limit)
    rows = work.read_many(letter.body["outbox_id"] for letter in letters)
    return [DeadLettered(letter, rows.get(letter.body["outbox_id"])) for letter in letters]


def replay_dead_letter(queue: Queue, held: DeadLettered, now: datetime) -> bool:
    """Give a dead-lettered row another go and take its message off the DLQ;
    False if the row had moved on (the stale message is dropped all the same)."""
    replayed = held.row is not None and held.row.state == WorkState.DEAD_LETTERED
    if replayed:
        again([held.row], now)
    queues.forget_dead_letter(queue, held.letter)
    return replayed
