"""PynamoDB models: one table per kind of record.

Orders and cases are keyed by `platform#id` (ids are unique per platform, and a
JD-style logistics trace names its order but not its shop); a GSI lists a
shop's cases. Table names carry SHOPHOOK_TABLE_PREFIX so stages never collide.
"""

from __future__ import annotations

import zlib
from functools import cache
from typing import Any

from pynamodb.attributes import (
    Attribute,
    BinaryAttribute,
    BooleanAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
    UTCDateTimeAttribute,
    VersionAttribute,
)
from pynamodb.connection import Connection
from pynamodb.constants import BINARY, STREAM_NEW_AND_OLD_IMAGE, STRING
from pynamodb.exceptions import DoesNotExist
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

from chalicelib.domain.model import ShopStatus
from chalicelib.settings import settings

RAW_DEFLATE = -zlib.MAX_WBITS


class CompressedTextAttribute(Attribute[str]):
    """Text stored deflated, as binary: JSON documents and payloads shrink to
    about half, and DynamoDB bills writes by the kilobyte (twice in a
    transaction). Raw deflate at the best level: DynamoDB keeps the bytes
    whole, so zlib's header and checksum (6 bytes) are left out. A value
    stored as plain text before is read as it is."""

    attr_type = BINARY

    def serialize(self, value: str) -> bytes:
        return zlib.compress(value.encode(), level=9, wbits=RAW_DEFLATE)

    def deserialize(self, value: bytes | str) -> str:
        if isinstance(value, str):
            return value
        return zlib.decompress(value, wbits=RAW_DEFLATE).decode()

    def get_value(self, value: dict[str, Any]) -> Any:
        return value[STRING] if STRING in value else super().get_value(value)


@cache
def connection() -> Connection:
    """One connection (one botocore client) for every transaction in this process."""
    return Connection(region=settings().region)


class _Meta:
    region = settings().region
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
        table_name = f"{settings().table_prefix}shops"

    shop_id = UnicodeAttribute(hash_key=True)
    platform = UnicodeAttribute()
    name = UnicodeAttribute(default="")
    status = UnicodeAttribute(default=ShopStatus.CONNECTED)
    connected_at = UTCDateTimeAttribute()
    # The shop's own seller targets: {"seller.refund_within": {"hours": 12}}.
    policy_overrides = UnicodeAttribute(default="{}")
    # The seller's console settings: where returns go, the console's language.
    return_address = UnicodeAttribute(null=True)  # JSON: name, address, mobile, postcode
    language = UnicodeAttribute(null=True)
    # OAuth tokens, sealed by store.vault; only the expiry times are in the clear.
    sealed_tokens = BinaryAttribute(legacy_encoding=False, null=True)
    token_expires_at = UTCDateTimeAttribute(null=True)
    refresh_expires_at = UTCDateTimeAttribute(null=True)
    refresh_shard = UnicodeAttribute(null=True)
    refresh_at = UnicodeAttribute(null=True)
    refresh_due = RefreshIndex()
    # Reconciliation: everything the platform changed before this time is stored.
    pull_cursor = UTCDateTimeAttribute(null=True)
    # A newly connected shop's history being pulled: from `since` to `until`.
    backfill_since = UTCDateTimeAttribute(null=True)
    backfill_until = UTCDateTimeAttribute(null=True)


class ShopOrdersIndex(GlobalSecondaryIndex):
    """A shop's orders, most recently changed last (keys only: a page is read
    with one BatchGetItem)."""

    class Meta:
        index_name = "by_shop"
        projection = KeysOnlyProjection()

    shop_id = UnicodeAttribute(hash_key=True)
    updated_key = UnicodeAttribute(range_key=True)


class _Streamed(_Meta):
    # Each committed change is its own outbox: the stream's before and after
    # images are what service.changes turns into events and actions.
    stream_view_type = STREAM_NEW_AND_OLD_IMAGE


