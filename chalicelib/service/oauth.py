"""Shop connect by OAuth: start (a state bound to the browser) and finish
(check it once, trade the code for tokens, store them sealed, queue its
subscription to the platform's message channel, and for a shop new to ShopHook
queue the pull of its last 30 days)."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from chalicelib.domain.model import ConnectedShop, ShopStatus
from chalicelib.observability import emit, logger
from chalicelib.platforms import registry
from chalicelib.platforms.base import Platform
from chalicelib.platforms.oauth import OAuthExchangeError
from chalicelib.service import channel, reconcile, tokens
from chalicelib.settings import AppCredentials, settings
from chalicelib.store import shops
from chalicelib.store.records import ShopRecord

STATE_LIFETIME = timedelta(minutes=10)
COOKIE = "shophook_connect"
# What the seller came for: connect a shop, or sign in to the console (which
# connects, or reconnects, it too). It travels in the state the platform echoes.
PURPOSES = ("connect", "console")
# Connects one client (address) may start in a minute: each writes a state row,
# and a seller needs one or two.
CONNECTS_PER_MINUTE = 10


class ConnectError(Exception):
    """Something a seller must be told on the connect page; nothing was changed.
    `code`: unknown_marketplace, too_many_connects, link_expired, declined or
    marketplace_failed."""

    def __init__(self, code: str, title: str, message: str) -> None:
        super().__init__(title)
        self.code, self.title, self.message = code, title, message


@dataclass(frozen=True)
class Started:
    authorize_url: str
    browser_nonce: str  # goes in an HttpOnly cookie; its hash is stored with the state


def _setup(platform_name: str) -> tuple[Platform, AppCredentials, str, str]:
    platform = registry().get(platform_name)
    configured = settings()
    platform_settings = configured.platform(platform_name)
    credentials, base_url = platform_settings.credentials, platform_settings.oauth_url
    if platform is None or credentials is None or not base_url or not configured.public_url:
        raise ConnectError(
            "unknown_marketplace",
            "Unknown marketplace",
            f"ShopHook cannot connect '{platform_name}' shops here.",
        )
    redirect_uri = f"{configured.public_url}/oauth/{platform.name}/callback"
    return platform, credentials, base_url, redirect_uri


def start(platform_name: str, now: datetime, client: str, purpose: str = "connect") -> Started:
    """Begin a connect for the browser at `client` (its address)."""
    platform, credentials, base_url, redirect_uri = _setup(platform_name)
    assert purpose in PURPOSES
    if not shops.count_connect(client, now, CONNECTS_PER_MINUTE):
        raise ConnectError(
            "too_many_connects",
            "Too many connect attempts",
            "Please wait a minute, then start again from ShopHook.",
        )
    state, nonce = f"{purpose}.{secrets.token_urlsafe(32)}", secrets.token_urlsafe(32)
    shops.save_connect(state, platform.name, nonce, now + STATE_LIFETIME)
    return Started(platform.authorize_url(base_url, credentials, redirect_uri, state), nonce)


@dataclass(frozen=True)
class Finished:
    shop: ConnectedShop
    purpose: str


def finish(
    platform_name: str, query: Mapping[str, str], nonce: str | None, now: datetime
) -> Finished:
    platform, credentials, base_url, redirect_uri = _setup(platform_name)
    state = query.get("state", "")
    if not state or not nonce or not shops.take_connect(state, platform.name, nonce, now):
        raise ConnectError(
            "link_expired",
            "This connect link has expired",
            "It was already used, is more than 10 minutes old, or was opened in another "
            "browser. Start again from ShopHook.",
        )
    if query.get("error") or not query.get("code"):
        raise ConnectError(
            "declined",
            "The shop was not connected",
            "The connection was declined on the marketplace.",
        )
    try:
        shop = platform.exchange_code(base_url, credentials, redirect_uri, query["code"], now)
    except OAuthExchangeError as error:
        emit("ShopConnectFailed", platform=platform.name)
        logger.warning("token exchange failed", extra={"reason": str(error)})
        raise ConnectError(
            "marketplace_failed",
            "The marketplace did not confirm the connection",
            "Nothing was changed. Please try again in a minute.",
        ) from None
    record = shops.read(shop.shop_id) or ShopRecord(shop.shop_id, platform=platform.name)
    record.name = shop.name or record.name
    record.status = ShopStatus.CONNECTED
    record.connected_at = now
    tokens.keep(record, shop.tokens)
    # A shop ShopHook never pulled: its history comes in the background. One
    # connected before keeps its cursor: the next pull catches up from there.
    backfill = record.pull_cursor is None
    if backfill:
        reconcile.start_backfill(record, now)
    shops.save(record)
    channel.subscribe(record, now)
    if backfill:
        reconcile.queue_backfill(record.shop_id, now)
    emit("ShopConnected", platform=platform.name)
    # The state was stored and checked as a whole: its purpose is as it was started.
    return Finished(shop, state.partition(".")[0])
