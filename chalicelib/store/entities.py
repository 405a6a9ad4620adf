"""The store gateway for orders and after-sale cases: load what a decision
needs in one read, commit the decided change in one transaction.

AWS budget per webhook: one TransactGetItems (the message's event-log row,
entity, shop, and a case's order) and one TransactWriteItems (the event-log row
put only if absent: the dedup; entity rows guarded by their versions, deadline
index rows; a thin message's fetch row). A change to an order with after-sale
cases reads them too (one more TransactGetItems). A well-signed message that
cannot be applied costs one UpdateItem (quarantine). What a write tells is read
back from the orders' and cases' streams (`changed`, `outbound_row`).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from pynamodb.transactions import TransactGet, TransactWrite

from chalicelib.domain.change import (
    CaseLink,
    Change,
    EntityWrite,
    Held,
    Outbound,
    ShopSettings,
    Stored,
    fetched_ref,
    message_ref,
    order_ref_of,
)
from chalicelib.domain.ids import MAX_ID_LENGTH, EntityKind, EntityRef, platform_key
from chalicelib.domain.model import (
    OPEN_CASE_STATUSES,
    CanonicalEvent,
    CaseSnapshot,
    CaseState,
    Deadline,
    DeadlineState,
    Inbound,
    OrderState,
    ShopStatus,
)
from chalicelib.domain.rules import next_check
from chalicelib.domain.views import order_updated_at
from chalicelib.domain.work import Work, WorkKind
from chalicelib.store import codec
from chalicelib.store.errors import ConditionFailedError, read_or_none, storage_errors
from chalicelib.store.pages import Key, page
from chalicelib.store.records import (
    DEADLINE_SHARDS,
    CaseRecord,
    DeadlineRecord,
    EventLogRecord,
    OrderRecord,
    OutboxRecord,
    QuarantineRecord,
    ShopRecord,
    connection,
    due_from,
    found,
)
from chalicelib.store.work import NewWork, new_row, shard_of, sortable, work_of

RECORDS: dict[EntityKind, type[OrderRecord | CaseRecord]] = {
    EntityKind.ORDER: OrderRecord,
    EntityKind.CASE: CaseRecord,
}


class AlreadyStoredError(ConditionFailedError):
    """The message's event-log row was there by the time its change was written."""


@dataclass(frozen=True)
class DueDeadline:
    """A deadline whose time (to warn, or to breach) has come."""

    entity: EntityRef
    shop_id: str
    rule: str
    # For a case's deadline, its order: the sweeper reads both at once.
    order: EntityRef | None = None


@dataclass(frozen=True)
class Quarantined:
    """A well-signed message that cannot be applied, and what is wrong with it."""

    platform: str
    message_id: str | None
    raw_body: bytes
    params: Mapping[str, str]
    field: str
    error: str

    @property
    def key(self) -> str:
        """The message's id with its platform. Without a readable id the body
        identifies the delivery, and an id too long to key on is known by its
        hash: the key stays bounded, the message is kept whole."""
        if self.message_id is None:
            identity = "sha256:" + hashlib.sha256(self.raw_body).hexdigest()
        elif len(self.message_id) > MAX_ID_LENGTH:
            identity = "sha256:" + hashlib.sha256(self.message_id.encode()).hexdigest()
        else:
            identity = self.message_id
        return platform_key(self.platform, identity)


class EntityStore(Protocol):
    """What ingest and the sweeper need of storage."""

    def load(self, inbound: Inbound) -> Held: ...

    def load_cases(self, order: EntityRef, case_ids: frozenset[str]) -> list[Stored]: ...

    def shop(self, shop_id: str) -> ShopSettings | None: ...

    def due(self, now: datetime) -> list[DueDeadline]: ...

    def load_due(self, due: DueDeadline) -> Held: ...

    def commit(self, change: Change) -> list[Work]:
        """Write the change; AlreadyStoredError if its message is held already,
        ConditionFailedError if an entity changed since it was read."""
        ...

    def quarantine(self, message: Quarantined, now: datetime) -> None:
        """Keep a well-signed message that cannot be applied (delivered again, it
        is counted)."""
        ...


def shop_settings(record: ShopRecord | None) -> ShopSettings | None:
    if record is None:
        return None
    return ShopSettings(
        record.shop_id, ShopStatus(record.status), json.loads(record.policy_overrides)
    )


