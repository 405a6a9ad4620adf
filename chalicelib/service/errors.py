"""Errors the use cases raise; app.py turns them into HTTP answers."""

from __future__ import annotations

from typing import TypeVar

from pynamodb.exceptions import DoesNotExist, PynamoDBException, TransactWriteError
from pynamodb.models import Model

RecordT = TypeVar("RecordT", bound=Model)


class ApiError(Exception):
    """A client error with a machine code, a readable message and the field at fault."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field

    def body(self) -> dict[str, str]:
        body = {"code": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        return body


class StorageUnavailableError(Exception):
    """DynamoDB failed or throttled: answer 5xx so the sender retries later."""


def condition_failed(error: PynamoDBException) -> bool:
    """A write refused by its condition (a version or state guard): someone else
    got there first. For a transaction, any of its items' conditions."""
    if isinstance(error, TransactWriteError):
        return "ConditionalCheckFailed" in [r.code for r in error.cancellation_reasons if r]
    return getattr(error, "cause_response_code", None) == "ConditionalCheckFailedException"


def read_or_none(record_type: type[RecordT], key: str, what: str) -> RecordT | None:
    """The record stored under `key`, or None; storage trouble is StorageUnavailableError."""
    try:
        return record_type.get(key)
    except DoesNotExist:
        return None
    except PynamoDBException as error:
        raise StorageUnavailableError(f"could not read {what}") from error
