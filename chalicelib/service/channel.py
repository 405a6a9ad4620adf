"""Message channels (platforms.md 1.4): a platform that delivers shop messages
through a channel of its own (Taobao-style TMC) rather than, or besides,
pushing them, drained over plain HTTP on a schedule.

A shop is subscribed when it connects and let go when it disconnects, each as
queued work with the outbox's retries: a connect never waits on the platform.
The schedule takes batch after batch until the channel is empty or its time is
up, stores each message through ingest's store-once path (the push's own:
deduplicated by the platform's message id, stale by `modified`, quarantined
when malformed), then confirms exactly the messages stored, held already or
quarantined. A message whose storing failed is not confirmed, and the platform
delivers it again; so does one whose confirm never arrived (a crash between
storing and confirming), and then it is held already: it changes nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from time import perf_counter

from chalicelib.domain.change import Receipt
from chalicelib.domain.ids import platform_of
from chalicelib.domain.work import AttemptResult, Tried, WorkKind
from chalicelib.observability import emit, logger
from chalicelib.platforms import registry
from chalicelib.platforms.api import CallOutcome, CallResult
from chalicelib.platforms.base import ApiSession, Consumed, MessageChannel, Platform
from chalicelib.service import ingest, outbox, tokens
from chalicelib.settings import settings
from chalicelib.store import shops, work
from chalicelib.store.entities import ENTITIES, EntityStore
from chalicelib.store.errors import StorageUnavailableError
from chalicelib.store.records import OutboxRecord, ShopRecord
from chalicelib.store.work import NewWork, sortable

# A run takes no new batch after this long (platforms.md 1.4; its function
# times out at 60 s).
RUN_BUDGET_SECONDS = 50.0
PERMIT = "permit"
CANCEL = "cancel"


def _channel(platform_name: str) -> MessageChannel | None:
    """The platform's channel when it has one and it is drained here."""
    channel = registry()[platform_name].channel
    return channel if channel is not None and settings().platform(platform_name).channel else None


def _queue_call(record: ShopRecord, call: str, now: datetime) -> None:
    if _channel(record.platform) is None:
        return
    row = work.new_row(
        NewWork(
            f"channel_{record.shop_id}_{call}_{sortable(now)}",
            WorkKind.CHANNEL,
            call,
            record.shop_id,
            # The cancel is the app's call and names the shop by its nick: the
            # tokens are gone by then.
            {"nick": record.name},
            # One group per shop: a cancel never overtakes its permit.
            order_group=record.shop_id,
        ),
        now,
    )
    stored = work.save_new([row])
    outbox.SQS.send([work.work_of(row) for row in stored])


def subscribe(record: ShopRecord, now: datetime) -> None:
    """Queue the shop's subscription to its platform's channel (if it has one)."""
    _queue_call(record, PERMIT, now)


def unsubscribe(record: ShopRecord, now: datetime) -> None:
    """Queue the end of the shop's messages on its platform's channel."""
    _queue_call(record, CANCEL, now)


def _session(platform_name: str, access_token: str, now: datetime) -> ApiSession | None:
    configured = settings().platform(platform_name)
    if configured.credentials is None or configured.api_url is None:
        return None
    return ApiSession(configured.api_url, configured.credentials, access_token, now)


def attempt(row: OutboxRecord, now: datetime) -> Tried:
    """One permit or cancel call for the row's shop."""
    platform_name = platform_of(row.shop_id)
    channel = registry()[platform_name].channel
    assert channel is not None
    access_token = ""
    if row.type == PERMIT:
        shop = shops.read(row.shop_id)
        if shop is None or shop.sealed_tokens is None:
            return Tried(AttemptResult.FAILED, "the shop is not connected: nothing to subscribe")
        access_token = tokens.unsealed(shop).access_token
    session = _session(platform_name, access_token, now)
    if session is None:
        return Tried(
            AttemptResult.RETRY, f"no {platform_name} API URL or app credentials are configured"
        )
    started = perf_counter()
    if row.type == PERMIT:
        answer = channel.permit(session)
    else:
        answer = channel.cancel(session, json.loads(row.payload)["nick"])
    latency_ms = (perf_counter() - started) * 1000
    text = f"{answer.code}: {answer.message}" if answer.code or answer.message else None
    if answer.outcome in (CallOutcome.SUCCESS, CallOutcome.ALREADY_DONE):
        return Tried(AttemptResult.DONE, latency_ms=latency_ms)
    # A session refused is retried too: the token refresh schedule renews it meanwhile.
    if answer.outcome in (CallOutcome.RETRYABLE, CallOutcome.REFRESH_TOKEN):
        return Tried(AttemptResult.RETRY, text, latency_ms=latency_ms)
    return Tried(AttemptResult.FAILED, text, latency_ms=latency_ms)


