"""Outbound work, from the outbox to the outside world.

The outbox row is committed with the change that caused it; `enqueue` then
hands it to its SQS queue. The queues' consumers (`consume`):
- an action calls the platform's API, refreshing the shop's token once if the
  platform says the session is invalid;
- an event is fanned out: one delivery row per matching subscription, written
  in one transaction with the event's new state, then enqueued;
- a delivery is POSTed to the integrator, signed per Standard Webhooks.

Retryable failures wait (the message's visibility timeout) with backoff and
jitter; after the queue's budget the row shows `dead_lettered` and SQS moves
the message to the queue's DLQ. A message whose row is already finished, or
of an older generation (replayed since), does nothing: each piece of work
takes effect at most once. Rows whose enqueue failed after the commit stay
marked unsent and `requeue` sends them again.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from functools import cache
from time import perf_counter
from typing import TYPE_CHECKING, Any

import requests
from pynamodb.exceptions import PynamoDBException, TransactWriteError
from pynamodb.transactions import TransactGet, TransactWrite
from requests_hardened import Config, Manager
from requests_hardened.ip_filter import InvalidIPAddress
from standardwebhooks import Webhook

from chalicelib.config import (
    api_url,
    app_credentials,
    loopback_webhooks_allowed,
    outbound_timeout,
)
from chalicelib.domain.actions import Action, ReturnAddress
from chalicelib.observability import emit, logger, tracer
from chalicelib.platforms import registry
from chalicelib.platforms.api import CallOutcome, CallResult
from chalicelib.platforms.base import UnsupportedActionError
from chalicelib.service import outbox, subscriptions, tokens
from chalicelib.service.changes import (
    PENDING,
    QUEUED,
    outbox_row,
)
from chalicelib.service.errors import StorageUnavailableError, condition_failed, read_or_none
from chalicelib.store import codec, queues
from chalicelib.store.queues import Queue
from chalicelib.store.records import (
    ApiKeyRecord,
    Attempt,
    CaseRecord,
    OrderRecord,
    OutboxRecord,
    ShopRecord,
    SubscriptionRecord,
    SubscriptionRouteRecord,
    connection,
    entity_key,
    found,
)

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

FANNED_OUT = "fanned_out"
SENT = "sent"
DELIVERED = "delivered"
FAILED = "failed"
DEAD_LETTERED = "dead_lettered"
CANCELLED = "cancelled"
ACTIVE_STATES = frozenset({QUEUED, PENDING})


class Result(StrEnum):
    DONE = "done"
    RETRY = "retry"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Tried:
    """What one attempt came to."""

    result: Result
    error: str | None = None
    status_code: int | None = None
    latency_ms: float | None = None
    # A platform call whose answer is not known (none came, or its record was
    # lost) may have been carried out: an "already done" then means ours.
    uncertain: bool = False


class RetryLaterError(Exception):
    def __init__(self, seconds: int) -> None:
        super().__init__(f"retry in {seconds}s")
        self.seconds = seconds


class _MovedOnError(Exception):
    """The row was finished or replayed while this attempt was on its way."""


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
    row = read_or_none(OutboxRecord, outbox_id, "the outbox")
    if row is None or row.generation != generation or row.state not in ACTIVE_STATES:
        _nothing_to_send(outbox_id)
        return
    logger.set_correlation_id(row.outbox_id)
    logger.append_keys(shop_id=row.shop_id)
    if row.kind == "event":
        _fan_out(row, now)
        return
    queue = outbox.queue_for(row)
    try:
        tried = _call_platform(row, now) if row.kind == "action" else _post_webhook(row, now)
    except _MovedOnError:
        _nothing_to_send(outbox_id)
        return
    final = receive_count >= queue.retry.attempts
    state = _record(row, receive_count, tried, final, now)
    metric, latency = METRICS[row.kind]
    emit(metric, outcome=state if tried.result is not Result.RETRY or final else "retrying")
    if tried.latency_ms is not None:
        emit(latency, tried.latency_ms, "Milliseconds")
    logger.info(
        f"{row.kind} attempt",
        extra={"attempt": receive_count, "state": state, "error": tried.error},
    )
    if tried.result is Result.RETRY:
        # On the last attempt the message goes straight on to the DLQ.
        jitter = random.random()  # noqa: S311 - spreads retries, not a secret
        raise RetryLaterError(0 if final else queue.retry.wait_seconds(receive_count, jitter))


def _nothing_to_send(outbox_id: str) -> None:
    logger.info("already done: nothing to send", extra={"outbox_id": outbox_id})
    emit("OutboxAlreadyDone")


# (count by outcome, latency) per kind of outbound call.
METRICS = {"action": ("Actions", "ActionLatency"), "delivery": ("Deliveries", "DeliveryLatency")}
FINISHED_STATE = {
    Result.FAILED: FAILED,
    Result.CANCELLED: CANCELLED,
}


def _record(row: OutboxRecord, attempt: int, tried: Tried, final: bool, now: datetime) -> str:
    """Log the attempt on the row and move it to its new state; return the state."""
    if tried.result is Result.DONE:
        state = SENT if row.kind == "action" else DELIVERED
    elif tried.result is Result.RETRY:
        state = DEAD_LETTERED if final else row.state
    else:
        state = FINISHED_STATE[tried.result]
    entry = Attempt(
        attempt=attempt,
        at=now,
        outcome=tried.result,
        status_code=tried.status_code,
        latency_ms=round(tried.latency_ms, 1) if tried.latency_ms is not None else None,
        error=tried.error,
    )
    actions = [
        OutboxRecord.attempts.set(OutboxRecord.attempts.append([entry])),
        OutboxRecord.state.set(state),
        OutboxRecord.unsent_shard.remove(),
        OutboxRecord.requeue_at.remove(),
        OutboxRecord.error.set(tried.error)
        if tried.error and tried.result is not Result.DONE
        else OutboxRecord.error.remove(),
    ]
    if state not in ACTIVE_STATES or not tried.uncertain:
        actions.append(OutboxRecord.call_unresolved_since.remove())
    if state not in ACTIVE_STATES:
        actions.append(OutboxRecord.finished_at.set(now))
    try:
        row.update(actions=actions, condition=OutboxRecord.generation == row.generation)
    except PynamoDBException as error:
        if condition_failed(error):
            return state  # replayed meanwhile: the new generation has its own message
        raise StorageUnavailableError("could not record the attempt") from error
    return state


def _outcome(answer: CallResult, earlier_call_unresolved: bool) -> Tried:
    text = f"{answer.code}: {answer.message}" if answer.code or answer.message else None
    if answer.outcome is CallOutcome.SUCCESS:
        return Tried(Result.DONE)
    if answer.outcome is CallOutcome.ALREADY_DONE and earlier_call_unresolved:
        return Tried(
            Result.DONE, f"the platform had already done it: an earlier answer was lost ({text})"
        )
    if answer.outcome is CallOutcome.RETRYABLE:
        return Tried(Result.RETRY, text)
    if answer.outcome is CallOutcome.REFRESH_TOKEN:
        return Tried(Result.FAILED, f"the session is still refused after a token refresh ({text})")
    return Tried(Result.FAILED, text)


@tracer.capture_method(capture_response=False)
def _call_platform(row: OutboxRecord, now: datetime) -> Tried:
    earlier_call_unresolved = row.call_unresolved_since is not None
    tried = _try_platform(row, earlier_call_unresolved, now)
    return replace(tried, uncertain=tried.uncertain or earlier_call_unresolved)


def _try_platform(row: OutboxRecord, earlier_call_unresolved: bool, now: datetime) -> Tried:
    payload = json.loads(row.payload)
    platform_name = row.shop_id.partition(":")[0]
    platform = registry()[platform_name]
    subject_type = OrderRecord if payload["action"] == "ship" else CaseRecord
    subject_id = payload.get("order_id") or payload["case_id"]
    try:
        with TransactGet(connection=connection()) as read:
            shop_future = read.get(ShopRecord, row.shop_id)
            subject_future = read.get(subject_type, entity_key(platform_name, subject_id))
    except PynamoDBException as error:
        raise StorageUnavailableError("could not read the shop for the action") from error
    shop, subject = found(shop_future), found(subject_future)
    if shop is None or shop.sealed_tokens is None:
        return Tried(Result.FAILED, "the shop is not connected: the seller must reconnect it")
    if subject is None:
        return Tried(Result.FAILED, f"{subject_id} is no longer known")
    try:
        if payload["action"] == "ship":
            method, business = platform.ship_request(
                payload["order_id"], payload["tracking_no"], payload["carrier"]
            )
        else:
            address = payload.get("return_address")
            method, business = platform.action_request(
                row.shop_id,
                Action(payload["action"]),
                codec.CASE.decode(subject.document).snapshot,
                payload.get("reason") or "",
                ReturnAddress(**address) if address else None,
            )
    except UnsupportedActionError as error:
        return Tried(Result.FAILED, str(error))
    credentials, url = app_credentials(platform_name), api_url(platform_name)
    if credentials is None or url is None:
        return Tried(Result.RETRY, f"no {platform_name} API URL or app credentials are configured")
    # Opened first: a KMS failure then leaves the row as it was, with no call made.
    access_token = tokens.unsealed(shop).access_token
    _mark_calling(row, now)
    started = perf_counter()
    answer = platform.call(url, credentials, access_token, method, business, now)
    if answer.outcome is CallOutcome.REFRESH_TOKEN:
        if not tokens.refresh_shop(shop, now):
            return Tried(
                Result.FAILED,
                "the platform refused the shop's session and the token could not be "
                "refreshed: the seller must reconnect the shop",
            )
        answer = platform.call(
            url, credentials, tokens.unsealed(shop).access_token, method, business, now
        )
    tried = _outcome(answer, earlier_call_unresolved)
    return replace(tried, latency_ms=(perf_counter() - started) * 1000, uncertain=answer.uncertain)


def _mark_calling(row: OutboxRecord, now: datetime) -> None:
    """Write down that a call is going out, before it does: if its answer is then
    lost (the invocation dies, the record fails), the next attempt knows the
    platform may have carried it out."""
    try:
        row.update(
            actions=[
                OutboxRecord.call_unresolved_since.set(OutboxRecord.call_unresolved_since | now)
            ],
            condition=(OutboxRecord.generation == row.generation)
            & OutboxRecord.state.is_in(*ACTIVE_STATES),
        )
    except PynamoDBException as error:
        if condition_failed(error):
            raise _MovedOnError from error
        raise StorageUnavailableError("could not note the call before making it") from error


def _fan_out(event: OutboxRecord, now: datetime) -> None:
    """One delivery row per subscription that wants this event, committed with
    the event's new state, then enqueued."""
    try:
        routes = list(SubscriptionRouteRecord.query(event.shop_id))
    except PynamoDBException as error:
        raise StorageUnavailableError("could not read the subscriptions") from error
    deliveries = [
        outbox_row(
            subscriptions.delivery_id(event.outbox_id, route.subscription_id),
            "delivery",
            event.type,
            event.shop_id,
            json.loads(event.payload),
            now,
            event.order_group,
            subscription_id=route.subscription_id,
            position=event.position,
            event_id=event.outbox_id,
        )
        for route in routes
        if event.type in route.event_types
    ]
    try:
        with TransactWrite(connection=connection()) as write:
            for delivery in deliveries:
                write.save(delivery, condition=OutboxRecord.outbox_id.does_not_exist())
            write.update(
                event,
                actions=[
                    OutboxRecord.state.set(FANNED_OUT),
                    OutboxRecord.finished_at.set(now),
                    OutboxRecord.unsent_shard.remove(),
                    OutboxRecord.requeue_at.remove(),
                ],
                condition=OutboxRecord.state == PENDING,
            )
    except TransactWriteError as error:
        if condition_failed(error):
            logger.info("fanned out already", extra={"outbox_id": event.outbox_id})
            return
        raise StorageUnavailableError("could not fan the event out") from error
    outbox.enqueue(deliveries)
    emit("DeliveriesCreated", len(deliveries))


