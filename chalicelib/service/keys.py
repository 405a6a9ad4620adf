"""Integrator API keys: random, shown once, stored only as a SHA-256 hash,
scoped to shops. A request's key becomes its Principal: who asks, for which shops."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from chalicelib.service import subscriptions
from chalicelib.service.errors import NotFoundError, UnauthenticatedError
from chalicelib.store import keys
from chalicelib.store.records import ApiKeyRecord

KEY_PREFIX = "shk_"


@dataclass(frozen=True)
class Principal:
    """Who a request acts for: an integrator key and the shops it covers."""

    key_id: str
    shops: frozenset[str]

    def require_shop(self, shop_id: str) -> None:
        # 404, not 403: a key must not learn which other shops exist.
        if shop_id not in self.shops:
            raise NotFoundError(
                "shop_not_found", f"no shop '{shop_id}' for this api key", "shop_id"
            )


def hash_key(key: str) -> str:
    # A 256-bit random key needs no slow hash: SHA-256 cannot be brute-forced back.
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(
    name: str,
    shops: Iterable[str],
    now: datetime,
    key: str | None = None,
    owner_shop: str | None = None,
) -> tuple[str, str]:
    """Store a new key; return (key id, the key itself). `key` fixes the value (demo
    key); `owner_shop`: a seller issued it for their shop in the console."""
    key = key or KEY_PREFIX + secrets.token_urlsafe(32)
    key_id = "key_" + secrets.token_hex(6)
    keys.save(
        ApiKeyRecord(
            hash_key(key),
            key_id=key_id,
            name=name,
            shops=set(shops),
            created_at=now,
            owner_shop=owner_shop,
        )
    )
    return key_id, key


def authenticate(authorization: str | None) -> Principal:
    if not authorization:
        raise UnauthenticatedError(
            "missing_api_key", "send 'Authorization: Bearer <api key>'", "Authorization"
        )
    scheme, _, key = authorization.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise UnauthenticatedError(
            "malformed_authorization", "expected 'Bearer <api key>'", "Authorization"
        )
    record = keys.by_hash(hash_key(key.strip()))
    if record is None or record.revoked_at is not None:
        raise UnauthenticatedError(
            "invalid_api_key", "the api key is unknown or revoked", "Authorization"
        )
    return Principal(record.key_id, frozenset(record.shops))


@dataclass(frozen=True)
class Revoked:
    key: ApiKeyRecord
    subscriptions_disabled: int


def revoke(key_id: str, now: datetime) -> Revoked:
    """Refuse the key from now on, and stop everything it made in the same step:
    its subscriptions are disabled for good and their queued deliveries
    cancelled. Revoking again finishes a revocation that failed halfway."""
    record = keys.by_id(key_id)
    if record is None:
        raise NotFoundError("key_not_found", f"no api key with id '{key_id}'")
    if record.revoked_at is None:
        keys.revoke(record, now)
    return Revoked(record, subscriptions.disable_of_key(record.key_id, now))


def all_keys() -> list[ApiKeyRecord]:
    return keys.every()
