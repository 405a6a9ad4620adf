"""PynamoDB models: one table per kind of record.

Orders and cases are keyed by `platform#id` (ids are unique per platform, and a
JD-style logistics trace names its order but not its shop); a GSI lists a
shop's cases. Table names carry SHOPHOOK_TABLE_PREFIX so stages never collide.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from pynamodb.attributes import (
    BinaryAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
    UTCDateTimeAttribute,
    VersionAttribute,
)
from pynamodb.connection import Connection
from pynamodb.exceptions import DoesNotExist
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from chalicelib.config import aws_region, table_prefix

SHOP_CONNECTED = "connected"
# A shop whose token refresh failed still pushes webhooks (verified by the app's
# secret, not its token): they are applied while the seller reconnects.
RECEIVING_STATUSES = frozenset({SHOP_CONNECTED, "needs_reconnect"})


def entity_key(platform: str, entity_id: str) -> str:
    return f"{platform}#{entity_id}"


@cache
def connection() -> Connection:
    """One connection (one botocore client) for every transaction in this process."""
    return Connection(region=aws_region())


class _Meta:
    region = aws_region()
    billing_mode = "PAY_PER_REQUEST"


class RefreshIndex(GlobalSecondaryIndex):
    """Connected shops by when their access token expires (sparse: a shop without
    live tokens has no shard), so the refresh schedule reads only those due."""

    class Meta:
        index_name = "refresh_due"
        projection = AllProjection()

    refresh_shard = UnicodeAttribute(hash_key=True)
    refresh_at = UnicodeAttribute(range_key=True)


REFRESH_SHARDS = 4


class ShopRecord(Model):
    class Meta(_Meta):
        table_name = f"{table_prefix()}shops"

    shop_id = UnicodeAttribute(hash_key=True)
    platform = UnicodeAttribute()
    name = UnicodeAttribute(default="")
    status = UnicodeAttribute(default=SHOP_CONNECTED)
    connected_at = UTCDateTimeAttribute()
    # The shop's own seller targets: {"seller.refund_within": {"hours": 12}}.
    policy_overrides = UnicodeAttribute(default="{}")
    # OAuth tokens, sealed by store.vault; only the expiry times are in the clear.
    sealed_tokens = BinaryAttribute(legacy_encoding=False, null=True)
    token_expires_at = UTCDateTimeAttribute(null=True)
    refresh_expires_at = UTCDateTimeAttribute(null=True)
    refresh_shard = UnicodeAttribute(null=True)
    refresh_at = UnicodeAttribute(null=True)
    refresh_due = RefreshIndex()


class OrderRecord(Model):
    class Meta(_Meta):
        table_name = f"{table_prefix()}orders"

    entity_key = UnicodeAttribute(hash_key=True)
    shop_id = UnicodeAttribute(null=True)
    status = UnicodeAttribute(null=True)
    document = UnicodeAttribute()
    version = VersionAttribute()


class ShopCasesIndex(GlobalSecondaryIndex):
    class Meta:
        index_name = "by_shop"
        projection = AllProjection()

    shop_id = UnicodeAttribute(hash_key=True)
    case_id = UnicodeAttribute(range_key=True)


class CaseRecord(Model):
    class Meta(_Meta):
        table_name = f"{table_prefix()}cases"

    entity_key = UnicodeAttribute(hash_key=True)
    shop_id = UnicodeAttribute()
    case_id = UnicodeAttribute()
    status = UnicodeAttribute()
    document = UnicodeAttribute()
    version = VersionAttribute()
    by_shop = ShopCasesIndex()


class InboxRecord(Model):
    """One row per platform message id: the dedup key, written in the same
    transaction as the state it changed."""

    class Meta(_Meta):
        table_name = f"{table_prefix()}inbox"

    message_key = UnicodeAttribute(hash_key=True)
    shop_id = UnicodeAttribute(null=True)
    topic = UnicodeAttribute()
    outcome = UnicodeAttribute()
    received_at = UTCDateTimeAttribute()
    expires_at = TTLAttribute()


class EventLogRecord(Model):
    """Every accepted message, applied or not, per entity, in arrival order."""

    class Meta(_Meta):
        table_name = f"{table_prefix()}event-log"

    stream = UnicodeAttribute(hash_key=True)
    sequence = UnicodeAttribute(range_key=True)
    shop_id = UnicodeAttribute(null=True)
    platform = UnicodeAttribute()
    message_id = UnicodeAttribute()
    topic = UnicodeAttribute()
    outcome = UnicodeAttribute()
    event_type = UnicodeAttribute()
    event = UnicodeAttribute()
    received_at = UTCDateTimeAttribute()


class QuarantineRecord(Model):
    """A well-signed message that could not be applied, kept whole for inspection."""

    class Meta(_Meta):
        table_name = f"{table_prefix()}quarantine"

    message_key = UnicodeAttribute(hash_key=True)
    platform = UnicodeAttribute()
    message_id = UnicodeAttribute(null=True)
    raw_body = BinaryAttribute(legacy_encoding=False)
    params = UnicodeAttribute()
    field = UnicodeAttribute()
    error = UnicodeAttribute()
    first_received_at = UTCDateTimeAttribute()
    last_received_at = UTCDateTimeAttribute()
    deliveries = NumberAttribute(default=0)


class DueIndex(GlobalSecondaryIndex):
    """Pending deadlines by the time they next need attention (warning, then due),
    spread over DEADLINE_SHARDS partitions so no partition gets hot. Sparse: a
    met or breached deadline has no shard and drops out of the index."""

    class Meta:
        index_name = "due"
        projection = AllProjection()

    due_shard = UnicodeAttribute(hash_key=True)
    next_check = UnicodeAttribute(range_key=True)


class ShopDeadlinesIndex(GlobalSecondaryIndex):
    """A shop's pending deadlines, soonest first (sparse, like DueIndex)."""

    class Meta:
        index_name = "pending_by_shop"
        projection = AllProjection()

    pending_shop = UnicodeAttribute(hash_key=True)
    due_key = UnicodeAttribute(range_key=True)


