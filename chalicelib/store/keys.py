"""Integrator API keys, stored only as their SHA-256."""

from __future__ import annotations

from datetime import datetime

from chalicelib.store.errors import read_or_none, storage_errors
from chalicelib.store.records import ApiKeyRecord


def save(record: ApiKeyRecord) -> None:
    with storage_errors("save the api key"):
        record.save()


def by_hash(key_hash: str) -> ApiKeyRecord | None:
    return read_or_none(ApiKeyRecord, key_hash, "the api key")


def by_id(key_id: str) -> ApiKeyRecord | None:
    # Keys are looked up by hash on every request; by id only by an operator,
    # over a table of a few rows.
    with storage_errors("find the api key"):
        return next(iter(ApiKeyRecord.scan(ApiKeyRecord.key_id == key_id)), None)


def revoke(record: ApiKeyRecord, now: datetime) -> None:
    with storage_errors("revoke the api key"):
        record.update(actions=[ApiKeyRecord.revoked_at.set(now)])


def every() -> list[ApiKeyRecord]:
    with storage_errors("list the api keys"):
        return sorted(ApiKeyRecord.scan(), key=lambda record: record.created_at)


def of_owner_shop(shop_id: str) -> list[ApiKeyRecord]:
    with storage_errors("list the shop's api keys"):
        return sorted(
            ApiKeyRecord.by_owner_shop.query(shop_id), key=lambda record: record.created_at
        )