def _stored(record: OrderRecord | CaseRecord | None) -> Stored | None:
    state = codec.decoded(record)
    if state is None:
        return None
    case_ids = getattr(record, "case_ids", None) or ()
    return Stored(state, int(record.version or 0), frozenset(case_ids))


def entity_record(entity: EntityWrite) -> OrderRecord | CaseRecord:
    """The entity's row, guarded by the version it was read at (none: absent)."""
    new = entity.new
    # PynamoDB guards a write with the version the record holds: none for a new one.
    version = {"version": entity.version} if entity.version else {}
    if isinstance(new, CaseState):
        is_open = new.snapshot.status in OPEN_CASE_STATUSES
        pending = [d.due_at for d in new.deadlines if d.state is DeadlineState.PENDING]
        breached = any(d.state is DeadlineState.BREACHED for d in new.deadlines)
        return CaseRecord(
            entity.ref.key,
            shop_id=new.shop_id,
            case_id=new.case_id,
            status=new.snapshot.status,
            document=codec.CASE.encode(new),
            open_shop=new.shop_id if is_open else None,
            # A case with nothing pending sorts after every due one.
            attention_key=(sortable(min(pending)) if pending else "~") if is_open else None,
            breached_shop=new.shop_id if is_open and breached else None,
            **version,
        )
    updated = order_updated_at(new)
    return OrderRecord(
        entity.ref.key,
        shop_id=new.shop_id,
        status=new.snapshot.status if new.snapshot else None,
        document=codec.ORDER.encode(new),
        case_ids=set(entity.case_ids) or None,
        updated_key=sortable(updated) if updated and new.snapshot else None,
        **version,
    )


def _indexed(deadline: Deadline | None) -> bool:
    """Only a pending deadline has an index row: the sweeper's and the console's
    indexes hold nothing else, and the entity's document holds its truth."""
    return deadline is not None and next_check(deadline) is not None


def deadline_row(entity: EntityWrite, deadline: Deadline) -> DeadlineRecord:
    """A pending deadline's index row."""
    new, key = entity.new, entity.ref.deadline_key(deadline.rule)
    check = next_check(deadline)
    assert check is not None and new.shop_id is not None, "only a pending deadline is indexed"
    return DeadlineRecord(
        key,
        entity_key=entity.ref.stream,
        entity_kind=entity.ref.kind,
        order_key=order_ref_of(entity.ref, new).key if isinstance(new, CaseState) else None,
        shop_id=new.shop_id,
        rule=deadline.rule,
        due_at=deadline.due_at,
        state=deadline.state,
        due_shard=shard_of(key, DEADLINE_SHARDS),
        next_check=sortable(check),
        pending_shop=new.shop_id,
        due_key=sortable(deadline.due_at),
    )


def _stage(write: TransactWrite, entity: EntityWrite) -> None:
    """The entity's row and its deadline index rows (what the change tells the
    outside world follows from the row: `changed`)."""
    write.save(entity_record(entity))
    before = {
        deadline.rule: deadline for deadline in (entity.held.deadlines if entity.held else ())
    }
    after = {deadline.rule: deadline for deadline in entity.new.deadlines}
    # A row is written only when what the indexes show changes (or a sweep
    # refreshes it): a deadline met or breached leaves them, and one never
    # pending never enters them.
    for rule in sorted(before.keys() | after.keys() | entity.refresh):
        held, new, refreshed = before.get(rule), after.get(rule), rule in entity.refresh
        if _indexed(new):
            if new != held or refreshed:
                write.save(deadline_row(entity, new))
        elif _indexed(held) or refreshed:
            write.delete(DeadlineRecord(entity.ref.deadline_key(rule)))


@dataclass(frozen=True)
class Changed:
    """An order or case as a committed write left it, what it was before (None:
    new), and when it was written (the stream's time, to the second): one
    record of its table's stream."""

    before: Stored | None
    after: Stored
    at: datetime


STREAMED = {record.Meta.table_name: record for record in (OrderRecord, CaseRecord)}


def changed(stream_record: Mapping[str, Any]) -> Changed | None:
    """The change a stream record shows; None for an item removed (which no
    change does)."""
    model = STREAMED[stream_record["eventSourceARN"].split("/")[1]]
    images = stream_record["dynamodb"]
    if "NewImage" not in images:
        return None
    after = _stored(model.from_raw_data(_from_json(images["NewImage"])))
    assert after is not None, "an image is a record"
    old = images.get("OldImage")
    before = _stored(model.from_raw_data(_from_json(old))) if old else None
    written = datetime.fromtimestamp(images["ApproximateCreationDateTime"], UTC)
    return Changed(before, after, written)