DEADLINE_SHARDS = 8


class DeadlineRecord(Model):
    """The index of one deadline; the entity's document holds its truth."""

    class Meta(_Meta):
        table_name = f"{table_prefix()}deadlines"

    deadline_key = UnicodeAttribute(hash_key=True)
    entity_key = UnicodeAttribute()
    entity_kind = UnicodeAttribute()
    # For a case's deadline, its order's key: the sweeper reads both at once.
    order_key = UnicodeAttribute(null=True)
    shop_id = UnicodeAttribute()
    rule = UnicodeAttribute()
    due_at = UTCDateTimeAttribute()
    state = UnicodeAttribute()
    due_shard = UnicodeAttribute(null=True)
    next_check = UnicodeAttribute(null=True)
    pending_shop = UnicodeAttribute(null=True)
    due_key = UnicodeAttribute(null=True)
    due = DueIndex()
    pending_by_shop = ShopDeadlinesIndex()


class OutboxRecord(Model):
    """Work for the outside world, written in the same transaction as the change
    that caused it: a canonical event, or an action for the platform."""

    class Meta(_Meta):
        table_name = f"{table_prefix()}outbox"

    outbox_id = UnicodeAttribute(hash_key=True)
    kind = UnicodeAttribute()
    type = UnicodeAttribute()
    shop_id = UnicodeAttribute()
    payload = UnicodeAttribute()
    # Events: pending, delivered. Actions: queued, sent, failed, dead_lettered.
    state = UnicodeAttribute(default="pending")
    error = UnicodeAttribute(null=True)
    created_at = UTCDateTimeAttribute()


class OAuthStateRecord(Model):
    """A pending shop connect: the `state` sent to the platform, the hash of the
    browser's cookie it is bound to, and when it stops being accepted."""

    class Meta(_Meta):
        table_name = f"{table_prefix()}oauth-states"

    state = UnicodeAttribute(hash_key=True)
    platform = UnicodeAttribute()
    browser = UnicodeAttribute()
    valid_until = UTCDateTimeAttribute()
    expires_at = TTLAttribute()


class ApiKeyRecord(Model):
    """An integrator key, stored only as its SHA-256 (keys are 256-bit random)."""

    class Meta(_Meta):
        table_name = f"{table_prefix()}api-keys"

    key_hash = UnicodeAttribute(hash_key=True)
    key_id = UnicodeAttribute()
    name = UnicodeAttribute()
    shops = UnicodeSetAttribute()
    created_at = UTCDateTimeAttribute()
    revoked_at = UTCDateTimeAttribute(null=True)


ALL_RECORDS: tuple[type[Model], ...] = (
    ShopRecord,
    OrderRecord,
    CaseRecord,
    InboxRecord,
    EventLogRecord,
    QuarantineRecord,
    DeadlineRecord,
    OutboxRecord,
    OAuthStateRecord,
    ApiKeyRecord,
)


def found(future: Any) -> Any:
    """The item a TransactGet future resolved to, or None when there is none."""
    if future is None:
        return None
    try:
        return future.get()
    except DoesNotExist:
        return None


def due_from(
    index: GlobalSecondaryIndex, shards: int, sort_key: UnicodeAttribute, threshold: str
) -> list[Model]:
    """Every item of a sharded, sparse index whose sort key is at most `threshold`:
    one Query per shard, reading only the items that are due."""
    return [
        item
        for shard in range(shards)
        for item in index.query(str(shard), range_key_condition=sort_key <= threshold)
    ]


def create_tables() -> None:
    """Create every table that does not exist yet (local stack and tests;
    on AWS the tables come from infra/)."""
    for record in ALL_RECORDS:
        if not record.exists():
            record.create_table(wait=True)
