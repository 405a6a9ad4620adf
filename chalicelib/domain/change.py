"""What a message, or the passing of time, does to the state ShopHook holds:
one pure decision, shared by ingest and the deadline sweeper.

`decide` takes what was read (`Held`), the message (None for a sweep), the
platform's policy and the time, and returns the `Change` to commit in one
transaction: the message's receipt, the entities' new states with the events
and automatic actions they cause, and a new case's link to its order. A change
to an order with after-sale cases also re-decides them (`with_cases`), once
they have been read: whichever of an order's and a case's messages arrives
first, the case ends decided on the order as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from chalicelib.domain.events import (
    AutoAction,
    OutboundEvent,
    auto_actions,
    case_changes,
    order_changes,
)
from chalicelib.domain.ids import EntityKind, EntityRef, platform_key
from chalicelib.domain.model import (
    RECEIVING_STATUSES,
    CaseState,
    Inbound,
    OrderState,
    ShopStatus,
    ThinMessage,
)
from chalicelib.domain.policy import Policy
from chalicelib.domain.rules import decide_case, decide_order
from chalicelib.domain.state import ShopMismatchError, apply, entity_of
from chalicelib.domain.work import WorkKind

EntityState = OrderState | CaseState


class Receipt(StrEnum):
    """What became of a message."""

    APPLIED = "applied"
    STALE = "stale"  # older than the state held: only the event log has it
    DUPLICATE = "duplicate"  # held already: nothing changes
    SHOP_NOT_CONNECTED = "shop_not_connected"
    # A thin message, held: its entity changes once the platform's detail is in.
    FETCHING = "fetching"


@dataclass(frozen=True)
class Stored:
    """An order's or case's state as stored, with the version that guards it."""

    state: EntityState
    version: int
    # An order's after-sale cases: a change to the order re-decides them.
    case_ids: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ShopSettings:
    """What the rules need of a shop."""

    shop_id: str
    status: ShopStatus
    policy_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Held:
    """What was read before deciding, in one read."""

    duplicate: bool = False  # the message's event-log row is there already
    entity: Stored | None = None
    shop: ShopSettings | None = None
    # For a case, its order: the rules decide a case with its order in view.
    order: Stored | None = None


@dataclass(frozen=True)
class EntityWrite:
    """One entity's new state and what it tells the outside world."""

    ref: EntityRef
    held: EntityState | None
    new: EntityState
    version: int  # the stored version this write is guarded by (0: none yet)
    case_ids: frozenset[str] = frozenset()
    events: tuple[OutboundEvent, ...] = ()
    actions: tuple[AutoAction, ...] = ()
    # Deadline rules whose index rows are rewritten even if unchanged (a sweep's).
    refresh: frozenset[str] = frozenset()


@dataclass(frozen=True)
class CaseLink:
    """A new case noted on its order, so that the order's later changes re-decide it.
    `order_version` None: no message named the order yet; a bare one is created."""

    order: EntityRef
    case_id: str
    order_version: int | None


@dataclass(frozen=True)
class Change:
    at: datetime
    receipt: Receipt | None  # None for a sweep (no message)
    message: Inbound | None
    writes: tuple[EntityWrite, ...] = ()
    link: CaseLink | None = None
    # A thin message's entity, to be read from the platform (one fetch queued).
    fetch: Outbound | None = None

    @property
    def written(self) -> bool:
        return self.receipt is not Receipt.DUPLICATE


@dataclass(frozen=True)
class Outbound:
    """A piece of outbound work a write causes: an event, or an automatic action."""

    outbox_id: str
    kind: WorkKind
    work_type: str
    shop_id: str
    payload: dict[str, Any]


def outbound(entity: EntityWrite, now: datetime) -> list[Outbound]:
    """What the write tells the outside world, in the order it happened."""
    return [
        Outbound(
            event.event_id,
            WorkKind.EVENT,
            event.type,
            event.shop_id,
            {"type": event.type, "timestamp": now.isoformat(), "data": event.data},
        )
        for event in entity.events
    ] + [
        Outbound(
            action.action_id,
            WorkKind.ACTION,
            action.action,
            action.shop_id,
            {"action": action.action, "case_id": action.case_id, "origin": "rules"},
        )
        for action in entity.actions
    ]


def told(
    before: Stored | None, after: EntityState, at: datetime
) -> tuple[EntityWrite, list[Outbound]]:
    """What a committed write tells, decided again from the entity before and
    after it (as its table's stream shows them, `at` the time it was written):
    the events and actions `write` decided when the change was committed, as
    both are derived from the two states alone."""
    entity = write(before, after)
    return entity, outbound(entity, at)


def fetch_work(inbound: Inbound, thin: ThinMessage) -> Outbound:
    """The one detail call that completes a thin message, named by the message."""
    if inbound.shop_id is None:
        raise ShopMismatchError("a thin message must name its shop: its detail is read as it")
    needs = thin.needs
    return Outbound(
        f"fetch_{platform_key(inbound.platform, inbound.message_id)}",
        WorkKind.FETCH,
        needs.kind,
        inbound.shop_id,
        {"platform": needs.platform, "kind": needs.kind, "entity_id": needs.entity_id},
    )


