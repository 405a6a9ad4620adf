"""Receive a webhook: verify, parse, store once, acknowledge.

AWS budget per webhook: one TransactGetItems (inbox row, entity row, shop) and
one TransactWriteItems (inbox row put only if absent, entity row guarded by its
version, event-log row, outbox rows), then one SQS send if there is outbound
work. A duplicate is answered after the read alone. A well-signed message
that cannot be applied costs one UpdateItem (quarantine). A change to an
order that has after-sale cases reads them too (one more TransactGetItems)
and re-decides them in the same write; a new case is noted on its order.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from time import perf_counter
from typing import Any

from pynamodb.exceptions import PynamoDBException, TransactWriteError
from pynamodb.transactions import TransactGet, TransactWrite

from chalicelib.config import app_credentials
from chalicelib.domain.model import CaseState, Inbound, OrderState
from chalicelib.domain.rules import decide_case, decide_order
from chalicelib.domain.state import ShopMismatchError, apply, entity_of
from chalicelib.observability import count_deadline_events, emit, logger, tracer
from chalicelib.platforms import registry
from chalicelib.platforms.base import (
    InboundRequest,
    MalformedMessageError,
    Platform,
    VerifiedDelivery,
    WebhookRejectedError,
)
from chalicelib.policies import default_policy
from chalicelib.service import outbox, policy
from chalicelib.service.changes import stage_change
from chalicelib.service.errors import ApiError, StorageUnavailableError, read_or_none
from chalicelib.store import codec
from chalicelib.store.records import (
    RECEIVING_STATUSES,
    CaseRecord,
    EventLogRecord,
    InboxRecord,
    OrderRecord,
    OutboxRecord,
    QuarantineRecord,
    ShopRecord,
    connection,
    entity_key,
    found,
)

MAX_BODY_BYTES = 256 * 1024
# Platforms redeliver for days at most; the inbox remembers message ids for longer.
INBOX_RETENTION = timedelta(days=30)
# Optimistic concurrency: another webhook for the same entity won the race.
MAX_ATTEMPTS = 3
CONDITION_FAILED = "ConditionalCheckFailed"


class Outcome(StrEnum):
    APPLIED = "applied"
    STALE = "stale"
    DUPLICATE = "duplicate"
    SHOP_NOT_CONNECTED = "shop_not_connected"


OUTCOME_METRICS = {
    Outcome.APPLIED: "WebhookApplied",
    Outcome.STALE: "WebhookStale",
    Outcome.DUPLICATE: "WebhookDuplicate",
    Outcome.SHOP_NOT_CONNECTED: "WebhookForUnconnectedShop",
}


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict[str, Any]


class _ConcurrentUpdateError(Exception):
    pass


@tracer.capture_method(capture_response=False)
def receive(platform_name: str, request: InboundRequest, now: datetime) -> Reply:
    platform = registry().get(platform_name)
    if platform is None:
        raise ApiError(404, "unknown_platform", f"no webhook endpoint for '{platform_name}'")
    started = perf_counter()
    logger.append_keys(platform=platform.name)
    emit("WebhookReceived", platform=platform.name)
    try:
        delivery = _verify(platform, request, now)
    except WebhookRejectedError as rejection:
        # The total per platform is what alarms watch; the reasons are for diagnosis.
        emit("WebhookRejected", platform=platform.name)
        emit("WebhookRejectedByReason", platform=platform.name, reason=rejection.code)
        logger.warning("webhook rejected", extra={"reason": rejection.code})
        return Reply(rejection.status, platform.failure(rejection.code, rejection.message))
    try:
        reply = _store(platform, delivery, now)
    except StorageUnavailableError as failure:
        emit("WebhookStorageFailure", platform=platform.name)
        logger.exception("webhook not stored")
        reply = Reply(503, platform.failure("storage_unavailable", str(failure)))
    emit("IngestLatency", (perf_counter() - started) * 1000, "Milliseconds", platform=platform.name)
    return reply


def reprocess(platform_name: str, raw_body: bytes, params: dict[str, str], now: datetime) -> Reply:
    """Parse and store a message that was verified when it arrived (a quarantined
    one, after a fix): the same path as a live webhook from verification on."""
    platform = registry()[platform_name]
    try:
        return _store(platform, VerifiedDelivery(platform.name, raw_body, params), now)
    except StorageUnavailableError as failure:
        return Reply(503, platform.failure("storage_unavailable", str(failure)))


def _verify(platform: Platform, request: InboundRequest, now: datetime) -> VerifiedDelivery:
    if len(request.raw_body) > MAX_BODY_BYTES:
        raise WebhookRejectedError(
            413, "body_too_large", f"body is over {MAX_BODY_BYTES // 1024} KiB"
        )
    credentials = app_credentials(platform.name)
    if credentials is None:
        raise WebhookRejectedError(
            401, "unknown_app_key", f"no {platform.name} app is configured in ShopHook"
        )
    return platform.verify(request, credentials, now)


def _store(platform: Platform, delivery: VerifiedDelivery, now: datetime) -> Reply:
    message_id = platform.message_id(delivery)
    if message_id is not None:
        logger.set_correlation_id(f"{platform.name}:{message_id}")
    try:
        inbound = platform.parse(delivery)
        logger.append_keys(shop_id=inbound.shop_id)
        outcome, outbound = _store_once(inbound, now)
    except MalformedMessageError as malformed:
        _quarantine(platform, delivery, malformed, now)
        emit("WebhookQuarantined", platform=platform.name)
        logger.warning(
            "webhook quarantined",
            extra={"field": malformed.field, "error": malformed.message},
        )
        return Reply(
            422,
            {
                **platform.failure("malformed_message", f"{malformed.field}: {malformed.message}"),
                "field": malformed.field,
            },
        )
    outbox.enqueue(outbound)
    emit(OUTCOME_METRICS[outcome], platform=platform.name)
    count_deadline_events([row.type for row in outbound])
    logger.info("webhook stored", extra={"topic": inbound.topic, "outcome": outcome})
    return Reply(200, platform.ack())


def _store_once(inbound: Inbound, now: datetime) -> tuple[Outcome, list[OutboxRecord]]:
    for _ in range(MAX_ATTEMPTS):
        try:
            return _read_apply_write(inbound, now)
        except _ConcurrentUpdateError:
            continue
    raise StorageUnavailableError("the entity kept changing underneath this message")


def _read_apply_write(inbound: Inbound, now: datetime) -> tuple[Outcome, list[OutboxRecord]]:
    """Store the message once; return the outcome and the outbound work it caused."""
    event = inbound.event
    kind, entity_id = entity_of(event)
    record_type: type[OrderRecord | CaseRecord] = CaseRecord if kind == "case" else OrderRecord
    key = entity_key(inbound.platform, entity_id)
    message_key = entity_key(inbound.platform, inbound.message_id)
    try:
        with TransactGet(connection=connection()) as read:
            inbox_future = read.get(InboxRecord, message_key)
            held_future = read.get(record_type, key)
            shop_future = read.get(ShopRecord, inbound.shop_id) if inbound.shop_id else None
            # The rules decide a case with its order in view.
            order_future = (
                read.get(OrderRecord, entity_key(inbound.platform, event.order_id))
                if kind == "case"
                else None
            )
    except PynamoDBException as error:
        raise StorageUnavailableError("could not read current state") from error
    if found(inbox_future) is not None:
        return Outcome.DUPLICATE, []
    held_record = found(held_future)
    shop = found(shop_future)
    held = codec.decoded(held_record)

    if inbound.shop_id is not None and (shop is None or shop.status not in RECEIVING_STATUSES):
        outcome, state = Outcome.SHOP_NOT_CONNECTED, None
    else:
        state = _apply(inbound, held)
        outcome = Outcome.APPLIED if state is not None else Outcome.STALE
    order_record = found(order_future)
    cases: list[tuple[CaseRecord, CaseState, CaseState]] = []
    if isinstance(state, CaseState):
        state = decide_case(policy.for_shop(shop), state, codec.decoded(order_record), now)
    elif isinstance(state, OrderState):
        # Order rules use the platform's policy: a courier scan may not name its shop.
        state = decide_order(default_policy(inbound.platform), state, now)
        if state != held:
            cases = _redecided_cases(held_record, state, shop, now)

    outbound: list[OutboxRecord] = []
    try:
        with TransactWrite(connection=connection()) as write:
            write.save(
                InboxRecord(
                    message_key,
                    shop_id=inbound.shop_id,
                    topic=inbound.topic,
                    outcome=outcome,
                    received_at=now,
                    expires_at=now + INBOX_RETENTION,
                ),
                condition=InboxRecord.message_key.does_not_exist(),
            )
            if state is not None:
                outbound = stage_change(write, held_record or record_type(key), held, state, now)
            if isinstance(state, CaseState) and held is None:
                _link_case(write, order_record, state)
            for case_record, held_case, new_case in cases:
                outbound += stage_change(write, case_record, held_case, new_case, now)
            write.save(
                EventLogRecord(
                    f"{inbound.platform}#{kind}#{entity_id}",
                    f"{now.isoformat()}#{inbound.message_id}",
                    shop_id=inbound.shop_id,
                    platform=inbound.platform,
                    message_id=inbound.message_id,
                    topic=inbound.topic,
                    outcome=outcome,
                    event_type=type(event).__name__,
                    event=codec.EVENT.encode(event),
                    received_at=now,
                )
            )
    except TransactWriteError as error:
        reasons = [reason.code if reason else None for reason in error.cancellation_reasons]
        if reasons and reasons[0] == CONDITION_FAILED:
            return Outcome.DUPLICATE, []
        if CONDITION_FAILED in reasons:
            raise _ConcurrentUpdateError from error
        raise StorageUnavailableError("could not write the message") from error
    return outcome, outbound


def _redecided_cases(
    order_record: OrderRecord | None, order: OrderState, shop: ShopRecord | None, now: datetime
) -> list[tuple[CaseRecord, CaseState, CaseState]]:
    """The order's cases whose decisions or deadlines change with its new state
    (whether it had shipped by a request, when it was signed for): whichever of
    an order's and a case's messages arrives first, the case ends decided on
    the order as it is. Read only for orders that have cases."""
    case_ids = sorted(order_record.case_ids or ()) if order_record is not None else []
    if not case_ids:
        return []
    try:
        with TransactGet(connection=connection()) as read:
            futures = [
                read.get(CaseRecord, entity_key(order.platform, case_id)) for case_id in case_ids
            ]
    except PynamoDBException as error:
        raise StorageUnavailableError("could not read the order's cases") from error
    records = [record for record in map(found, futures) if record is not None]
    if shop is None and records:
        # A courier scan names no shop; the cases do.
        shop = read_or_none(ShopRecord, records[0].shop_id, "the shop")
    shop_policy = policy.for_shop(shop)
    changed = []
    for record in records:
        held_case = codec.CASE.decode(record.document)
        new_case = decide_case(shop_policy, held_case, order, now)
        if new_case != held_case:
            changed.append((record, held_case, new_case))
    return changed


def _link_case(write: TransactWrite, order_record: OrderRecord | None, case: CaseState) -> None:
    """Note a new case on its order (created bare if no message named it yet),
    so that the order's later changes re-decide it."""
    if order_record is None:
        placeholder = OrderState(case.platform, case.snapshot.order_id)
        write.save(
            OrderRecord(
                entity_key(case.platform, placeholder.order_id),
                document=codec.ORDER.encode(placeholder),
                case_ids={case.case_id},
            )
        )
    else:
        write.update(order_record, actions=[OrderRecord.case_ids.add({case.case_id})])