def _from_json(image: Mapping[str, Any]) -> dict[str, Any]:
    # A stream record reaches Lambda as JSON: binary values base64-encoded.
    return {
        name: {"B": base64.b64decode(value["B"])} if "B" in value else value
        for name, value in image.items()
    }


def outbound_row(
    entity: EntityWrite, item: Outbound, index: int, at: datetime, now: datetime
) -> OutboxRecord:
    """An automatic action's outbox row, or the template of an event's
    deliveries: grouped by order, positioned in the order it all happened (when,
    the new version, then its place in the change)."""
    return new_row(
        NewWork(
            item.outbox_id,
            item.kind,
            item.work_type,
            item.shop_id,
            item.payload,
            order_ref_of(entity.ref, entity.new).key,
            f"{sortable(at)}#{entity.version + 1:010d}#{index:03d}",
            subject=entity.ref.stream if item.kind is WorkKind.ACTION else None,
        ),
        now,
    )


def _fetch_row(fetch: Outbound, now: datetime) -> OutboxRecord:
    """A thin message's detail call; one entity's fetches go one after another."""
    group = fetched_ref(fetch.payload).stream
    return new_row(
        NewWork(fetch.outbox_id, fetch.kind, fetch.work_type, fetch.shop_id, fetch.payload, group),
        now,
    )


def _link(write: TransactWrite, link: CaseLink) -> None:
    """Note the case on its order (created bare if no message named it yet)."""
    if link.order_version is None:
        bare = OrderState(link.order.platform, link.order.entity_id)
        write.save(
            OrderRecord(link.order.key, document=codec.ORDER.encode(bare), case_ids={link.case_id})
        )
    else:
        order = OrderRecord(link.order.key, version=link.order_version)
        write.update(order, actions=[OrderRecord.case_ids.add({link.case_id})])


class DynamoEntities:
    """EntityStore on DynamoDB."""

    def load(self, inbound: Inbound) -> Held:
        ref = message_ref(inbound)
        event = inbound.event
        with storage_errors("read current state"), TransactGet(connection=connection()) as read:
            logged = read.get(EventLogRecord, ref.stream, inbound.message_id)
            entity = read.get(RECORDS[ref.kind], ref.key)
            shop = read.get(ShopRecord, inbound.shop_id) if inbound.shop_id else None
            order = (
                read.get(OrderRecord, EntityRef.order(ref.platform, event.order_id).key)
                if isinstance(event, CaseSnapshot)
                else None
            )
        return Held(
            duplicate=found(logged) is not None,
            entity=_stored(found(entity)),
            shop=shop_settings(found(shop)),
            order=_stored(found(order)),
        )

    def load_cases(self, order: EntityRef, case_ids: frozenset[str]) -> list[Stored]:
        with storage_errors("read the order's cases"), TransactGet(connection=connection()) as read:
            futures = [
                read.get(CaseRecord, EntityRef.case(order.platform, case_id).key)
                for case_id in sorted(case_ids)
            ]
        return [stored for stored in (_stored(found(future)) for future in futures) if stored]

    def shop(self, shop_id: str) -> ShopSettings | None:
        return shop_settings(read_or_none(ShopRecord, shop_id, "the shop"))

    def due(self, now: datetime) -> list[DueDeadline]:
        with storage_errors("read the due deadlines"):
            rows = due_from(
                DeadlineRecord.due, DEADLINE_SHARDS, DeadlineRecord.next_check, sortable(now)
            )
        return [
            DueDeadline(
                entity=EntityRef.from_stream(row.entity_key),
                shop_id=row.shop_id,
                rule=row.rule,
                order=EntityRef.from_key(EntityKind.ORDER, row.order_key)
                if row.order_key
                else None,
            )
            for row in rows
        ]

    def load_due(self, due: DueDeadline) -> Held:
        if due.entity.kind is EntityKind.ORDER:
            return Held(entity=_stored(read_or_none(OrderRecord, due.entity.key, "the order")))
        assert due.order is not None, "a case's deadline names its order"
        with storage_errors("read for the sweep"), TransactGet(connection=connection()) as read:
            case = read.get(CaseRecord, due.entity.key)
            order = read.get(OrderRecord, due.order.key)
            shop = read.get(ShopRecord, due.shop_id)
        return Held(
            entity=_stored(found(case)),
            order=_stored(found(order)),
            shop=shop_settings(found(shop)),
        )

    def commit(self, change: Change) -> list[Work]:
        inbound = change.message
        # A thin message's detail call: the only work a change commits beside it.
        fetch = _fetch_row(change.fetch, change.at) if change.fetch is not None else None
        try:
            with (
                storage_errors("write the change"),
                TransactWrite(connection=connection()) as write,
            ):
                if inbound is not None:
                    # First, so that a refusal of item 0 is the message held already.
                    write.save(
                        _log_entry(change, inbound),
                        condition=EventLogRecord.sequence.does_not_exist(),
                    )
                for entity in change.writes:
                    _stage(write, entity)
                if change.link is not None:
                    _link(write, change.link)
                if fetch is not None:
                    write.save(fetch)
        except ConditionFailedError as refused:
            if inbound is not None and 0 in refused.items:
                raise AlreadyStoredError("the message is held already", refused.items) from refused
            raise
        return [work_of(fetch)] if fetch is not None else []

    def quarantine(self, message: Quarantined, now: datetime) -> None:
        record = QuarantineRecord(message.key)
        with storage_errors("quarantine the message"):
            record.update(
                actions=[
                    QuarantineRecord.platform.set(message.platform),
                    *(
                        [QuarantineRecord.message_id.set(message.message_id)]
                        if message.message_id
                        else []
                    ),
                    QuarantineRecord.raw_body.set(message.raw_body),
                    QuarantineRecord.params.set(
                        json.dumps(dict(message.params), ensure_ascii=False)
                    ),
                    QuarantineRecord.field.set(message.field),
                    QuarantineRecord.error.set(message.error),
                    QuarantineRecord.first_received_at.set(
                        QuarantineRecord.first_received_at | now
                    ),
                    QuarantineRecord.last_received_at.set(now),
                    QuarantineRecord.deliveries.add(1),
                ]
            )


