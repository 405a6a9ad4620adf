"""Reconciliation (platforms.md 2.3): what a platform changed but never pushed
is pulled from its listings and stored through ingest's store-once path, so a
record held already at its `modified` changes nothing and sends nothing (one
read, no write).

A pull reads a shop's listings from its cursor to now, window by window
(domain.pulls), each listing page by page, and moves the cursor to a window's
end once that whole window is stored. Where the platform needs it, each case
the shop holds open is then re-read by id. A refusal (a rate limit, the
platform busy, a 5xx) ends the run; the next attempt resumes from the cursor,
so nothing is skipped.

The same run completes a thin message: its queued fetch reads the one order or
case (the platform's `read`) and stores it the same way (`fetch`).

Fan-out: the schedule queues one pull per shop with live tokens on the outbox
queue, each shop in a message group of its own. Shops are pulled side by side
(each message is its own Lambda invocation), one shop's pulls one after the
other, and a slow or refusing shop holds up no other. A run starts no window
after RUN_BUDGET_SECONDS (its consumer times out at 60 s) and queues its own
continuation: a 30-day backfill is a chain of such runs.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from time import perf_counter

from chalicelib.domain.change import Receipt, fetched_ref, message_ref
from chalicelib.domain.ids import EntityRef
from chalicelib.domain.model import ShopStatus
from chalicelib.domain.pulls import BACKFILL, Window, pull_start, windows
from chalicelib.domain.work import AttemptResult, Tried, WorkKind
from chalicelib.observability import emit, logger
from chalicelib.platforms import registry
from chalicelib.platforms.api import CallOutcome, CallResult
from chalicelib.platforms.base import ApiSession, MalformedMessageError, Platform, Pulled
from chalicelib.service import outbox, tokens
from chalicelib.service.errors import ConflictError
from chalicelib.service.ingest import store_once
from chalicelib.settings import settings
from chalicelib.store import entities, shops, work
from chalicelib.store.entities import ENTITIES, EntityStore
from chalicelib.store.pages import decode_cursor
from chalicelib.store.records import OutboxRecord, ShopRecord
from chalicelib.store.work import NewWork, sortable

# A queued run starts no window after this long: the consumer times out at 60 s.
RUN_BUDGET_SECONDS = 40.0
# The schedule's period: it queues a shop's pull at most once per slot this long,
# however often it runs (`shophook local` runs every schedule every minute).
SLOT = timedelta(minutes=15)
OPEN_CASES_PAGE = 100


class NotPullableError(ConflictError):
    """The shop cannot be pulled: unknown, not connected with tokens, or its
    platform's API is not configured."""


@dataclass(frozen=True)
class Healed:
    """A record a pull stored that changed the state: a push that never came."""

    entity: str  # "order:3010001", "case:R3010001"
    listing: str


@dataclass
class PullReport:
    shop_id: str
    start: datetime
    planned: int  # windows from `start` to now
    cursor: datetime | None  # the end of the last window stored whole
    windows: int = 0
    pages: int = 0
    records: int = 0
    reread: int = 0
    healed: list[Healed] = field(default_factory=list)
    caught_up: bool = False
    # Why the run ended before catching up (the platform's refusal, or a record
    # that could not be read), or None.
    refused: CallResult | None = None


