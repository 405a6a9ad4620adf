"""What every simulated platform module provides, and the pieces they share.

The server (simulator/server.py) knows no platform by name: it mounts each
module's OAuth and API routes under `/{name}` and asks the module to read a
request and to word each answer in the platform's own shape."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Protocol

from flask import Request

from chalicelib.platforms.base import AppCredentials
from chalicelib.platforms.signing import (
    SIGNERS,
    has_no_value,
    joined_params,
    signatures_match,
    without_blank,
)
from chalicelib.platforms.wire import format_wire_time, parse_wire_time
from simulator.webhooks import Message, SignedWebhook


class Refusal(StrEnum):
    """Why the platform's gateway or API refuses a call; each module words it
    with its own codes (the fault codes among them)."""

    UNKNOWN_METHOD = "unknown_method"
    BAD_SIGNATURE = "bad_signature"
    INVALID_SESSION = "invalid_session"
    RATE_LIMITED = "rate_limited"
    MISSING_ARGUMENT = "missing_argument"
    INVALID_ARGUMENT = "invalid_argument"
    ALREADY_DONE = "already_done"


def wire_time_after(start: datetime, hours: float) -> str:
    """A wire time `hours` after `start`: the stories time their messages this way."""
    return format_wire_time(start + timedelta(hours=hours))


# Why a method's business fields are refused beyond presence, given the seller
# whose session calls: a detail naming the field, or None.
Check = Callable[[Mapping[str, Any], str], str | None]


@dataclass(frozen=True)
class ApiMethod:
    """One API method as the platform checks it: the business fields it needs,
    what else their values must be, and the body it answers under the method's
    success key."""

    required: tuple[str, ...]
    answer: Mapping[str, Any]
    invalid: Check | None = None
    # What the call acts on, when that is not the value of its first required field.
    subject_of: Callable[[Mapping[str, Any]], str] | None = None

    def missing(self, business: Mapping[str, Any]) -> str | None:
        """The first required field that is absent or empty."""
        return next((name for name in self.required if has_no_value(business.get(name))), None)

    def subject(self, business: Mapping[str, Any]) -> str:
        """What the call acts on (a refund, a trade): a step is taken once per subject."""
        if self.subject_of is not None:
            return self.subject_of(business)
        return str(business[self.required[0]])


@dataclass(frozen=True)
class HeldRecord:
    """A record the platform keeps of what it pushed, as its listings show it: the
    latest version of each entity is the one listed."""

    seller: str
    listing: str  # the listing method that shows it
    entity_id: str
    modified: datetime
    # What the listing selects by: `modified`, or for a JD-style refund apply its apply time.
    listed_at: datetime
    record: Mapping[str, Any]


class ArgumentRefusedError(ValueError):
    """A query's arguments are outside what the platform accepts (the detail names them)."""


@dataclass(frozen=True)
class Query:
    """A read-only API method (platforms.md 2.3): it answers from the records the
    platform holds in `listing` for the seller whose session calls, and takes no step."""

    listing: str
    required: tuple[str, ...]
    # (business fields, the seller's held records of the listing) -> the body under the
    # method's success key; raises ArgumentRefusedError.
    answer: Callable[[Mapping[str, Any], Sequence[HeldRecord]], dict[str, Any]]

    def missing(self, business: Mapping[str, Any]) -> str | None:
        return next((name for name in self.required if has_no_value(business.get(name))), None)


def listed_between(
    held: Sequence[HeldRecord],
    start: str,
    end: str,
    page: int,
    size: int,
    longest: timedelta | None = None,
) -> tuple[list[Mapping[str, Any]], int]:
    """One page (from 1) of the records listed from `start` to `end` (wire times,
    both included), oldest first; and how many there are in all. Refuses a window
    longer than `longest` and a page size over `size`'s limit as the platforms do."""
    try:
        since, until = parse_wire_time(start), parse_wire_time(end)
    except ValueError as error:
        raise ArgumentRefusedError(f"times: {error}") from None
    if until < since or (longest is not None and until - since > longest):
        raise ArgumentRefusedError(f"the window {start} to {end} is not one the platform lists")
    if page < 1:
        raise ArgumentRefusedError("pages are counted from 1")
    inside = sorted(
        (record for record in held if since <= record.listed_at <= until),
        key=lambda record: (record.listed_at, record.entity_id),
    )
    return [record.record for record in inside[(page - 1) * size : page * size]], len(inside)


def page_size(business: Mapping[str, Any], name: str, limit: int) -> int:
    size = business[name]
    if not isinstance(size, int) and not str(size).isdigit():
        raise ArgumentRefusedError(f"{name} must be a number")
    if not 0 < int(size) <= limit:
        raise ArgumentRefusedError(f"{name} must be from 1 to {limit}")
    return int(size)


@dataclass(frozen=True)
class ChannelMethods:
    """A platform's message channel as its API serves it (platforms.md 1.4): the
    method names, what a consume and a confirm ask for, and the answers' bodies
    (under each method's success key)."""

    permit: str  # with the shop's session: its messages start
    cancel: str  # the app's call, naming the shop: its messages stop
    consume: str  # the app's call: the next batch not confirmed
    confirm: str  # the app's call: these ids are done
    # The batch a consume asks for; raises ArgumentRefusedError.
    quantity: Callable[[Mapping[str, Any]], int]
    # The ids a confirm names; raises ArgumentRefusedError.
    confirmed: Callable[[Mapping[str, Any]], list[str]]
    # A consume's body for its messages (none: nothing to consume).
    batch: Callable[[list[Mapping[str, Any]]], dict[str, Any]]
    done: Mapping[str, Any]  # the body of a permit, cancel or confirm carried out

    @property
    def app_level(self) -> tuple[str, ...]:
        """The methods called without a shop's session."""
        return (self.cancel, self.consume, self.confirm)


