"""Shop tokens: kept sealed, refreshed before they expire, never shown."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from chalicelib.domain.events import SHOP_NEEDS_RECONNECT
from chalicelib.domain.model import ShopStatus, ShopTokens
from chalicelib.domain.work import WorkKind
from chalicelib.observability import emit, logger
from chalicelib.platforms import registry
from chalicelib.platforms.oauth import OAuthExchangeError
from chalicelib.service import outbox
from chalicelib.settings import settings
from chalicelib.store import shops, vault, work
from chalicelib.store.records import ShopRecord
from chalicelib.store.work import NewWork

# Refresh this long before the access token expires, so a failed attempt has retries.
REFRESH_AHEAD = timedelta(hours=2)


def keep(record: ShopRecord, tokens: ShopTokens) -> None:
    """Seal `tokens` onto the shop (not saved) and schedule their refresh."""
    record.sealed_tokens = vault.seal(record.shop_id, tokens)
    record.token_expires_at = tokens.expires_at
    record.refresh_expires_at = tokens.refresh_expires_at
    shops.schedule_refresh(record, tokens.expires_at - REFRESH_AHEAD)


def unsealed(record: ShopRecord) -> ShopTokens:
    return vault.open_sealed(
        record.shop_id, record.sealed_tokens, record.token_expires_at, record.refresh_expires_at
    )


@dataclass
class RefreshReport:
    refreshed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def refresh_shop(shop: ShopRecord, now: datetime) -> bool:
    """Trade the shop's refresh token for new tokens (on schedule, or when the
    platform answers "invalid session"); on failure the seller must reconnect."""
    platform = registry()[shop.platform]
    configured = settings().platform(shop.platform)
    try:
        if configured.credentials is None or configured.oauth_url is None:
            raise OAuthExchangeError(f"no {shop.platform} app or OAuth URL is configured")
        fresh = platform.refresh(
            configured.oauth_url, configured.credentials, unsealed(shop).refresh_token, now
        )
    except OAuthExchangeError as error:
        _needs_reconnect(shop, str(error), now)
        return False
    keep(shop, fresh)
    shops.save(shop)
    return True


def refresh_due(now: datetime) -> RefreshReport:
    report = RefreshReport()
    for shop in shops.refresh_due(now):
        (report.refreshed if refresh_shop(shop, now) else report.failed).append(shop.shop_id)
    emit("TokensRefreshed", len(report.refreshed))
    if report.failed:
        emit("TokenRefreshFailures", len(report.failed))
    return report


def _needs_reconnect(shop: ShopRecord, reason: str, now: datetime) -> None:
    """The seller must connect again: say so, stop refreshing, keep receiving pushes."""
    logger.warning("token refresh failed", extra={"shop_id": shop.shop_id, "reason": reason})
    digest = hashlib.sha256(f"{shop.shop_id}|{now.isoformat()}".encode()).hexdigest()[:24]
    event = {
        "type": SHOP_NEEDS_RECONNECT,
        "timestamp": now.isoformat(),
        "data": {"shop_id": shop.shop_id},
    }
    shop.status = ShopStatus.NEEDS_RECONNECT
    shop.sealed_tokens = None
    shops.schedule_refresh(shop, None)
    row = work.new_row(
        NewWork(
            f"evt_reconnect_{digest}", WorkKind.EVENT, SHOP_NEEDS_RECONNECT, shop.shop_id, event
        ),
        now,
    )
    # The shop's new status and the event saying so are written together.
    work.save([row], with_record=shop)
    outbox.SQS.send([work.work_of(row)])
