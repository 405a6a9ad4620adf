"""What both marketplaces' API clients share: one pooled HTTP session with
timeouts, and one result type for every answer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import TYPE_CHECKING, Any

from chalicelib.platforms.signing import joined_params, without_blank

if TYPE_CHECKING:
    import requests


class CallOutcome(StrEnum):
    SUCCESS = "success"
    RETRYABLE = "retryable"  # rate limited, platform busy, 5xx, timeout: try later
    REFRESH_TOKEN = "refresh_token"  # noqa: S105 - an outcome, not a secret: refresh, then retry
    # The subject is already past this step: an earlier call of ours whose answer
    # was lost got there, or someone else did (the seller in the platform's own tools).
    ALREADY_DONE = "already_done"
    PERMANENT = "permanent"  # the platform refused: retrying will not help


@dataclass(frozen=True)
class CallResult:
    outcome: CallOutcome
    code: str = ""
    message: str = ""
    # No answer or a broken one: the platform may have carried the call out.
    uncertain: bool = False


@cache
def http() -> requests.Session:
    # requests (and charset_normalizer under it) costs some 50 ms at import:
    # loaded by the first platform call, not on every cold start.
    import requests

    return requests.Session()


def post_signed(
    url: str,
    form: dict[str, str],
    signer: Callable[[str, bytes], str],
    secret: str,
    timeout: tuple[float, float],
) -> tuple[CallResult | None, Any]:
    """Sign `form` (its fields sorted, `name + value`) and POST it as `post` does.
    A blank field is neither sent nor signed, as the platforms' SDKs do."""
    form = without_blank(form)
    form["sign"] = signer(secret, joined_params(form))
    return post(url, timeout, data=form)


def post(url: str, timeout: tuple[float, float], **request: Any) -> tuple[CallResult | None, Any]:
    """POST (`request`: the body and query as requests takes them); (a RETRYABLE
    result, None) when the platform is unreachable, slow or failing, else (None,
    the decoded JSON answer)."""
    import requests

    try:
        answer = http().post(url, timeout=timeout, **request)
    except requests.Timeout:
        return _unanswered("timeout", "the platform did not answer in time"), None
    except requests.ConnectionError:
        return _unanswered("unreachable", "the platform could not be reached"), None
    if answer.status_code >= 500:
        return _unanswered(str(answer.status_code), "platform error"), None
    try:
        return None, answer.json()
    except ValueError:
        return _unanswered("not_json", "the answer was not JSON"), None


def _unanswered(code: str, message: str) -> CallResult:
    return CallResult(CallOutcome.RETRYABLE, code, message, uncertain=True)
