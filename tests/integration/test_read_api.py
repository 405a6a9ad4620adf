"""The read API: keys stored hashed, scoped to shops, another shop's data a 404."""

from __future__ import annotations

from datetime import timedelta

import pytest

from chalicelib.service import keys
from chalicelib.store.records import ApiKeyRecord
from simulator.scenarios import jd_order, taobao_order
from tests.support import JD_SHOP, NOW, TAOBAO_SHOP

START = NOW - timedelta(days=6)


@pytest.fixture
def filled(stack):
    for message in taobao_order("3010001", START) + jd_order("9001", START):
        assert stack.deliver(message).status == 200
    return stack


def test_health_needs_no_key(stack):
    assert stack.request("GET", "/health").body == {"status": "ok"}


def test_keys_are_stored_only_as_their_hash(stack):
    stored = [record.key_hash for record in ApiKeyRecord.scan()]
    assert stack.api_key not in stored
    assert keys.hash_key(stack.api_key) in stored


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        (None, "missing_api_key"),
        ("Basic abc", "malformed_authorization"),
        ("Bearer ", "malformed_authorization"),
        ("Bearer shk_not-a-real-key", "invalid_api_key"),
    ],
)
def test_requests_without_a_valid_key_are_401(filled, authorization, code):
    headers = {"Authorization": authorization} if authorization else {}
    answer = filled.request("GET", f"/shops/{TAOBAO_SHOP}/orders/3010001", headers=headers)
    assert (answer.status, answer.body["code"], answer.body["field"]) == (
        401,
        code,
        "Authorization",
    )


def test_a_key_sees_only_its_own_shops(filled):
    _, taobao_only = keys.create_key("taobao integrator", [TAOBAO_SHOP], NOW)
    assert filled.get(f"/shops/{TAOBAO_SHOP}/orders/3010001", taobao_only).status == 200
    for path in (
        f"/shops/{JD_SHOP}/orders/9001",
        f"/shops/{JD_SHOP}/after-sales",
        f"/shops/{JD_SHOP}/after-sales/afs-90017",
    ):
        answer = filled.get(path, taobao_only)
        assert (answer.status, answer.body["code"]) == (404, "shop_not_found")


def test_an_order_is_found_only_under_the_shop_that_owns_it(filled):
    _, both = keys.create_key("both", [TAOBAO_SHOP, "taobao:2200000002"], NOW)
    answer = filled.get("/shops/taobao:2200000002/orders/3010001", both)
    assert (answer.status, answer.body["code"]) == (404, "order_not_found")


def test_a_revoked_key_is_refused(filled):
    record = ApiKeyRecord.get(keys.hash_key(filled.api_key))
    record.update(actions=[ApiKeyRecord.revoked_at.set(NOW)])
    assert filled.get(f"/shops/{TAOBAO_SHOP}/orders/3010001").body["code"] == "invalid_api_key"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=pending", "status"),
        ("limit=0", "limit"),
        ("limit=abc", "limit"),
        ("cursor=%%%", "cursor"),
        ("cursor=e30", "cursor"),
    ],
)
def test_bad_list_parameters_are_400_naming_the_parameter(filled, query, field):
    answer = filled.get(f"/shops/{JD_SHOP}/after-sales?{query}")
    assert (answer.status, answer.body["field"]) == (400, field)


def test_cases_page_through_with_a_cursor(stack):
    for number in range(3):
        for message in jd_order(f"50{number}", START):
            stack.deliver(message)
    first = stack.get(f"/shops/{JD_SHOP}/after-sales?limit=2").body
    assert len(first["items"]) == 2 and first["next_cursor"]
    rest = stack.get(f"/shops/{JD_SHOP}/after-sales?limit=2&cursor={first['next_cursor']}").body
    seen = [case["case_id"] for case in first["items"] + rest["items"]]
    assert sorted(seen) == ["afs-5007", "afs-5017", "afs-5027"]
