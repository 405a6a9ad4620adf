"""The after-sales rules engine: pure functions of (policy, state, now).

`decide_case` and `decide_order` return the state with its decisions,
deadlines and flags recomputed from the facts held. A deadline's state is a
function of the facts and `now` alone (met if its condition was met in time,
breached if late or overdue, else pending), so late-arriving evidence can
still show a deadline was met.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta

from chalicelib.domain.model import (
    NO_REASON_RETURN_KINDS,
    SHANGHAI,
    CaseKind,
    CaseState,
    CaseStatus,
    Deadline,
    DeadlineState,
    Decision,
    Explanation,
    Flag,
    OrderState,
    OrderStatus,
    Outcome,
    ShipmentStatus,
)
from chalicelib.domain.policy import Policy, Rule

# Every rule the engine reads, with the parameters it needs (checked at start-up).
NEEDED: dict[str, dict[str, type]] = {
    "law.no_reason_return": {"days": int},
    "law.no_reason_return.exclusions": {"categories": list},
    "law.no_reason_return.condition": {},
    "law.refund_after_return": {"days": int},
    "platform.ship_by": {"hours": int},
    "platform.refund_unshipped_timeout": {"hours": int},
    "platform.refund_shipped_timeout": {"hours": int},
    "platform.buyer_return_timeout": {"hours": int},
    "platform.seller_confirm_return_timeout": {"hours": int},
    "platform.fake_shipment": {"hours": int},
    "platform.free_shipping_surcharge": {},
    "seller.ship_within": {"hours": int},
    "seller.refund_within": {"hours": int},
    "seller.refund_queue_sweeps": {"times": list},
    "seller.exchange_reship": {"hours": int},
    "seller.no_reason_return": {"days": int},
    "seller.refund_after_return": {"days": int},
    "seller.auto_agree_unshipped_refund": {"max_amount_fen": int},
    "seller.logistics_exception": {},
}
WARNING_AT = 0.75
ORDER_FLAG_RULES = ("platform.ship_by", "platform.fake_shipment")


def _window(rule: Rule) -> timedelta:
    params = rule.params
    return timedelta(hours=params["hours"]) if "hours" in params else timedelta(days=params["days"])


def _deadline(
    rule: str, started: datetime, due: datetime, done_at: datetime | None, now: datetime
) -> Deadline:
    if done_at is not None:
        state = DeadlineState.MET if done_at <= due else DeadlineState.BREACHED
        return Deadline(rule, started, due, state, warned=now >= warn_at(started, due))
    return advance(Deadline(rule, started, due, DeadlineState.PENDING), now)


def warn_at(started: datetime, due: datetime) -> datetime:
    return started + (due - started) * WARNING_AT


def next_check(deadline: Deadline) -> datetime | None:
    """When the sweeper next looks at a deadline: to warn, then to breach (None
    once it is met or breached)."""
    if deadline.state is not DeadlineState.PENDING:
        return None
    return deadline.due_at if deadline.warned else warn_at(deadline.started_at, deadline.due_at)


def advance(deadline: Deadline, now: datetime) -> Deadline:
    """What time alone does to a deadline: warn at 75% of the window, breach after it."""
    if deadline.state is not DeadlineState.PENDING:
        return deadline
    return replace(
        deadline,
        state=DeadlineState.BREACHED if now > deadline.due_at else DeadlineState.PENDING,
        warned=deadline.warned or now >= warn_at(deadline.started_at, deadline.due_at),
    )


@dataclass(frozen=True)
class Clock:
    """A case deadline: starts when the case reaches `starts`, runs for the rule's
    window, is met when the case moves on."""

    rule: str
    starts: CaseStatus
    kinds: frozenset[CaseKind] | None = None
    shipped: bool | None = None


CASE_CLOCKS = (
    Clock("platform.refund_unshipped_timeout", CaseStatus.REQUESTED, shipped=False),
    Clock("platform.refund_shipped_timeout", CaseStatus.REQUESTED, shipped=True),
    Clock("seller.refund_within", CaseStatus.REQUESTED),
    Clock("platform.buyer_return_timeout", CaseStatus.AWAITING_RETURN),
    Clock("platform.seller_confirm_return_timeout", CaseStatus.RETURNED),
    Clock("law.refund_after_return", CaseStatus.RETURNED, frozenset({CaseKind.RETURN_REFUND})),
    Clock("seller.refund_after_return", CaseStatus.RETURNED, frozenset({CaseKind.RETURN_REFUND})),
    Clock("seller.exchange_reship", CaseStatus.RETURNED, frozenset({CaseKind.EXCHANGE})),
)


def _shipped_by(order: OrderState | None, moment: datetime) -> bool:
    """Whether the order had shipped by `moment`: a request's clocks depend on
    when it was made, not on which message happened to arrive first."""
    return order is not None and order.shipped_at is not None and order.shipped_at <= moment


def _left(case: CaseState, status: CaseStatus, since: datetime) -> datetime | None:
    """When the case first moved from `status` to another one."""
    later = [moment for seen, moment in case.status_times if seen != status and moment >= since]
    return min(later) if later else None


def next_sweep(after: datetime, times: list[str]) -> datetime:
    """The first of the daily queue sweeps (Shanghai clock times) after `after`."""
    local = after.astimezone(SHANGHAI)
    candidates = [
        datetime.combine(local.date() + timedelta(days=day), time.fromisoformat(clock), SHANGHAI)
        for day in (0, 1)
        for clock in times
    ]
    return min(moment for moment in candidates if moment > local)


def case_deadlines(
    policy: Policy, case: CaseState, order: OrderState | None, now: datetime
) -> tuple[Deadline, ...]:
    kind = case.snapshot.kind
    deadlines = []
    for clock in CASE_CLOCKS:
        started = case.reached(clock.starts)
        if started is None or (clock.kinds is not None and kind not in clock.kinds):
            continue
        if clock.shipped is not None and clock.shipped != _shipped_by(order, started):
            continue
        if clock.rule not in policy.rules:  # a platform rule its policy file leaves out
            continue
        due = started + _window(policy.rule(clock.rule))
        deadlines.append(
            _deadline(clock.rule, started, due, _left(case, clock.starts, started), now)
        )
    requested = case.reached(CaseStatus.REQUESTED)
    if requested is not None:
        sweep = next_sweep(requested, policy.value("seller.refund_queue_sweeps.times"))
        answered = _left(case, CaseStatus.REQUESTED, requested)
        deadlines.append(_deadline("seller.refund_queue_sweeps", requested, sweep, answered, now))
    return tuple(deadlines)


def _local(moment: datetime) -> str:
    return moment.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")


def _return_decision(
    policy: Policy, case: CaseState, order: OrderState | None
) -> tuple[str, Outcome, Explanation] | None:
    snapshot = case.snapshot
    if snapshot.quality_issue:
        return (
            "law.no_reason_return.condition",
            Outcome.ELIGIBLE,
            {
                "en": "Quality problem: the return cannot be refused; "
                "the seller pays return shipping.",
                "zh": "质量问题：不得拒绝退货，退货运费由卖家承担。",
            },
        )
    if snapshot.kind not in NO_REASON_RETURN_KINDS:
        return None
    items = order.snapshot.items if order is not None and order.snapshot is not None else ()
    concerned = [item for item in items if item.item_id == snapshot.line_item_id] or list(items)
    excluded_tags = set(policy.value("law.no_reason_return.exclusions.categories"))
    for item in concerned:
        tags = excluded_tags.intersection(item.category.replace(",", " ").split())
        if tags or not item.no_reason_return:
            why = f"category '{', '.join(sorted(tags))}'" if tags else "listing marked not covered"
            zh_why = f"类目「{'、'.join(sorted(tags))}」" if tags else "商品页面标明不适用"
            return (
                "law.no_reason_return.exclusions",
                Outcome.INELIGIBLE,
                {
                    "en": f"Not covered by no-reason return: {item.title} ({why}).",
                    "zh": f"不适用无理由退货：{item.title}（{zh_why}）。",
                },
            )
    signed = order.scans.signed_at if order is not None and order.scans is not None else None
    if signed is None:
        return (
            "law.no_reason_return",
            Outcome.NEEDS_REVIEW,
            {
                "en": "Not signed for yet: the no-reason return window has not started.",
                "zh": "买家尚未签收，无理由退货期尚未开始。",
            },
        )
    law_days = policy.value("law.no_reason_return.days")
    days = max(law_days, policy.value("seller.no_reason_return.days"))
    # The days count from 00:00 of the day after signing (Shanghai time).
    window_opens = datetime.combine(
        signed.astimezone(SHANGHAI).date() + timedelta(days=1), time(), SHANGHAI
    )
    window_ends = window_opens + timedelta(days=days)
    requested = case.reached(CaseStatus.REQUESTED) or snapshot.modified
    within = requested < window_ends
    rule = (
        "seller.no_reason_return"
        if within and requested >= window_opens + timedelta(days=law_days)
        else "law.no_reason_return"
    )
    if within:
        return (
            rule,
            Outcome.ELIGIBLE,
            {
                "en": f"Requested {_local(requested)}, within the {days}-day window ending "
                f"{_local(window_ends)}; the buyer pays return shipping.",
                "zh": f"申请时间 {_local(requested)}，在{days}日无理由退货期内"
                f"（至 {_local(window_ends)}），退货运费由买家承担。",
            },
        )
    return (
        rule,
        Outcome.INELIGIBLE,
        {
            "en": f"Requested {_local(requested)}, after the {days}-day window ended "
            f"{_local(window_ends)}.",
            "zh": f"申请时间 {_local(requested)}，已超过{days}日无理由退货期"
            f"（{_local(window_ends)} 截止）。",
        },
    )


def _auto_agree(
    policy: Policy, case: CaseState, order: OrderState | None
) -> tuple[str, Outcome, Explanation] | None:
    limit = policy.value("seller.auto_agree_unshipped_refund.max_amount_fen")
    snapshot = case.snapshot
    if (
        limit <= 0
        or snapshot.kind is not CaseKind.REFUND_ONLY
        or snapshot.status is not CaseStatus.REQUESTED
        or snapshot.amount_fen is None
        or snapshot.amount_fen > limit
        or order is None
        or order.snapshot is None
        or order.snapshot.status not in (OrderStatus.PAID, OrderStatus.PENDING_PAYMENT)
    ):
        return None
    return (
        "seller.auto_agree_unshipped_refund",
        Outcome.AUTO_ACTION,
        {
            "en": f"Refund of {snapshot.amount_fen} fen on an unshipped order agreed "
            f"automatically (the shop's limit is {limit} fen).",
            "zh": f"未发货订单退款 {snapshot.amount_fen} 分，"
            f"已按店铺设置（上限 {limit} 分）自动同意。",
        },
    )


def decide_case(
    policy: Policy, case: CaseState, order: OrderState | None, now: datetime
) -> CaseState:
    held = {(d.rule, d.outcome): d.decided_at for d in case.decisions}
    decisions = tuple(
        Decision(
            rule=rule,
            outcome=outcome,
            source=policy.rule(rule).source,
            explanation=explanation,
            decided_at=held.get((rule, outcome), now),
        )
        for rule, outcome, explanation in filter(
            None, (_return_decision(policy, case, order), _auto_agree(policy, case, order))
        )
    )
    return replace(case, decisions=decisions, deadlines=case_deadlines(policy, case, order, now))


def _order_deadlines(policy: Policy, order: OrderState, now: datetime) -> list[Deadline]:
    """Ship-by (the platform's and the seller's) and fake shipment, each unless
    the policy leaves its rule out."""
    snapshot = order.snapshot
    deadlines = []
    closed_unshipped = (
        snapshot is not None and snapshot.status is OrderStatus.CLOSED and order.shipped_at is None
    )
    if order.paid_at is not None and not closed_unshipped:
        for rule in ("platform.ship_by", "seller.ship_within"):
            if rule in policy.rules:
                due = order.paid_at + _window(policy.rule(rule))
                deadlines.append(_deadline(rule, order.paid_at, due, order.shipped_at, now))
    tracking = snapshot.tracking_no if snapshot is not None else None
    if order.shipped_at is not None and tracking and "platform.fake_shipment" in policy.rules:
        due = order.shipped_at + _window(policy.rule("platform.fake_shipment"))
        picked_up = order.scans.picked_up_at if order.scans is not None else None
        deadlines.append(_deadline("platform.fake_shipment", order.shipped_at, due, picked_up, now))
    return deadlines


def decide_order(policy: Policy, order: OrderState, now: datetime) -> OrderState:
    snapshot = order.snapshot
    deadlines = _order_deadlines(policy, order, now)
    raised = {
        **{
            deadline.rule: deadline.state is DeadlineState.BREACHED
            for deadline in deadlines
            if deadline.rule in ORDER_FLAG_RULES
        },
        "platform.free_shipping_surcharge": snapshot is not None
        and snapshot.free_shipping
        and snapshot.shipping_fee_fen > 0,
        "seller.logistics_exception": order.scans is not None
        and order.scans.latest_status is ShipmentStatus.EXCEPTION,
    }
    # A platform rule its policy file leaves out raises no flag.
    flags = tuple(
        Flag(rule, _texts(policy.rule(rule)))
        for rule, up in raised.items()
        if up and rule in policy.rules
    )
    return replace(order, deadlines=tuple(deadlines), flags=flags)


def _texts(rule: Rule) -> Explanation:
    return {language: rule.explain(language) for language in rule.texts}