@dataclass(frozen=True)
class ApiCall:
    """One API request as the platform read it."""

    method: str
    params: dict[str, str]  # the form as sent, kept for inspection
    session: str
    business: Mapping[str, Any]
    signature_ok: bool


@dataclass(frozen=True)
class TokenRequest:
    """A token endpoint's request: who asks, and the grant (a code or a refresh token)."""

    client_id: str
    client_secret: str
    grant_type: str
    grant: str

    @classmethod
    def read(cls, request: Request, client_fields: tuple[str, str]) -> TokenRequest:
        """A POST's form or a GET's query, naming the client in `client_fields`
        (its id and secret)."""
        fields = request.form if request.method == "POST" else request.args
        grant_type = fields.get("grant_type", "")
        grant_name = "code" if grant_type == "authorization_code" else "refresh_token"
        client_id, client_secret = (fields.get(name, "") for name in client_fields)
        return cls(client_id, client_secret, grant_type, fields.get(grant_name, ""))


# The token methods of a platform whose tokens come from its OAuth endpoints.
NO_TOKEN_METHODS: Mapping[str, str] = MappingProxyType({})


class FormApi:
    """For a platform whose API takes one signed form and whose push is one message
    (TOP, JOS): `read_call` and `signed_batch`."""

    api_sign_method: str
    session_field: str

    def business(self, form: Mapping[str, str]) -> Mapping[str, Any]:
        raise NotImplementedError

    def read_call(self, request: Request, credentials: AppCredentials) -> ApiCall:
        """An API request as the platform reads it: its method, session and business
        fields, and its check of the app's key and of the sign over every other
        field with a value (signTopRequest and JOS leave blank ones out)."""
        form = dict(request.form)
        signed = without_blank({name: value for name, value in form.items() if name != "sign"})
        expected = SIGNERS[self.api_sign_method](credentials.app_secret, joined_params(signed))
        return ApiCall(
            method=form.get("method", ""),
            params=form,
            session=form.get(self.session_field, ""),
            business=self.business(form),
            signature_ok=form.get("app_key") == credentials.app_key
            and signatures_match(expected, form.get("sign", "")),
        )

    def signed_batch(
        self, messages: Sequence[Message], credentials: AppCredentials, sent_at: datetime
    ) -> list[SignedWebhook]:
        return [message.signed(credentials, sent_at) for message in messages]


class SimulatedPlatform(Protocol):
    name: str
    demo_credentials: AppCredentials
    demo_seller: str  # the seller of the demo shop the local stack connects
    demo_shop_name: str
    approve_seller: str  # the seller id the approve page suggests
    authorize_path: str  # below /{name}
    token_routes: tuple[tuple[str, str], ...]  # (HTTP method, path below /{name})
    token_client_fields: tuple[str, str]  # the token request's app key and secret fields
    api_path: str  # below /{name}; a call may add its method's path below it
    methods: Mapping[str, ApiMethod]
    queries: Mapping[str, Query]
    # API methods that hand out tokens (Doudian-style `token.create`), called
    # without a session: method -> the grant type it redeems.
    token_methods: Mapping[str, str]

    def read_call(self, request: Request, credentials: AppCredentials) -> ApiCall:
        """An API request as the platform reads it, its signature checked."""

    channel: ChannelMethods | None  # a platform that delivers through a channel too

    def channel_message(
        self, message: Message, app_key: str, sent_at: datetime, thin: bool
    ) -> dict[str, Any]:
        """The message as the platform's channel hands it out, its contents thin
        (`thin`: the rest behind the detail calls) or whole. Only for a platform
        with a channel."""

    def identity(self, seller: str, nick: str) -> dict[str, str]:
        """The fields that name the shop in a token answer."""

    def business(self, form: Mapping[str, str]) -> Mapping[str, Any]:
        """An API call's business fields, from its form."""

    def success(self, method: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """The answer to a call carried out, `body` under the method's success key."""

    def refusal(self, refusal: Refusal, detail: str) -> dict[str, Any]:
        """The answer to a refused call, in the platform's error shape."""

    def signed_push(
        self, message: Message, credentials: AppCredentials, sent_at: datetime
    ) -> SignedWebhook:
        """The message as the platform pushes it to ShopHook, signed."""

    def signed_batch(
        self, messages: Sequence[Message], credentials: AppCredentials, sent_at: datetime
    ) -> list[SignedWebhook]:
        """Messages the platform has to push at once, as it pushes them: one push
        each, or (Doudian-style) one push of the array."""

    def held_record(self, message: Message) -> HeldRecord | None:
        """What the platform keeps of a pushed message for its listings; None for a
        message no listing shows (a courier scan, a JD-style service request)."""

    def order_story(self, order_id: str, start: datetime) -> list[Message]:
        """One order's pushes from payment through delivery to an after-sale
        request and its end, timed from `start`, as the demo shop gets them."""
