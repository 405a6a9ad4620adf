"""Client input a hostile review answered with 500s (issue 18): each is now a
4xx naming the field, because the typed commands refuse it at the edge."""

from __future__ import annotations

import base64
import json

import pytest

from tests.support import TAOBAO_SHOP


def _cursor(key: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode()


def _send(stack, method: str, path: str, body: object = None):
    headers = {"Authorization": f"Bearer {stack.api_key}", "Content-Type": "application/json"}
    raw = json.dumps(body).encode() if body is not None else b""
    return stack.request(method, path, raw, headers)


@pytest.mark.parametrize(
    ("path", "status", "field"),
    [
        (f"/shops/{TAOBAO_SHOP}/after-sales?limit=%C2%B2", 400, "limit"),
        (f"/shops/{TAOBAO_SHOP}/after-sales?limit=%D9%A3", 400, "limit"),
        (f"/shops/{TAOBAO_SHOP}/deadlines?before=0001-01-01T00:00:00%2B14:00", 400, "before"),
        (f"/shops/{TAOBAO_SHOP}/deadlines?before=9999-12-31T23:59:59-14:00", 400, "before"),
        (f"/shops/{TAOBAO_SHOP}/after-sales?cursor={_cursor({'entity_key': 1})}", 400, "cursor"),
        (
            f"/shops/{TAOBAO_SHOP}/after-sales?cursor={_cursor({'entity_key': {'S': 1}})}",
            400,
            "cursor",
        ),
        (f"/shops/{TAOBAO_SHOP}/after-sales?cursor={_cursor([1])}", 400, "cursor"),
        # An id too long to be a key names nothing stored: a 404, not a storage error.
        (f"/shops/{TAOBAO_SHOP}/orders/{'9' * 2100}", 404, "order_id"),
        (f"/shops/{TAOBAO_SHOP}/after-sales/{'订' * 1000}", 404, "case_id"),
        (f"/shops/{TAOBAO_SHOP}/after-sales/R1/actions/{'a' * 3000}", 404, "action_id"),
        (f"/subscriptions/{'s' * 3000}", 404, "subscription_id"),
        (f"/subscriptions/{'s' * 3000}/deliveries", 404, "subscription_id"),
    ],
)
def test_a_query_or_path_that_was_a_5xx_is_a_4xx_naming_the_field(stack, path, status, field):
    answer = _send(stack, "GET", path)
    assert (answer.status, answer.body["field"]) == (status, field), answer.body


@pytest.mark.parametrize("since", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_a_replay_from_an_unrepresentable_time_is_a_400_naming_since(stack, since):
    created = _send(
        stack,
        "POST",
        "/subscriptions",
        {
            "url": "https://93.184.216.34/hook",
            "event_types": ["order.paid"],
            "shops": [TAOBAO_SHOP],
        },
    )
    assert created.status == 201, created.body
    answer = _send(stack, "POST", f"/subscriptions/{created.body['id']}/replay", {"since": since})
    assert (answer.status, answer.body["code"], answer.body["field"]) == (
        400,
        "invalid_since",
        "since",
    )


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"x": {}}, "overrides.x"),
        ({"law.no_reason_return": {}}, "overrides.law.no_reason_return"),
        ({"seller.refund_within": {"hours": "12"}}, "overrides.seller.refund_within.hours"),
    ],
)
def test_a_policy_naming_no_adjustable_rule_is_a_422_naming_it(stack, overrides, field):
    answer = _send(stack, "PUT", f"/shops/{TAOBAO_SHOP}/policy", {"overrides": overrides})
    assert (answer.status, answer.body["code"], answer.body["field"]) == (
        422,
        "policy_not_allowed",
        field,
    )


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("actions", {"action": "refuse", "reason": "r" * 201}, "reason"),
        (
            "actions",
            {
                "action": "agree_return",
                "return_address": {"address": "a" * 201, "name": "n", "mobile": "1"},
            },
            "return_address.address",
        ),
        (
            "actions",
            {
                "action": "agree_return",
                "return_address": {"address": "a", "name": "n" * 51, "mobile": "1"},
            },
            "return_address.name",
        ),
        ("ship", {"tracking_no": "9" * 65, "carrier": "SF"}, "tracking_no"),
        ("ship", {"tracking_no": "9", "carrier": "c" * 65}, "carrier"),
        (
            "subscriptions",
            {
                "url": "https://e.test/" + "a" * 2048,
                "event_types": ["order.paid"],
                "shops": [TAOBAO_SHOP],
            },
            "url",
        ),
        (
            "subscriptions",
            {"url": "https://e.test/", "event_types": ["order.paid"] * 50, "shops": [TAOBAO_SHOP]},
            "event_types",
        ),
        (
            "subscriptions",
            {"url": "https://e.test/", "event_types": ["e" * 65], "shops": [TAOBAO_SHOP]},
            "event_types[0]",
        ),
        (
            "subscriptions",
            {"url": "https://e.test/", "event_types": ["order.paid"], "shops": ["s" * 200]},
            "shops[0]",
        ),
        (
            "policy",
            {"overrides": {"r" * 65: {}}},
            "overrides." + "r" * 65 + ".[key]",
        ),
    ],
)
def test_text_over_its_limit_is_a_422_naming_the_field(stack, path, body, field):
    """Issue 18: a 500 KB refusal reason was a 503, a 300 KB one was sent to the
    platform verbatim. Every text field has a limit, the platform's where it has one."""
    method, route = {
        "actions": ("POST", f"/shops/{TAOBAO_SHOP}/after-sales/R1/actions"),
        "ship": ("POST", f"/shops/{TAOBAO_SHOP}/orders/3010001/ship"),
        "subscriptions": ("POST", "/subscriptions"),
        "policy": ("PUT", f"/shops/{TAOBAO_SHOP}/policy"),
    }[path]
    answer = _send(stack, method, route, body)
    assert (answer.status, answer.body["code"], answer.body["field"]) == (422, "too_long", field)


@pytest.mark.parametrize(
    ("method", "route"),
    [
        ("POST", f"/shops/{TAOBAO_SHOP}/after-sales/R1/actions"),
        ("PUT", f"/shops/{TAOBAO_SHOP}/policy"),
        ("POST", "/subscriptions"),
    ],
)
def test_a_body_over_the_cap_is_a_413(stack, method, route):
    answer = _send(stack, method, route, {"reason": "r" * 20_000})
    assert (answer.status, answer.body["code"], answer.body["field"]) == (
        413,
        "body_too_large",
        "body",
    )
