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


def app_credentials(platform: str) -> AppCredentials | None:
    """The marketplace app's key and secret: SHOPHOOK_<PLATFORM>_APP_KEY / _APP_SECRET."""
    prefix = f"SHOPHOOK_{platform.upper()}_APP_"
    app_key, app_secret = os.environ.get(prefix + "KEY"), os.environ.get(prefix + "SECRET")
    if not app_key or not app_secret:
        return None
    return AppCredentials(app_key=app_key, app_secret=app_secret)
