"""What both marketplaces' API clients share: one pooled HTTP session with
timeouts, and one result type for every answer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Any

import requests

from chalicelib.platforms.signing import joined_params

# Connect fast or give up; platforms answer within seconds or not at all.
TIMEOUT = (3.05, 10)


class CallOutcome(StrEnum):
    SUCCESS = "success"
    RETRYABLE = "retryable"  # rate limited, platform busy, 5xx, timeout: try later
    REFRESH_TOKEN = "refresh_token"  # noqa: S105 - an outcome, not a secret: refresh, then retry
    PERMANENT = "permanent"  # the platform refused: retrying will not help


@dataclass(frozen=True)
class CallResult:
    outcome: CallOutcome
    code: str = ""
    message: str = ""


@cache
def http() -> requests.Session:
    return requests.Session()


def post_signed(
    url: str, form: dict[str, str], signer: Callable[[str, bytes], str], secret: str
) -> tuple[CallResult | None, Any]:
    """Sign every field of `form` (sorted `name + value`) and POST it; (a RETRYABLE
    result, None) when the platform is unreachable, slow or failing, else (None,
    the decoded JSON answer)."""
    form = {**form, "sign": signer(secret, joined_params(form))}
    try:
        answer = http().post(url, data=form, timeout=TIMEOUT)
    except requests.Timeout:
        return CallResult(
            CallOutcome.RETRYABLE, "timeout", "the platform did not answer in time"
        ), None
    except requests.ConnectionError:
        return CallResult(
            CallOutcome.RETRYABLE, "unreachable", "the platform could not be reached"
        ), None
    if answer.status_code >= 500:
        return CallResult(CallOutcome.RETRYABLE, str(answer.status_code), "platform error"), None
    try:
        return None, answer.json()
    except ValueError:
        return CallResult(CallOutcome.RETRYABLE, "not_json", "the answer was not JSON"), None