class OrderRecord(Model):
    class Meta(_Streamed):
        table_name = f"{settings().table_prefix}orders"

    entity_key = UnicodeAttribute(hash_key=True)
    shop_id = UnicodeAttribute(null=True)
    # When the platform last changed it (sortable); none until a trade message names it.
    updated_key = UnicodeAttribute(null=True)
    by_shop = ShopOrdersIndex()
    status = UnicodeAttribute(null=True)
    document = CompressedTextAttribute()
    version = VersionAttribute()
    # The order's after-sale cases: a change to the order re-decides them. Adding
    # one bumps the version, so a concurrent order change retries and sees it.
    case_ids = UnicodeSetAttribute(null=True)


class ShopCasesIndex(GlobalSecondaryIndex):
    class Meta:
        index_name = "by_shop"
        projection = AllProjection()

    shop_id = UnicodeAttribute(hash_key=True)
    case_id = UnicodeAttribute(range_key=True)


class OpenCasesIndex(GlobalSecondaryIndex):
    """A shop's open cases, the one whose next deadline is nearest first (sparse:
    a case leaves it when it closes; keys only, so counting them is one small Query)."""

    class Meta:
        index_name = "open_by_shop"
        projection = KeysOnlyProjection()

    open_shop = UnicodeAttribute(hash_key=True)
    attention_key = UnicodeAttribute(range_key=True)


class BreachedCasesIndex(GlobalSecondaryIndex):
    """A shop's open cases with a breached deadline (sparse, keys only)."""

    class Meta:
        index_name = "breached_by_shop"
        projection = KeysOnlyProjection()

    breached_shop = UnicodeAttribute(hash_key=True)
    case_id = UnicodeAttribute(range_key=True)


class CaseRecord(Model):
    class Meta(_Streamed):
        table_name = f"{settings().table_prefix}cases"

    entity_key = UnicodeAttribute(hash_key=True)
    shop_id = UnicodeAttribute()
    case_id = UnicodeAttribute()
    status = UnicodeAttribute()
    document = CompressedTextAttribute()
    version = VersionAttribute()
    by_shop = ShopCasesIndex()
    # Set while the case is open: its shop, and when its next deadline is due.
    open_shop = UnicodeAttribute(null=True)
    attention_key = UnicodeAttribute(null=True)
    open_by_shop = OpenCasesIndex()
    # Set while the case is open and one of its deadlines was breached.
    breached_shop = UnicodeAttribute(null=True)
    breached_by_shop = BreachedCasesIndex()


class EventLogRecord(Model):
    """Every accepted message, applied or not, per entity. Keyed by the message's
    id within its entity's stream, so the row is also the message's dedup key:
    it is put only if absent, in the same transaction as the state it changed.
    Rows written before this key carry `<received_at>#<id>` as their sequence."""

    class Meta(_Meta):
        table_name = f"{settings().table_prefix}event-log"

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
        table_name = f"{settings().table_prefix}quarantine"

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
        table_name = f"{settings().table_prefix}deadlines"

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


class UnsentIndex(GlobalSecondaryIndex):
    """Outbox rows their queue's consumer has not seen yet, by when to send them
    again (sparse: the consumer's first write removes the row). What lingers
    here had its enqueue fail after the commit, and is sent again
    (service.outbox.requeue)."""

    class Meta:
        index_name = "unsent"
        projection = AllProjection()

    unsent_shard = UnicodeAttribute(hash_key=True)
    requeue_at = UnicodeAttribute(range_key=True)


UNSENT_SHARDS = 4


class SubscriptionDeliveriesIndex(GlobalSecondaryIndex):
    """A subscription's deliveries in the order they were made (the delivery log)."""

    class Meta:
        index_name = "by_subscription"
        projection = AllProjection()

    subscription_id = UnicodeAttribute(hash_key=True)
    position = UnicodeAttribute(range_key=True)


class PendingDeliveriesIndex(GlobalSecondaryIndex):
    """A subscription's deliveries not done yet (sparse: a finished delivery has
    no `pending_subscription`), so disabling it cancels them without reading
    its whole delivery log."""

    class Meta:
        index_name = "pending_by_subscription"
        projection = AllProjection()

    pending_subscription = UnicodeAttribute(hash_key=True)
    position = UnicodeAttribute(range_key=True)


