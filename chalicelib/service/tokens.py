"""Shop tokens: kept sealed, refreshed before they expire, never shown."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pynamodb.exceptions import PynamoDBException
from pynamodb.transactions import TransactWrite

from chalicelib.config import app_credentials, oauth_url
from chalicelib.domain.events import SHOP_NEEDS_RECONNECT
from chalicelib.domain.model import ShopTokens
from chalicelib.observability import emit, logger
from chalicelib.platforms import registry
from chalicelib.platforms.oauth import OAuthExchangeError
from chalicelib.service import outbox
from chalicelib.service.changes import outbox_row, sortable
from chalicelib.service.errors import StorageUnavailableError
from chalicelib.store import vault
from chalicelib.store.records import REFRESH_SHARDS, ShopRecord, connection, due_from

# Refresh this long before the access token expires, so a failed attempt has retries.
REFRESH_AHEAD = timedelta(hours=2)
NEEDS_RECONNECT = "needs_reconnect"


def keep(record: ShopRecord, tokens: ShopTokens) -> None:
    """Seal `tokens` onto the shop (not saved) and schedule their refresh."""
    shard = int(hashlib.sha256(record.shop_id.encode()).hexdigest()[:8], 16) % REFRESH_SHARDS
    record.sealed_tokens = vault.seal(record.shop_id, tokens)
    record.token_expires_at = tokens.expires_at
    record.refresh_expires_at = tokens.refresh_expires_at
    record.refresh_shard = str(shard)
    record.refresh_at = sortable(tokens.expires_at - REFRESH_AHEAD)


def unsealed(record: ShopRecord) -> ShopTokens:
    return vault.open_sealed(
        record.shop_id, record.sealed_tokens, record.token_expires_at, record.refresh_expires_at
    )


def due(now: datetime) -> list[ShopRecord]:
    return due_from(ShopRecord.refresh_due, REFRESH_SHARDS, ShopRecord.refresh_at, sortable(now))


@dataclass
class RefreshReport:
    refreshed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def refresh_shop(shop: ShopRecord, now: datetime) -> bool:
    """Trade the shop's refresh token for new tokens (on schedule, or when the
    platform answers "invalid session"); on failure the seller must reconnect."""
    platform = registry()[shop.platform]
    credentials, base_url = app_credentials(shop.platform), oauth_url(shop.platform)
    try:
        if credentials is None or base_url is None:
            raise OAuthExchangeError(f"no {shop.platform} app or OAuth URL is configured")
        fresh = platform.refresh(base_url, credentials, unsealed(shop).refresh_token, now)
    except OAuthExchangeError as error:
        _needs_reconnect(shop, str(error), now)
        return False
    keep(shop, fresh)
    try:
        shop.save()
    except PynamoDBException as error:
        raise StorageUnavailableError("could not save refreshed tokens") from error
    return True


def refresh_due(now: datetime) -> RefreshReport:
    report = RefreshReport()
    for shop in due(now):
        (report.refreshed if refresh_shop(shop, now) else report.failed).append(shop.shop_id)
    emit("TokensRefreshed", len(report.refreshed))
    if report.failed:
        emit("TokenRefreshFailures", len(report.failed))
    return report


def _needs_reconnect(shop: ShopRecord, reason: str, now: datetime) -> None:
    """The seller must connect again: say so, stop refreshing, keep receiving pushes."""
    logger.warning("token refresh failed", extra={"shop_id": shop.shop_id, "reason": reason})
    event_type = SHOP_NEEDS_RECONNECT
    digest = hashlib.sha256(f"{shop.shop_id}|{now.isoformat()}".encode()).hexdigest()[:24]
    event = {"type": event_type, "timestamp": now.isoformat(), "data": {"shop_id": shop.shop_id}}
    shop.status = NEEDS_RECONNECT
    shop.sealed_tokens = None
    shop.refresh_shard = None
    shop.refresh_at = None
    row = outbox_row(f"evt_reconnect_{digest}", "event", event_type, shop.shop_id, event, now)
    try:
        # The shop's new status and the event saying so are written together.
        with TransactWrite(connection=connection()) as write:
            write.save(shop)
            write.save(row)
    except PynamoDBException as error:
        raise StorageUnavailableError("could not mark the shop for reconnect") from error
    outbox.enqueue([row])
