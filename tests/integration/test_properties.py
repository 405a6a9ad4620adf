"""Properties over generated inputs, through the real route on moto."""

from __future__ import annotations

import itertools
import json
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from simulator.scenarios import jd_order, taobao_order
from tests.support import JD_SHOP, NOW, TAOBAO_SHOP, Stack, oracle_top_sign

START = NOW - timedelta(days=6)
order_numbers = itertools.count(1)


@pytest.fixture(scope="module")
def shared_stack():
    # One moto for the module; each example uses fresh order ids instead of fresh tables.
    with mock_aws():
        yield Stack.create()


def without_version(document: dict) -> dict:
    return {name: value for name, value in document.items() if name != "version"}


def read_back(stack: Stack, shop: str, order_id: str, case_id: str) -> tuple[dict, dict]:
    order = stack.get(f"/shops/{shop}/orders/{order_id}")
    case = stack.get(f"/shops/{shop}/after-sales/{case_id}")
    assert (order.status, case.status) == (200, 200)
    return without_version(order.body), without_version(case.body)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    platform=st.sampled_from(["taobao", "jd"]),
    data=st.data(),
)
def test_any_arrival_order_with_duplicates_ends_in_the_in_order_state(shared_stack, platform, data):
    number = next(order_numbers)
    if platform == "taobao":
        in_order_id, shuffled_id = f"81{number:05d}", f"82{number:05d}"
        build, shop = taobao_order, TAOBAO_SHOP
        case_of = lambda order_id: f"R{order_id}"  # noqa: E731
    else:
        in_order_id, shuffled_id = f"91{number:05d}", f"92{number:05d}"
        build, shop = jd_order, JD_SHOP
        case_of = lambda order_id: f"afs-{order_id}7"  # noqa: E731

    for message in build(in_order_id, START):
        assert shared_stack.deliver(message).status == 200
    expected = read_back(shared_stack, shop, in_order_id, case_of(in_order_id))

    messages = build(shuffled_id, START)
    arrival = list(data.draw(st.permutations(messages)))
    for repeat in data.draw(st.lists(st.sampled_from(messages), max_size=10)):
        arrival.insert(data.draw(st.integers(0, len(arrival))), repeat)
    for message in arrival:
        assert shared_stack.deliver(message).status == 200
    shuffled = read_back(shared_stack, shop, shuffled_id, case_of(shuffled_id))

    def same_entity(view: dict) -> dict:
        return {
            k: v for k, v in view.items() if k not in ("order_id", "case_id", "items", "shipment")
        }

    assert same_entity(shuffled[0]) == same_entity(expected[0])
    assert same_entity(shuffled[1]) == same_entity(expected[1])
    assert shuffled[0]["shipment"]["status"] == expected[0]["shipment"]["status"]
    assert shuffled[0]["shipment"]["picked_up_at"] == expected[0]["shipment"]["picked_up_at"]


printable = st.text(max_size=30)
header_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
headers = st.dictionaries(
    st.sampled_from(["Content-Type", "Content-Length", "X-Anything", "Authorization"]), header_text
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    platform=st.sampled_from(["taobao", "jd"]),
    query=st.dictionaries(
        st.sampled_from(["app_key", "sign", "timestamp", "sign_method", "v", "x"]), printable
    ),
    header_values=headers,
    body=st.binary(max_size=3000),
)
def test_no_input_to_a_webhook_route_produces_a_5xx(
    shared_stack, platform, query, header_values, body
):
    answer = shared_stack.request(
        "POST", f"/webhooks/{platform}?{urlencode(query)}", body, header_values
    )
    assert 400 <= answer.status < 500 or answer.status == 200
    assert "Traceback" not in str(answer.body)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.binary(max_size=3000), method=st.sampled_from(["md5", "hmac-sha256"]))
def test_well_signed_garbage_is_a_named_422_never_a_5xx(shared_stack, body, method):
    query = {
        "app_key": "demo-app-key",
        "timestamp": "2026-11-23 10:00:05",
        "sign_method": method,
        "v": "2.0",
    }
    query["sign"] = oracle_top_sign("demo-secret", query, body, method)
    answer = shared_stack.request(
        "POST", f"/webhooks/taobao?{urlencode(query)}", body, {"Content-Type": "application/json"}
    )
    assert answer.status == 422
    assert answer.body["field"]


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    payload=st.text(max_size=300),
    method=st.sampled_from(
        [
            "jd_pop_order_pay",
            "jd_pop_refund_apply",
            "jd_pop_afs_status",
            "jd_pop_logistics_trace",
            "nope",
        ]
    ),
    msg_id=st.text(max_size=10),
)
def test_well_signed_jd_garbage_is_a_named_422_never_a_5xx(shared_stack, payload, method, msg_id):
    form = {
        "app_key": "demo-jd-key",
        "timestamp": "2026-11-23 10:00:05",
        "v": "2.0",
        "method": method,
        "msg_id": msg_id,
        "360buy_param_json": payload,
    }
    form["sign"] = oracle_top_sign("demo-jd-secret", form, b"", "md5")
    answer = shared_stack.request(
        "POST",
        "/webhooks/jd",
        urlencode(form).encode(),
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status == 422
    assert answer.body["field"]


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    # Empty path segments and non-Latin-1 headers never reach the function:
    # API Gateway and HTTP itself refuse them first.
    shop=st.text(min_size=1, max_size=30),
    entity=st.text(min_size=1, max_size=30),
    query=st.dictionaries(st.sampled_from(["status", "limit", "cursor"]), printable),
    authorization=st.one_of(st.none(), header_text, header_text.map(lambda k: f"Bearer {k}")),
)
def test_no_input_to_the_read_api_produces_a_5xx(shared_stack, shop, entity, query, authorization):
    from urllib.parse import quote

    headers = {"Authorization": authorization} if authorization is not None else {}
    for path in (
        f"/shops/{quote(shop, safe='')}/orders/{quote(entity, safe='')}",
        f"/shops/{quote(shop, safe='')}/after-sales?{urlencode(query)}",
    ):
        answer = shared_stack.request("GET", path, headers=headers)
        assert answer.status < 500
    answer = shared_stack.request(
        "GET",
        f"/shops/{TAOBAO_SHOP}/after-sales?{urlencode(query)}",
        headers={"Authorization": f"Bearer {shared_stack.api_key}"},
    )
    assert answer.status in (200, 400)
    if answer.status == 400:
        assert answer.body["field"] in query


json_bodies = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "action",
                    "reason",
                    "return_address",
                    "address",
                    "name",
                    "mobile",
                    "tracking_no",
                    "carrier",
                    "overrides",
                ]
            ),
            children,
            max_size=4,
        )
    ),
    max_leaves=12,
)


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.one_of(
        json_bodies.map(lambda value: json.dumps(value).encode()), st.binary(max_size=200)
    ),
    path=st.sampled_from(
        [
            f"/shops/{TAOBAO_SHOP}/after-sales/R1/actions",
            f"/shops/{TAOBAO_SHOP}/orders/3010001/ship",
        ]
    ),
    method=st.sampled_from(["POST", "PUT"]),
)
def test_no_body_sent_to_a_write_route_produces_a_5xx(shared_stack, body, path, method):
    if method == "PUT":
        path = f"/shops/{JD_SHOP}/policy"
    answer = shared_stack.request(
        method, path, body, {"Authorization": f"Bearer {shared_stack.api_key}"}
    )
    assert answer.status < 500
    if answer.status >= 400:
        assert answer.body["code"] and "Traceback" not in str(answer.body)