class Attempt(MapAttribute):
    """One try at outbound work, as the delivery log shows it."""

    attempt = NumberAttribute()
    at = UTCDateTimeAttribute()
    outcome = UnicodeAttribute()
    status_code = NumberAttribute(null=True)
    latency_ms = NumberAttribute(null=True)
    error = UnicodeAttribute(null=True)


class SubjectActionsIndex(GlobalSecondaryIndex):
    """The actions taken on an order or case, in the order they were asked for."""

    class Meta:
        index_name = "actions_by_subject"
        projection = AllProjection()

    subject = UnicodeAttribute(hash_key=True)
    position = UnicodeAttribute(range_key=True)


class OutboxRecord(Model):
    """Work for the outside world: an action for the platform, one delivery of an
    event to one subscription (both made from a change's stream record, or by a
    request), a reconciliation pull, a thin message's fetch, a channel call, or
    a shop's event to fan out (a shop to reconnect)."""

    class Meta(_Meta):
        table_name = f"{settings().table_prefix}outbox"

    outbox_id = UnicodeAttribute(hash_key=True)
    kind = UnicodeAttribute()  # domain.work.WorkKind
    type = UnicodeAttribute()
    shop_id = UnicodeAttribute()
    payload = CompressedTextAttribute()
    state = UnicodeAttribute()  # domain.work.WorkState, moved as TRANSITIONS allow
    error = UnicodeAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    finished_at = UTCDateTimeAttribute(null=True)
    # Work for one order is delivered in order (an SQS FIFO message group).
    order_group = UnicodeAttribute(null=True)
    # Bumped by a replay: a message of an older generation is stale.
    generation = NumberAttribute(default=0)
    attempts = ListAttribute(of=Attempt, default=list)
    # Actions only: set before each platform call, kept while any call's outcome
    # is unknown (no answer, or its record was lost), cleared once one is known.
    call_unresolved_since = UTCDateTimeAttribute(null=True)
    unsent_shard = UnicodeAttribute(null=True)
    requeue_at = UnicodeAttribute(null=True)
    requeues = NumberAttribute(default=0)
    unsent = UnsentIndex()
    # Events and their deliveries: when, then which change and which of its
    # events, so that sorting by it is the order the events happened in.
    position = UnicodeAttribute(null=True)
    # Deliveries only: whose, and which event.
    subscription_id = UnicodeAttribute(null=True)
    event_id = UnicodeAttribute(null=True)
    by_subscription = SubscriptionDeliveriesIndex()
    # Actions only: the order or case acted on (its EntityRef.stream).
    subject = UnicodeAttribute(null=True)
    actions_by_subject = SubjectActionsIndex()
    pending_subscription = UnicodeAttribute(null=True)
    pending_by_subscription = PendingDeliveriesIndex()


class KeySubscriptionsIndex(GlobalSecondaryIndex):
    class Meta:
        index_name = "by_key"
        projection = AllProjection()

    key_id = UnicodeAttribute(hash_key=True)
    subscription_id = UnicodeAttribute(range_key=True)


class SubscriptionRecord(Model):
    """An integrator's subscription: where to deliver which events of which shops.
    The signing secret is sealed like shop tokens (store.vault); after a
    rotation the sealed document also holds the secret it replaced."""

    class Meta(_Meta):
        table_name = f"{settings().table_prefix}subscriptions"

    subscription_id = UnicodeAttribute(hash_key=True)
    key_id = UnicodeAttribute()
    url = UnicodeAttribute()
    event_types = UnicodeSetAttribute()
    shops = UnicodeSetAttribute()
    sealed_secret = BinaryAttribute(legacy_encoding=False)
    # Until then the replaced secret signs too (domain.endpoints.SECRET_OVERLAP).
    previous_secret_until = UTCDateTimeAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    enabled = BooleanAttribute(default=True)
    disabled_reason = UnicodeAttribute(null=True)  # domain.endpoints.DisabledReason
    disabled_at = UTCDateTimeAttribute(null=True)
    # Delivery health, updated by each attempt (service.fanout): the last answer,
    # failures since the last delivery, and the endpoint's circuit breaker.
    last_attempt_at = UTCDateTimeAttribute(null=True)
    last_outcome = UnicodeAttribute(null=True)
    last_status_code = NumberAttribute(null=True)
    failing_since = UTCDateTimeAttribute(null=True)
    failures_in_a_row = NumberAttribute(default=0)
    timeouts_in_a_row = NumberAttribute(default=0)
    circuit_opened_at = UTCDateTimeAttribute(null=True)
    # While the circuit is open, the one delivery let through holds this lease.
    probe_until = UTCDateTimeAttribute(null=True)
    dead_lettered = NumberAttribute(default=0)
    by_key = KeySubscriptionsIndex()