def _log_entry(change: Change, inbound: Inbound) -> EventLogRecord:
    now = change.at
    return EventLogRecord(
        message_ref(inbound).stream,
        inbound.message_id,
        shop_id=inbound.shop_id,
        platform=inbound.platform,
        message_id=inbound.message_id,
        topic=inbound.topic,
        outcome=change.receipt,
        event_type=type(inbound.event).__name__,
        event=codec.EVENT.encode(inbound.event),
        received_at=now,
    )


ENTITIES = DynamoEntities()


def read(ref: EntityRef) -> Stored | None:
    return _stored(read_or_none(RECORDS[ref.kind], ref.key, f"{ref.kind} {ref.entity_id}"))


def shop_and_entity(shop_id: str, ref: EntityRef) -> tuple[ShopRecord | None, Stored | None]:
    """A shop and one of its orders or cases, in one read (what an action needs)."""
    with (
        storage_errors("read the shop and its subject"),
        TransactGet(connection=connection()) as read_both,
    ):
        shop = read_both.get(ShopRecord, shop_id)
        entity = read_both.get(RECORDS[ref.kind], ref.key)
    return found(shop), _stored(found(entity))


def orders(refs: set[EntityRef]) -> dict[EntityRef, OrderState]:
    with storage_errors("read the orders"):
        records = list(OrderRecord.batch_get([ref.key for ref in refs]))
    states = {}
    for record in records:
        state = codec.ORDER.decode(record.document)
        states[EntityRef.order(state.platform, state.order_id)] = state
    return states


def cases_page(
    shop_id: str, statuses: frozenset[str] | None, limit: int, start: Key | None
) -> tuple[list[Stored], str | None]:
    """One page of a shop's cases (with these statuses), and the cursor to the next."""
    query = functools.partial(
        CaseRecord.by_shop.query,
        shop_id,
        filter_condition=CaseRecord.status.is_in(*statuses) if statuses else None,
    )
    records, cursor = page(query, limit, start, "cases")
    return [stored for stored in map(_stored, records) if stored], cursor


@dataclass(frozen=True)
class PendingDeadline:
    entity: EntityRef
    rule: str
    due_at: datetime
    state: DeadlineState


