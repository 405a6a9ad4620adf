"""Canonical model: what every platform's messages become, and the state kept from them.

Pure data. Times are timezone-aware datetimes, money is integer fen.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import StrEnum

from chalicelib.domain.ids import EntityRef

# Both marketplaces speak Asia/Shanghai time. China has kept UTC+8 without
# daylight saving since 1991, so a fixed offset is exact and needs no tz database.
SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")


# The languages ShopHook explains itself in (policy texts, decisions, the console).
LANGUAGES = ("en", "zh")


class ShopStatus(StrEnum):
    CONNECTED = "connected"
    # The token refresh failed: the seller must connect again. Pushes (verified by
    # the app's secret, not the shop's token) are still applied meanwhile.
    NEEDS_RECONNECT = "needs_reconnect"
    DISCONNECTED = "disconnected"


RECEIVING_STATUSES = frozenset({ShopStatus.CONNECTED, ShopStatus.NEEDS_RECONNECT})


class OrderStatus(StrEnum):
    PENDING_PAYMENT = "pending_payment"
    PAID = "paid"
    SHIPPED = "shipped"
    COMPLETED = "completed"
    CLOSED = "closed"


class ShipmentStatus(StrEnum):
    AWAITING_PICKUP = "awaiting_pickup"
    PICKED_UP = "picked_up"
    IN_TRANSIT = "in_transit"
    DELIVERED = "delivered"
    EXCEPTION = "exception"


class CaseKind(StrEnum):
    REFUND_ONLY = "refund_only"
    RETURN_REFUND = "return_refund"
    EXCHANGE = "exchange"
    REPAIR = "repair"


# Cases whose goods go back to the seller (a return address is agreed)...
GOODS_COME_BACK = frozenset({CaseKind.RETURN_REFUND, CaseKind.EXCHANGE, CaseKind.REPAIR})
# ... and those the law's no-reason return covers (a repair is a quality matter).
NO_REASON_RETURN_KINDS = frozenset({CaseKind.RETURN_REFUND, CaseKind.EXCHANGE})


class CaseStatus(StrEnum):
    REQUESTED = "requested"
    AWAITING_RETURN = "awaiting_return"
    RETURNED = "returned"
    REFUNDED = "refunded"
    REFUSED = "refused"
    CLOSED = "closed"
    COMPLETED = "completed"


OPEN_CASE_STATUSES = frozenset(
    {CaseStatus.REQUESTED, CaseStatus.AWAITING_RETURN, CaseStatus.RETURNED}
)

# How far along each status is: breaks ties between snapshots with the same
# `modified`, so the final state never depends on arrival order.
ORDER_STATUS_RANK = {
    OrderStatus.PENDING_PAYMENT: 0,
    OrderStatus.PAID: 1,
    OrderStatus.SHIPPED: 2,
    OrderStatus.COMPLETED: 3,
    OrderStatus.CLOSED: 4,
}
SHIPMENT_STATUS_RANK = {
    ShipmentStatus.AWAITING_PICKUP: 0,
    ShipmentStatus.PICKED_UP: 1,
    ShipmentStatus.IN_TRANSIT: 2,
    ShipmentStatus.EXCEPTION: 3,
    ShipmentStatus.DELIVERED: 4,
}
CASE_STATUS_RANK = {
    CaseStatus.REQUESTED: 0,
    CaseStatus.AWAITING_RETURN: 1,
    CaseStatus.RETURNED: 2,
    CaseStatus.REFUSED: 3,
    CaseStatus.REFUNDED: 4,
    CaseStatus.COMPLETED: 5,
    CaseStatus.CLOSED: 6,
}


@dataclass(frozen=True)
class Item:
    item_id: str
    title: str
    quantity: int
    price_fen: int
    category: str
    no_reason_return: bool


@dataclass(frozen=True)
class OrderSnapshot:
    """The platform's full view of a trade at its `modified` time."""

    order_id: str
    status: OrderStatus
    platform_status: str
    total_fen: int
    shipping_fee_fen: int
    free_shipping: bool
    region: str
    items: tuple[Item, ...]
    modified: datetime
    paid_at: datetime | None = None
    shipped_at: datetime | None = None
    tracking_no: str | None = None
    carrier: str | None = None


