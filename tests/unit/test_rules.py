"""The rules engine, rule by rule, at each boundary, with time passed in."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.model import (
    SHANGHAI,
    CaseKind,
    CaseSnapshot,
    CaseState,
    CaseStatus,
    DeadlineState,
    Item,
    OrderSnapshot,
    OrderState,
    OrderStatus,
    Outcome,
    ScanSummary,
    ShipmentStatus,
)
from chalicelib.domain.policy import PolicyError
from chalicelib.domain.rules import decide_case, decide_order, next_sweep
from chalicelib.policies.validate import load

POLICIES = {"taobao": load("taobao"), "jd": load("jd")}
TAOBAO = POLICIES["taobao"]
SECOND = timedelta(seconds=1)
PAID = datetime(2026, 11, 8, 9, 0, tzinfo=SHANGHAI)
SHIPPED = datetime(2026, 11, 8, 20, 0, tzinfo=SHANGHAI)
SIGNED = datetime(2026, 11, 10, 15, 30, tzinfo=SHANGHAI)
# Seven days from 00:00 of the day after signing.
WINDOW_ENDS = datetime(2026, 11, 18, 0, 0, tzinfo=SHANGHAI)


def an_order(
    category: str = "apparel",
    no_reason_return: bool = True,
    signed_at: datetime | None = SIGNED,
    shipped_at: datetime | None = SHIPPED,
    picked_up_at: datetime | None = SHIPPED + timedelta(hours=2),
    status: OrderStatus = OrderStatus.COMPLETED,
    free_shipping: bool = True,
    shipping_fee_fen: int = 0,
) -> OrderState:
    snapshot = OrderSnapshot(
        order_id="o1",
        status=status,
        platform_status="X",
        total_fen=10000,
        shipping_fee_fen=shipping_fee_fen,
        free_shipping=free_shipping,
        region="新疆",
        items=(Item("i1", "Thing", 1, 10000, category, no_reason_return),),
        modified=PAID,
        tracking_no="SF1" if shipped_at else None,
    )
    scans = None
    if shipped_at is not None:
        scans = ScanSummary(
            latest_status=ShipmentStatus.DELIVERED if signed_at else ShipmentStatus.IN_TRANSIT,
            latest_at=signed_at or shipped_at,
            latest_description="",
            tracking_no="SF1",
            carrier="SF",
            picked_up_at=picked_up_at,
            signed_at=signed_at,
        )
    return OrderState(
        "taobao",
        "o1",
        "taobao:1",
        snapshot,
        paid_at=PAID,
        shipped_at=shipped_at,
        scans=scans,
    )


def a_case(
    requested_at: datetime,
    kind: CaseKind = CaseKind.RETURN_REFUND,
    quality_issue: bool = False,
    amount_fen: int = 10000,
    later: tuple[tuple[CaseStatus, datetime], ...] = (),
) -> CaseState:
    times = ((CaseStatus.REQUESTED, requested_at), *later)
    status = times[-1][0]
    snapshot = CaseSnapshot(
        case_id="c1",
        order_id="o1",
        kind=kind,
        status=status,
        platform_status="X",
        amount_fen=amount_fen,
        reason="",
        quality_issue=quality_issue,
        modified=times[-1][1],
        line_item_id="i1",
    )
    return CaseState("taobao", "c1", "taobao:1", snapshot, status_times=times)


def decisions(case: CaseState, order: OrderState | None, now: datetime, policy=TAOBAO):
    return [(d.rule, d.outcome) for d in decide_case(policy, case, order, now).decisions]


def deadline(state, rule: str):
    (found,) = [d for d in state.deadlines if d.rule == rule]
    return found


# law.no_reason_return


@pytest.mark.parametrize(
    ("requested_at", "outcome"),
    [
        (WINDOW_ENDS - SECOND, Outcome.ELIGIBLE),
        (WINDOW_ENDS, Outcome.INELIGIBLE),
        (WINDOW_ENDS + SECOND, Outcome.INELIGIBLE),
    ],
)
def test_no_reason_window_is_seven_days_from_the_day_after_signing(requested_at, outcome):
    case = a_case(requested_at)
    assert decisions(case, an_order(), requested_at) == [("law.no_reason_return", outcome)]


def test_signing_just_before_midnight_starts_the_window_at_that_midnight():
    signed = datetime(2026, 11, 10, 23, 59, 59, tzinfo=SHANGHAI)
    late = datetime(2026, 11, 18, 0, 0, tzinfo=SHANGHAI)
    assert (
        decisions(a_case(late - SECOND), an_order(signed_at=signed), late)[0][1] is Outcome.ELIGIBLE
    )
    assert decisions(a_case(late), an_order(signed_at=signed), late)[0][1] is Outcome.INELIGIBLE
    next_day = signed + SECOND
    assert decisions(a_case(late), an_order(signed_at=next_day), late)[0][1] is Outcome.ELIGIBLE


def test_explanations_are_readable_in_both_languages():
    (decision,) = decide_case(
        TAOBAO, a_case(WINDOW_ENDS + SECOND), an_order(), WINDOW_ENDS
    ).decisions
    assert "after the 7-day window ended 2026-11-18 00:00" in decision.explanation["en"]
    assert "已超过7日无理由退货期" in decision.explanation["zh"]
    assert decision.source.startswith("消费者权益保护法")


def test_not_yet_signed_needs_review():
    case = a_case(SHIPPED + timedelta(hours=5))
    assert decisions(case, an_order(signed_at=None), SHIPPED) == [
        ("law.no_reason_return", Outcome.NEEDS_REVIEW)
    ]


def test_refund_only_has_no_return_decision():
    case = a_case(SIGNED, kind=CaseKind.REFUND_ONLY)
    assert decisions(case, an_order(), SIGNED) == []


def test_a_shop_may_offer_a_longer_window_and_the_decision_names_it():
    generous = TAOBAO.with_overrides({"seller.no_reason_return": {"days": 10}})
    day_nine = WINDOW_ENDS + timedelta(days=2)
    case = a_case(day_nine)
    assert decisions(case, an_order(), day_nine, generous) == [
        ("seller.no_reason_return", Outcome.ELIGIBLE)
    ]
    assert decisions(a_case(WINDOW_ENDS - SECOND), an_order(), day_nine, generous) == [
        ("law.no_reason_return", Outcome.ELIGIBLE)
    ]


# law.no_reason_return.exclusions


@pytest.mark.parametrize("tag", ["fresh", "custom_made", "digital", "periodical"])
def test_each_excluded_category_is_ineligible(tag):
    case = a_case(SIGNED + timedelta(days=1))
    assert decisions(case, an_order(category=f"food {tag}"), SIGNED) == [
        ("law.no_reason_return.exclusions", Outcome.INELIGIBLE)
    ]


def test_an_item_the_listing_marked_not_covered_is_ineligible():
    case = a_case(SIGNED + timedelta(days=1))
    assert decisions(case, an_order(no_reason_return=False), SIGNED) == [
        ("law.no_reason_return.exclusions", Outcome.INELIGIBLE)
    ]


def test_a_category_that_merely_contains_a_tag_word_is_not_excluded():
    case = a_case(SIGNED + timedelta(days=1))
    assert decisions(case, an_order(category="freshwater-pearls"), SIGNED) == [
        ("law.no_reason_return", Outcome.ELIGIBLE)
    ]


# law.no_reason_return.condition: a quality issue is never refused


@given(
    requested_after_signing=st.integers(min_value=0, max_value=90 * 86400),
    category=st.sampled_from(["fresh", "digital", "apparel", "custom_made"]),
    covered=st.booleans(),
    kind=st.sampled_from(list(CaseKind)),
    platform=st.sampled_from(["taobao", "jd"]),
)
def test_a_quality_issue_is_never_refused(
    requested_after_signing, category, covered, kind, platform
):
    requested = SIGNED + timedelta(seconds=requested_after_signing)
    case = a_case(requested, kind=kind, quality_issue=True)
    order = an_order(category=category, no_reason_return=covered)
    outcomes = decisions(case, order, requested, POLICIES[platform])
    assert ("law.no_reason_return.condition", Outcome.ELIGIBLE) in outcomes
    assert all(outcome is not Outcome.INELIGIBLE for _, outcome in outcomes)


# Platform and seller deadlines on cases


@pytest.mark.parametrize(
    ("platform", "shipped", "rule", "hours"),
    [
        ("taobao", False, "platform.refund_unshipped_timeout", 48),
        ("jd", False, "platform.refund_unshipped_timeout", 24),
        ("taobao", True, "platform.refund_shipped_timeout", 120),
        ("jd", True, "platform.refund_shipped_timeout", 48),
        ("taobao", True, "seller.refund_within", 24),
        ("jd", False, "seller.refund_within", 24),
    ],
)
def test_answer_deadlines_by_platform_with_their_boundaries(platform, shipped, rule, hours):
    requested = datetime(2026, 11, 20, 9, 0, tzinfo=SHANGHAI)
    due = requested + timedelta(hours=hours)
    order = an_order(
        shipped_at=SHIPPED if shipped else None, signed_at=None, status=OrderStatus.PAID
    )
    policy = POLICIES[platform]
    case = a_case(requested, kind=CaseKind.REFUND_ONLY)
    assert deadline(decide_case(policy, case, order, due), rule).state is DeadlineState.PENDING
    assert (
        deadline(decide_case(policy, case, order, due + SECOND), rule).state
        is DeadlineState.BREACHED
    )
    answered_in_time = a_case(requested, CaseKind.REFUND_ONLY, later=((CaseStatus.REFUNDED, due),))
    late = a_case(requested, CaseKind.REFUND_ONLY, later=((CaseStatus.REFUNDED, due + SECOND),))
    assert (
        deadline(decide_case(policy, answered_in_time, order, due), rule).state is DeadlineState.MET
    )
    assert deadline(decide_case(policy, late, order, due), rule).state is DeadlineState.BREACHED
    other = (
        "platform.refund_shipped_timeout" if not shipped else "platform.refund_unshipped_timeout"
    )
    assert other not in [d.rule for d in decide_case(policy, case, order, due).deadlines]


@pytest.mark.parametrize(
    ("shipped_at", "rule"),
    [
        (SHIPPED, "platform.refund_shipped_timeout"),
        (SHIPPED + timedelta(days=20), "platform.refund_unshipped_timeout"),
    ],
)
def test_the_answer_clock_follows_whether_the_order_had_shipped_when_asked(shipped_at, rule):
    """Shipped before the request: the shipped clock, even if the ship message
    came later; shipped after it: still the unshipped one (found by the storms)."""
    requested = datetime(2026, 11, 20, 9, 0, tzinfo=SHANGHAI)
    order = an_order(shipped_at=shipped_at, signed_at=None, status=OrderStatus.SHIPPED)
    case = a_case(requested, kind=CaseKind.REFUND_ONLY)
    clocks = [d.rule for d in decide_case(POLICIES["taobao"], case, order, requested).deadlines]
    assert rule in clocks
    assert {"platform.refund_shipped_timeout", "platform.refund_unshipped_timeout"} & set(
        clocks
    ) == {rule}


@pytest.mark.parametrize(
    ("requested", "due"),
    [
        ((9, 59, 59), (0, 10, 0)),
        ((10, 0, 0), (0, 16, 30)),
        ((16, 29, 59), (0, 16, 30)),
        ((16, 30, 0), (1, 10, 0)),
        ((23, 0, 0), (1, 10, 0)),
    ],
)
def test_refund_queue_sweeps_at_ten_and_half_past_four(requested, due):
    at = datetime(2026, 11, 20, *requested, tzinfo=SHANGHAI)
    day, hour, minute = due
    expected = datetime(2026, 11, 20 + day, hour, minute, tzinfo=SHANGHAI)
    assert next_sweep(at, ["10:00", "16:30"]) == expected
    state = decide_case(TAOBAO, a_case(at, CaseKind.REFUND_ONLY), an_order(), at)
    assert deadline(state, "seller.refund_queue_sweeps").due_at == expected


@pytest.mark.parametrize(
    ("platform", "kind", "starts", "rule", "window"),
    [
        (
            "taobao",
            CaseKind.RETURN_REFUND,
            CaseStatus.AWAITING_RETURN,
            "platform.buyer_return_timeout",
            timedelta(days=7),
        ),
        (
            "jd",
            CaseKind.RETURN_REFUND,
            CaseStatus.AWAITING_RETURN,
            "platform.buyer_return_timeout",
            timedelta(days=7),
        ),
        (
            "taobao",
            CaseKind.RETURN_REFUND,
            CaseStatus.RETURNED,
            "platform.seller_confirm_return_timeout",
            timedelta(days=10),
        ),
        (
            "jd",
            CaseKind.RETURN_REFUND,
            CaseStatus.RETURNED,
            "platform.seller_confirm_return_timeout",
            timedelta(days=7),
        ),
        (
            "taobao",
            CaseKind.RETURN_REFUND,
            CaseStatus.RETURNED,
            "law.refund_after_return",
            timedelta(days=7),
        ),
        (
            "jd",
            CaseKind.RETURN_REFUND,
            CaseStatus.RETURNED,
            "seller.refund_after_return",
            timedelta(days=7),
        ),
        (
            "taobao",
            CaseKind.EXCHANGE,
            CaseStatus.RETURNED,
            "seller.exchange_reship",
            timedelta(hours=24),
        ),
    ],
)
def test_return_clocks_start_when_the_case_reaches_their_status(
    platform, kind, starts, rule, window
):
    requested = datetime(2026, 11, 12, 9, 0, tzinfo=SHANGHAI)
    started = requested + timedelta(hours=3)
    case = a_case(requested, kind=kind, later=((starts, started),))
    due = started + window
    policy = POLICIES[platform]
    assert deadline(decide_case(policy, case, an_order(), due), rule).state is DeadlineState.PENDING
    assert (
        deadline(decide_case(policy, case, an_order(), due + SECOND), rule).state
        is DeadlineState.BREACHED
    )
    finished = a_case(requested, kind, later=((starts, started), (CaseStatus.COMPLETED, due)))
    assert (
        deadline(decide_case(policy, finished, an_order(), due + SECOND), rule).state
        is DeadlineState.MET
    )


def test_the_warning_comes_at_three_quarters_of_the_window():
    requested = datetime(2026, 11, 20, 9, 0, tzinfo=SHANGHAI)
    warn_at = requested + timedelta(hours=18)  # 75% of seller.refund_within's 24h
    case = a_case(requested, CaseKind.REFUND_ONLY)
    assert not deadline(
        decide_case(TAOBAO, case, an_order(), warn_at - SECOND), "seller.refund_within"
    ).warned
    assert deadline(decide_case(TAOBAO, case, an_order(), warn_at), "seller.refund_within").warned


# Order rules


@pytest.mark.parametrize(("rule", "hours"), [("platform.ship_by", 48), ("seller.ship_within", 24)])
def test_ship_by_deadlines_with_their_boundaries(rule, hours):
    due = PAID + timedelta(hours=hours)
    in_time = decide_order(TAOBAO, an_order(shipped_at=due), due + timedelta(days=9))
    late = decide_order(TAOBAO, an_order(shipped_at=due + SECOND), due + timedelta(days=9))
    unshipped = an_order(shipped_at=None, signed_at=None, status=OrderStatus.PAID)
    assert deadline(in_time, rule).state is DeadlineState.MET
    assert deadline(late, rule).state is DeadlineState.BREACHED
    assert deadline(decide_order(TAOBAO, unshipped, due), rule).state is DeadlineState.PENDING
    assert (
        deadline(decide_order(TAOBAO, unshipped, due + SECOND), rule).state
        is DeadlineState.BREACHED
    )
    flagged = [flag.rule for flag in decide_order(TAOBAO, unshipped, due + SECOND).flags]
    assert ("platform.ship_by" in flagged) is (rule == "platform.ship_by" or hours > 24)


def test_a_cancelled_unshipped_order_has_no_ship_deadline():
    closed = an_order(shipped_at=None, signed_at=None, status=OrderStatus.CLOSED)
    assert decide_order(TAOBAO, closed, PAID + timedelta(days=5)).deadlines == ()


@pytest.mark.parametrize(
    ("picked_up_after", "now_after", "state", "flagged"),
    [
        (timedelta(hours=24), timedelta(days=4), DeadlineState.MET, False),
        (timedelta(hours=24, seconds=1), timedelta(days=4), DeadlineState.BREACHED, True),
        (None, timedelta(hours=24), DeadlineState.PENDING, False),
        (None, timedelta(hours=24, seconds=1), DeadlineState.BREACHED, True),
    ],
)
def test_tracking_number_without_pickup_within_24h_is_a_suspected_fake(
    picked_up_after, now_after, state, flagged
):
    picked_up = SHIPPED + picked_up_after if picked_up_after is not None else None
    order = an_order(picked_up_at=picked_up, signed_at=None)
    decided = decide_order(TAOBAO, order, SHIPPED + now_after)
    assert deadline(decided, "platform.fake_shipment").state is state
    assert ("platform.fake_shipment" in [flag.rule for flag in decided.flags]) is flagged


@pytest.mark.parametrize(
    ("free", "fee", "flagged"), [(True, 500, True), (True, 0, False), (False, 500, False)]
)
def test_postage_charged_on_a_free_shipping_item_is_flagged(free, fee, flagged):
    decided = decide_order(TAOBAO, an_order(free_shipping=free, shipping_fee_fen=fee), SIGNED)
    assert ("platform.free_shipping_surcharge" in [flag.rule for flag in decided.flags]) is flagged
    if flagged:
        (flag,) = decided.flags
        assert "包邮" in flag.explanation["zh"]


# Automatic actions (opt-in)


@pytest.mark.parametrize(
    ("limit", "amount", "shipped", "auto"),
    [
        (5000, 5000, False, True),
        (5000, 5001, False, False),
        (5000, 100, True, False),
        (0, 100, False, False),
    ],
)
def test_auto_agree_refund_only_on_unshipped_orders_under_the_shops_limit(
    limit, amount, shipped, auto
):
    policy = TAOBAO.with_overrides(
        {"seller.auto_agree_unshipped_refund": {"max_amount_fen": limit}}
    )
    order = an_order(
        shipped_at=SHIPPED if shipped else None,
        signed_at=None,
        status=OrderStatus.SHIPPED if shipped else OrderStatus.PAID,
    )
    case = a_case(PAID + timedelta(hours=1), CaseKind.REFUND_ONLY, amount_fen=amount)
    got = decisions(case, order, PAID + timedelta(hours=1), policy)
    assert (("seller.auto_agree_unshipped_refund", Outcome.AUTO_ACTION) in got) is auto


# Seller overrides never loosen the law


overrides = st.dictionaries(
    st.sampled_from(
        [
            "seller.no_reason_return",
            "seller.refund_after_return",
            "seller.refund_within",
            "seller.exchange_reship",
            "seller.ship_within",
            "seller.auto_agree_unshipped_refund",
            "law.no_reason_return",
            "platform.ship_by",
        ]
    ),
    st.dictionaries(
        st.sampled_from(["days", "hours", "max_amount_fen"]),
        # Strings that look like numbers must be refused as well as other text.
        st.one_of(st.integers(-1000, 1000), st.booleans(), st.text("17 x", max_size=3)),
        min_size=1,
        max_size=2,
    ),
    max_size=4,
)


@given(
    chosen=overrides, platform=st.sampled_from(["taobao", "jd"]), requested_day=st.integers(0, 6)
)
def test_seller_overrides_never_loosen_a_legal_rule(chosen, platform, requested_day):
    base = POLICIES[platform]
    try:
        policy = base.with_overrides(chosen)
    except PolicyError:
        return
    law = {rule_id: rule for rule_id, rule in base.rules.items() if rule.layer != "seller"}
    assert {rule_id: policy.rules[rule_id] for rule_id in law} == law
    assert policy.value("seller.no_reason_return.days") >= policy.value("law.no_reason_return.days")
    assert policy.value("seller.refund_after_return.days") <= policy.value(
        "law.refund_after_return.days"
    )
    assert policy.value("seller.refund_within.hours") <= policy.value(
        "platform.refund_unshipped_timeout.hours"
    )
    # Whatever the shop set, a return inside the legal window stays eligible.
    requested = WINDOW_ENDS - timedelta(days=7 - requested_day) + timedelta(hours=1)
    outcomes = decisions(a_case(requested), an_order(), requested, policy)
    assert outcomes[0][1] is Outcome.ELIGIBLE


def test_loosening_overrides_name_the_parameter_and_the_bound():
    with pytest.raises(PolicyError, match=r"seller.refund_after_return.days: must be at most 7"):
        TAOBAO.with_overrides({"seller.refund_after_return": {"days": 8}})
    with pytest.raises(PolicyError, match="not a seller target"):
        TAOBAO.with_overrides({"law.no_reason_return": {"days": 3}})


def test_a_courier_exception_as_the_latest_scan_flags_the_order_for_follow_up():
    order = an_order(signed_at=None)
    failed = replace(order, scans=replace(order.scans, latest_status=ShipmentStatus.EXCEPTION))
    flags = [flag.rule for flag in decide_order(TAOBAO, failed, SHIPPED).flags]
    assert flags == ["seller.logistics_exception"]
    delivered = [flag.rule for flag in decide_order(TAOBAO, an_order(), SIGNED).flags]
    assert "seller.logistics_exception" not in delivered


def test_targets_with_no_signal_on_the_wire_are_policy_entries_with_sources():
    for rule_id in ("seller.complaint_response", "seller.out_of_stock_contact"):
        rule = TAOBAO.rule(rule_id)
        assert rule.source and "24" in rule.explain("en")