def fetched_ref(payload: dict[str, Any]) -> EntityRef:
    """The entity a fetch's payload (`fetch_work`) names."""
    return EntityRef(payload["platform"], EntityKind(payload["kind"]), payload["entity_id"])


def ref_of(state: EntityState) -> EntityRef:
    if isinstance(state, CaseState):
        return EntityRef.case(state.platform, state.case_id)
    return EntityRef.order(state.platform, state.order_id)


def message_ref(inbound: Inbound) -> EntityRef:
    """The entity a message changes."""
    kind, entity_id = entity_of(inbound.event)
    return EntityRef(inbound.platform, EntityKind(kind), entity_id)


def order_ref_of(ref: EntityRef, state: EntityState | None) -> EntityRef:
    """The order an entity belongs to (itself, for an order)."""
    if isinstance(state, CaseState):
        return EntityRef.order(ref.platform, state.snapshot.order_id)
    return ref


def shop_policy(platform_policy: Policy, shop: ShopSettings | None) -> Policy:
    return platform_policy.with_overrides(shop.policy_overrides if shop else {})


def write(
    stored: Stored | None, new: EntityState, refresh: frozenset[str] = frozenset()
) -> EntityWrite:
    """The write of `new` over what was stored, with the events and actions it causes."""
    held = stored.state if stored else None
    version = stored.version if stored else 0
    if isinstance(new, CaseState):
        assert held is None or isinstance(held, CaseState)
        events = case_changes(held, new, version + 1)
        actions = auto_actions(held, new)
    else:
        assert held is None or isinstance(held, OrderState)
        events, actions = order_changes(held, new, version + 1), []
    return EntityWrite(
        ref=ref_of(new),
        held=held,
        new=new,
        version=version,
        case_ids=stored.case_ids if stored else frozenset(),
        events=tuple(events),
        actions=tuple(actions),
        refresh=refresh,
    )


def _redecided(stored: Stored, held: Held, platform_policy: Policy, now: datetime) -> EntityState:
    state = stored.state
    if isinstance(state, CaseState):
        order = held.order.state if held.order else None
        assert order is None or isinstance(order, OrderState)
        return decide_case(shop_policy(platform_policy, held.shop), state, order, now)
    # Order rules use the platform's policy: a courier scan may not name its shop.
    return decide_order(platform_policy, state, now)


def decide(held: Held, inbound: Inbound | None, platform_policy: Policy, now: datetime) -> Change:
    """The change `inbound` makes to what is held, or, with no message, the change
    time alone makes (a sweep: the held entity re-decided at `now`). Raises
    state.ShopMismatchError for a message that claims another shop's entity."""
    if inbound is None:
        assert held.entity is not None, "a sweep re-decides an entity it read"
        return Change(
            now,
            None,
            None,
            (write(held.entity, _redecided(held.entity, held, platform_policy, now)),),
        )
    if held.duplicate:
        return Change(now, Receipt.DUPLICATE, inbound)
    if inbound.shop_id is not None and (
        held.shop is None or held.shop.status not in RECEIVING_STATUSES
    ):
        return Change(now, Receipt.SHOP_NOT_CONNECTED, inbound)
    if isinstance(inbound.event, ThinMessage):
        return Change(now, Receipt.FETCHING, inbound, fetch=fetch_work(inbound, inbound.event))
    applied = apply(inbound, held.entity.state if held.entity else None)
    if applied is None:
        # A pulled record held already (at its `modified`, or newer) is what the
        # pull expects most of the time: it changes nothing and writes nothing.
        return Change(now, Receipt.DUPLICATE if inbound.pulled else Receipt.STALE, inbound)
    stored = held.entity or Stored(applied, 0)
    new = _redecided(replace(stored, state=applied), held, platform_policy, now)
    link = None
    if isinstance(new, CaseState) and held.entity is None:
        order = EntityRef.order(new.platform, new.snapshot.order_id)
        link = CaseLink(order, new.case_id, held.order.version if held.order else None)
    return Change(now, Receipt.APPLIED, inbound, (write(held.entity, new),), link)


def cases_to_redecide(change: Change) -> tuple[EntityRef, frozenset[str]] | None:
    """The order whose cases must be read and re-decided before `change` is
    committed (an order that changed and has cases), or None."""
    for entity in change.writes:
        if entity.ref.kind is EntityKind.ORDER and entity.case_ids and entity.new != entity.held:
            return entity.ref, entity.case_ids
    return None


def with_cases(
    change: Change,
    cases: list[Stored],
    shop: ShopSettings | None,
    platform_policy: Policy,
    now: datetime,
) -> Change:
    """`change` plus the order's cases whose decisions or deadlines change with the
    order's new state (whether it had shipped by a request, when it was signed for)."""
    order = next(entity.new for entity in change.writes if entity.ref.kind is EntityKind.ORDER)
    assert isinstance(order, OrderState)
    policy = shop_policy(platform_policy, shop)
    redecided = []
    for stored in cases:
        assert isinstance(stored.state, CaseState)
        new = decide_case(policy, stored.state, order, now)
        if new != stored.state:
            redecided.append(write(stored, new))
    return replace(change, writes=change.writes + tuple(redecided))