def pending_deadlines(shop_id: str, before: datetime | None, limit: int) -> list[PendingDeadline]:
    """A shop's pending deadlines, soonest first (a sparse index)."""
    with storage_errors("list deadlines"):
        rows = list(
            DeadlineRecord.pending_by_shop.query(
                shop_id,
                range_key_condition=DeadlineRecord.due_key <= sortable(before) if before else None,
                limit=limit,
            )
        )
    return [
        PendingDeadline(
            EntityRef.from_stream(row.entity_key), row.rule, row.due_at, DeadlineState(row.state)
        )
        for row in rows
    ]


@dataclass(frozen=True)
class LogEntry:
    received_at: datetime
    shop_id: str | None
    topic: str
    message_id: str
    outcome: str
    event: CanonicalEvent


def log(ref: EntityRef) -> list[LogEntry]:
    """Every message received for an entity, in arrival order, applied or not.
    Rows are keyed by message id (the dedup): ordered here, as an entity's log is
    a handful of rows."""
    with storage_errors("read the event log"):
        entries = sorted(
            EventLogRecord.query(ref.stream),
            key=lambda entry: (entry.received_at, entry.message_id),
        )
    return [
        LogEntry(
            entry.received_at,
            entry.shop_id,
            entry.topic,
            entry.message_id,
            entry.outcome,
            codec.EVENT.decode(entry.event),
        )
        for entry in entries
    ]


def quarantined() -> list[QuarantineRecord]:
    # An operator's view of what is usually a handful of rows.
    with storage_errors("list the quarantine"):
        return sorted(QuarantineRecord.scan(), key=lambda record: record.last_received_at)


def quarantined_one(key: str) -> QuarantineRecord | None:
    return read_or_none(QuarantineRecord, key, "the quarantine")


def release(record: QuarantineRecord) -> None:
    with storage_errors("release the message from the quarantine"):
        record.delete()


def _in_key_order(records: list, keys: list[str]) -> list:
    by_key = {record.entity_key: record for record in records}
    return [by_key[key] for key in keys if key in by_key]


def open_cases_page(
    shop_id: str, due_before: datetime | None, limit: int, start: Key | None
) -> tuple[list[Stored], str | None]:
    """One page of a shop's open cases, nearest deadline first (those due before
    `due_before` only, if given): one Query of the sparse index, one BatchGetItem."""
    condition = CaseRecord.attention_key <= sortable(due_before) if due_before else None
    query = functools.partial(CaseRecord.open_by_shop.query, shop_id, condition)
    keys, cursor = page(query, limit, start, "open cases")
    wanted = [key.entity_key for key in keys]
    with storage_errors("read the open cases"):
        records = list(CaseRecord.batch_get(wanted)) if wanted else []
    return [s for s in map(_stored, _in_key_order(records, wanted)) if s], cursor


def orders_page(shop_id: str, limit: int, start: Key | None) -> tuple[list[Stored], str | None]:
    """One page of a shop's orders, most recently changed first."""
    query = functools.partial(OrderRecord.by_shop.query, shop_id, scan_index_forward=False)
    keys, cursor = page(query, limit, start, "orders")
    wanted = [key.entity_key for key in keys]
    with storage_errors("read the orders"):
        records = list(OrderRecord.batch_get(wanted)) if wanted else []
    return [s for s in map(_stored, _in_key_order(records, wanted)) if s], cursor


@dataclass(frozen=True)
class ShopCounts:
    open_cases: int
    due_soon: int  # open cases whose next deadline is due by then
    breached_cases: int


def counts(shop_id: str, due_by: datetime) -> ShopCounts:
    """Three COUNT queries over sparse keys-only indexes: what the dashboard's
    numbers cost, however many cases the shop or the table holds (one Query
    counts some 6,000 keys)."""
    with storage_errors("count the shop's cases"):
        return ShopCounts(
            open_cases=CaseRecord.open_by_shop.count(shop_id),
            due_soon=CaseRecord.open_by_shop.count(
                shop_id, CaseRecord.attention_key <= sortable(due_by)
            ),
            breached_cases=CaseRecord.breached_by_shop.count(shop_id),
        )


def actions_on(ref: EntityRef) -> list[OutboxRecord]:
    """The actions asked for on an order or case, oldest first."""
    with storage_errors("read the actions"):
        return list(OutboxRecord.actions_by_subject.query(ref.stream))
