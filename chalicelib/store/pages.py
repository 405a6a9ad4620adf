"""Listing a page at a time: a query's next page is named by an opaque cursor,
the DynamoDB key it stopped at, as base64url JSON."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Any

from pynamodb.exceptions import PynamoDBException

from chalicelib.store.errors import storage_errors

Key = dict[str, dict[str, str]]
_TYPES = frozenset({"S", "N", "B"})


class CursorRefusedError(ValueError):
    """The cursor is not one this API gave out."""


def encode_cursor(key: Key | None) -> str | None:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode() if key else None


def decode_cursor(cursor: str) -> Key:
    """The key a cursor names; CursorRefusedError unless it has a key's shape
    (attribute names to one typed text value each)."""
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, binascii.Error):
        key = None
    well_formed = (
        isinstance(key, dict)
        and bool(key)
        and all(
            isinstance(name, str)
            and isinstance(value, dict)
            and len(value) == 1
            and set(value) <= _TYPES
            and all(isinstance(text, str) for text in value.values())
            for name, value in key.items()
        )
    )
    if not well_formed:
        raise CursorRefusedError("cursor is not one this API returned")
    return key


def page(
    query: Callable[..., Any], limit: int, start: Key | None, what: str
) -> tuple[list[Any], str | None]:
    """One page of `query(limit=..., last_evaluated_key=...)` and the cursor to the next."""
    with storage_errors(f"list {what}"):
        try:
            results = query(limit=limit, last_evaluated_key=start)
            records = list(results)
        except PynamoDBException as error:
            if start is not None and error.cause_response_code == "ValidationException":
                raise CursorRefusedError("cursor is not one this API returned") from None
            raise
    return records, encode_cursor(results.last_evaluated_key)
