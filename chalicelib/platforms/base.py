"""The one small interface every platform module implements."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from chalicelib.domain.actions import Action, ReturnAddress
from chalicelib.domain.ids import EntityRef
from chalicelib.domain.model import CaseSnapshot, ConnectedShop, Inbound, ShopTokens
from chalicelib.domain.pulls import Window
from chalicelib.platforms.api import CallResult
from chalicelib.settings import AppCredentials

# What any inbound path takes (platforms.md 1.5: a bigger body is a 413).
MAX_BODY_BYTES = 256 * 1024


@dataclass(frozen=True)
class InboundRequest:
    """What a platform module sees of an HTTP request: no web framework types."""

    query: Mapping[str, list[str]]
    headers: Mapping[str, str]
    raw_body: bytes


@dataclass(frozen=True)
class VerifiedDelivery:
    """A request whose signature and timestamp checked out; parsing comes next."""

    platform: str
    raw_body: bytes
    params: Mapping[str, str]


class WebhookRejectedError(Exception):
    """The request failed verification: nothing of it is trusted or stored."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class MalformedMessageError(Exception):
    """A well-signed message that cannot be applied; it goes to the quarantine."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


class UnsupportedActionError(ValueError):
    """The platform has no call for this action on this kind of case."""


@dataclass(frozen=True)
class ApiSession:
    """What a signed API call needs besides its method and fields: where the API
    answers, as which app, with which shop's session, and when."""

    api_url: str
    credentials: AppCredentials
    access_token: str = field(repr=False)
    now: datetime


@dataclass(frozen=True)
class Pulled:
    """One page of a listing, or one re-read record: canonical messages made with
    `domain.pulls.pulled_record`, and the page after this one (None: this was the
    last). Or, with no records, the platform's refusal (`refused`, never SUCCESS)."""

    records: tuple[Inbound, ...] = ()
    next_page: str | None = None
    refused: CallResult | None = None


@dataclass(frozen=True)
class Consumed:
    """One batch taken from a message channel: each message as the push it would
    have been (verified: the channel's answer is signed by the call), or with no
    messages the platform's refusal (`refused`, never SUCCESS). Empty: drained."""

    deliveries: tuple[VerifiedDelivery, ...] = ()
    refused: CallResult | None = None


class MessageChannel(Protocol):
    """A platform's message channel drained over its API (platforms.md 1.4): a
    shop is subscribed with its session; consuming and confirming are the app's."""

    batch: int  # the most one consume returns, and the most ids one confirm takes

    def permit(self, session: ApiSession) -> CallResult:
        """Subscribe the shop whose session this is to the app's topics."""

    def cancel(self, session: ApiSession, nick: str) -> CallResult:
        """Stop the shop's messages (an app-level call: the session holds no token)."""

    def consume(self, session: ApiSession) -> Consumed:
        """The next batch of messages not confirmed (redelivered after a while)."""

    def confirm(self, session: ApiSession, message_ids: Sequence[str]) -> CallResult:
        """Take these messages off the channel for good (at most `batch` ids)."""