class SubscriptionRouteRecord(Model):
    """One row per (shop, subscription): the fan-out reads a shop's routes in one Query."""

    class Meta(_Meta):
        table_name = f"{settings().table_prefix}subscription-routes"

    shop_id = UnicodeAttribute(hash_key=True)
    subscription_id = UnicodeAttribute(range_key=True)
    event_types = UnicodeSetAttribute()
    # A disabled subscription's deliveries are recorded, not sent: a replay of
    # the time it was disabled recovers them.
    enabled = BooleanAttribute(default=True)


class OAuthStateRecord(Model):
    """A pending shop connect: the `state` sent to the platform, the hash of the
    browser's cookie it is bound to, and when it stops being accepted."""

    class Meta(_Meta):
        table_name = f"{settings().table_prefix}oauth-states"

    state = UnicodeAttribute(hash_key=True)
    platform = UnicodeAttribute()
    browser = UnicodeAttribute()
    valid_until = UTCDateTimeAttribute()
    expires_at = TTLAttribute()


class OwnerShopKeysIndex(GlobalSecondaryIndex):
    """The keys a seller issued for their own shop in the console."""

    class Meta:
        index_name = "by_owner_shop"
        projection = AllProjection()

    owner_shop = UnicodeAttribute(hash_key=True)
    key_id = UnicodeAttribute(range_key=True)


class ConnectAttemptsRecord(Model):
    """Shop connects started from one client (its address, hashed) in one minute:
    the unauthenticated connect route writes a state row per request, so it is
    capped per client. Gone soon after its minute."""

    class Meta(_Meta):
        table_name = f"{settings().table_prefix}connect-attempts"

    client_minute = UnicodeAttribute(hash_key=True)
    attempts = NumberAttribute(default=0)
    expires_at = TTLAttribute()


class ApiKeyRecord(Model):
    """An integrator key, stored only as its SHA-256 (keys are 256-bit random)."""

    class Meta(_Meta):
        table_name = f"{settings().table_prefix}api-keys"

    key_hash = UnicodeAttribute(hash_key=True)
    key_id = UnicodeAttribute()
    name = UnicodeAttribute()
    shops = UnicodeSetAttribute()
    created_at = UTCDateTimeAttribute()
    revoked_at = UTCDateTimeAttribute(null=True)
    # A key a seller issued in the console: the one shop it is for.
    owner_shop = UnicodeAttribute(null=True)
    by_owner_shop = OwnerShopKeysIndex()


class ConsoleSessionRecord(Model):
    """A seller's console session, stored only as the SHA-256 of its cookie: it
    sees one shop, carries its CSRF token, and ends after 12 idle hours."""

    class Meta(_Meta):
        table_name = f"{settings().table_prefix}console-sessions"

    session_hash = UnicodeAttribute(hash_key=True)
    shop_id = UnicodeAttribute()
    csrf_token = UnicodeAttribute()
    language = UnicodeAttribute(null=True)
    started_at = UTCDateTimeAttribute()
    seen_at = UTCDateTimeAttribute()
    expires_at = TTLAttribute()


ALL_RECORDS: tuple[type[Model], ...] = (
    ShopRecord,
    OrderRecord,
    CaseRecord,
    EventLogRecord,
    QuarantineRecord,
    DeadlineRecord,
    OutboxRecord,
    OAuthStateRecord,
    ConnectAttemptsRecord,
    ApiKeyRecord,
    SubscriptionRecord,
    SubscriptionRouteRecord,
    ConsoleSessionRecord,
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
