"""A shop's policy: readable with sources, adjustable only within the law."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from simulator.scenarios import taobao_order
from tests.support import JD_SHOP, NOW, TAOBAO_SHOP

POLICY = f"/shops/{TAOBAO_SHOP}/policy"


def put(stack, body, path=POLICY):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return stack.request(
        "PUT",
        path,
        raw,
        {"Authorization": f"Bearer {stack.api_key}", "Content-Type": "application/json"},
    )


def test_the_policy_lists_every_rule_with_its_source_in_the_readers_language(stack):
    english = stack.get(POLICY).body
    rules = {rule["id"]: rule for rule in english["rules"]}
    assert rules["law.no_reason_return"]["source"].startswith("消费者权益保护法")
    assert rules["platform.refund_unshipped_timeout"]["params"] == {"hours": 48}
    assert rules["seller.refund_within"]["adjustable"] == {
        "hours": {"at_most": "platform.refund_unshipped_timeout.hours", "at_least": None}
    }
    chinese = stack.request(
        "GET",
        POLICY,
        headers={"Authorization": f"Bearer {stack.api_key}", "Accept-Language": "zh-CN,en;q=0.5"},
    ).body
    assert (
        "七日" in chinese["rules"][0]["explanation"] or "7日" in chinese["rules"][0]["explanation"]
    )
    jd = {rule["id"]: rule for rule in stack.get(f"/shops/{JD_SHOP}/policy").body["rules"]}
    assert jd["platform.refund_unshipped_timeout"]["params"] == {"hours": 24}


def test_a_tightening_override_is_saved_and_used(stack):
    answer = put(stack, {"overrides": {"seller.no_reason_return": {"days": 15}}})
    assert answer.status == 200
    assert answer.body["overrides"] == {"seller.no_reason_return": {"days": 15}}
    # A return requested ten days after signing is now eligible under the shop's promise.
    messages = taobao_order("3070001", NOW - timedelta(days=13), return_requested_after=48 + 240)
    for message in messages[:9]:  # up to the refund request
        stack.deliver(message)
    case = stack.get(f"/shops/{TAOBAO_SHOP}/after-sales/R3070001").body
    assert [(d["rule"], d["outcome"]) for d in case["decisions"]] == [
        ("seller.no_reason_return", "eligible")
    ]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"seller.no_reason_return": {"days": 6}}, "overrides.seller.no_reason_return.days"),
        ({"seller.refund_after_return": {"days": 8}}, "overrides.seller.refund_after_return.days"),
        ({"seller.refund_within": {"hours": 49}}, "overrides.seller.refund_within.hours"),
        ({"law.no_reason_return": {"days": 30}}, "overrides.law.no_reason_return.days"),
        ({"seller.refund_within": {"hours": "soon"}}, "overrides.seller.refund_within.hours"),
        ({"seller.ship_within": {"hours": 12}}, "overrides.seller.ship_within.hours"),
    ],
)
def test_an_override_that_would_loosen_the_law_or_platform_is_422(stack, overrides, field):
    answer = put(stack, {"overrides": overrides})
    assert (answer.status, answer.body["code"], answer.body["field"]) == (
        422,
        "policy_not_allowed",
        field,
    )
    assert stack.get(POLICY).body["overrides"] == {}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"not json", "body"),
        (b"[]", "body"),
        (b'{"overrides": 3}', "overrides"),
        (b'{"overrides": {"a": 1}}', "overrides.a"),
    ],
)
def test_a_malformed_policy_body_is_400_naming_the_field(stack, body, field):
    answer = put(stack, body)
    assert (answer.status, answer.body["field"]) == (400, field)


def test_another_shops_policy_is_404(stack):
    from chalicelib.service import keys

    _, jd_only = keys.create_key("jd only", [JD_SHOP], NOW)
    assert stack.get(POLICY, jd_only).status == 404
