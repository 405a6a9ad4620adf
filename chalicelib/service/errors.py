"""What a use case answers when it cannot do what was asked. Each kind says
what went wrong, not how to say it over HTTP: app.py maps kinds to statuses,
the CLI prints the message."""

from __future__ import annotations


class ServiceError(Exception):
    """A refusal with a machine code, a readable message and the field at fault."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.field = code, message, field

    def body(self) -> dict[str, str]:
        body = {"code": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        return body


class InvalidInputError(ServiceError):
    """The request is malformed: a missing or mistyped field."""


class NotAllowedError(ServiceError):
    """Well-formed, but not something ShopHook accepts (a bound, a URL)."""


class TooLargeError(ServiceError):
    """The request is bigger than ShopHook takes at all."""


class NotFoundError(ServiceError):
    """No such thing for this caller (also what another shop's things look like)."""


class ConflictError(ServiceError):
    """Not in the state it needs to be in, or it changed meanwhile."""


class ForbiddenError(ServiceError):
    """Authenticated, but this request is not one ShopHook will carry out (a
    console form without its session's CSRF token)."""


class UnauthenticatedError(ServiceError):
    """No credentials, or ones ShopHook does not accept."""
