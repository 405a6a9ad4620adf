"""Configuration: environment variables only (set per stage in .chalice/config.json).

AWS endpoints, region and credentials come from the standard AWS variables
(`AWS_REGION`, `AWS_ENDPOINT_URL`, ...), which botocore reads itself: the local
stack points them at moto, AWS leaves them unset.
"""

from __future__ import annotations

import os

from chalicelib.platforms.base import AppCredentials

TABLE_PREFIX_VARIABLE = "SHOPHOOK_TABLE_PREFIX"
DEFAULT_TABLE_PREFIX = "shophook-"
DEFAULT_REGION = "us-east-1"


def table_prefix() -> str:
    return os.environ.get(TABLE_PREFIX_VARIABLE, DEFAULT_TABLE_PREFIX)


def aws_region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION


def credential_variable(platform: str, part: str) -> str:
    """SHOPHOOK_<PLATFORM>_APP_KEY or _APP_SECRET."""
    return f"SHOPHOOK_{platform.upper()}_APP_{part.upper()}"


def app_credentials(platform: str) -> AppCredentials | None:
    """The marketplace app's key and secret, from the environment."""
    app_key = os.environ.get(credential_variable(platform, "key"))
    app_secret = os.environ.get(credential_variable(platform, "secret"))
    if not app_key or not app_secret:
        return None
    return AppCredentials(app_key=app_key, app_secret=app_secret)


def oauth_url_variable(platform: str) -> str:
    return f"SHOPHOOK_{platform.upper()}_OAUTH_URL"


def oauth_url(platform: str) -> str | None:
    """The platform's OAuth base URL."""
    return os.environ.get(oauth_url_variable(platform))


PUBLIC_URL_VARIABLE = "SHOPHOOK_PUBLIC_URL"


def public_url() -> str | None:
    """Where browsers and platforms reach this API (OAuth redirect URIs are built on it)."""
    url = os.environ.get(PUBLIC_URL_VARIABLE)
    return url.rstrip("/") if url else None


def api_url_variable(platform: str) -> str:
    return f"SHOPHOOK_{platform.upper()}_API_URL"


def api_url(platform: str) -> str | None:
    """Where the platform's API answers (platforms.md section 2)."""
    return os.environ.get(api_url_variable(platform))


LOOPBACK_WEBHOOKS_VARIABLE = "SHOPHOOK_ALLOW_LOOPBACK_WEBHOOKS"


def loopback_webhooks_allowed() -> bool:
    """Local use only: subscriptions may point at http://127.0.0.1."""
    return os.environ.get(LOOPBACK_WEBHOOKS_VARIABLE) == "1"


OUTBOUND_TIMEOUT_VARIABLE = "SHOPHOOK_OUTBOUND_TIMEOUT_SECONDS"
DEFAULT_OUTBOUND_TIMEOUT_SECONDS = 10.0
CONNECT_TIMEOUT_SECONDS = 3.05


def outbound_timeout() -> tuple[float, float]:
    """(connect, read) seconds for calls to the platforms' APIs and to integrators:
    connect fast or give up; a peer that has not answered by the read timeout
    is retried later."""
    raw = os.environ.get(OUTBOUND_TIMEOUT_VARIABLE, "")
    try:
        read = float(raw) if raw else DEFAULT_OUTBOUND_TIMEOUT_SECONDS
    except ValueError:
        read = DEFAULT_OUTBOUND_TIMEOUT_SECONDS
    return min(CONNECT_TIMEOUT_SECONDS, read), read