@dataclass(frozen=True)
class LogisticsTrace:
    """One courier scan."""

    order_id: str
    tracking_no: str
    carrier: str
    status: ShipmentStatus
    scanned_at: datetime
    description: str


@dataclass(frozen=True)
class CaseSnapshot:
    """The platform's full view of an after-sale request at its `modified` time."""

    case_id: str
    order_id: str
    kind: CaseKind
    status: CaseStatus
    platform_status: str
    amount_fen: int | None
    reason: str
    quality_issue: bool
    modified: datetime
    line_item_id: str | None = None
    return_tracking_no: str | None = None
    # Where the platform has the request, when its calls must say so (Taobao-style
    # `refund_phase`: onsale or aftersale). Cases stored before it was kept have none.
    platform_phase: str | None = None


@dataclass(frozen=True)
class ThinMessage:
    """A message that says an order or case changed without saying all of it (no
    items, no amount): the platform's detail call for `needs` completes it."""

    needs: EntityRef


CanonicalEvent = OrderSnapshot | LogisticsTrace | CaseSnapshot | ThinMessage


@dataclass(frozen=True)
class Inbound:
    """A verified, parsed webhook: who sent it, which message, what it says."""

    platform: str
    message_id: str
    topic: str
    # None when the message does not name its shop (JD-style logistics traces).
    shop_id: str | None
    event: CanonicalEvent
    # Read from the platform's listings (a reconciliation pull), not pushed: no one
    # redelivers it, so one that changes nothing leaves nothing to note.
    pulled: bool = False


@dataclass(frozen=True)
class ScanSummary:
    """What the courier scans of an order add up to, independent of arrival order."""

    latest_status: ShipmentStatus
    latest_at: datetime
    latest_description: str
    tracking_no: str
    carrier: str
    picked_up_at: datetime | None = None
    signed_at: datetime | None = None


# Explanations are kept in every language the API answers in ({"en": ..., "zh": ...}).
Explanation = dict[str, str]


@dataclass(frozen=True)
class Flag:
    rule: str
    explanation: Explanation


class DeadlineState(StrEnum):
    PENDING = "pending"
    MET = "met"
    BREACHED = "breached"


@dataclass(frozen=True)
class Deadline:
    rule: str
    started_at: datetime
    due_at: datetime
    state: DeadlineState
    # Whether the 75%-of-the-window warning has been given.
    warned: bool = False


@dataclass(frozen=True)
class OrderState:
    platform: str
    order_id: str
    # None until a trade message names the shop (a trace may arrive first).
    shop_id: str | None = None
    snapshot: OrderSnapshot | None = None
    paid_at: datetime | None = None
    shipped_at: datetime | None = None
    scans: ScanSummary | None = None
    flags: tuple[Flag, ...] = ()
    deadlines: tuple[Deadline, ...] = ()


class Outcome(StrEnum):
    ELIGIBLE = "eligible"
    INELIGIBLE = "ineligible"
    NEEDS_REVIEW = "needs_review"
    AUTO_ACTION = "auto_action"


@dataclass(frozen=True)
class Decision:
    rule: str
    outcome: Outcome
    source: str
    explanation: Explanation
    decided_at: datetime


@dataclass(frozen=True)
class CaseState:
    platform: str
    case_id: str
    shop_id: str
    snapshot: CaseSnapshot
    # When the case first reached each status (earliest `modified` seen).
    status_times: tuple[tuple[CaseStatus, datetime], ...] = ()
    decisions: tuple[Decision, ...] = ()
    deadlines: tuple[Deadline, ...] = ()

    def reached(self, status: CaseStatus) -> datetime | None:
        return dict(self.status_times).get(status)


@dataclass(frozen=True)
class ShopTokens:
    """A shop's OAuth tokens: secrets, so never printed."""

    access_token: str
    refresh_token: str
    expires_at: datetime
    refresh_expires_at: datetime | None = None

    def __repr__(self) -> str:
        return f"ShopTokens(<redacted>, expires_at={self.expires_at.isoformat()})"


@dataclass(frozen=True)
class ConnectedShop:
    """What a finished OAuth connect tells ShopHook."""

    shop_id: str
    name: str
    tokens: ShopTokens