@dataclass
class DrainReport:
    platform: str
    batches: int = 0
    consumed: int = 0
    confirmed: int = 0
    # Held already when they came: delivered again (unconfirmed, or repeated).
    redelivered: int = 0
    # Not stored: left unconfirmed for the channel to deliver again.
    unstored: int = 0
    # Why the run ended early (the platform refused a consume or a confirm), or None.
    refused: CallResult | None = None

    @property
    def failed(self) -> bool:
        return self.refused is not None or self.unstored > 0


@dataclass
class _Run:
    platform: Platform
    channel: MessageChannel
    session: ApiSession
    report: DrainReport
    store: EntityStore
    queue: outbox.WorkQueue

    def store_batch(self, consumed: Consumed) -> list[str]:
        """Store each message; the ids to confirm (stored, held or quarantined)."""
        settled: dict[str, None] = {}
        for delivery in consumed.deliveries:
            message_id = self.platform.message_id(delivery)
            try:
                stored = ingest.store_delivery(
                    self.platform, delivery, self.session.now, self.store, self.queue
                )
            except StorageUnavailableError:
                self.report.unstored += 1
                continue
            if stored.receipt is Receipt.DUPLICATE:
                self.report.redelivered += 1
            # Without an id (quarantined as such) it cannot be confirmed.
            if message_id is not None:
                settled[message_id] = None
        return list(settled)

    def confirm(self, message_ids: list[str]) -> bool:
        size = self.channel.batch
        for chunk in (message_ids[at : at + size] for at in range(0, len(message_ids), size)):
            answer = self.channel.confirm(self.session, chunk)
            if answer.outcome is not CallOutcome.SUCCESS:
                self.report.refused = answer
                return False
            self.report.confirmed += len(chunk)
        return True

    def drain(self, deadline: float) -> None:
        while True:
            consumed = self.channel.consume(self.session)
            if consumed.refused is not None:
                self.report.refused = consumed.refused
                return
            if not consumed.deliveries:
                return
            self.report.batches += 1
            self.report.consumed += len(consumed.deliveries)
            confirmed = self.confirm(self.store_batch(consumed))
            # Storage failing: the rest waits for the next run.
            if not confirmed or self.report.unstored or perf_counter() > deadline:
                return


def drain(
    now: datetime,
    budget_seconds: float = RUN_BUDGET_SECONDS,
    store: EntityStore = ENTITIES,
    queue: outbox.WorkQueue = outbox.SQS,
) -> list[DrainReport]:
    """Drain every channel that is on, until empty or `budget_seconds` have passed."""
    deadline = perf_counter() + budget_seconds
    reports = []
    for name, platform in registry().items():
        channel = _channel(name)
        session = _session(name, "", now) if channel is not None else None
        if channel is None or session is None:
            continue
        report = DrainReport(name)
        _Run(platform, channel, session, report, store, queue).drain(deadline)
        _count(report)
        reports.append(report)
    return reports


def _count(report: DrainReport) -> None:
    platform = report.platform
    emit("TmcConsumed", report.consumed, platform=platform)
    emit("TmcConfirmed", report.confirmed, platform=platform)
    emit("TmcRedelivered", report.redelivered, platform=platform)
    # Every run says whether it failed: three in a row raise the alarm.
    emit("TmcRunFailed", int(report.failed), platform=platform)
    details = {
        "batches": report.batches,
        "consumed": report.consumed,
        "confirmed": report.confirmed,
        "redelivered": report.redelivered,
        "unstored": report.unstored,
    }
    if report.failed:
        code = report.refused.code if report.refused is not None else "storage_unavailable"
        logger.warning("channel run failed", extra={**details, "code": code})
        return
    logger.info("channel drained", extra=details)
