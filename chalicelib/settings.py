"""ShopHook's settings: environment variables only (set per stage in
.chalice/config.json and the packaged template), read once per process.

An app secret is given either as its value (`SHOPHOOK_<PLATFORM>_APP_SECRET`,
local and development use) or, as the packaged stack does, as the name or ARN
of the AWS Secrets Manager secret holding it (`SHOPHOOK_<PLATFORM>_APP_SECRET_NAME`),
read when needed through store.secrets (cached there).

AWS endpoints and credentials come from the standard AWS variables
(`AWS_REGION`, `AWS_ENDPOINT_URL`, ...), which botocore reads itself: the local
stack points them at moto, AWS leaves them unset. A value ShopHook cannot use
is reported (SettingsError, naming the variable), never silently replaced.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

from chalicelib.store.secrets import app_secret as stored_secret

TABLE_PREFIX_VARIABLE = "SHOPHOOK_TABLE_PREFIX"
PUBLIC_URL_VARIABLE = "SHOPHOOK_PUBLIC_URL"
KMS_KEY_VARIABLE = "SHOPHOOK_KMS_KEY_ID"
LOOPBACK_WEBHOOKS_VARIABLE = "SHOPHOOK_ALLOW_LOOPBACK_WEBHOOKS"
OUTBOUND_TIMEOUT_VARIABLE = "SHOPHOOK_OUTBOUND_TIMEOUT_SECONDS"
INTEGRATOR_TIMEOUT_VARIABLE = "SHOPHOOK_INTEGRATOR_TIMEOUT_SECONDS"
DEFAULT_TABLE_PREFIX = "shophook-"
DEFAULT_REGION = "us-east-1"
DEFAULT_OUTBOUND_TIMEOUT_SECONDS = 10.0
# Shopify's limit for its own webhooks: an integrator that has not answered by
# then is retried later, and a slow one holds a delivery worker no longer.
DEFAULT_INTEGRATOR_TIMEOUT_SECONDS = 5.0
CONNECT_TIMEOUT_SECONDS = 3.05


class SettingsError(ValueError):
    """An environment variable is set to something ShopHook cannot use."""


@dataclass(frozen=True)
class AppCredentials:
    """A marketplace app's key and secret."""

    app_key: str
    app_secret: str

    def __repr__(self) -> str:
        return f"AppCredentials(app_key={self.app_key!r}, app_secret=<redacted>)"


@dataclass(frozen=True)
class PlatformSettings:
    """One marketplace's app and where its OAuth and API answer (platforms.md 2, 3)."""

    credentials: AppCredentials | None
    api_url: str | None
    oauth_url: str | None
    # The platform's message channel is drained (SHOPHOOK_<PLATFORM>_TMC=1; platforms.md 1.4).
    channel: bool = False


def platform_variable(platform: str, part: str) -> str:
    """SHOPHOOK_<PLATFORM>_<PART>: APP_KEY, APP_SECRET, APP_SECRET_NAME, API_URL, OAUTH_URL,
    TMC."""
    return f"SHOPHOOK_{platform.upper()}_{part.upper()}"


@dataclass(frozen=True)
class Settings:
    table_prefix: str
    region: str
    # Where browsers and platforms reach this API (OAuth redirect URIs are built on it).
    public_url: str | None
    # The KMS key that seals shop tokens and subscription secrets.
    kms_key_id: str | None
    # Local use only: subscriptions may point at http://127.0.0.1.
    allow_loopback_webhooks: bool
    # (connect, read) seconds for calls to the platforms' APIs: connect fast or
    # give up; a platform that has not answered by the read timeout is retried later.
    outbound_timeout: tuple[float, float]
    # (connect, read) seconds for deliveries to integrators' endpoints, likewise.
    integrator_timeout: tuple[float, float]
    environ: Mapping[str, str]

    def platform(self, name: str) -> PlatformSettings:
        def value(part: str) -> str | None:
            return self.environ.get(platform_variable(name, part)) or None

        app_key = value("app_key")
        app_secret = value("app_secret")
        secret_name = value("app_secret_name")
        if app_key and secret_name:
            app_secret = stored_secret(secret_name)
        return PlatformSettings(
            credentials=AppCredentials(app_key, app_secret) if app_key and app_secret else None,
            api_url=value("api_url"),
            oauth_url=value("oauth_url"),
            channel=_flag(self.environ, platform_variable(name, "tmc")),
        )

    def queue_url(self, variable: str) -> str | None:
        return self.environ.get(variable) or None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        for name, value in environ.items():
            if name.endswith("_APP_SECRET") and value and environ.get(f"{name}_NAME"):
                raise SettingsError(f"set {name} or {name}_NAME, not both")
        public_url = environ.get(PUBLIC_URL_VARIABLE, "").rstrip("/") or None
        if public_url is not None and not public_url.startswith(("https://", "http://")):
            raise SettingsError(f"{PUBLIC_URL_VARIABLE} must be an http(s) URL, not {public_url!r}")
        return cls(
            table_prefix=environ.get(TABLE_PREFIX_VARIABLE, DEFAULT_TABLE_PREFIX),
            region=environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION,
            public_url=public_url,
            kms_key_id=environ.get(KMS_KEY_VARIABLE) or None,
            allow_loopback_webhooks=_flag(environ, LOOPBACK_WEBHOOKS_VARIABLE),
            outbound_timeout=_timeout(
                environ, OUTBOUND_TIMEOUT_VARIABLE, DEFAULT_OUTBOUND_TIMEOUT_SECONDS
            ),
            integrator_timeout=_timeout(
                environ, INTEGRATOR_TIMEOUT_VARIABLE, DEFAULT_INTEGRATOR_TIMEOUT_SECONDS
            ),
            environ={
                name: value for name, value in environ.items() if name.startswith("SHOPHOOK_")
            },
        )


def _flag(environ: Mapping[str, str], name: str) -> bool:
    value = environ.get(name, "")
    if value not in ("", "0", "1"):
        raise SettingsError(f"{name} must be 1 (on) or 0 (off), not {value!r}")
    return value == "1"


def _timeout(environ: Mapping[str, str], name: str, default: float) -> tuple[float, float]:
    raw = environ.get(name, "")
    if not raw:
        read = default
    else:
        try:
            read = float(raw)
        except ValueError:
            read = -1.0
        if not 0 < read <= 900:
            raise SettingsError(
                f"{name} must be a number of seconds, more than 0 and at most 900, not {raw!r}"
            )
    return min(CONNECT_TIMEOUT_SECONDS, read), read


@cache
def settings() -> Settings:
    """The settings of this process, read from the environment on first use."""
    return Settings.from_environ(os.environ)


def reload() -> Settings:
    """Read the environment again (the local stack and tests, after changing it)."""
    settings.cache_clear()
    return settings()