class Platform(Protocol):
    name: str
    # Its message channel, for a platform that delivers through one besides pushes.
    channel: MessageChannel | None

    def verify(
        self, request: InboundRequest, credentials: AppCredentials, now: datetime
    ) -> VerifiedDelivery:
        """Check signature, app key and timestamp window; raise WebhookRejectedError."""

    # Whether one push carries an array of messages (Doudian-style): a malformed
    # one is quarantined and the push still answered as stored, since the platform
    # would otherwise redeliver the whole array. A push that is one message
    # answers a malformed one with 422 (platforms.md 1.5).
    pushes_arrays: bool

    def messages(self, delivery: VerifiedDelivery) -> tuple[VerifiedDelivery, ...]:
        """The messages a verified push carries, each parsed and stored on its own
        (none: a push that asks only whether the URL works); raise
        MalformedMessageError when the push cannot be split at all."""

    def message_id(self, delivery: VerifiedDelivery) -> str | None:
        """The platform's message id if it can be read at all (keys the quarantine)."""

    def parse(self, delivery: VerifiedDelivery) -> Inbound:
        """Turn a verified delivery into a canonical event; raise MalformedMessageError."""

    def ack(self) -> dict[str, Any]:
        """The body that tells the platform the message is durably stored."""

    def failure(self, code: str, message: str) -> dict[str, Any]:
        """The body of a non-2xx answer in the platform's own error shape."""

    def authorize_url(
        self, base_url: str, credentials: AppCredentials, redirect_uri: str, state: str
    ) -> str:
        """Where to send the seller's browser to approve ShopHook."""

    def exchange_code(
        self,
        base_url: str,
        credentials: AppCredentials,
        redirect_uri: str,
        code: str,
        now: datetime,
    ) -> ConnectedShop:
        """Trade the authorization code for tokens; raise OAuthExchangeError."""

    def refresh(
        self, base_url: str, credentials: AppCredentials, refresh_token: str, now: datetime
    ) -> ShopTokens:
        """New tokens for a refresh token; raise OAuthExchangeError."""

    def action_request(
        self,
        shop_id: str,
        action: Action,
        case: CaseSnapshot,
        reason: str,
        address: ReturnAddress | None,
    ) -> tuple[str, dict[str, Any]]:
        """The API method and business fields that carry out `action` on `case` of
        the shop `shop_id`; raise UnsupportedActionError."""

    def ship_request(
        self, order_id: str, tracking_no: str, carrier: str
    ) -> tuple[str, dict[str, Any]]:
        """The API method and business fields that mark an order shipped."""

    def call(
        self,
        api_url: str,
        credentials: AppCredentials,
        access_token: str,
        method: str,
        business: dict[str, Any],
        now: datetime,
    ) -> CallResult:
        """One signed API call; every answer mapped to one CallResult."""

    # Reconciliation (platforms.md 2.3). The listings of what changed in a time
    # window, each pulled page by page for every window of a pull.
    listings: tuple[str, ...]
    # True when an open case can change without any listing showing it (JD-style
    # refund applies are listed by their apply time): each case the shop holds open
    # is then re-read by id once per pull.
    rereads_open_cases: bool

    def pull(
        self, session: ApiSession, shop_id: str, listing: str, window: Window, page: str | None
    ) -> Pulled:
        """One page (`page` None: the first) of what `listing` says the shop changed
        in `window`; raise MalformedMessageError for a record that cannot be read."""

    def read(self, session: ApiSession, shop_id: str, ref: EntityRef) -> Pulled | None:
        """The order or case as the platform has it now (its detail call), or None
        when the platform has no call that reads this kind of entity; raise
        MalformedMessageError as `pull` does. Completes thin messages (a parser's
        `ThinMessage`) and re-reads open cases."""


class OneMessagePush:
    """`messages` for a platform whose push is one message (Taobao-style, JD-style)."""

    pushes_arrays = False

    def messages(self, delivery: VerifiedDelivery) -> tuple[VerifiedDelivery, ...]:
        return (delivery,)


class SessionCalls:
    """`call` for a platform module whose one signed request is `answered`: the
    result, and on success the body under the method's success key (which its
    pulls read)."""

    def answered(
        self, session: ApiSession, method: str, business: dict[str, Any]
    ) -> tuple[CallResult, dict[str, Any]]:
        raise NotImplementedError

    def call(
        self,
        api_url: str,
        credentials: AppCredentials,
        access_token: str,
        method: str,
        business: dict[str, Any],
        now: datetime,
    ) -> CallResult:
        session = ApiSession(api_url, credentials, access_token, now)
        result, _ = self.answered(session, method, business)
        return result


def single_valued(pairs: list[tuple[str, str]] | Mapping[str, list[str]]) -> dict[str, str]:
    """Parameters as a plain dict; a name given twice makes the signature ambiguous."""
    items = (
        pairs
        if isinstance(pairs, list)
        else [(name, value) for name, values in pairs.items() for value in values]
    )
    params: dict[str, str] = {}
    for name, value in items:
        if name in params:
            raise WebhookRejectedError(
                400, "duplicate_parameter", f"parameter '{name}' is given more than once"
            )
        params[name] = value
    return params


def require_param(params: Mapping[str, str], name: str, code: str) -> str:
    value = params.get(name)
    if not value:
        raise WebhookRejectedError(401, code, f"parameter '{name}' is missing")
    return value


def check_app_key(params: Mapping[str, str], credentials: AppCredentials) -> None:
    app_key = require_param(params, "app_key", "missing_app_key")
    if app_key != credentials.app_key:
        raise WebhookRejectedError(401, "unknown_app_key", "app_key is not known to ShopHook")