@dataclass
class _Run:
    """One pull of one shop: its session (refreshed once if the platform refuses
    it), and what it has stored so far."""

    shop: ShopRecord
    platform: Platform
    session: ApiSession
    report: PullReport
    store: EntityStore
    queue: outbox.WorkQueue

    def ask(self, asking: Callable[[ApiSession], Pulled | None]) -> Pulled | None:
        pulled = asking(self.session)
        refused = pulled.refused if pulled is not None else None
        if refused is not None and refused.outcome is CallOutcome.REFRESH_TOKEN:
            if not tokens.refresh_shop(self.shop, self.session.now):
                return pulled
            fresh = tokens.unsealed(self.shop).access_token
            self.session = replace(self.session, access_token=fresh)
            pulled = asking(self.session)
        return pulled

    def keep(self, pulled: Pulled) -> bool:
        """Store what was pulled; False (the refusal noted) if the platform refused."""
        if pulled.refused is not None:
            self.report.refused = pulled.refused
            return False
        now = self.session.now
        for record in pulled.records:
            receipt, sent = store_once(record, now, self.store)
            self.queue.send(sent)
            self.report.records += 1
            if receipt is Receipt.APPLIED:
                ref = message_ref(record)
                self.report.healed.append(Healed(f"{ref.kind}:{ref.entity_id}", record.topic))
        return True

    def window(self, window: Window) -> bool:
        """Every page of every listing for `window`; False if the platform refused."""
        for listing in self.platform.listings:
            page: str | None = None
            while True:
                asking = functools.partial(
                    self.platform.pull,
                    shop_id=self.shop.shop_id,
                    listing=listing,
                    window=window,
                    page=page,
                )
                pulled = self.ask(asking)
                assert pulled is not None
                if not self.keep(pulled):
                    return False
                self.report.pages += 1
                page = pulled.next_page
                if page is None:
                    break
        return True

    def windows(
        self, planned: Iterable[Window], deadline: float, on_window: Callable[[PullReport], None]
    ) -> bool:
        """Window after window until caught up (True), refused, or out of time (at
        least one window a run)."""
        for window in planned:
            healed_before = len(self.report.healed)
            if not self.window(window):
                return False
            self.report.windows += 1
            self.report.cursor = window.end
            # Saved at once when it stored something; otherwise at the end of the run.
            if len(self.report.healed) > healed_before:
                self.advance(window.end)
            on_window(self.report)
            if perf_counter() > deadline and window.end < self.session.now:
                return False
        return True

    def advance(self, to: datetime) -> None:
        """Move the shop's cursor to `to`, unless it is there or further already (a
        pull from an earlier `since`)."""
        if self.shop.pull_cursor is None or self.shop.pull_cursor < to:
            shops.advance_cursor(self.shop, to)

    def open_cases(self) -> bool:
        """Re-read each case the shop holds open; False if the platform refused."""
        start = None
        while True:
            cases, cursor = entities.open_cases_page(
                self.shop.shop_id, None, OPEN_CASES_PAGE, start
            )
            for case in cases:
                asking = functools.partial(
                    self.platform.read,
                    shop_id=self.shop.shop_id,
                    ref=EntityRef.case(self.platform.name, case.state.case_id),
                )
                pulled = self.ask(asking)
                if pulled is None:
                    continue
                if not self.keep(pulled):
                    return False
                self.report.reread += 1
            if cursor is None:
                return True
            start = decode_cursor(cursor)


def _pullable(shop_id: str, now: datetime) -> tuple[ShopRecord, Platform, ApiSession]:
    shop = shops.read(shop_id)
    if shop is None or shop.status != ShopStatus.CONNECTED or shop.sealed_tokens is None:
        raise NotPullableError(
            "shop_not_pullable",
            f"'{shop_id}' is not connected with tokens: the seller must connect it",
            "shop_id",
        )
    configured = settings().platform(shop.platform)
    if configured.credentials is None or configured.api_url is None:
        raise NotPullableError(
            "platform_not_configured",
            f"no {shop.platform} API URL or app credentials are configured",
            "shop_id",
        )
    session = ApiSession(
        configured.api_url, configured.credentials, tokens.unsealed(shop).access_token, now
    )
    return shop, registry()[shop.platform], session


def pull_shop(
    shop_id: str,
    now: datetime,
    since: datetime | None = None,
    budget_seconds: float | None = RUN_BUDGET_SECONDS,
    on_window: Callable[[PullReport], None] = lambda report: None,
    store: EntityStore = ENTITIES,
    queue: outbox.WorkQueue = outbox.SQS,
) -> PullReport:
    """Pull the shop from its cursor (or `since`) to `now`; the cursor only moves
    forward. `budget_seconds` None: until caught up or refused."""
    logger.append_keys(shop_id=shop_id)
    shop, platform, session = _pullable(shop_id, now)
    start = since or pull_start(shop.pull_cursor, shop.connected_at, now)
    planned = list(windows(start, now))
    report = PullReport(shop_id, start, len(planned), shop.pull_cursor)
    run = _Run(shop, platform, session, report, store, queue)
    deadline = perf_counter() + budget_seconds if budget_seconds is not None else float("inf")
    try:
        report.caught_up = run.windows(planned, deadline, on_window) and (
            not platform.rereads_open_cases or run.open_cases()
        )
    except MalformedMessageError as malformed:
        # Not skipped: the cursor stays before it until a fixed parser reads it.
        report.refused = CallResult(
            CallOutcome.PERMANENT, "malformed_record", f"{malformed.field}: {malformed.message}"
        )
    if report.cursor is not None:
        run.advance(report.cursor)
    _count(platform.name, report)
    return report


