"""Wire types both marketplaces share: Shanghai times, yuan strings, ids, enums.

Validation is pydantic in strict mode; its errors are turned into a
MalformedMessageError that names the field (`content.payment`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from chalicelib.domain.ids import MAX_ID_LENGTH
from chalicelib.domain.model import SHANGHAI
from chalicelib.platforms.base import MAX_BODY_BYTES, MalformedMessageError, WebhookRejectedError

WIRE_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
TIMESTAMP_WINDOW = timedelta(minutes=10)
_WIRE_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
# Up to 12 integer digits: a trillion yuan is more than any order, and keeps fen in int64.
_YUAN = re.compile(r"(0|[1-9]\d{0,11})(\.\d{1,2})?")
# Every text field of a message: generous next to the platforms' own (a title
# is at most 60 characters, a reason or a scan's description a few hundred),
# finite so that no one field can fill a stored row.
MAX_TEXT_LENGTH = 1000
# An order line's count: a six-digit number is more than any real line holds.
MAX_QUANTITY = 999_999


def parse_wire_time(value: str) -> datetime:
    if not _WIRE_TIME.fullmatch(value):
        raise ValueError("expected 'yyyy-MM-dd HH:mm:ss' (Asia/Shanghai)")
    return datetime.strptime(value, WIRE_TIME_FORMAT).replace(tzinfo=SHANGHAI)


def format_wire_time(moment: datetime) -> str:
    return moment.astimezone(SHANGHAI).strftime(WIRE_TIME_FORMAT)


def yuan_to_fen(value: str) -> int:
    if not _YUAN.fullmatch(value):
        raise ValueError("expected a decimal string in yuan with at most 2 decimals, like '200.07'")
    return int(Decimal(value) * 100)


def _integer_as_text(value: object) -> object:
    # Codes and ids are text in the contract; integers are accepted and kept as text.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _identifier(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be empty")
    if len(text) > MAX_ID_LENGTH:
        raise ValueError(f"an id is at most {MAX_ID_LENGTH} characters")
    return text


def bounded_identifier(text: str, field: str) -> str:
    """An id read outside a model (a form field): MalformedMessageError naming
    `field` unless it is one ShopHook can key on."""
    try:
        return _identifier(text)
    except ValueError as error:
        raise MalformedMessageError(field, str(error)) from None


WireTime = Annotated[str, AfterValidator(parse_wire_time)]
Yuan = Annotated[str, AfterValidator(yuan_to_fen)]
Identifier = Annotated[str, BeforeValidator(_integer_as_text), AfterValidator(_identifier)]
Quantity = Annotated[int, Field(ge=1, le=MAX_QUANTITY)]
# A JSON document carried as a string (Taobao-style `content`): bounded by the body.
Document = Annotated[str, Field(max_length=MAX_BODY_BYTES)]


def one_of(codes: Iterable[str]) -> Any:
    """A wire enum: a string (or integer) code that must be one of `codes`, kept as text."""
    allowed = tuple(codes)
    expected = ", ".join(allowed)

    def check(value: str) -> str:
        if value not in allowed:
            raise ValueError(f"unknown value {value!r}; expected one of {expected}")
        return value

    return Annotated[str, BeforeValidator(_integer_as_text), AfterValidator(check)]


class WireModel(BaseModel):
    # Validators are built on a model's first use, not at import: a cold start
    # pays only for the models its invocation reads.
    model_config = ConfigDict(
        strict=True,
        extra="ignore",
        frozen=True,
        str_max_length=MAX_TEXT_LENGTH,
        defer_build=True,
    )


_Model = TypeVar("_Model", bound=WireModel)


def validate_json(model: type[_Model], raw: bytes | str, field: str) -> _Model:
    """Validate a JSON document; `field` names it in errors (`body`, `content`)."""
    try:
        return model.model_validate_json(raw)
    except ValidationError as error:
        raise _malformed(error, field) from None


def validate_decoded(model: type[_Model], data: object, field: str) -> _Model:
    """Validate a record of an API answer already decoded from JSON, as strictly
    (`field` names it in errors: `trades.trade[3]`)."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise _malformed(error, field) from None


def _malformed(error: ValidationError, field: str) -> MalformedMessageError:
    first = error.errors(include_url=False)[0]
    if first["type"] == "json_invalid":
        return MalformedMessageError(field, f"not valid JSON ({first['msg']})")
    location = ".".join(str(part) for part in (field, *first["loc"]))
    return MalformedMessageError(location, first["msg"])


def check_timestamp(params: Mapping[str, str], now: datetime) -> None:
    value = params.get("timestamp")
    if not value:
        raise WebhookRejectedError(401, "missing_timestamp", "parameter 'timestamp' is missing")
    try:
        sent_at = parse_wire_time(value)
    except ValueError as error:
        raise WebhookRejectedError(401, "bad_timestamp", f"timestamp: {error}") from None
    if abs(now - sent_at) > TIMESTAMP_WINDOW:
        raise WebhookRejectedError(
            401, "stale_timestamp", "timestamp is more than 10 minutes from ShopHook's clock"
        )
