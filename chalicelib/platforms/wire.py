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

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, ValidationError

from chalicelib.domain.model import SHANGHAI
from chalicelib.platforms.base import MalformedMessageError, WebhookRejectedError

WIRE_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
TIMESTAMP_WINDOW = timedelta(minutes=10)
_WIRE_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
# Up to 12 integer digits: a trillion yuan is more than any order, and keeps fen in int64.
_YUAN = re.compile(r"(0|[1-9]\d{0,11})(\.\d{1,2})?")


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


def _not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be empty")
    return text


WireTime = Annotated[str, AfterValidator(parse_wire_time)]
Yuan = Annotated[str, AfterValidator(yuan_to_fen)]
Identifier = Annotated[str, BeforeValidator(_integer_as_text), AfterValidator(_not_blank)]


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
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


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
