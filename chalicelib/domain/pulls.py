"""Reconciliation pulls (platforms.md 2.3), the pure part: the time windows a
pull asks a platform's listings about, where a shop's pull starts, what a
pulled record is called, and how far a backfill has come.

A shop's cursor is a time before which everything the platform changed is
stored; a pull lists what changed from there to now, window by window, and
the cursor moves to a window's end only once all of that window is stored.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from chalicelib.domain.model import CaseSnapshot, Inbound, OrderSnapshot
from chalicelib.domain.state import entity_of

# The most a listing is asked about at once: what the Taobao-style platform advises.
WINDOW = timedelta(minutes=30)
# Each window starts this long before the last one ended: a change the platform
# indexed a little late is still listed.
OVERLAP = timedelta(minutes=5)
# A newly connected shop's history; and the furthest back a scheduled pull reaches.
BACKFILL = timedelta(days=30)


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime


def windows(cursor: datetime, now: datetime) -> Iterator[Window]:
    """The windows from `cursor` to `now`: each at most WINDOW long, each starting
    OVERLAP before the previous one ended."""
    end = cursor
    while end < now:
        start = end - OVERLAP
        end = min(start + WINDOW, now)
        yield Window(start, end)


def pull_start(cursor: datetime | None, connected_at: datetime, now: datetime) -> datetime:
    """Where a shop's scheduled pull starts: its cursor (a shop never pulled: when it
    was connected), never further back than BACKFILL."""
    return max(cursor or connected_at, now - BACKFILL)


def pulled_record(
    platform: str, shop_id: str, listing: str, event: OrderSnapshot | CaseSnapshot
) -> Inbound:
    """A record a listing returned, as a message: its id is the entity and its
    `modified`, so pulling it again is a duplicate of the first pull."""
    kind, entity_id = entity_of(event)
    version = int(event.modified.timestamp() * 1000)
    return Inbound(
        platform=platform,
        message_id=f"pull:{kind}:{entity_id}@{version}",
        topic=listing,
        shop_id=shop_id,
        event=event,
        pulled=True,
    )


@dataclass(frozen=True)
class Backfill:
    """A newly connected shop's history being pulled: from `since` to `until` (its
    connect time)."""

    since: datetime
    until: datetime

    def progress(self, cursor: datetime | None) -> float:
        """The share pulled so far, 0.0 to 1.0."""
        if cursor is None or cursor <= self.since:
            return 0.0
        return min(1.0, (cursor - self.since) / (self.until - self.since))
