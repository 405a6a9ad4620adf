"""What both marketplaces' OAuth share: an Authlib session with timeouts, and
turning a token answer into ShopTokens."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from chalicelib.domain.model import ShopTokens
from chalicelib.platforms.base import AppCredentials

if TYPE_CHECKING:
    from authlib.integrations.requests_client import OAuth2Session

TIMEOUT_SECONDS = 10


class OAuthExchangeError(Exception):
    """The platform did not hand over tokens (refused, failed or answered nonsense)."""


def session(credentials: AppCredentials, redirect_uri: str, auth_method: str) -> OAuth2Session:
    # Imported here: only connecting and refreshing need Authlib, and every
    # function's cold start would pay for it otherwise.
    from authlib.integrations.requests_client import OAuth2Session

    return OAuth2Session(
        client_id=credentials.app_key,
        client_secret=credentials.app_secret,
        redirect_uri=redirect_uri,
        token_endpoint_auth_method=auth_method,
    )


def fetch(oauth: OAuth2Session, url: str, method: str, **params: Any) -> dict[str, Any]:
    try:
        return dict(oauth.fetch_token(url, method=method, timeout=TIMEOUT_SECONDS, **params))
    except Exception as error:  # Authlib, requests and JSON errors all mean: no tokens
        raise OAuthExchangeError(type(error).__name__) from None


def tokens_from(answer: dict[str, Any], now: datetime) -> ShopTokens:
    try:
        refresh_in = answer.get("re_expires_in")
        return ShopTokens(
            access_token=str(answer["access_token"]),
            refresh_token=str(answer["refresh_token"]),
            expires_at=now + timedelta(seconds=int(answer["expires_in"])),
            refresh_expires_at=now + timedelta(seconds=int(refresh_in)) if refresh_in else None,
        )
    except (KeyError, TypeError, ValueError):
        raise OAuthExchangeError(
            "the token answer lacks access_token, refresh_token or expires_in"
        ) from None