@cache
def _integrator_session(allow_loopback: bool, timeout: tuple[float, float]) -> requests.Session:
    """Resolves each host once, refuses non-public addresses, and connects to the
    address it checked (so DNS rebinding cannot swap it); never follows redirects."""
    return Manager(
        Config(
            ip_filter_enable=True,
            ip_filter_allow_loopback_ips=allow_loopback,
            never_redirect=True,
            default_timeout=timeout,
            user_agent_override="ShopHook-Webhooks/1.0",
        )
    ).get_session()


@tracer.capture_method(capture_response=False)
def _post_webhook(delivery: OutboxRecord, now: datetime) -> Tried:
    subscription = read_or_none(SubscriptionRecord, delivery.subscription_id, "the subscription")
    if subscription is None:
        return Tried(Result.CANCELLED, "the subscription was deleted")
    problem = subscriptions.url_problem(subscription.url, resolve=False)
    if problem is not None:
        return Tried(Result.FAILED, problem)
    sent_at = now.astimezone(UTC)
    signature = Webhook(subscriptions.signing_secret(subscription)).sign(
        delivery.event_id, sent_at, delivery.payload
    )
    headers = {
        "webhook-id": delivery.event_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }
    started = perf_counter()
    try:
        session = _integrator_session(loopback_webhooks_allowed(), outbound_timeout())
        answer = session.post(
            subscription.url, data=delivery.payload.encode(), headers=headers, stream=True
        )
        answer.close()
    except InvalidIPAddress:
        return Tried(Result.FAILED, "the URL resolves to an address ShopHook does not deliver to")
    except requests.Timeout:
        return Tried(Result.RETRY, "timed out", latency_ms=(perf_counter() - started) * 1000)
    except requests.RequestException as error:
        return Tried(Result.RETRY, f"could not connect ({type(error).__name__})")
    latency = (perf_counter() - started) * 1000
    status = answer.status_code
    if 200 <= status < 300:
        return Tried(Result.DONE, status_code=status, latency_ms=latency)
    retry = status in (408, 429) or status >= 500
    return Tried(
        Result.RETRY if retry else Result.FAILED,
        f"answered HTTP {status}",
        status_code=status,
        latency_ms=latency,
    )


def replay(key: ApiKeyRecord, subscription_id: str, raw_body: Any, now: datetime) -> dict:
    """Deliver again what an integrator asks for, delivered or not."""
    ready = outbox.again(subscriptions.to_replay(key, subscription_id, raw_body), now)
    return {"replayed": len(ready), "delivery_ids": [row.outbox_id for row in ready]}
