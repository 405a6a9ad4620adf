"""The canonical JSON shapes of platforms.md section 5, built from stored state."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from chalicelib.domain.model import (
    LANGUAGES,
    CaseState,
    Deadline,
    Explanation,
    OrderState,
    ShipmentStatus,
)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _text(explanation: Explanation, language: str | None) -> str | Explanation:
    """One language for a reader; every language (None) for outbound events."""
    return explanation if language is None else explanation.get(language, explanation["en"])


def preferred_language(accept_language: str | None) -> str:
    """The best of our languages for an Accept-Language header (RFC 9110 q-values)."""
    ranked: list[tuple[float, str]] = []
    for part in (accept_language or "").split(","):
        tag, _, quality = part.strip().partition(";q=")
        try:
            weight = float(quality) if quality else 1.0
        except ValueError:
            continue
        primary = tag.split("-")[0].lower()
        if primary in LANGUAGES:
            ranked.append((weight, primary))
    return max(ranked, key=lambda pair: pair[0])[1] if ranked else "en"


def _shipment_view(state: OrderState) -> dict[str, Any] | None:
    snapshot, scans = state.snapshot, state.scans
    tracking_no = (snapshot.tracking_no if snapshot else None) or (
        scans.tracking_no if scans else None
    )
    if tracking_no is None:
        return None
    return {
        "tracking_no": tracking_no,
        "carrier": (snapshot.carrier if snapshot else None) or (scans.carrier if scans else None),
        "status": scans.latest_status if scans else ShipmentStatus.AWAITING_PICKUP,
        "picked_up_at": _iso(scans.picked_up_at if scans else None),
        "signed_at": _iso(scans.signed_at if scans else None),
    }


def order_updated_at(state: OrderState) -> datetime | None:
    moments = [
        moment
        for moment in (
            state.snapshot.modified if state.snapshot else None,
            state.scans.latest_at if state.scans else None,
        )
        if moment is not None
    ]
    return max(moments) if moments else None


def order_view(state: OrderState, version: int, language: str | None = None) -> dict[str, Any]:
    snapshot = state.snapshot
    if snapshot is None:
        raise ValueError("an order is shown only once a trade message has named it")
    return {
        "shop_id": state.shop_id,
        "platform": state.platform,
        "order_id": state.order_id,
        "status": snapshot.status,
        "total_fen": snapshot.total_fen,
        "shipping_fee_fen": snapshot.shipping_fee_fen,
        "free_shipping": snapshot.free_shipping,
        "items": [asdict(item) for item in snapshot.items],
        "paid_at": _iso(state.paid_at),
        "shipped_at": _iso(state.shipped_at),
        "shipment": _shipment_view(state),
        "flags": [
            {"rule": flag.rule, "explanation": _text(flag.explanation, language)}
            for flag in state.flags
        ],
        "updated_at": _iso(order_updated_at(state)),
        "version": version,
    }


def case_view(state: CaseState, version: int, language: str | None = None) -> dict[str, Any]:
    snapshot = state.snapshot
    return {
        "shop_id": state.shop_id,
        "case_id": state.case_id,
        "order_id": snapshot.order_id,
        "kind": snapshot.kind,
        "status": snapshot.status,
        "amount_fen": snapshot.amount_fen,
        "reason": snapshot.reason,
        "quality_issue": snapshot.quality_issue,
        "decisions": [
            {
                "rule": decision.rule,
                "outcome": decision.outcome,
                "source": decision.source,
                "explanation": _text(decision.explanation, language),
                "decided_at": _iso(decision.decided_at),
            }
            for decision in state.decisions
        ],
        "deadlines": [deadline_view(deadline) for deadline in state.deadlines],
        "updated_at": _iso(snapshot.modified),
        "version": version,
    }


def deadline_view(deadline: Deadline) -> dict[str, Any]:
    return {"rule": deadline.rule, "due_at": _iso(deadline.due_at), "state": deadline.state}
