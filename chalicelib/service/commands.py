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
from chalicelib.domain.model import CaseStatus
from chalicelib.service.errors import InvalidInputError
from chalicelib.store.pages import CursorRefusedError, Key, decode_cursor

MAX_PAGE = 100
NonBlank = Annotated[str, Text(strip_whitespace=True, min_length=1)]


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
Cursor = Annotated[str, AfterValidator(_cursor)]
Limit = Annotated[int, Field(ge=1, le=MAX_PAGE)]


class Command(BaseModel):
    """A request body: JSON types as they are (no coercion)."""

    model_config = ConfigDict(strict=True, frozen=True)
    # The machine code of a refusal, by the top-level field at fault.
    codes: ClassVar[dict[str, str]] = {}
    default_code: ClassVar[str] = "invalid_body"


class Query(Command):
    """Query parameters: text, read as the types declared."""

    model_config = ConfigDict(strict=False, frozen=True)
    default_code: ClassVar[str] = ""  # invalid_<parameter>


class ReturnAddress(Command):
    address: NonBlank
    name: NonBlank
    mobile: NonBlank


class ActionRequest(Command):
    codes: ClassVar[dict[str, str]] = {"action": "invalid_action"}
    action: Action
    reason: NonBlank | None = None
    return_address: ReturnAddress | None = None


class ShipRequest(Command):
    tracking_no: NonBlank
    carrier: NonBlank


class PolicyRequest(Command):
    # Each rule's parameters; their values are checked against the policy's bounds.
    overrides: dict[str, dict[str, Any]]


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
    url: NonBlank
    event_types: Annotated[list[NonBlank], Field(min_length=1)]
    shops: Annotated[list[NonBlank], Field(min_length=1)]


class SubscriptionUpdate(Command):
    """What PATCH changes; what it leaves out stays as it is."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    url: NonBlank | None = None
    event_types: Annotated[list[NonBlank], Field(min_length=1)] | None = None
    enabled: bool | None = None

    @model_validator(mode="after")
    def _changes_something(self) -> SubscriptionUpdate:
        if self.url is None and self.event_types is None and self.enabled is None:
            raise ValueError('send at least one of "url", "event_types", "enabled"')
        return self


class ReplayRequest(Command):
    codes: ClassVar[dict[str, str]] = {"since": "invalid_since", "until": "invalid_until"}
    delivery_id: NonBlank | None = None
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


def refusal(model: type[Command], error: ValidationError) -> InvalidInputError:
    first = error.errors(include_url=False)[0]
    location = first["loc"]
    if first["type"] == "json_invalid":
        return InvalidInputError("invalid_json", "the body is not JSON", "body")
    if not location:
        return InvalidInputError(model.default_code or "invalid_body", first["msg"], "body")
    top = str(location[0])
    code = model.codes.get(top) or model.default_code or f"invalid_{top}"
    return InvalidInputError(code, first["msg"], field_path(location))


def from_json(model: type[CommandT], raw: bytes) -> CommandT:
    try:
        return model.model_validate_json(raw)
    except ValidationError as error:
        raise refusal(model, error) from None


def from_query(model: type[CommandT], params: dict[str, str]) -> CommandT:
    try:
        return model.model_validate(params)
    except ValidationError as error:
        raise refusal(model, error) from None
