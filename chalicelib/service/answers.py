"""The answers the API gives, as pydantic models: every answer of
platforms.md sections 4 and 5 is shaped by one of these on its way out
(app.route), and /openapi.json describes them from the same models, so the
description cannot drift from what is served. Times are ISO 8601 text with
their offset, as the views make them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.domain.actions import Action
from chalicelib.domain.endpoints import DisabledReason
from chalicelib.domain.model import (
    CaseKind,
    CaseStatus,
    DeadlineState,
    Item,
    OrderStatus,
    Outcome,
    ShipmentStatus,
    ShopStatus,
)
from chalicelib.domain.work import WorkState

Time = Annotated[str, Field(json_schema_extra={"format": "date-time"})]


class Answer(BaseModel):
    """An answer: exactly these fields (a field left out of an answer stays out).
    Validators are built on first use, not at import (cold start)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class ErrorAnswer(Answer):
    """Every refusal: a machine code, a readable message, the field at fault."""

    code: str
    message: str
    field: str | None = None


class HealthAnswer(Answer):
    status: Literal["ok"]


class OpenApiAnswer(Answer):
    """This description itself (OpenAPI 3.1)."""

    model_config = ConfigDict(extra="allow")
    openapi: str


class ShipmentAnswer(Answer):
    tracking_no: str
    carrier: str | None
    status: ShipmentStatus
    picked_up_at: Time | None
    signed_at: Time | None


class FlagAnswer(Answer):
    rule: str
    explanation: str


class OrderAnswer(Answer):
    shop_id: str
    platform: str
    order_id: str
    status: OrderStatus
    total_fen: int
    shipping_fee_fen: int
    free_shipping: bool
    items: list[Item]  # the canonical model's line items, as they are
    paid_at: Time | None
    shipped_at: Time | None
    shipment: ShipmentAnswer | None
    flags: list[FlagAnswer]
    updated_at: Time | None
    version: int


class DecisionAnswer(Answer):
    rule: str
    outcome: Outcome
    source: str
    explanation: str
    decided_at: Time


class DeadlineAnswer(Answer):
    rule: str
    due_at: Time
    state: DeadlineState


class CaseAnswer(Answer):
    shop_id: str
    case_id: str
    order_id: str
    kind: CaseKind
    status: CaseStatus
    amount_fen: int | None
    reason: str
    quality_issue: bool
    decisions: list[DecisionAnswer]
    deadlines: list[DeadlineAnswer]
    updated_at: Time
    version: int


class CaseListAnswer(Answer):
    items: list[CaseAnswer]
    next_cursor: str | None = Field(description="pass back as `cursor`; null at the end")


class ShopDeadlineAnswer(DeadlineAnswer):
    entity: str = Field(description="`order:<id>` or `case:<id>`")


class DeadlineListAnswer(Answer):
    items: list[ShopDeadlineAnswer]


class BoundAnswer(Answer):
    at_most: int | str | None
    at_least: int | str | None


class RuleAnswer(Answer):
    id: str
    layer: str
    params: dict[str, Any]
    source: str
    explanation: str
    adjustable: dict[str, BoundAnswer]


class PolicyAnswer(Answer):
    shop_id: str
    overrides: dict[str, dict[str, Any]]
    rules: list[RuleAnswer]


class ActionQueuedAnswer(Answer):
    action_id: str
    state: Literal[WorkState.QUEUED]


class ActionAnswer(Answer):
    action_id: str
    action: Action | Literal["ship"]
    state: Literal[WorkState.QUEUED, WorkState.SENT, WorkState.FAILED, WorkState.DEAD_LETTERED]
    created_at: Time
    case_id: str | None = None
    order_id: str | None = None
    error: str | None = Field(None, description="the platform's code and message, when failed")


class ReconcileAnswer(Answer):
    # Everything the platform changed before this is held (None: not pulled yet).
    cursor: Time | None


class BackfillAnswer(Answer):
    since: Time
    until: Time
    progress: Annotated[float, Field(ge=0, le=1)]
    done: bool


class ShopAnswer(Answer):
    shop_id: str
    platform: str
    name: str
    status: ShopStatus
    connected_at: Time
    reconcile: ReconcileAnswer
    # The last 30 days pulled when the shop was first connected (None: none).
    backfill: BackfillAnswer | None


class DisconnectedAnswer(Answer):
    shop_id: str
    status: Literal[ShopStatus.DISCONNECTED]


class SubscriptionHealthAnswer(Answer):
    last_attempt_at: Time | None
    last_outcome: Literal["delivered", "failed", "timed_out"] | None
    last_status_code: int | None
    failures_in_a_row: int
    failing_since: Time | None = Field(description="the first failure since the last delivery")
    circuit_open: bool = Field(description="the endpoint stopped answering: probed one at a time")
    dead_lettered: int


class SubscriptionAnswer(Answer):
    id: str
    url: str
    event_types: list[str]
    shops: list[str]
    created_at: Time
    enabled: bool
    disabled_reason: DisabledReason | None
    health: SubscriptionHealthAnswer


class SubscriptionCreatedAnswer(SubscriptionAnswer):
    secret: str = Field(description="whsec_...: shown this once")


class SubscriptionListAnswer(Answer):
    items: list[SubscriptionAnswer]


class SecretAnswer(Answer):
    secret: str = Field(description="the new whsec_... secret, shown this once")


class AttemptAnswer(Answer):
    attempt: int
    at: Time
    outcome: str
    status_code: int | None
    latency_ms: float | None
    error: str | None


class DeliveryAnswer(Answer):
    id: str
    event_id: str
    type: str
    state: Literal[
        WorkState.PENDING,
        WorkState.DELIVERED,
        WorkState.FAILED,
        WorkState.DEAD_LETTERED,
        WorkState.CANCELLED,
    ]
    created_at: Time
    finished_at: Time | None
    error: str | None
    attempts: list[AttemptAnswer]


class DeliveryListAnswer(Answer):
    items: list[DeliveryAnswer]
    next_cursor: str | None


class ReplayedAnswer(Answer):
    replayed: int
    delivery_ids: list[str]
