"""Shop connect by OAuth: start (a state bound to the browser) and finish
(check it once, trade the code for tokens, store them sealed)."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from pynamodb.exceptions import DeleteError, DoesNotExist, PynamoDBException

from chalicelib.config import app_credentials, oauth_url, public_url
from chalicelib.domain.model import ConnectedShop
from chalicelib.observability import emit, logger
from chalicelib.platforms import registry
from chalicelib.platforms.base import AppCredentials, Platform
from chalicelib.platforms.oauth import OAuthExchangeError
from chalicelib.service import tokens
from chalicelib.service.errors import StorageUnavailableError
from chalicelib.store.records import SHOP_CONNECTED, OAuthStateRecord, ShopRecord

STATE_LIFETIME = timedelta(minutes=10)
COOKIE = "shophook_connect"


class ConnectError(Exception):
    """Something a seller must be told on the connect page; nothing was changed."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(title)
        self.status, self.title, self.message = status, title, message


@dataclass(frozen=True)
class Started:
    authorize_url: str
    browser_nonce: str  # goes in an HttpOnly cookie; its hash is stored with the state


def _browser(nonce: str) -> str:
    return hashlib.sha256(nonce.encode()).hexdigest()


def _setup(platform_name: str) -> tuple[Platform, AppCredentials, str, str]:
    platform = registry().get(platform_name)
    credentials = app_credentials(platform_name) if platform else None
    base_url, public = oauth_url(platform_name), public_url()
    if platform is None or credentials is None or not base_url or not public:
        raise ConnectError(
            404, "Unknown marketplace", f"ShopHook cannot connect '{platform_name}' shops here."
        )
    return platform, credentials, base_url, f"{public}/oauth/{platform.name}/callback"


def start(platform_name: str, now: datetime) -> Started:
    platform, credentials, base_url, redirect_uri = _setup(platform_name)
    state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    try:
        OAuthStateRecord(
            state,
            platform=platform.name,
            browser=_browser(nonce),
            valid_until=now + STATE_LIFETIME,
            expires_at=now + STATE_LIFETIME,
        ).save()
    except PynamoDBException as error:
        raise StorageUnavailableError("could not start the connect") from error
    return Started(platform.authorize_url(base_url, credentials, redirect_uri, state), nonce)


def _consume_state(platform: Platform, state: str, nonce: str | None, now: datetime) -> None:
    """Accept a state once, from the browser that started it, within 10 minutes."""
    expired = ConnectError(
        400,
        "This connect link has expired",
        "It was already used, is more than 10 minutes old, or was opened in another "
        "browser. Start again from ShopHook.",
    )
    if not state or not nonce:
        raise expired
    record = OAuthStateRecord(state)
    try:
        record.delete(
            condition=(OAuthStateRecord.platform == platform.name)
            & (OAuthStateRecord.browser == _browser(nonce))
            & (OAuthStateRecord.valid_until > now)
        )
    except (DeleteError, DoesNotExist) as error:
        if isinstance(error, DeleteError) and error.cause_response_code not in (
            "ConditionalCheckFailedException",
        ):
            raise StorageUnavailableError("could not check the connect") from error
        raise expired from None


def finish(
    platform_name: str, query: Mapping[str, str], nonce: str | None, now: datetime
) -> ConnectedShop:
    platform, credentials, base_url, redirect_uri = _setup(platform_name)
    _consume_state(platform, query.get("state", ""), nonce, now)
    if query.get("error") or not query.get("code"):
        raise ConnectError(
            400, "The shop was not connected", "The connection was declined on the marketplace."
        )
    try:
        shop = platform.exchange_code(base_url, credentials, redirect_uri, query["code"], now)
    except OAuthExchangeError as error:
        emit("ShopConnectFailed", platform=platform.name)
        logger.warning("token exchange failed", extra={"reason": str(error)})
        raise ConnectError(
            502,
            "The marketplace did not confirm the connection",
            "Nothing was changed. Please try again in a minute.",
        ) from None
    _store(platform, shop, now)
    emit("ShopConnected", platform=platform.name)
    return shop


def _store(platform: Platform, shop: ConnectedShop, now: datetime) -> None:
    try:
        try:
            record = ShopRecord.get(shop.shop_id)
        except DoesNotExist:
            record = ShopRecord(shop.shop_id, platform=platform.name)
        record.name = shop.name or record.name
        record.status = SHOP_CONNECTED
        record.connected_at = now
        tokens.keep(record, shop.tokens)
        record.save()
    except PynamoDBException as error:
        raise StorageUnavailableError("could not save the shop") from error
