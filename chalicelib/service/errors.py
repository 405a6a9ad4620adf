"""Errors the use cases raise; app.py turns them into HTTP answers."""

from __future__ import annotations


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