def _count(platform: str, report: PullReport) -> None:
    emit("ReconcilePages", report.pages, platform=platform)
    emit("ReconcileHealed", len(report.healed), platform=platform)
    details = {
        "shop_id": report.shop_id,
        "windows": report.windows,
        "pages": report.pages,
        "records": report.records,
        "reread": report.reread,
        "healed": len(report.healed),
        "cursor": report.cursor.isoformat() if report.cursor else None,
    }
    if report.refused is not None:
        emit("ReconcileErrors", platform=platform)
        refused = report.refused
        logger.warning("pull ended early", extra={**details, "code": refused.code})
        return
    logger.info("pulled", extra=details)


def _row(shop_id: str, label: str, kind: str, now: datetime) -> OutboxRecord:
    return work.new_row(
        NewWork(
            f"pull_{shop_id}_{label}",
            WorkKind.PULL,
            kind,
            shop_id,
            {"shop_id": shop_id},
            # One message group per shop: its pulls one after another.
            order_group=shop_id,
        ),
        now,
    )


def _queue(rows: list[OutboxRecord], queue: outbox.WorkQueue) -> int:
    stored = work.save_new(rows)
    queue.send([work.work_of(row) for row in stored])
    return len(stored)


def schedule(now: datetime, queue: outbox.WorkQueue = outbox.SQS) -> int:
    """Queue a pull for every shop with live tokens, once per slot; returns how many."""
    utc = now.astimezone(UTC)
    slot = utc - (utc - datetime(2000, 1, 1, tzinfo=UTC)) % SLOT
    rows = [_row(shop.shop_id, sortable(slot), "reconcile", now) for shop in shops.with_tokens()]
    return _queue(rows, queue)


def start_backfill(record: ShopRecord, now: datetime) -> None:
    """A newly connected shop: its last BACKFILL to be pulled (noted, not saved)."""
    record.backfill_since, record.backfill_until = now - BACKFILL, now
    record.pull_cursor = record.backfill_since


def queue_backfill(shop_id: str, now: datetime, queue: outbox.WorkQueue = outbox.SQS) -> None:
    _queue([_row(shop_id, f"backfill-{sortable(now)}", "backfill", now)], queue)


def attempt(row: OutboxRecord, now: datetime) -> Tried:
    """One queued run for the shop; a run out of time queues the next."""
    started = perf_counter()
    try:
        report = pull_shop(row.shop_id, now, budget_seconds=RUN_BUDGET_SECONDS)
    except NotPullableError as refused:
        return Tried(AttemptResult.FAILED, refused.message)
    latency_ms = (perf_counter() - started) * 1000
    if report.refused is not None:
        return _refused(report.refused, latency_ms)
    if not report.caught_up and report.cursor is not None:
        # Named by where it starts: a run that made no progress queues nothing new.
        continuation = _row(row.shop_id, f"from-{sortable(report.cursor)}", row.type, now)
        _queue([continuation], outbox.SQS)
    return Tried(AttemptResult.DONE, latency_ms=latency_ms)


def _refused(refused: CallResult, latency_ms: float) -> Tried:
    """A run or a fetch the platform refused: tried again later if it may pass."""
    retry = refused.outcome is CallOutcome.RETRYABLE
    return Tried(
        AttemptResult.RETRY if retry else AttemptResult.FAILED,
        f"{refused.code}: {refused.message}",
        latency_ms=latency_ms,
    )


def fetch(row: OutboxRecord, now: datetime) -> Tried:
    """A thin message's detail call (its queued fetch): what the platform returns
    is stored like a pulled record, so one held already at its `modified` changes
    nothing, and the entity's rules run once it is in."""
    ref = fetched_ref(json.loads(row.payload))
    try:
        shop, platform, session = _pullable(row.shop_id, now)
    except NotPullableError as refused:
        return Tried(AttemptResult.FAILED, refused.message)
    started = perf_counter()
    run = _Run(shop, platform, session, PullReport(row.shop_id, now, 0, None), ENTITIES, outbox.SQS)
    try:
        pulled = run.ask(functools.partial(platform.read, shop_id=row.shop_id, ref=ref))
        if pulled is None:
            return Tried(
                AttemptResult.FAILED, f"{platform.name} has no call that reads {ref.kind}s"
            )
        kept = run.keep(pulled)
    except MalformedMessageError as malformed:
        return Tried(
            AttemptResult.FAILED, f"malformed_record: {malformed.field}: {malformed.message}"
        )
    latency_ms = (perf_counter() - started) * 1000
    if not kept:
        assert run.report.refused is not None
        return _refused(run.report.refused, latency_ms)
    return Tried(AttemptResult.DONE, latency_ms=latency_ms)
