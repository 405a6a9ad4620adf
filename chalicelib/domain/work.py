"""Outbound work and its lifecycle: what the outbox holds, and how it moves.

An event is fanned out once to the subscriptions that want it; an action is
one call to the platform's API; a delivery is one event for one subscription;
a pull is one reconciliation run for one shop (its listings read from the
shop's cursor on, as far as the run's time allows); a fetch is one detail call
that completes a thin message (one that named an order or case but not all of
it); a channel call subscribes a shop to its platform's message channel, or
ends that.
Actions and deliveries are tried until they are done, fail for good, or run out
of attempts (dead-lettered); any finished one can be given another go (a
replay), which takes it back to where it started.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class WorkKind(StrEnum):
    EVENT = "event"
    ACTION = "action"
    DELIVERY = "delivery"
    PULL = "pull"
    FETCH = "fetch"
    CHANNEL = "channel"


class WorkState(StrEnum):
    PENDING = "pending"  # an event or delivery, not yet done
    QUEUED = "queued"  # an action, not yet done (the seller sees "queued")
    FANNED_OUT = "fanned_out"
    SENT = "sent"
    DELIVERED = "delivered"
    PULLED = "pulled"
    FETCHED = "fetched"
    FAILED = "failed"
    DEAD_LETTERED = "dead_lettered"
    CANCELLED = "cancelled"


class AttemptResult(StrEnum):
    DONE = "done"
    RETRY = "retry"
    FAILED = "failed"
    CANCELLED = "cancelled"


STARTS = {
    WorkKind.EVENT: WorkState.PENDING,
    WorkKind.ACTION: WorkState.QUEUED,
    WorkKind.DELIVERY: WorkState.PENDING,
    WorkKind.PULL: WorkState.PENDING,
    WorkKind.FETCH: WorkState.PENDING,
    WorkKind.CHANNEL: WorkState.PENDING,
}
ACTIVE = frozenset({WorkState.PENDING, WorkState.QUEUED})
_DONE = {
    WorkKind.ACTION: WorkState.SENT,
    WorkKind.DELIVERY: WorkState.DELIVERED,
    WorkKind.PULL: WorkState.PULLED,
    WorkKind.FETCH: WorkState.FETCHED,
    WorkKind.CHANNEL: WorkState.SENT,
}
# Where each kind ends when its work was done.
DONE_STATES = frozenset(_DONE.values())
_FINISHED = {
    WorkKind.EVENT: frozenset({WorkState.FANNED_OUT}),
    WorkKind.ACTION: frozenset({WorkState.SENT, WorkState.FAILED, WorkState.DEAD_LETTERED}),
    WorkKind.DELIVERY: frozenset(
        {
            WorkState.DELIVERED,
            WorkState.FAILED,
            WorkState.DEAD_LETTERED,
            WorkState.CANCELLED,
        }
    ),
    WorkKind.PULL: frozenset({WorkState.PULLED, WorkState.FAILED, WorkState.DEAD_LETTERED}),
    WorkKind.FETCH: frozenset({WorkState.FETCHED, WorkState.FAILED, WorkState.DEAD_LETTERED}),
    WorkKind.CHANNEL: frozenset({WorkState.SENT, WorkState.FAILED, WorkState.DEAD_LETTERED}),
}
# From where each kind starts to where it may finish; a replay takes a finished
# action or delivery back to its start. An event is never replayed: its
# deliveries are.
TRANSITIONS: dict[WorkKind, dict[WorkState, frozenset[WorkState]]] = {
    kind: {
        STARTS[kind]: _FINISHED[kind],
        **(
            {}
            if kind is WorkKind.EVENT
            else dict.fromkeys(_FINISHED[kind], frozenset({STARTS[kind]}))
        ),
    }
    for kind in WorkKind
}


def may_move(kind: WorkKind, current: WorkState, new: WorkState) -> bool:
    return new in TRANSITIONS[kind].get(current, frozenset())


def after_attempt(
    kind: WorkKind, current: WorkState, result: AttemptResult, final: bool
) -> WorkState:
    """Where an action or delivery stands after an attempt came to `result`;
    `final` when it was the last attempt the retry budget allows."""
    if result is AttemptResult.DONE:
        return _DONE[kind]
    if result is AttemptResult.RETRY:
        return WorkState.DEAD_LETTERED if final else current
    if result is AttemptResult.CANCELLED:
        return WorkState.CANCELLED
    return WorkState.FAILED


@dataclass(frozen=True)
class Work:
    """A committed outbox row as its queue needs it."""

    outbox_id: str
    kind: WorkKind
    work_type: str  # the event type, or the action
    generation: int
    # Work for one order goes in order: the queue's message group.
    order_group: str | None
    subscription_id: str | None = None


@dataclass(frozen=True)
class Tried:
    """What one attempt at an action or a delivery came to."""

    result: AttemptResult
    error: str | None = None
    status_code: int | None = None
    latency_ms: float | None = None
    # A platform call whose answer is not known (none came, or its record was
    # lost) may have been carried out: an "already done" then means ours.
    uncertain: bool = False
