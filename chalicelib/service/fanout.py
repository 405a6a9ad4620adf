"""Events to integrators: an event is fanned out into one delivery per
subscription that wants it (committed with the event's new state, then
enqueued), and each delivery is POSTed to its subscriber."""

from __future__ import annotations

import json
from datetime import datetime

from chalicelib import integrators
from chalicelib.domain.work import AttemptResult, Tried, WorkKind
from chalicelib.integrators import DeliveryOutcome
from chalicelib.observability import emit, logger, tracer
from chalicelib.service import outbox, subscriptions
from chalicelib.settings import settings
from chalicelib.store import subscriptions as stored_subscriptions
from chalicelib.store import work
from chalicelib.store.records import OutboxRecord
from chalicelib.store.work import NewWork

RESULTS = {
    DeliveryOutcome.DELIVERED: AttemptResult.DONE,
    DeliveryOutcome.RETRY: AttemptResult.RETRY,
    DeliveryOutcome.REFUSED: AttemptResult.FAILED,
}


def fan_out(event: OutboxRecord, now: datetime, queue: outbox.WorkQueue = outbox.SQS) -> None:
    """One delivery row per subscription that wants this event."""
    deliveries = [
        work.new_row(
            NewWork(
                outbox_id=subscriptions.delivery_id(event.outbox_id, route.subscription_id),
                kind=WorkKind.DELIVERY,
                work_type=event.type,
                shop_id=event.shop_id,
                payload=json.loads(event.payload),
                order_group=event.order_group,
                position=event.position,
                subscription_id=route.subscription_id,
                event_id=event.outbox_id,
            ),
            now,
        )
        for route in stored_subscriptions.routes(event.shop_id)
        if event.type in route.event_types
    ]
    if not work.fan_out(event, deliveries, now):
        logger.info("fanned out already", extra={"outbox_id": event.outbox_id})
        return
    queue.send([work.work_of(row) for row in deliveries])
    emit("DeliveriesCreated", len(deliveries))


@tracer.capture_method(capture_response=False)
def attempt(delivery: OutboxRecord, now: datetime) -> Tried:
    """One attempt at a delivery."""
    subscription = stored_subscriptions.read(delivery.subscription_id)
    if subscription is None:
        return Tried(AttemptResult.CANCELLED, "the subscription was deleted")
    configured = settings()
    problem = integrators.url_problem(
        subscription.url, resolve=False, allow_loopback=configured.allow_loopback_webhooks
    )
    if problem is not None:
        return Tried(AttemptResult.FAILED, problem)
    answered = integrators.deliver(
        integrators.Endpoint(subscription.url, subscriptions.signing_secret(subscription)),
        delivery.event_id,
        delivery.payload,
        now,
        configured.allow_loopback_webhooks,
        configured.integrator_timeout,
    )
    return Tried(
        RESULTS[answered.outcome],
        answered.error,
        status_code=answered.status_code,
        latency_ms=answered.latency_ms,
    )
