"""The queues' consumers: each message is one attempt at one piece of outbound
work (an action for the platform, an event to fan out, a delivery to an
integrator, a shop's reconciliation pull, the detail call that completes a
thin message, or a shop's subscription to its platform's message channel),
recorded on its outbox row.

Retryable failures wait (the message's visibility timeout) with backoff and
jitter; after the queue's budget the row shows `dead_lettered` and SQS moves
the message to the queue's DLQ. A message whose row is already finished, or
of an older generation (replayed since), does nothing: each piece of work
takes effect at most once.
"""

from __future__ import annotations

import json
import random
from datetime import datetime
from typing import TYPE_CHECKING, Any

from chalicelib.domain.work import ACTIVE, AttemptResult, Tried, WorkKind, WorkState, after_attempt
from chalicelib.observability import emit, logger
from chalicelib.service import channel, fanout, outbox, platform_actions, reconcile
from chalicelib.store import queues, work
from chalicelib.store import subscriptions as stored_subscriptions
from chalicelib.store.errors import ConditionFailedError
from chalicelib.store.queues import Queue
from chalicelib.store.records import OutboxRecord

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

# (count by outcome, latency) per kind of outbound call.
METRICS = {
    WorkKind.ACTION: ("Actions", "ActionLatency"),
    WorkKind.DELIVERY: ("Deliveries", "DeliveryLatency"),
    WorkKind.PULL: ("ReconcileRuns", "ReconcileRunTime"),
    WorkKind.FETCH: ("DetailFetches", "DetailFetchLatency"),
    WorkKind.CHANNEL: ("ChannelCalls", "ChannelCallLatency"),
}
ATTEMPTS = {
    WorkKind.ACTION: platform_actions.attempt,
    WorkKind.DELIVERY: fanout.attempt,
    WorkKind.PULL: reconcile.attempt,
    WorkKind.FETCH: reconcile.fetch,
    WorkKind.CHANNEL: channel.attempt,
}


class RetryLaterError(Exception):
    def __init__(self, seconds: int) -> None:
        super().__init__(f"retry in {seconds}s")
        self.seconds = seconds


def consume(queue: Queue, event: dict[str, Any], now: datetime) -> dict[str, Any]:
    """An SQS-triggered invocation: each record handled, failures reported
    per record (the group's later messages wait, other groups go on)."""
    # Imported here: the batch utility loads pydantic models the API never needs.
    from aws_lambda_powertools.utilities.batch import (
        SqsFifoPartialProcessor,
        process_partial_response,
    )

    processor = SqsFifoPartialProcessor(skip_group_on_error=True)
    # A batch whose every record waits for a retry is normal here, not a function error.
    processor.raise_on_entire_batch_failure = False
    return process_partial_response(
        event=event,
        record_handler=lambda record: process(queue, record, now),
        processor=processor,
    )


def process(queue: Queue, record: SQSRecord, now: datetime) -> None:
    """One message; raises to keep it for a later attempt."""
    body = json.loads(record.body)
    try:
        attempt = int(record.attributes.approximate_receive_count)
        handle(body["outbox_id"], body["generation"], attempt, now)
    except RetryLaterError as later:
        queues.retry_later(queue, record.receipt_handle, later.seconds)
        raise


def handle(outbox_id: str, generation: int, receive_count: int, now: datetime) -> None:
    row = work.read(outbox_id)
    if row is None or row.generation != generation or row.state not in ACTIVE:
        _nothing_to_send(outbox_id)
        return
    logger.set_correlation_id(row.outbox_id)
    logger.append_keys(shop_id=row.shop_id)
    kind = WorkKind(row.kind)
    if kind is WorkKind.EVENT:
        fanout.fan_out(row, now)
        return
    try:
        tried = ATTEMPTS[kind](row, now)
    except ConditionFailedError:
        # Finished or replayed while this attempt was on its way.
        _nothing_to_send(outbox_id)
        return
    final = receive_count >= outbox.queue_for(kind).retry.attempts
    state = _record(row, kind, receive_count, tried, final, now)
    if kind is WorkKind.DELIVERY and state is WorkState.DEAD_LETTERED:
        stored_subscriptions.count_dead_lettered(row.subscription_id, +1)
    metric, latency = METRICS[kind]
    emit(metric, outcome=state if tried.result is not AttemptResult.RETRY or final else "retrying")
    if tried.latency_ms is not None:
        emit(latency, tried.latency_ms, "Milliseconds")
    logger.info(
        f"{kind} attempt", extra={"attempt": receive_count, "state": state, "error": tried.error}
    )
    if tried.result is AttemptResult.RETRY:
        # On the last attempt the message goes straight on to the DLQ.
        jitter = random.random()  # noqa: S311 - spreads retries, not a secret
        retry = outbox.queue_for(kind).retry
        raise RetryLaterError(0 if final else retry.wait_seconds(receive_count, jitter))


def _nothing_to_send(outbox_id: str) -> None:
    logger.info("already done: nothing to send", extra={"outbox_id": outbox_id})
    emit("OutboxAlreadyDone")


def _record(
    row: OutboxRecord, kind: WorkKind, attempt: int, tried: Tried, final: bool, now: datetime
) -> WorkState:
    state = after_attempt(kind, WorkState(row.state), tried.result, final)
    work.record_attempt(
        row,
        work.AttemptRecord(
            attempt=attempt,
            at=now,
            outcome=tried.result,
            state=state,
            error=tried.error,
            status_code=tried.status_code,
            latency_ms=tried.latency_ms,
            call_unresolved=tried.uncertain,
        ),
    )
    return state
