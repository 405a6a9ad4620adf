"""Integrator API keys: random, shown once, stored only as a SHA-256 hash, scoped to shops."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from datetime import datetime

from chalicelib.service.errors import ApiError, read_or_none
from chalicelib.store.records import ApiKeyRecord

KEY_PREFIX = "shk_"


def hash_key(key: str) -> str:
    # A 256-bit random key needs no slow hash: SHA-256 cannot be brute-forced back.
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(
    name: str, shops: Iterable[str], now: datetime, key: str | None = None
) -> tuple[str, str]:
    """Store a new key; return (key id, the key itself). `key` fixes the value (demo key)."""
    key = key or KEY_PREFIX + secrets.token_urlsafe(32)
    key_id = "key_" + secrets.token_hex(6)
    ApiKeyRecord(hash_key(key), key_id=key_id, name=name, shops=set(shops), created_at=now).save()
    return key_id, key


def authenticate(authorization: str | None) -> ApiKeyRecord:
    if not authorization:
        raise ApiError(
            401, "missing_api_key", "send 'Authorization: Bearer <api key>'", "Authorization"
        )
    scheme, _, key = authorization.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise ApiError(
            401, "malformed_authorization", "expected 'Bearer <api key>'", "Authorization"
        )
    record = read_or_none(ApiKeyRecord, hash_key(key.strip()), "the api key")
    if record is None or record.revoked_at is not None:
        raise ApiError(401, "invalid_api_key", "the api key is unknown or revoked", "Authorization")
    return record


def require_shop(key: ApiKeyRecord, shop_id: str) -> None:
    # 404, not 403: a key must not learn which other shops exist.
    if shop_id not in key.shops:
        raise ApiError(404, "shop_not_found", f"no shop '{shop_id}' for this api key", "shop_id")


def revoke(key_id: str, now: datetime) -> ApiKeyRecord:
    # Keys are looked up by hash on every request; by id only here, by an
    # operator, over a table of a few rows.
    for record in ApiKeyRecord.scan(ApiKeyRecord.key_id == key_id):
        record.update(actions=[ApiKeyRecord.revoked_at.set(now)])
        return record
    raise ApiError(404, "key_not_found", f"no api key with id '{key_id}'")


def all_keys() -> list[ApiKeyRecord]:
    return sorted(ApiKeyRecord.scan(), key=lambda record: record.created_at)
