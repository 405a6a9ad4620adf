"""Shop connect: state bound to the browser, code exchange, sealed tokens, disconnect."""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import boto3
import pytest
import responses
import time_machine

from chalicelib.store import vault
from chalicelib.store.records import ShopRecord
from simulator.scenarios import taobao_order
from tests.support import ACCESS, NOW, REFRESH, TAOBAO_TOKEN_URL


def connect(stack, platform="taobao"):
    answer = stack.request("GET", f"/oauth/{platform}/connect")
    assert answer.status == 302
    location = answer.headers["Location"]
    cookie = answer.headers["Set-Cookie"]
    state = parse_qs(urlparse(location).query)["state"][0]
    return location, cookie, state


def callback(stack, platform, cookie, **query):
    from urllib.parse import urlencode

    headers = {"Cookie": cookie.split(";")[0]} if cookie else {}
    return stack.request("GET", f"/oauth/{platform}/callback?{urlencode(query)}", headers=headers)


def test_connect_redirects_to_the_platform_with_a_state_bound_to_the_browser(stack):
    location, cookie, state = connect(stack)
    query = parse_qs(urlparse(location).query)
    assert location.startswith("https://oauth.taobao.test/authorize?")
    assert query["client_id"] == ["demo-app-key"] and query["view"] == ["web"]
    assert query["redirect_uri"] == ["https://shophook.test/oauth/taobao/callback"]
    assert len(state) >= 40
    assert all(part in cookie for part in ("HttpOnly", "SameSite=Lax", "Secure", "Max-Age=600"))


def test_a_finished_connect_stores_the_shop_with_sealed_tokens(stack, platforms):
    _, cookie, state = connect(stack)
    answer = callback(stack, "taobao", cookie, code="c-1", state=state)
    assert answer.status == 200
    assert "Shop connected" in answer.body and "taobao:2200000099" in answer.body
    assert "茶叶小铺" in answer.body
    assert ACCESS not in answer.body and REFRESH not in answer.body
    sent = parse_qs(platforms.calls[0].request.body)
    assert sent["grant_type"] == ["authorization_code"] and sent["code"] == ["c-1"]
    assert sent["client_secret"] == ["demo-secret"]

    shop = ShopRecord.get("taobao:2200000099")
    assert shop.status == "connected"
    tokens = vault.open_sealed(shop.shop_id, shop.sealed_tokens, shop.token_expires_at, None)
    assert (tokens.access_token, tokens.refresh_token) == (ACCESS, REFRESH)
    assert shop.token_expires_at == NOW + timedelta(days=1)
    raw = boto3.client("dynamodb", region_name="us-east-1").scan(
        TableName=ShopRecord.Meta.table_name
    )
    assert ACCESS not in json.dumps(raw, default=str) and REFRESH not in json.dumps(
        raw, default=str
    )


def test_sealed_tokens_cannot_be_opened_as_another_shops(stack, platforms):
    _, cookie, state = connect(stack)
    callback(stack, "taobao", cookie, code="c-1", state=state)
    shop = ShopRecord.get("taobao:2200000099")
    with pytest.raises(ValueError, match="another shop"):
        vault.open_sealed("taobao:1", shop.sealed_tokens, shop.token_expires_at, None)


def test_jd_connect_uses_app_key_and_a_get_token_request(stack, platforms):
    location, cookie, state = connect(stack, "jd")
    assert parse_qs(urlparse(location).query)["app_key"] == ["demo-jd-key"]
    answer = callback(stack, "jd", cookie, code="j-1", state=state)
    assert answer.status == 200 and "jd:10000099" in answer.body
    sent = parse_qs(urlparse(platforms.calls[0].request.url).query)
    assert sent["app_key"] == ["demo-jd-key"] and sent["app_secret"] == ["demo-jd-secret"]
    assert sent["code"] == ["j-1"] and sent["grant_type"] == ["authorization_code"]


def nothing_changed(platforms) -> bool:
    return len(platforms.calls) == 0 and ShopRecord.count("taobao:2200000099") == 0


@pytest.mark.parametrize(
    "case", ["missing state", "wrong state", "no cookie", "another browser's cookie"]
)
def test_a_forged_or_foreign_state_is_refused_and_changes_nothing(stack, platforms, case):
    _, cookie, state = connect(stack)
    _, other_cookie, _ = connect(stack)
    query = {"code": "c-1", "state": state}
    if case == "missing state":
        query.pop("state")
    if case == "wrong state":
        query["state"] = "forged" + state
    use = {"no cookie": "", "another browser's cookie": other_cookie}.get(case, cookie)
    answer = callback(stack, "taobao", use, **query)
    assert answer.status == 400 and "expired" in answer.body
    assert nothing_changed(platforms)


def test_a_state_works_once(stack, platforms):
    _, cookie, state = connect(stack)
    assert callback(stack, "taobao", cookie, code="c-1", state=state).status == 200
    replay = callback(stack, "taobao", cookie, code="c-1", state=state)
    assert replay.status == 400 and len(platforms.calls) == 1


