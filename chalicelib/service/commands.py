"""The requests the API takes, as typed commands: validated at the edge
(app.py), so a use case only ever sees a well-formed one. A refusal names the
field (`return_address.mobile`, `event_types[0]`) and a machine code."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic import StringConstraints as Text

from chalicelib.domain.actions import Action
from chalicelib.domain.events import EVENT_TYPES
from chalicelib.domain.ids import MAX_ID_LENGTH
from chalicelib.domain.model import CaseStatus
from chalicelib.integrators import MAX_URL_LENGTH
from chalicelib.service.errors import InvalidInputError, NotAllowedError, TooLargeError
from chalicelib.store.pages import CursorRefusedError, Key, decode_cursor

MAX_PAGE = 100
# Any request body: the largest real one (a subscription to every shop of a
# key) is a few KiB.
MAX_BODY_BYTES = 16 * 1024
# Text the platforms take from a seller: Taobao-style refuse_message is 2 to 200
# characters, and the other fields hold an address, a name, a phone number, a
# courier and its waybill number.
MAX_REASON = 200
MAX_ADDRESS = 200
MAX_NAME = 50
MAX_PHONE = 30
MAX_POSTCODE = 16
MAX_TRACKING = 64
# What ShopHook itself hands out or reads back: ids, event types, cursors.
MAX_SHOP_ID = MAX_ID_LENGTH + 16  # <platform>:<the platform's id>
MAX_WORD = 64
MAX_CURSOR = 4096
MAX_SHOPS = 100
TOO_LONG = frozenset({"string_too_long", "too_long"})


def bounded(max_length: int) -> Any:
    """Text, stripped, neither blank nor longer than `max_length` characters."""
    return Annotated[str, Text(strip_whitespace=True, min_length=1, max_length=max_length)]


def _utc_representable(moment: datetime) -> datetime:
    try:
        moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("the time is out of range") from None
    return moment


def _cursor(text: str) -> str:
    try:
        decode_cursor(text)
    except CursorRefusedError as refused:
        raise ValueError(str(refused)) from None
    return text


Moment = Annotated[AwareDatetime, AfterValidator(_utc_representable)]
Cursor = Annotated[str, Text(max_length=MAX_CURSOR), AfterValidator(_cursor)]
Limit = Annotated[int, Field(ge=1, le=MAX_PAGE)]


class Command(BaseModel):
    """A request body: JSON types as they are (no coercion)."""

    # Built on first use, not at import (cold start).
    model_config = ConfigDict(strict=True, frozen=True, defer_build=True)
    # The machine code of a refusal, by the top-level field at fault.
    codes: ClassVar[dict[str, str]] = {}
    default_code: ClassVar[str] = "invalid_body"


class Query(Command):
    """Query parameters: text, read as the types declared."""

    model_config = ConfigDict(strict=False, frozen=True, defer_build=True)
    default_code: ClassVar[str] = ""  # invalid_<parameter>


class ReturnAddress(Command):
    address: bounded(MAX_ADDRESS)
    name: bounded(MAX_NAME)
    mobile: bounded(MAX_PHONE)
    # Optional here; Taobao-style returns need it (taobao.rp.returngoods.agree `post`).
    postcode: bounded(MAX_POSTCODE) | None = None


class ActionRequest(Command):
    codes: ClassVar[dict[str, str]] = {"action": "invalid_action"}
    action: Action
    reason: bounded(MAX_REASON) | None = None
    return_address: ReturnAddress | None = None


class ShipRequest(Command):
    tracking_no: bounded(MAX_TRACKING)
    carrier: bounded(MAX_TRACKING)


class PolicyRequest(Command):
    # Each rule's parameters; their values are checked against the policy's bounds.
    overrides: dict[bounded(MAX_WORD), dict[bounded(MAX_WORD), Any]]


class SubscriptionRequest(Command):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "url": "https://hooks.example.com/shophook",
                    "event_types": ["order.paid", "after_sale.opened"],
                    "shops": ["taobao:2200000001"],
                }
            ]
        }
    )
    url: bounded(MAX_URL_LENGTH)
    event_types: Annotated[
        list[bounded(MAX_WORD)], Field(min_length=1, max_length=len(EVENT_TYPES))
    ]
    shops: Annotated[list[bounded(MAX_SHOP_ID)], Field(min_length=1, max_length=MAX_SHOPS)]


class SubscriptionUpdate(Command):
    """What PATCH changes; what it leaves out stays as it is."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    url: bounded(MAX_URL_LENGTH) | None = None
    event_types: (
        Annotated[list[bounded(MAX_WORD)], Field(min_length=1, max_length=len(EVENT_TYPES))] | None
    ) = None
    enabled: bool | None = None

    @model_validator(mode="after")
    def _changes_something(self) -> SubscriptionUpdate:
        if self.url is None and self.event_types is None and self.enabled is None:
            raise ValueError('send at least one of "url", "event_types", "enabled"')
        return self


class ReplayRequest(Command):
    codes: ClassVar[dict[str, str]] = {"since": "invalid_since", "until": "invalid_until"}
    delivery_id: bounded(MAX_WORD) | None = None
    since: Moment | None = None
    until: Moment | None = None


CASE_FILTERS = ("open", *(status.value for status in CaseStatus))


class CaseListQuery(Query):
    status: Literal[CASE_FILTERS] | None = None  # type: ignore[valid-type]
    limit: Limit = 50
    cursor: Cursor | None = None

    @property
    def start(self) -> Key | None:
        return decode_cursor(self.cursor) if self.cursor else None


class DeadlineQuery(Query):
    before: Moment | None = None
    limit: Limit = 50


class DeliveryListQuery(Query):
    limit: Limit = 50
    cursor: Cursor | None = None

    @property
    def start(self) -> Key | None:
        return decode_cursor(self.cursor) if self.cursor else None


CommandT = TypeVar("CommandT", bound=Command)


def field_path(location: tuple[int | str, ...]) -> str:
    """pydantic's error location as the API names fields: `event_types[0]`, `a.b`."""
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def refusal(model: type[Command], error: ValidationError) -> InvalidInputError | NotAllowedError:
    first = error.errors(include_url=False)[0]
    location = first["loc"]
    if first["type"] == "json_invalid":
        return InvalidInputError("invalid_json", "the body is not JSON", "body")
    if not location:
        return InvalidInputError(model.default_code or "invalid_body", first["msg"], "body")
    if first["type"] in TOO_LONG:
        return NotAllowedError("too_long", first["msg"], field_path(location))
    top = str(location[0])
    code = model.codes.get(top) or model.default_code or f"invalid_{top}"
    return InvalidInputError(code, first["msg"], field_path(location))


def from_json(model: type[CommandT], raw: bytes) -> CommandT:
    if len(raw) > MAX_BODY_BYTES:
        raise TooLargeError(
            "body_too_large", f"the body is over {MAX_BODY_BYTES // 1024} KiB", "body"
        )
    try:
        return model.model_validate_json(raw)
    except ValidationError as error:
        raise refusal(model, error) from None


def from_query(model: type[CommandT], params: dict[str, str]) -> CommandT:
    try:
        return model.model_validate(params)
    except ValidationError as error:
        raise refusal(model, error) from None
