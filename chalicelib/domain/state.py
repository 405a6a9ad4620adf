"""How canonical events change the state kept for orders and after-sale cases.

Every function here is a join: the result depends on the set of events applied,
never on the order they arrived in. The platform's snapshot is last-writer-wins
on (`modified`, status rank, content); times that only ever get filled in
(paid, shipped, picked up, signed) keep the earliest value seen. Each function
returns the new state, or None when the event changes nothing (a stale or
repeated message), so the caller writes only the event log.
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from datetime import datetime
from typing import TypeVar

from chalicelib.domain.model import (
    CASE_STATUS_RANK,
    ORDER_STATUS_RANK,
    SHIPMENT_STATUS_RANK,
    CanonicalEvent,
    CaseSnapshot,
    CaseState,
    Inbound,
    LogisticsTrace,
    OrderSnapshot,
    OrderState,
    ScanSummary,
    ShipmentStatus,
    ThinMessage,
)


class ShopMismatchError(ValueError):
    """A message names no shop, or another shop than the one that owns the entity."""


def _earliest(held: datetime | None, seen: datetime | None) -> datetime | None:
    candidates = [t for t in (held, seen) if t is not None]
    return min(candidates) if candidates else None


def _content(snapshot: OrderSnapshot | CaseSnapshot) -> str:
    """The last tie-breaker: two different snapshots with the same `modified` and
    status still resolve the same way in every arrival order, whether fresh off
    the wire or read back from storage."""
    return json.dumps(asdict(snapshot), default=str, sort_keys=True, ensure_ascii=False)


def _order_precedence(snapshot: OrderSnapshot) -> tuple:
    return (snapshot.modified, ORDER_STATUS_RANK[snapshot.status], _content(snapshot))


def _case_precedence(snapshot: CaseSnapshot) -> tuple:
    return (snapshot.modified, CASE_STATUS_RANK[snapshot.status], _content(snapshot))


def _scan_precedence(scans: ScanSummary) -> tuple:
    return (
        scans.latest_at,
        SHIPMENT_STATUS_RANK[scans.latest_status],
        scans.latest_description,
        scans.tracking_no,
        scans.carrier,
    )


def _claim_shop(entity: str, held_by: str | None, claimed_by: str) -> str:
    if held_by is not None and held_by != claimed_by:
        raise ShopMismatchError(f"{entity} belongs to {held_by}, not {claimed_by}")
    return claimed_by


_State = TypeVar("_State", OrderState, CaseState)


def _changed(current: _State, candidate: _State) -> _State | None:
    return None if candidate == current else candidate


def apply_order_snapshot(
    state: OrderState | None, platform: str, shop_id: str, snapshot: OrderSnapshot
) -> OrderState | None:
    current = state or OrderState(platform=platform, order_id=snapshot.order_id)
    owner = _claim_shop(f"order {snapshot.order_id}", current.shop_id, shop_id)
    held = current.snapshot
    newest = (
        snapshot if held is None or _order_precedence(snapshot) > _order_precedence(held) else held
    )
    return _changed(
        current,
        replace(
            current,
            shop_id=owner,
            snapshot=newest,
            paid_at=_earliest(current.paid_at, snapshot.paid_at),
            shipped_at=_earliest(current.shipped_at, snapshot.shipped_at),
        ),
    )


def apply_trace(
    state: OrderState | None, platform: str, trace: LogisticsTrace
) -> OrderState | None:
    current = state or OrderState(platform=platform, order_id=trace.order_id)
    seen = ScanSummary(
        latest_status=trace.status,
        latest_at=trace.scanned_at,
        latest_description=trace.description,
        tracking_no=trace.tracking_no,
        carrier=trace.carrier,
        picked_up_at=trace.scanned_at if trace.status is ShipmentStatus.PICKED_UP else None,
        signed_at=trace.scanned_at if trace.status is ShipmentStatus.DELIVERED else None,
    )
    held = current.scans
    if held is None:
        merged = seen
    else:
        latest = seen if _scan_precedence(seen) > _scan_precedence(held) else held
        merged = replace(
            latest,
            picked_up_at=_earliest(held.picked_up_at, seen.picked_up_at),
            signed_at=_earliest(held.signed_at, seen.signed_at),
        )
    return _changed(current, replace(current, scans=merged))


def apply_case_snapshot(
    state: CaseState | None, platform: str, shop_id: str, snapshot: CaseSnapshot
) -> CaseState | None:
    fresh = state is None
    if state is None:
        state = CaseState(
            platform=platform, case_id=snapshot.case_id, shop_id=shop_id, snapshot=snapshot
        )
    _claim_shop(f"after-sale case {snapshot.case_id}", state.shop_id, shop_id)
    newest = (
        snapshot
        if _case_precedence(snapshot) > _case_precedence(state.snapshot)
        else state.snapshot
    )
    times = dict(state.status_times)
    times[snapshot.status] = _earliest(times.get(snapshot.status), snapshot.modified)
    ordered = tuple(sorted(times.items(), key=lambda pair: CASE_STATUS_RANK[pair[0]]))
    changed = replace(state, snapshot=newest, status_times=ordered)
    return changed if fresh else _changed(state, changed)


def entity_of(event: CanonicalEvent) -> tuple[str, str]:
    """Which entity an event changes: ("order", order id) or ("case", case id)."""
    if isinstance(event, ThinMessage):
        return event.needs.kind, event.needs.entity_id
    if isinstance(event, CaseSnapshot):
        return "case", event.case_id
    return "order", event.order_id


def apply(inbound: Inbound, held: OrderState | CaseState | None) -> OrderState | CaseState | None:
    """The state after `inbound`, or None if it changes nothing. `held` is the
    current state of `entity_of(inbound.event)`."""
    event, platform = inbound.event, inbound.platform
    assert not isinstance(event, ThinMessage), "a thin message is completed, never applied"
    if isinstance(event, LogisticsTrace):
        return apply_trace(held, platform, event)
    if inbound.shop_id is None:
        raise ShopMismatchError(f"{entity_of(event)[0]} messages must name their shop")
    if isinstance(event, CaseSnapshot):
        return apply_case_snapshot(held, platform, inbound.shop_id, event)
    return apply_order_snapshot(held, platform, inbound.shop_id, event)