def test_a_state_older_than_ten_minutes_is_refused(stack, platforms):
    _, cookie, state = connect(stack)
    with time_machine.travel(NOW + timedelta(minutes=10, seconds=1), tick=False):
        answer = stack.client.http.get(
            f"/oauth/taobao/callback?code=c-1&state={state}",
            headers={"Cookie": cookie.split(";")[0]},
        )
    assert answer.status_code == 400
    assert nothing_changed(platforms)


def test_a_declined_connect_and_a_failing_token_endpoint_change_nothing(
    stack, platforms, log_stream
):
    _, cookie, state = connect(stack)
    declined = callback(stack, "taobao", cookie, error="access_denied", state=state)
    assert declined.status == 400 and "declined" in declined.body
    platforms.replace(responses.POST, TAOBAO_TOKEN_URL, json={"error": "invalid_grant"}, status=400)
    _, cookie, state = connect(stack)
    failed = callback(stack, "taobao", cookie, code="c-1", state=state)
    assert failed.status == 502 and "Nothing was changed" in failed.body
    assert ShopRecord.count("taobao:2200000099") == 0
    assert "token exchange failed" in log_stream.getvalue()
    assert "demo-secret" not in log_stream.getvalue()


def test_disconnect_forgets_tokens_and_later_webhooks_are_acked_and_ignored(stack):
    answer = stack.request(
        "POST",
        "/shops/taobao:2200000001/disconnect",
        headers={"Authorization": f"Bearer {stack.api_key}"},
    )
    assert answer.body == {"shop_id": "taobao:2200000001", "status": "disconnected"}
    assert ShopRecord.get("taobao:2200000001").sealed_tokens is None
    paid = taobao_order("3200001", NOW - timedelta(hours=1))[1]
    assert stack.deliver(paid).status == 200
    assert stack.get("/shops/taobao:2200000001/orders/3200001").status == 404


def test_every_page_and_answer_forbids_framing_sniffing_and_referrers(stack, platforms):
    """Issue 18: the connect pages could be framed; every answer now carries the
    protections, set in one place (app.browser_protections) for pages to come."""
    _, cookie, state = connect(stack)
    answers = {
        "redirect": stack.request("GET", "/oauth/taobao/connect"),
        "connected page": callback(stack, "taobao", cookie, code="c-1", state=state),
        "expired page": callback(stack, "taobao", cookie, code="c-1", state=state),
        "unknown marketplace page": stack.request("GET", "/oauth/nope/connect"),
        "json": stack.get("/health"),
    }
    for what, answer in answers.items():
        headers = {name.lower(): value for name, value in answer.headers.items()}
        assert headers["x-frame-options"] == "DENY", what
        assert headers["x-content-type-options"] == "nosniff", what
        assert headers["referrer-policy"] == "no-referrer", what
        if headers.get("content-type", "").startswith("text/html"):
            assert "frame-ancestors 'none'" in headers["content-security-policy"], what


def test_the_connect_cookie_follows_the_public_urls_path(stack, monkeypatch):
    """Deployed, the API answers under API Gateway's stage (`/api/oauth/...`): a
    cookie for `/oauth` never came back to the callback (issue 18)."""
    from tests.support import set_env

    set_env(monkeypatch, {"SHOPHOOK_PUBLIC_URL": "https://abc123.execute-api.test/api/"})
    location, cookie, _ = connect(stack)
    redirect_uri = parse_qs(urlparse(location).query)["redirect_uri"][0]
    assert redirect_uri == "https://abc123.execute-api.test/api/oauth/taobao/callback"
    assert "; Path=/api/oauth;" in cookie
    set_env(monkeypatch, {"SHOPHOOK_PUBLIC_URL": "https://hooks.example.test"})
    assert "; Path=/oauth;" in connect(stack)[1]


def test_connects_are_capped_per_client_and_minute(stack):
    """Issue 18: the unauthenticated connect route wrote a row per request (300 in
    2.8 s). A client may start CONNECTS_PER_MINUTE a minute; then a 429 page, and
    nothing is written, until the next minute."""
    from chalicelib.service.oauth import CONNECTS_PER_MINUTE
    from chalicelib.store.records import ConnectAttemptsRecord, OAuthStateRecord

    for _ in range(CONNECTS_PER_MINUTE):
        connect(stack)
    refused = stack.request("GET", "/oauth/taobao/connect")
    assert refused.status == 429 and refused.headers["Retry-After"] == "60"
    assert "Too many connect attempts" in refused.body
    assert OAuthStateRecord.count() == CONNECTS_PER_MINUTE
    (counted,) = list(ConnectAttemptsRecord.scan())
    assert "127.0.0.1" not in counted.client_minute  # the address is kept hashed
    assert counted.expires_at <= NOW + timedelta(minutes=2)
    with time_machine.travel(NOW + timedelta(minutes=1), tick=False):
        answer = stack.client.http.request("GET", "/oauth/taobao/connect")
    assert answer.status_code == 302
