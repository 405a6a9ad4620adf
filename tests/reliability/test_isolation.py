"""Tenant isolation: a key for shop A reaches nothing of shop B (every route
answers 404, as if B did not exist), an integrator's subscriptions are
invisible to other keys, no key subscribes to a shop outside its scope, and a
seller's OAuth approval cannot be finished in another browser."""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import urlencode

import pytest

from chalicelib.service import keys
from chalicelib.store.records import ShopRecord
from simulator.scenarios import doudian_order, jd_order
from tests.support import DOUDIAN_SHOP, JD_SHOP, NOW, TAOBAO_SHOP, approve

SHOP_ROUTES = [
    ("GET", "/shops/{shop}/orders/3950001"),
    ("GET", "/shops/{shop}/after-sales"),
    ("GET", "/shops/{shop}/after-sales/{case}"),
    ("GET", "/shops/{shop}/deadlines"),
    ("GET", "/shops/{shop}/policy"),
    ("PUT", "/shops/{shop}/policy"),
    ("POST", "/shops/{shop}/after-sales/{case}/actions"),
    ("GET", "/shops/{shop}/after-sales/{case}/actions/act_1"),
    ("POST", "/shops/{shop}/orders/3950001/ship"),
    ("POST", "/shops/{shop}/disconnect"),
]
BODIES = {
    "PUT": {"overrides": {}},
    "POST": {"action": "agree_return", "tracking_no": "SF1", "carrier": "SF"},
}


def call(stack, method, path, key, body=None):
    raw = json.dumps(body).encode() if body is not None else b""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    return stack.request(method, path, raw, headers)


# Shop B on each other platform: its messages, and the case they make. Doudian-style
# trade messages are thin (completed later): its after-sale and courier messages.
SHOP_B = {
    "jd": (JD_SHOP, lambda: jd_order("3950001", NOW - timedelta(days=6)), "afs-39500017"),
    "doudian": (
        DOUDIAN_SHOP,
        lambda: [m for m in doudian_order("3950001", NOW - timedelta(days=6)) if m.topic >= "104"],
        "39500017",
    ),
}


@pytest.fixture(params=sorted(SHOP_B))
def keyed(shared_stack, request):
    """Shop B with an order and a case; a key for shop A (Taobao) only."""
    shop_b, messages, case = SHOP_B[request.param]
    shared_stack.reset()
    for message in messages():
        assert shared_stack.deliver(message).status == 200
    _, taobao_only = keys.create_key("shop A's integrator", [TAOBAO_SHOP], NOW)
    return shared_stack, taobao_only, shop_b, case


def test_a_key_for_shop_a_finds_nothing_of_shop_b_on_any_route(keyed, tally):
    stack, taobao_only, shop_b, case = keyed
    for method, template in SHOP_ROUTES:
        path = template.format(shop=shop_b, case=case)
        outsider = call(stack, method, path, taobao_only, BODIES.get(method))
        tally.inputs += 1
        assert (outsider.status, outsider.body["code"]) == (404, "shop_not_found"), (
            path,
            outsider.body,
        )
    # Shop B is untouched: still connected, its case (and a JD-style order) still there.
    assert stack.get(f"/shops/{shop_b}/after-sales/{case}").status == 200
    if shop_b == JD_SHOP:
        assert stack.get(f"/shops/{shop_b}/orders/3950001").status == 200


def test_subscriptions_stay_with_their_key_and_their_shops(keyed, tally, loopback_webhooks):
    stack, taobao_only, shop_b, _ = keyed
    wanted = {"url": "http://127.0.0.1:9/hook", "event_types": ["order.paid"]}
    refused = call(stack, "POST", "/subscriptions", taobao_only, {**wanted, "shops": [shop_b]})
    assert (refused.status, refused.body["field"]) == (404, "shops[0]"), refused.body
    theirs = call(stack, "POST", "/subscriptions", stack.api_key, {**wanted, "shops": [shop_b]})
    assert theirs.status == 201
    subscription = theirs.body["id"]
    for method, path, body in [
        ("GET", f"/subscriptions/{subscription}", None),
        ("GET", f"/subscriptions/{subscription}/deliveries", None),
        ("POST", f"/subscriptions/{subscription}/replay", {"delivery_id": "x"}),
        ("DELETE", f"/subscriptions/{subscription}", None),
    ]:
        outsider = call(stack, method, path, taobao_only, body)
        tally.inputs += 1
        assert outsider.status == 404, (method, path, outsider.body)
    assert call(stack, "GET", "/subscriptions", taobao_only).body["items"] == []
    assert call(stack, "GET", f"/subscriptions/{subscription}", stack.api_key).status == 200


@pytest.mark.parametrize(
    ("platform", "seller"),
    [("taobao", "2200000099"), ("jd", "10000099"), ("doudian", "30000099")],
)
def test_an_approval_started_in_one_browser_is_refused_in_another(
    shared_stack, simulator, tally, platform, seller
):
    """The seller approves on the platform; the redirect carrying the code and
    the state, opened in another browser (a link sent to someone, a phishing
    page), connects nothing: the state is bound to the browser that started."""
    shared_stack.reset()
    seller_browser = shared_stack.request("GET", f"/oauth/{platform}/connect")
    other_browser = shared_stack.request("GET", f"/oauth/{platform}/connect")
    granted = approve(seller_browser.headers["Location"], seller)
    callback = f"/oauth/{platform}/callback?{urlencode(granted)}"
    for cookie in (other_browser.headers["Set-Cookie"], None):
        headers = {"Cookie": cookie.split(";")[0]} if cookie else {}
        refused = shared_stack.request("GET", callback, headers=headers)
        tally.inputs += 1
        assert refused.status == 400 and "expired" in refused.body
    assert ShopRecord.count(f"{platform}:{seller}") == 0
    headers = {"Cookie": seller_browser.headers["Set-Cookie"].split(";")[0]}
    assert shared_stack.request("GET", callback, headers=headers).status == 200
    assert ShopRecord.get(f"{platform}:{seller}").status == "connected"
