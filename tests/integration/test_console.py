"""The seller console through the app (Chalice's test client, moto): sign-in by
OAuth, sessions, CSRF, isolation, escaping, settings, and what each page costs
in DynamoDB requests. The browser journey is in tests/e2e/test_console.py."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
import requests

from chalicelib.service import console, shops
from chalicelib.store.records import ConsoleSessionRecord, OutboxRecord, ShopRecord
from simulator.scenarios import DEMO_SHOPS, Message, jd_order, taobao_order
from tests.support import JD_SHOP, NOW, TAOBAO_SHOP, approve


def received(simulator: str) -> list[dict]:
    return requests.get(f"{simulator}/_sim/calls", timeout=5).json()


START = NOW - timedelta(days=5)
ORDER = taobao_order("3010001", START)
RETURNED = ORDER[:11]  # the goods are back: the refund is the seller's to agree
CASE = "R3010001"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
ACT = f"/console/after-sales/{CASE}/actions"


def signed_in(stack, shop_id: str = TAOBAO_SHOP) -> dict[str, str]:
    """A console session for the shop (connected first, as signing in would)."""
    if shop_id not in DEMO_SHOPS:
        shops.connect(shop_id, "another seller", NOW)
    cookie = console.start(shop_id, NOW)
    return {"Cookie": f"shophook_console={cookie}"}


def page(stack, path: str, session: dict[str, str] | None = None, at: datetime = NOW):
    return stack.request("GET", path, headers=session or {}, at=at)


def csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def post(stack, path: str, session: dict[str, str], fields: dict[str, str]):
    return stack.request("POST", path, urlencode(fields).encode(), {**session, **FORM})


def cookies(answer) -> list[str]:
    sent = answer.headers.get("Set-Cookie") or answer.headers.get("set-cookie") or []
    return sent if isinstance(sent, list) else [sent]


def test_signing_in_through_the_marketplace_starts_a_session_for_that_shop(stack, platforms):
    started = stack.request("GET", "/console/sign-in/taobao")
    assert started.status == 302
    state = parse_qs(urlparse(started.headers["Location"]).query)["state"][0]
    connect_cookie = cookies(started)[0].split(";")[0]
    answer = stack.request(
        "GET",
        f"/oauth/taobao/callback?{urlencode({'code': 'c-1', 'state': state})}",
        headers={"Cookie": connect_cookie},
    )
    assert (answer.status, answer.headers["Location"]) == (303, "/console")
    session_cookie = next(c for c in cookies(answer) if c.startswith("shophook_console="))
    for flag in ("HttpOnly", "SameSite=Lax", "Secure", "Path=/console", "Max-Age=43200"):
        assert flag in session_cookie
    value = session_cookie.split(";")[0].split("=", 1)[1]
    assert len(value) >= 43  # 256 bits, base64url
    # The same callback connected the shop; the session sees it.
    assert ShopRecord.get("taobao:2200000099").status == "connected"
    dashboard = page(stack, "/console", {"Cookie": f"shophook_console={value}"})
    assert dashboard.status == 200 and "茶叶小铺" in dashboard.body
    # The session is stored only as the cookie's hash.
    assert all(value not in record.session_hash for record in ConsoleSessionRecord.scan())


def test_without_a_session_every_page_is_the_sign_in_page(stack):
    for message in RETURNED:
        stack.deliver(message)
    assert "sign-in-taobao" in page(stack, "/console").body
    for path in (f"/console/after-sales/{CASE}", "/console/orders/3010001", "/console/settings"):
        answer = page(stack, path)
        assert answer.status == 401
        assert 'data-test="sign-in-jd"' in answer.body and CASE not in answer.body
    forged = {"Cookie": "shophook_console=not-a-session"}
    assert page(stack, f"/console/after-sales/{CASE}", forged).status == 401


def test_a_session_sees_its_own_shop_only(stack):
    for message in RETURNED + jd_order("9001", START):
        stack.deliver(message)
    jd = signed_in(stack, JD_SHOP)
    for path in (f"/console/after-sales/{CASE}", "/console/orders/3010001"):
        answer = page(stack, path, jd)
        assert answer.status == 404 and "¥" not in answer.body
    other_taobao = signed_in(stack, "taobao:2200000002")
    assert page(stack, f"/console/after-sales/{CASE}", other_taobao).status == 404
    acted = post(
        stack,
        f"/console/after-sales/{CASE}/actions",
        other_taobao,
        {"action": "agree_refund", "csrf": csrf(page(stack, "/console", other_taobao).body)},
    )
    assert acted.status == 404
    assert [row for row in OutboxRecord.scan() if row.kind == "action"] == []


def test_a_post_without_the_sessions_token_is_403_and_changes_nothing(stack):
    for message in RETURNED:
        stack.deliver(message)
    mine, other = signed_in(stack), signed_in(stack, "taobao:2200000002")
    for fields in ({}, {"csrf": ""}, {"csrf": csrf(page(stack, "/console", other).body)}):
        answer = post(
            stack,
            f"/console/after-sales/{CASE}/actions",
            mine,
            {"action": "agree_refund", **fields},
        )
        assert answer.status == 403
    assert [row for row in OutboxRecord.scan() if row.kind == "action"] == []
    token = csrf(page(stack, f"/console/after-sales/{CASE}", mine).body)
    agreed = post(
        stack,
        f"/console/after-sales/{CASE}/actions",
        mine,
        {"action": "agree_refund", "csrf": token},
    )
    assert (agreed.status, agreed.headers["Location"]) == (303, f"/console/after-sales/{CASE}")
    shown = page(stack, f"/console/after-sales/{CASE}", mine).body
    assert 'data-test="action-status"' in shown and 'data-state="queued"' in shown
    # Asked once: not offered again until the platform says what became of it.
    assert 'data-test="agree-refund"' not in shown


def test_a_quality_problem_is_never_offered_a_refusal_and_the_page_says_why(stack):
    for message in taobao_order("3050001", START, quality_issue=True)[:9]:
        stack.deliver(message)
    shown = page(stack, "/console/after-sales/R3050001", signed_in(stack)).body
    assert 'data-test="refuse-refund"' not in shown
    assert "law.no_reason_return.condition" in shown
    assert 'data-test="agree-return"' in shown


def test_platform_supplied_text_is_escaped(stack):
    nasty = '<script>alert("x")</script>'
    for message in ORDER[:9]:
        if message.topic == "taobao_refund_RefundCreated":
            message = Message(
                message.platform,
                message.message_id,
                message.topic,
                {**message.payload, "reason": nasty},
                message.shop_ref,
            )
        stack.deliver(message)
    shop = ShopRecord.get(TAOBAO_SHOP)
    shop.update(actions=[ShopRecord.name.set(nasty)])
    shown = page(stack, f"/console/after-sales/{CASE}", signed_in(stack)).body
    assert nasty not in shown
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in shown


def test_a_session_ends_after_twelve_idle_hours_and_at_sign_out(stack):
    session = signed_in(stack)
    # Each visit keeps it for 12 more hours; 12 idle hours end it.
    visited = NOW + timedelta(hours=11, minutes=59)
    assert 'data-test="shop-name"' in page(stack, "/console", session, visited).body
    ended = visited + timedelta(hours=12, minutes=1)
    assert (
        'data-test="shop-name"'
        in page(stack, "/console", session, ended - timedelta(minutes=2)).body
    )
    ended += timedelta(minutes=-2) + timedelta(hours=12, minutes=1)
    assert 'data-test="shop-name"' not in page(stack, "/console", session, ended).body
    fresh = signed_in(stack)
    token = csrf(page(stack, "/console", fresh).body)
    out = post(stack, "/console/sign-out", fresh, {"csrf": token})
    assert out.status == 303
    assert any(c.startswith("shophook_console=;") for c in cookies(out))
    assert 'data-test="shop-name"' not in page(stack, "/console", fresh).body


def test_the_language_follows_the_browser_then_the_switch(stack):
    session = signed_in(stack)
    english = page(stack, "/console", session).body
    assert "Needs you now" in english
    chinese = stack.request("GET", "/console", headers={**session, "Accept-Language": "zh-CN"})
    assert "待您处理" in chinese.body
    post(stack, "/console/language", session, {"csrf": csrf(english), "language": "zh"})
    assert "待您处理" in page(stack, "/console", session).body
    # The shop's own choice: its new sessions start in it, whatever the browser says.
    post(stack, "/console/settings", session, {"csrf": csrf(english), "language": "en"})
    assert "Needs you now" in page(stack, "/console", session).body
    chinese_browser = {**signed_in(stack), "Accept-Language": "zh-CN"}
    assert "Needs you now" in page(stack, "/console", chinese_browser).body


def test_settings_outside_their_bounds_are_refused_inline_and_nothing_is_saved(stack):
    session = signed_in(stack)
    token = csrf(page(stack, "/console/settings", session).body)
    refused = post(
        stack,
        "/console/settings",
        session,
        {
            "csrf": token,
            "seller.refund_within.hours": "49",
            "return_name": "仓库",
            "return_address": "杭州市",
            "return_mobile": "13800000000",
        },
    )
    assert refused.status == 400
    assert 'data-test="policy-error"' in refused.body and "at most 48" in refused.body
    shop = ShopRecord.get(TAOBAO_SHOP)
    assert (json.loads(shop.policy_overrides), shop.return_address) == ({}, None)
    saved = post(
        stack,
        "/console/settings",
        session,
        {
            "csrf": token,
            "seller.refund_within.hours": "12",
            "auto_agree": "on",
            "auto_agree_limit": "50",
            "return_name": "仓库",
            "return_address": "杭州市",
            "return_mobile": "13800000000",
        },
    )
    assert saved.status == 200
    shop = ShopRecord.get(TAOBAO_SHOP)
    assert json.loads(shop.policy_overrides) == {
        "seller.refund_within": {"hours": 12},
        "seller.auto_agree_unshipped_refund": {"max_amount_fen": 5000},
    }
    assert json.loads(shop.return_address)["name"] == "仓库"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"auto_agree": "on", "auto_agree_limit": "abc"}, "auto_agree_limit"),
        ({"return_name": "仓库"}, "return_address"),
        ({"seller.refund_within.hours": "1.5"}, "seller.refund_within.hours"),
        ({"language": "fr"}, "language"),
    ],
)
def test_a_malformed_setting_names_its_field(stack, fields, field):
    session = signed_in(stack)
    token = csrf(page(stack, "/console/settings", session).body)
    answer = post(stack, "/console/settings", session, {"csrf": token, **fields})
    assert answer.status == 400
    assert f"{field}:" in answer.body


def test_a_ship_form_queues_the_platforms_call_or_names_the_missing_field(stack):
    stack.deliver(ORDER[1])
    session = signed_in(stack)
    token = csrf(page(stack, "/console/orders/3010001", session).body)
    missing = post(stack, "/console/orders/3010001/ship", session, {"csrf": token, "carrier": "SF"})
    assert missing.status == 400 and "tracking_no" in missing.body
    shipped = post(
        stack,
        "/console/orders/3010001/ship",
        session,
        {"csrf": token, "carrier": "SF", "tracking_no": "SF1"},
    )
    assert shipped.status == 303
    (row,) = [row for row in OutboxRecord.scan() if row.kind == "action"]
    assert json.loads(row.payload)["tracking_no"] == "SF1"


# What a page costs: a bounded number of requests, whatever the table holds.


def requests_for(stack, aws_calls, path: str, session: dict[str, str]) -> list[str]:
    aws_calls.clear()
    assert page(stack, path, session).status == 200
    return list(aws_calls.operations)


def test_each_page_costs_a_bounded_number_of_requests(stack, aws_calls):
    for number in range(6):
        for message in taobao_order(f"31{number:05d}", START)[:9]:
            stack.deliver(message)
    session = signed_in(stack)
    dashboard = requests_for(stack, aws_calls, "/console", session)
    listing = requests_for(stack, aws_calls, "/console/after-sales", session)
    for more in range(6, 12):
        for message in taobao_order(f"31{more:05d}", START)[:9]:
            stack.deliver(message)
    assert requests_for(stack, aws_calls, "/console", session) == dashboard
    assert requests_for(stack, aws_calls, "/console/after-sales", session) == listing
    # Session, shop, three counts, the open cases' page and its orders, due orders.
    assert len(dashboard) <= 10 and dashboard.count("Query") == 5
    assert "Scan" not in dashboard + listing


def test_signing_in_with_doudian_exchanges_the_code_with_token_create(stack, simulator):
    """Doudian-style OAuth (platforms.md 3): the approve page on its OAuth URL, the
    code exchanged with the signed API method `token.create`; the callback connects
    the shop and starts the console session."""
    started = stack.request("GET", "/console/sign-in/doudian")
    assert started.status == 302
    location = started.headers["Location"]
    assert location.startswith(f"{simulator}/doudian/authorize?")
    assert parse_qs(urlparse(location).query)["app_key"] == ["demo-dd-key"]
    granted = approve(location, "30000099")
    connect_cookie = cookies(started)[0].split(";")[0]
    answer = stack.request(
        "GET",
        f"/oauth/doudian/callback?{urlencode(granted)}",
        headers={"Cookie": connect_cookie},
    )
    assert (answer.status, answer.headers["Location"]) == (303, "/console")
    session_cookie = next(c for c in cookies(answer) if c.startswith("shophook_console="))
    value = session_cookie.split(";")[0].split("=", 1)[1]
    assert ShopRecord.get("doudian:30000099").status == "connected"
    assert page(stack, "/console", {"Cookie": f"shophook_console={value}"}).status == 200
    sent = [call for call in received(simulator) if call["method"] == "token.create"]
    assert len(sent) == 1 and "access_token" not in sent[0]["params"]
