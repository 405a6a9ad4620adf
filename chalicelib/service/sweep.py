"""The deadline sweeper: reads only the deadlines whose time has come (a
sharded sparse index, never a scan), and re-decides their entities with the
same decision and the same commit as ingest."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime

from chalicelib.domain.change import decide
from chalicelib.domain.ids import EntityRef
from chalicelib.observability import emit, logger, tracer
from chalicelib.policies import default_policy
from chalicelib.store.entities import ENTITIES, DueDeadline, EntityStore
from chalicelib.store.errors import ConditionFailedError, StorageUnavailableError

MAX_ATTEMPTS = 3


@dataclass
class SweepReport:
    due: int = 0
    entities: int = 0
    events: list[str] = field(default_factory=list)


@tracer.capture_method(capture_response=False)
def sweep(now: datetime, store: EntityStore = ENTITIES) -> SweepReport:
    due = store.due(now)
    by_entity: dict[EntityRef, list[DueDeadline]] = defaultdict(list)
    for deadline in due:
        by_entity[deadline.entity].append(deadline)
    report = SweepReport(due=len(due), entities=len(by_entity))
    for deadlines in by_entity.values():
        try:
            report.events += _sweep_entity(deadlines, now, store)
        except StorageUnavailableError:
            # The rows stay due: the next sweep takes them up again.
            logger.exception("deadline sweep failed", extra={"entity": deadlines[0].entity.stream})
    emit("DeadlinesDue", report.due)
    return report


def _sweep_entity(deadlines: list[DueDeadline], now: datetime, store: EntityStore) -> list[str]:
    first = deadlines[0]
    # The due rows are rewritten even if their deadlines did not change.
    refresh = frozenset(deadline.rule for deadline in deadlines)
    policy = default_policy(first.entity.platform)
    for _ in range(MAX_ATTEMPTS):
        held = store.load_due(first)
        if held.entity is None:
            logger.warning("a due deadline's entity is gone", extra={"entity": first.entity.stream})
            return []
        change = decide(held, None, policy, now)
        change = replace(change, writes=tuple(replace(w, refresh=refresh) for w in change.writes))
        try:
            # A sweep has no message, so no fetch: what it tells is read from the stream.
            store.commit(change)
        except ConditionFailedError:
            continue
        return [event.type for entity in change.writes for event in entity.events]
    raise StorageUnavailableError("the entity kept changing during the sweep")
