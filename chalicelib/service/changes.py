"""One shape for every write of an order or case, shared by ingest and the
sweeper: the entity row (version-checked), its deadline index rows, and the
outbox rows for what the change tells the outside world, in one transaction."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

from pynamodb.transactions import TransactWrite

from chalicelib.domain.events import auto_actions, case_changes, order_changes
from chalicelib.domain.model import CaseState, Deadline, DeadlineState, OrderState
from chalicelib.domain.rules import warn_at
from chalicelib.store import codec
from chalicelib.store.records import (
    DEADLINE_SHARDS,
    UNSENT_SHARDS,
    CaseRecord,
    DeadlineRecord,
    OrderRecord,
    OutboxRecord,
    entity_key,
)

EntityRecord = OrderRecord | CaseRecord
EntityState = OrderState | CaseState


def sortable(moment: datetime) -> str:
    """UTC, fixed width: sorts as text the way the times sort."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _shard(deadline_key: str) -> str:
    return str(int(hashlib.sha256(deadline_key.encode()).hexdigest()[:8], 16) % DEADLINE_SHARDS)


def deadline_record(state: EntityState, deadline: Deadline) -> DeadlineRecord:
    entity, kind = entity_ref(state)
    key = f"{entity}#{deadline.rule}"
    pending = deadline.state is DeadlineState.PENDING
    next_check = (
        deadline.due_at if deadline.warned else warn_at(deadline.started_at, deadline.due_at)
    )
    return DeadlineRecord(
        key,
        entity_key=entity,
        entity_kind=kind,
        order_key=(
            entity_key(state.platform, state.snapshot.order_id)
            if isinstance(state, CaseState)
            else None
        ),
        shop_id=state.shop_id,
        rule=deadline.rule,
        due_at=deadline.due_at,
        state=deadline.state,
        due_shard=_shard(key) if pending else None,
        next_check=sortable(next_check) if pending else None,
        pending_shop=state.shop_id if pending else None,
        due_key=sortable(deadline.due_at) if pending else None,
    )


QUEUED = "queued"
PENDING = "pending"


# How long a row may wait for its queue's consumer before it is sent again.
STUCK_AFTER = timedelta(minutes=3)


def unsent_marks(outbox_id: str, now: datetime) -> tuple[str, str]:
    """(shard, requeue time) of the sparse `unsent` index: the row is sent again
    at that time unless its consumer has seen it by then."""
    shard = int(hashlib.sha256(outbox_id.encode()).hexdigest()[:8], 16) % UNSENT_SHARDS
    return str(shard), sortable(now + STUCK_AFTER)


def outbox_row(
    outbox_id: str,
    kind: str,
    work_type: str,
    shop_id: str,
    payload: dict,
    now: datetime,
    order_group: str | None = None,
    position: str | None = None,
    **delivery: str,
) -> OutboxRecord:
    """Work for the outside world: an event to fan out, an action for the platform,
    or (with `delivery`'s subscription fields) one event for one subscriber."""
    shard, requeue_at = unsent_marks(outbox_id, now)
    return OutboxRecord(
        outbox_id,
        kind=kind,
        type=work_type,
        shop_id=shop_id,
        payload=json.dumps(payload, ensure_ascii=False, default=str),
        state=QUEUED if kind == "action" else PENDING,
        created_at=now,
        order_group=order_group,
        unsent_shard=shard,
        requeue_at=requeue_at,
        position=position or f"{sortable(now)}#{outbox_id}",
        **delivery,
    )


def order_group(state: EntityState) -> str:
    """The order an entity belongs to: its outbound work is delivered in order."""
    if isinstance(state, CaseState):
        return entity_key(state.platform, state.snapshot.order_id)
    return entity_key(state.platform, state.order_id)


def entity_ref(state: EntityState) -> tuple[str, str]:
    """(entity reference, kind): `taobao#order#3010001`, "order"."""
    if isinstance(state, CaseState):
        return f"{state.platform}#case#{state.case_id}", "case"
    return f"{state.platform}#order#{state.order_id}", "order"


def stage_change(
    write: TransactWrite,
    record: EntityRecord,
    held: EntityState | None,
    new: EntityState,
    now: datetime,
    refresh: frozenset[str] = frozenset(),
) -> list[OutboxRecord]:
    """Add the entity's new state and everything that follows from it to `write`;
    return the outbox rows, to enqueue once committed. Deadline rows of the
    rules in `refresh` are rewritten even when unchanged (the sweeper's rows)."""
    version = (record.version or 0) + 1
    record.shop_id = new.shop_id
    if isinstance(new, CaseState):
        record.case_id = new.case_id
        record.status = new.snapshot.status
        record.document = codec.CASE.encode(new)
        events = case_changes(held, new, version)
        actions = auto_actions(held, new)
    else:
        record.status = new.snapshot.status if new.snapshot else None
        record.document = codec.ORDER.encode(new)
        events = order_changes(held, new, version)
        actions = []
    write.save(record)

    entity, _ = entity_ref(new)
    before = {deadline.rule: deadline for deadline in (held.deadlines if held else ())}
    for deadline in new.deadlines:
        if before.pop(deadline.rule, None) != deadline or deadline.rule in refresh:
            write.save(deadline_record(new, deadline))
    current = {deadline.rule for deadline in new.deadlines}
    for gone in set(before) | (refresh - current):
        write.delete(DeadlineRecord(f"{entity}#{gone}"))

    outbox = [
        (
            "event",
            event.event_id,
            event.type,
            event.shop_id,
            {"type": event.type, "timestamp": now.isoformat(), "data": event.data},
        )
        for event in events
    ] + [
        (
            "action",
            action.action_id,
            action.action,
            action.shop_id,
            {"action": action.action, "case_id": action.case_id, "origin": "rules"},
        )
        for action in actions
    ]
    rows = [
        outbox_row(
            outbox_id,
            kind,
            work_type,
            shop_id,
            payload,
            now,
            order_group(new),
            position=f"{sortable(now)}#{version:010d}#{index:03d}",
        )
        for index, (kind, outbox_id, work_type, shop_id, payload) in enumerate(outbox)
    ]
    for row in rows:
        write.save(row)
    return rows
