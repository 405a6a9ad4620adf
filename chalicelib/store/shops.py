"""Connected shops, their sealed tokens' refresh index, and pending OAuth connects."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from chalicelib.domain.model import ShopStatus
from chalicelib.store.errors import ConditionFailedError, read_or_none, storage_errors
from chalicelib.store.records import (
    REFRESH_SHARDS,
    ConnectAttemptsRecord,
    OAuthStateRecord,
    ShopRecord,
    due_from,
)
from chalicelib.store.work import shard_of, sortable


def read(shop_id: str) -> ShopRecord | None:
    return read_or_none(ShopRecord, shop_id, "the shop")


def save(record: ShopRecord) -> None:
    with storage_errors("save the shop"):
        record.save()


def every() -> list[ShopRecord]:
    # The operator's view of a small table; the request paths never scan.
    with storage_errors("list the shops"):
        return sorted(ShopRecord.scan(), key=lambda shop: shop.shop_id)


def schedule_refresh(record: ShopRecord, at: datetime | None) -> None:
    """Put the shop in the sparse refresh index at `at` (None: take it out). Not saved."""
    record.refresh_shard = shard_of(record.shop_id, REFRESH_SHARDS) if at else None
    record.refresh_at = sortable(at) if at else None


def refresh_due(now: datetime) -> list[ShopRecord]:
    with storage_errors("read the shops due a token refresh"):
        return due_from(
            ShopRecord.refresh_due, REFRESH_SHARDS, ShopRecord.refresh_at, sortable(now)
        )


def with_tokens() -> list[ShopRecord]:
    """The shops ShopHook holds live tokens for: all of the sparse refresh index."""
    with storage_errors("read the shops with tokens"):
        return due_from(ShopRecord.refresh_due, REFRESH_SHARDS, ShopRecord.refresh_at, "~")


def advance_cursor(record: ShopRecord, to: datetime) -> bool:
    """Move the shop's pull cursor forward to `to` (and the record with it); False
    if it is there or further already (another pull got further): it never goes back."""
    try:
        with storage_errors("advance the pull cursor"):
            record.update(
                actions=[ShopRecord.pull_cursor.set(to)],
                condition=ShopRecord.shop_id.exists()
                & (ShopRecord.pull_cursor.does_not_exist() | (ShopRecord.pull_cursor < to)),
            )
    except ConditionFailedError:
        return False
    return True


def disconnect(record: ShopRecord) -> None:
    """Forget the shop's tokens; its webhooks are acked and ignored from now on."""
    with storage_errors("disconnect the shop"):
        record.update(
            actions=[
                ShopRecord.status.set(ShopStatus.DISCONNECTED),
                ShopRecord.sealed_tokens.remove(),
                ShopRecord.token_expires_at.remove(),
                ShopRecord.refresh_expires_at.remove(),
                ShopRecord.refresh_shard.remove(),
                ShopRecord.refresh_at.remove(),
            ]
        )


def browser_hash(nonce: str) -> str:
    return hashlib.sha256(nonce.encode()).hexdigest()


def save_connect(state: str, platform: str, nonce: str, valid_until: datetime) -> None:
    """A pending connect: the `state` sent to the platform, bound to the hash of
    the browser's cookie, accepted until `valid_until` (and gone soon after)."""
    with storage_errors("start the connect"):
        OAuthStateRecord(
            state,
            platform=platform,
            browser=browser_hash(nonce),
            valid_until=valid_until,
            expires_at=valid_until,
        ).save()


def take_connect(state: str, platform: str, nonce: str, now: datetime) -> bool:
    """Use a pending connect once, from the browser that started it, in time."""
    try:
        with storage_errors("check the connect"):
            OAuthStateRecord(state).delete(
                condition=(OAuthStateRecord.platform == platform)
                & (OAuthStateRecord.browser == browser_hash(nonce))
                & (OAuthStateRecord.valid_until > now)
            )
    except ConditionFailedError:
        return False
    return True


def count_connect(client: str, now: datetime, limit: int) -> bool:
    """Count a connect started by `client` (its address) in this minute; False,
    counting nothing, once `limit` were started in it. The row is keyed by the
    address's hash, not the address, and expires with its minute."""
    minute = now.replace(second=0, microsecond=0)
    key = f"{hashlib.sha256(client.encode()).hexdigest()[:32]}#{minute.isoformat()}"
    try:
        with storage_errors("count the connect"):
            ConnectAttemptsRecord(key).update(
                actions=[
                    ConnectAttemptsRecord.attempts.add(1),
                    ConnectAttemptsRecord.expires_at.set(minute + timedelta(minutes=2)),
                ],
                condition=ConnectAttemptsRecord.attempts.does_not_exist()
                | (ConnectAttemptsRecord.attempts < limit),
            )
    except ConditionFailedError:
        return False
    return True
