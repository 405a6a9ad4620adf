"""In-memory stand-ins for the store gateway and the queues, for fast tests of
the use cases (ingest, sweep). They keep the gateway's promises: one version
guard per entity, the event log refuses a message id twice, a commit is all or
nothing, each entity write is on its stream. moto stays for the integration suite."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from chalicelib.domain.change import (
    Change,
    Held,
    ShopSettings,
    Stored,
    fetched_ref,
    message_ref,
    order_ref_of,
    told,
)
from chalicelib.domain.ids import EntityRef
from chalicelib.domain.model import CaseSnapshot, CaseState, Inbound, OrderState, ShopStatus
from chalicelib.domain.rules import next_check
from chalicelib.domain.work import Work
from chalicelib.store.entities import AlreadyStoredError, DueDeadline, Quarantined
from chalicelib.store.errors import ConditionFailedError


@dataclass
class InMemoryEntities:
    """The EntityStore protocol over dicts."""

    entities: dict[EntityRef, Stored] = field(default_factory=dict)
    shops: dict[str, ShopSettings] = field(default_factory=dict)
    # (entity, message id, receipt): a message's entry is its dedup key, as in the table.
    log: list[tuple[EntityRef, str, str]] = field(default_factory=list)
    # The sparse due index: (entity, rule) -> (next check, shop, the case's order)
    due_index: dict[tuple[EntityRef, str], tuple[datetime, str, EntityRef | None]] = field(
        default_factory=dict
    )
    quarantined: dict[str, dict[str, Any]] = field(default_factory=dict)
    commits: int = 0
    # Each entity write as its table's stream shows it: (before, after, when).
    stream: list[tuple[Stored | None, OrderState | CaseState, datetime]] = field(
        default_factory=list
    )
    # Runs before each commit is checked: a test's way to lose a race.
    before_commit: Callable[[Change], None] | None = None

    def connect(self, shop_id: str, status: ShopStatus = ShopStatus.CONNECTED) -> None:
        self.shops[shop_id] = ShopSettings(shop_id, status)

    def load(self, inbound: Inbound) -> Held:
        ref = message_ref(inbound)
        order = (
            EntityRef.order(ref.platform, inbound.event.order_id)
            if isinstance(inbound.event, CaseSnapshot)
            else None
        )
        return Held(
            duplicate=self.logged(ref, inbound.message_id),
            entity=self.entities.get(ref),
            shop=self.shops.get(inbound.shop_id) if inbound.shop_id else None,
            order=self.entities.get(order) if order else None,
        )

    def logged(self, ref: EntityRef, message_id: str) -> bool:
        return any(entry[:2] == (ref, message_id) for entry in self.log)

    def load_cases(self, order: EntityRef, case_ids: frozenset[str]) -> list[Stored]:
        refs = [EntityRef.case(order.platform, case_id) for case_id in sorted(case_ids)]
        return [self.entities[ref] for ref in refs if ref in self.entities]

    def shop(self, shop_id: str) -> ShopSettings | None:
        return self.shops.get(shop_id)

    def due(self, now: datetime) -> list[DueDeadline]:
        return [
            DueDeadline(entity, shop_id, rule, order)
            for (entity, rule), (check, shop_id, order) in sorted(
                self.due_index.items(), key=lambda item: item[1][0]
            )
            if check <= now
        ]

    def load_due(self, due: DueDeadline) -> Held:
        return Held(
            entity=self.entities.get(due.entity),
            order=self.entities.get(due.order) if due.order else None,
            shop=self.shops.get(due.shop_id),
        )

    def commit(self, change: Change) -> list[Work]:
        if self.before_commit is not None:
            self.before_commit(change)
        inbound = change.message
        if inbound is not None and self.logged(message_ref(inbound), inbound.message_id):
            raise AlreadyStoredError("the message is held already", (0,))
        for entity in change.writes:
            held = self.entities.get(entity.ref)
            if (held.version if held else 0) != entity.version:
                raise ConditionFailedError("changed meanwhile")
        link = change.link
        if link is not None:
            order = self.entities.get(link.order)
            if (order.version if order else None) != link.order_version:
                raise ConditionFailedError("the order changed meanwhile")
        return self._apply(change)

    def _apply(self, change: Change) -> list[Work]:
        self.commits += 1
        work = []
        for entity in change.writes:
            self.stream.append((self.entities.get(entity.ref), entity.new, change.at))
            self.entities[entity.ref] = Stored(entity.new, entity.version + 1, entity.case_ids)
            self._index(entity.ref, entity.new)
        if change.link is not None:
            link = change.link
            order = self.entities.get(link.order) or Stored(
                OrderState(link.order.platform, link.order.entity_id), 0
            )
            self.entities[link.order] = replace(
                order, version=order.version + 1, case_ids=order.case_ids | {link.case_id}
            )
        if change.fetch is not None:
            fetch = change.fetch
            group = fetched_ref(fetch.payload).stream
            work.append(Work(fetch.outbox_id, fetch.kind, fetch.work_type, 0, group))
        if change.message is not None:
            inbound = change.message
            self.log.append((message_ref(inbound), inbound.message_id, str(change.receipt)))
        return work

    def told(self) -> list[str]:
        """The types of what the committed writes tell (the stream consumer's
        decision), in the order they were written."""
        return [
            item.work_type
            for before, after, at in self.stream
            for item in told(before, after, at)[1]
        ]

    def _index(self, ref: EntityRef, state: OrderState | CaseState) -> None:
        for key in [key for key in self.due_index if key[0] == ref]:
            del self.due_index[key]
        order = order_ref_of(ref, state) if isinstance(state, CaseState) else None
        for deadline in state.deadlines:
            check = next_check(deadline)
            if check is not None and state.shop_id is not None:
                self.due_index[(ref, deadline.rule)] = (check, state.shop_id, order)

    def quarantine(self, message: Quarantined, now: datetime) -> None:
        held = self.quarantined.get(message.key, {"deliveries": 0})
        self.quarantined[message.key] = {
            "field": message.field,
            "deliveries": held["deliveries"] + 1,
        }


@dataclass
class RecordingQueue:
    """The WorkQueue protocol: keeps what it was handed."""

    sent: list[Work] = field(default_factory=list)

    def send(self, items: Sequence[Work]) -> None:
        self.sent.extend(items)

    def types(self) -> list[str]:
        return [item.work_type for item in self.sent]
