"""The marketplace apps' secrets, kept in AWS Secrets Manager and read through
Powertools Parameters: cached in the process for SECRET_MAX_AGE_SECONDS, so a
warm function makes no call for them and a rotated secret is in use within
minutes. Only their names are in the functions' environment."""

from __future__ import annotations

from chalicelib.store.errors import StorageUnavailableError

SECRET_MAX_AGE_SECONDS = 300


def app_secret(secret_id: str) -> str:
    """The secret stored under `secret_id` (a name or an ARN); StorageUnavailableError
    when Secrets Manager cannot give it (the caller answers "try again")."""
    # Imported with the first secret read (some 15 ms), not at every cold start.
    from aws_lambda_powertools.utilities import parameters

    try:
        value = parameters.get_secret(secret_id, max_age=SECRET_MAX_AGE_SECONDS)
    except parameters.exceptions.GetParameterError as error:
        raise StorageUnavailableError("could not read an app secret") from error
    if not isinstance(value, str) or not value:
        raise StorageUnavailableError("an app secret is not text")
    return value
