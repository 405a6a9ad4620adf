"""Events to integrators: an event is fanned out into one delivery per
subscription that wants it (committed with the event's new state, then
enqueued), and each delivery is POSTed to its subscriber.

Each attempt's answer is noted on the subscription's health. An endpoint that
stops answering (timeouts in a row) has its circuit opened: one delivery at a
time is let through as a probe until it answers, while its other deliveries
wait in their own message groups without holding a worker for the timeout.
A subscription whose every delivery has failed for five days is disabled.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timedelta

from chalicelib import integrators
from chalicelib.domain.endpoints import DisabledReason, failing_too_long, opens_circuit
from chalicelib.domain.work import AttemptResult, Tried, WorkKind
from chalicelib.integrators import Answered, DeliveryOutcome
from chalicelib.observability import emit, logger, tracer
from chalicelib.service import outbox, subscriptions
from chalicelib.settings import settings
from chalicelib.store import subscriptions as stored_subscriptions
from chalicelib.store import work
from chalicelib.store.records import OutboxRecord, SubscriptionRecord, SubscriptionRouteRecord
from chalicelib.store.work import NewWork

RESULTS = {
    DeliveryOutcome.DELIVERED: AttemptResult.DONE,
    DeliveryOutcome.RETRY: AttemptResult.RETRY,
    DeliveryOutcome.REFUSED: AttemptResult.FAILED,
}
WAITING_FOR_PROBE = "not sent: the endpoint stopped answering; another delivery is probing it"
HELD_WHILE_DISABLED = "not sent: the subscription was disabled"


def deliveries_of(
    event: OutboxRecord, routes: Iterable[SubscriptionRouteRecord], now: datetime
) -> list[OutboxRecord]:
    """One delivery row per subscription (of these routes) that wants the event;
    a disabled subscription's is recorded but not sent."""
    deliveries = []
    for route in routes:
        if event.type not in route.event_types:
            continue
        delivery = NewWork(
            outbox_id=subscriptions.delivery_id(event.outbox_id, route.subscription_id),
            kind=WorkKind.DELIVERY,
            work_type=event.type,
            shop_id=event.shop_id,
            payload=json.loads(event.payload),
            order_group=event.order_group,
            position=event.position,
            subscription_id=route.subscription_id,
            event_id=event.outbox_id,
        )
        deliveries.append(
            work.new_row(delivery, now)
            if route.enabled
            else work.held_row(delivery, now, HELD_WHILE_DISABLED)
        )
    return deliveries


def fan_out(event: OutboxRecord, now: datetime, queue: outbox.WorkQueue = outbox.SQS) -> None:
    """A stored event's deliveries, stored with its new state and sent."""
    deliveries = deliveries_of(event, stored_subscriptions.routes(event.shop_id), now)
    if not work.fan_out(event, deliveries, now):
        # Fanned out meanwhile, or some deliveries were made already (an event row
        # written by code before the change streams, told by them too): store the
        # others one by one, and the event is done.
        logger.info("some deliveries there already", extra={"outbox_id": event.outbox_id})
        deliveries = work.save_new(deliveries)
        work.mark_fanned_out(event, now)
    queue.send([work.work_of(row) for row in deliveries if row.pending_subscription])
    emit("DeliveriesCreated", len(deliveries))


@tracer.capture_method(capture_response=False)
def attempt(delivery: OutboxRecord, now: datetime) -> Tried:
    """One attempt at a delivery."""
    subscription = stored_subscriptions.read(delivery.subscription_id)
    if subscription is None:
        return Tried(AttemptResult.CANCELLED, "the subscription was deleted")
    if not subscription.enabled:
        return Tried(AttemptResult.CANCELLED, HELD_WHILE_DISABLED)
    configured = settings()
    problem = integrators.url_problem(
        subscription.url, resolve=False, allow_loopback=configured.allow_loopback_webhooks
    )
    if problem is not None:
        return Tried(AttemptResult.FAILED, problem)
    # A probe's lease outlasts its timeout: a probe that got no answer keeps it
    # to its end, so a hanging endpoint holds one worker at most half the time.
    lease = now + timedelta(seconds=2 * sum(configured.integrator_timeout))
    circuit_open = subscription.circuit_opened_at is not None
    if circuit_open and not stored_subscriptions.claim_probe(subscription, now, lease):
        emit("DeliveriesHeldByCircuit")
        return Tried(AttemptResult.RETRY, WAITING_FOR_PROBE)
    answered = integrators.deliver(
        integrators.Endpoint(subscription.url, subscriptions.signing_secrets(subscription, now)),
        delivery.event_id,
        delivery.payload,
        now,
        configured.allow_loopback_webhooks,
        configured.integrator_timeout,
    )
    result = RESULTS[answered.outcome]
    if _note(subscription, answered, result, now):
        return Tried(
            AttemptResult.CANCELLED,
            f"{answered.error}; the subscription is disabled "
            f"({subscriptions.WHY_NOT_SENT[DisabledReason.FAILING]})",
            status_code=answered.status_code,
            latency_ms=answered.latency_ms,
        )
    return Tried(
        result, answered.error, status_code=answered.status_code, latency_ms=answered.latency_ms
    )


def _note(
    subscription: SubscriptionRecord,
    answered: Answered,
    result: AttemptResult,
    now: datetime,
) -> bool:
    """Note the answer on the subscription's health, open its circuit after
    timeouts in a row, and disable it once it has failed for too long; True
    when this attempt disabled it."""
    failed = result is not AttemptResult.DONE
    outcome = "timed_out" if answered.timed_out else ("failed" if failed else "delivered")
    noted = stored_subscriptions.note_attempt(
        subscription, now, outcome, answered.status_code, failed, answered.timed_out
    )
    if not noted:
        return False
    closed = subscription.circuit_opened_at is None
    if answered.timed_out and closed and opens_circuit(int(subscription.timeouts_in_a_row)):
        stored_subscriptions.open_circuit(subscription, now)
        emit("CircuitsOpened")
    return failing_too_long(subscription.failing_since, now) and subscriptions.disable(
        subscription, DisabledReason.FAILING, now
    )
