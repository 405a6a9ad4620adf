"""Receive a webhook: verify, parse, store once, acknowledge.

Storing is load (store.entities), decide (domain.change, pure) and commit, in
one transaction guarded by the versions read; a lost race reads and decides
again. What the change tells the outside world follows from the committed
rows (service.changes, on their stream); a thin message's detail call is
committed with the change and handed to its queue after the commit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from time import perf_counter
from typing import Any

from chalicelib.domain.change import Receipt, cases_to_redecide, decide, with_cases
from chalicelib.domain.model import Inbound
from chalicelib.domain.state import ShopMismatchError
from chalicelib.domain.work import Work
from chalicelib.observability import emit, logger, tracer
from chalicelib.platforms import registry
from chalicelib.platforms.base import (
    MAX_BODY_BYTES,
    InboundRequest,
    MalformedMessageError,
    Platform,
    VerifiedDelivery,
    WebhookRejectedError,
)
from chalicelib.policies import default_policy
from chalicelib.service import outbox
from chalicelib.service.errors import NotFoundError
from chalicelib.settings import settings
from chalicelib.store.entities import ENTITIES, AlreadyStoredError, EntityStore, Quarantined
from chalicelib.store.errors import ConditionFailedError, StorageUnavailableError

# Optimistic concurrency: another webhook for the same entity won the race.
MAX_ATTEMPTS = 3

RECEIPT_METRICS = {
    Receipt.APPLIED: "WebhookApplied",
    Receipt.STALE: "WebhookStale",
    Receipt.DUPLICATE: "WebhookDuplicate",
    Receipt.SHOP_NOT_CONNECTED: "WebhookForUnconnectedShop",
    Receipt.FETCHING: "WebhookThin",
}


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict[str, Any]


@tracer.capture_method(capture_response=False)
def receive(
    platform_name: str,
    request: InboundRequest,
    now: datetime,
    store: EntityStore = ENTITIES,
    queue: outbox.WorkQueue = outbox.SQS,
) -> Reply:
    platform = registry().get(platform_name)
    if platform is None:
        raise NotFoundError("unknown_platform", f"no webhook endpoint for '{platform_name}'")
    started = perf_counter()
    logger.append_keys(platform=platform.name)
    emit("WebhookReceived", platform=platform.name)
    try:
        delivery = _verify(platform, request, now)
    except StorageUnavailableError as failure:
        # The app's secret could not be read: the platform delivers again later.
        logger.exception("webhook not verified")
        return Reply(503, platform.failure("secret_unavailable", str(failure)))
    except WebhookRejectedError as rejection:
        # The total per platform is what alarms watch; the reasons are for diagnosis.
        emit("WebhookRejected", platform=platform.name)
        emit("WebhookRejectedByReason", platform=platform.name, reason=rejection.code)
        logger.warning("webhook rejected", extra={"reason": rejection.code})
        return Reply(rejection.status, platform.failure(rejection.code, rejection.message))
    reply = _store(platform, delivery, now, store, queue)
    emit("IngestLatency", (perf_counter() - started) * 1000, "Milliseconds", platform=platform.name)
    return reply


def reprocess(
    platform_name: str,
    raw_body: bytes,
    params: dict[str, str],
    now: datetime,
    store: EntityStore = ENTITIES,
    queue: outbox.WorkQueue = outbox.SQS,
) -> Reply:
    """Parse and store a message that was verified when it arrived (a quarantined
    one, after a fix): the same path as a live webhook from verification on."""
    platform = registry()[platform_name]
    delivery = VerifiedDelivery(platform.name, raw_body, params)
    return _store(platform, delivery, now, store, queue, whole_push=False)


def _verify(platform: Platform, request: InboundRequest, now: datetime) -> VerifiedDelivery:
    if len(request.raw_body) > MAX_BODY_BYTES:
        raise WebhookRejectedError(
            413, "body_too_large", f"body is over {MAX_BODY_BYTES // 1024} KiB"
        )
    credentials = settings().platform(platform.name).credentials
    if credentials is None:
        raise WebhookRejectedError(
            401, "unknown_app_key", f"no {platform.name} app is configured in ShopHook"
        )
    return platform.verify(request, credentials, now)


def _store(
    platform: Platform,
    delivery: VerifiedDelivery,
    now: datetime,
    store: EntityStore,
    queue: outbox.WorkQueue,
    whole_push: bool = True,
) -> Reply:
    """Store each message the push carries. The answer is the platform's ack only
    when every one is stored or quarantined; a storage failure answers 503 at once
    (the platform redelivers the push, and what was stored is held already). A
    quarantined message answers 422 unless it came in a push of an array (the
    array is acked: redelivering it would not mend the one), and always when
    `whole_push` is False (a quarantined message reprocessed: the caller keeps it
    unless it is stored)."""
    quarantined: list[MalformedMessageError] = []
    try:
        try:
            messages = platform.messages(delivery)
        except MalformedMessageError as malformed:
            with _reported_if_not_kept(platform):
                _quarantine(platform, delivery, malformed, now, store)
            return _malformed_reply(platform, malformed)
        for message in messages:
            settled = store_delivery(platform, message, now, store, queue)
            if settled.malformed is not None:
                quarantined.append(settled.malformed)
    except StorageUnavailableError as failure:
        return Reply(503, platform.failure("storage_unavailable", str(failure)))
    if quarantined and not (whole_push and platform.pushes_arrays):
        return _malformed_reply(platform, quarantined[0])
    return Reply(200, platform.ack())


def _malformed_reply(platform: Platform, malformed: MalformedMessageError) -> Reply:
    return Reply(
        422,
        {
            **platform.failure("malformed_message", f"{malformed.field}: {malformed.message}"),
            "field": malformed.field,
        },
    )


@dataclass(frozen=True)
class Settled:
    """What became of one verified message: stored (what the store made of it) or
    quarantined (why). Either way the platform may stop delivering it."""

    receipt: Receipt | None = None
    malformed: MalformedMessageError | None = None


def store_delivery(
    platform: Platform,
    delivery: VerifiedDelivery,
    now: datetime,
    store: EntityStore = ENTITIES,
    queue: outbox.WorkQueue = outbox.SQS,
) -> Settled:
    """Parse and store once one verified message (of a push, or taken from a
    channel), quarantining the malformed, and queue the work it caused; raises
    StorageUnavailableError when it could not be kept (the platform delivers it
    again)."""
    message_id = platform.message_id(delivery)
    if message_id is not None:
        logger.set_correlation_id(f"{platform.name}:{message_id}")
    with _reported_if_not_kept(platform):
        try:
            inbound = platform.parse(delivery)
            logger.append_keys(shop_id=inbound.shop_id)
            receipt, work = store_once(inbound, now, store)
        except MalformedMessageError as malformed:
            _quarantine(platform, delivery, malformed, now, store)
            return Settled(malformed=malformed)
    queue.send(work)
    emit(RECEIPT_METRICS[receipt], platform=platform.name)
    logger.info("webhook stored", extra={"topic": inbound.topic, "outcome": receipt})
    return Settled(receipt=receipt)


@contextmanager
def _reported_if_not_kept(platform: Platform) -> Iterator[None]:
    """Count and log a delivery that could not be kept, whether it failed as one
    message or as a whole push quarantined."""
    try:
        yield
    except StorageUnavailableError:
        emit("WebhookStorageFailure", platform=platform.name)
        logger.exception("webhook not stored")
        raise


def store_once(inbound: Inbound, now: datetime, store: EntityStore) -> tuple[Receipt, list[Work]]:
    """Store the message once: load, decide, commit (again if the entity changed
    meanwhile). Returns what became of it and the outbound work it caused."""
    policy = default_policy(inbound.platform)
    for _ in range(MAX_ATTEMPTS):
        held = store.load(inbound)
        try:
            change = decide(held, inbound, policy, now)
        except ShopMismatchError as mismatch:
            raise MalformedMessageError("shop_id", str(mismatch)) from None
        if not change.written:
            return Receipt.DUPLICATE, []
        pending = cases_to_redecide(change)
        if pending is not None:
            cases = store.load_cases(*pending)
            # A courier scan names no shop; the cases do.
            shop = held.shop or (store.shop(cases[0].state.shop_id) if cases else None)
            change = with_cases(change, cases, shop, policy, now)
        try:
            return change.receipt, store.commit(change)
        except AlreadyStoredError:
            return Receipt.DUPLICATE, []
        except ConditionFailedError:
            continue
    raise StorageUnavailableError("the entity kept changing underneath this message")


def _quarantine(
    platform: Platform,
    delivery: VerifiedDelivery,
    malformed: MalformedMessageError,
    now: datetime,
    store: EntityStore,
) -> None:
    store.quarantine(
        Quarantined(
            platform.name,
            platform.message_id(delivery),
            delivery.raw_body,
            delivery.params,
            malformed.field,
            malformed.message,
        ),
        now,
    )
    emit("WebhookQuarantined", platform=platform.name)
    logger.warning(
        "webhook quarantined", extra={"field": malformed.field, "error": malformed.message}
    )
