"""The mapping of storage errors, in one place: every PynamoDB call runs inside
`storage_errors`, so a use case sees either its answer, a ConditionFailedError
(someone else got there first), or StorageUnavailableError (try again later)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

from pynamodb.exceptions import DoesNotExist, PynamoDBException, TransactWriteError
from pynamodb.models import Model

RecordT = TypeVar("RecordT", bound=Model)
CONDITION_FAILED = "ConditionalCheckFailed"


class StorageUnavailableError(Exception):
    """DynamoDB failed or throttled: the caller answers so that the sender retries."""


class ConditionFailedError(StorageUnavailableError):
    """A write refused by its condition (a version or state guard): someone else
    got there first. Left unhandled, it is storage trouble like any other: a
    retry reads again. `items`: for a transaction, the positions of the items
    whose conditions failed."""

    def __init__(self, what: str, items: tuple[int, ...] = ()) -> None:
        super().__init__(what)
        self.items = items


def _failed_conditions(error: PynamoDBException) -> tuple[int, ...] | None:
    """The positions of the items refused by their condition, or None when the
    error is something else."""
    if isinstance(error, TransactWriteError):
        positions = tuple(
            position
            for position, reason in enumerate(error.cancellation_reasons)
            if reason is not None and reason.code == CONDITION_FAILED
        )
        return positions or None
    if getattr(error, "cause_response_code", None) == "ConditionalCheckFailedException":
        return ()
    return None


@contextmanager
def storage_errors(what: str) -> Iterator[None]:
    """Run storage calls; their failures become ConditionFailedError or
    StorageUnavailableError, saying what could not be done (`what`: "read the shop")."""
    try:
        yield
    except PynamoDBException as error:
        positions = _failed_conditions(error)
        if positions is not None:
            raise ConditionFailedError(f"could not {what}: changed meanwhile", positions) from error
        raise StorageUnavailableError(f"could not {what}") from error


def read_or_none(record_type: type[RecordT], key: str, what: str) -> RecordT | None:
    """The record stored under `key`, or None."""
    with storage_errors(f"read {what}"):
        try:
            return record_type.get(key)
        except DoesNotExist:
            return None