def _apply(inbound: Inbound, held: Any) -> Any:
    try:
        return apply(inbound, held)
    except ShopMismatchError as mismatch:
        raise MalformedMessageError("shop_id", str(mismatch)) from None


def _quarantine(
    platform: Platform, delivery: VerifiedDelivery, malformed: MalformedMessageError, now: datetime
) -> None:
    message_id = platform.message_id(delivery)
    # Without a readable message id, the body itself identifies the delivery.
    identity = message_id or "sha256:" + hashlib.sha256(delivery.raw_body).hexdigest()
    record = QuarantineRecord(entity_key(platform.name, identity))
    try:
        record.update(
            actions=[
                QuarantineRecord.platform.set(platform.name),
                *([QuarantineRecord.message_id.set(message_id)] if message_id else []),
                QuarantineRecord.raw_body.set(delivery.raw_body),
                QuarantineRecord.params.set(json.dumps(dict(delivery.params), ensure_ascii=False)),
                QuarantineRecord.field.set(malformed.field),
                QuarantineRecord.error.set(malformed.message),
                QuarantineRecord.first_received_at.set(QuarantineRecord.first_received_at | now),
                QuarantineRecord.last_received_at.set(now),
                QuarantineRecord.deliveries.add(1),
            ]
        )
    except PynamoDBException as error:
        raise StorageUnavailableError("could not quarantine the message") from error
