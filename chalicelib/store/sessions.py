"""Console sessions, stored under the SHA-256 of their cookie."""

from __future__ import annotations

import hashlib
from datetime import datetime

from chalicelib.store.errors import read_or_none, storage_errors
from chalicelib.store.records import ConsoleSessionRecord


def session_hash(cookie: str) -> str:
    # The cookie is 256 random bits: SHA-256 cannot be brute-forced back.
    return hashlib.sha256(cookie.encode()).hexdigest()


def save(record: ConsoleSessionRecord) -> None:
    with storage_errors("save the session"):
        record.save()


def read(cookie: str) -> ConsoleSessionRecord | None:
    return read_or_none(ConsoleSessionRecord, session_hash(cookie), "the session")


def touch(record: ConsoleSessionRecord, now: datetime, expires_at: datetime) -> None:
    with storage_errors("keep the session"):
        record.update(
            actions=[
                ConsoleSessionRecord.seen_at.set(now),
                ConsoleSessionRecord.expires_at.set(expires_at),
            ]
        )


def set_language(record: ConsoleSessionRecord, language: str) -> None:
    with storage_errors("keep the session's language"):
        record.update(actions=[ConsoleSessionRecord.language.set(language)])


def end(record: ConsoleSessionRecord) -> None:
    with storage_errors("end the session"):
        record.delete()
