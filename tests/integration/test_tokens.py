"""Token refresh: ahead of expiry, from a sparse index, and what a failure does."""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import responses
import time_machine

from chalicelib.service import oauth, tokens
from chalicelib.store import shops as stored_shops
from chalicelib.store.records import REFRESH_SHARDS, OrderRecord, OutboxRecord, ShopRecord
from simulator.scenarios import taobao_order
from tests.support import JD_REFRESH_URL, NOW, TAOBAO_TOKEN_URL

REFRESH_AT = NOW + timedelta(days=1) - tokens.REFRESH_AHEAD


def connected(stack, platform: str) -> str:
    started = oauth.start(platform, NOW, "127.0.0.1")
    state = parse_qs(urlparse(started.authorize_url).query)["state"][0]
    shop = oauth.finish(platform, {"code": "c", "state": state}, started.browser_nonce, NOW).shop
    return shop.shop_id


def test_tokens_are_refreshed_two_hours_before_they_expire(stack, platforms, aws_calls, log_stream):
    shop_id = connected(stack, "taobao")
    assert stored_shops.refresh_due(REFRESH_AT - timedelta(seconds=1)) == []
    platforms.replace(
        responses.POST,
        TAOBAO_TOKEN_URL,
        json={"access_token": "tb-access-2", "refresh_token": "tb-refresh-2", "expires_in": 86400},
    )
    aws_calls.clear()
    report = tokens.refresh_due(REFRESH_AT)
    assert report.refreshed == [shop_id]
    assert aws_calls.operations.count("Query") == REFRESH_SHARDS
    sent = parse_qs(platforms.calls[-1].request.body)
    assert sent["grant_type"] == ["refresh_token"] and sent["refresh_token"] == [
        "tb-refresh-2b8e1d"
    ]
    shop = ShopRecord.get(shop_id)
    assert tokens.unsealed(shop).access_token == "tb-access-2"
    assert shop.token_expires_at == REFRESH_AT + timedelta(days=1)
    assert stored_shops.refresh_due(REFRESH_AT) == []
    logged = log_stream.getvalue()
    assert all(
        secret not in logged for secret in ("tb-access-2", "tb-refresh-2", "tb-refresh-2b8e1d")
    )


def test_jd_refresh_is_a_get_with_the_app_key_and_secret(stack, platforms):
    shop_id = connected(stack, "jd")
    assert tokens.refresh_due(REFRESH_AT).refreshed == [shop_id]
    sent = parse_qs(urlparse(platforms.calls[-1].request.url).query)
    assert platforms.calls[-1].request.url.startswith(JD_REFRESH_URL)
    assert sent["app_secret"] == ["demo-jd-secret"] and sent["refresh_token"] == ["jd-refresh-92"]
    assert tokens.unsealed(ShopRecord.get(shop_id)).access_token == "jd-access-93"


def test_a_failed_refresh_asks_the_seller_to_reconnect_and_keeps_receiving(stack, platforms):
    shop_id = connected(stack, "taobao")
    platforms.replace(responses.POST, TAOBAO_TOKEN_URL, json={"error": "invalid_grant"}, status=400)
    report = tokens.refresh_due(REFRESH_AT)
    assert report.failed == [shop_id]
    shop = ShopRecord.get(shop_id)
    assert (shop.status, shop.sealed_tokens, shop.refresh_shard) == ("needs_reconnect", None, None)
    (event,) = [row for row in OutboxRecord.scan() if row.type == "shop.needs_reconnect"]
    assert json.loads(event.payload)["data"] == {"shop_id": shop_id}
    assert stored_shops.refresh_due(REFRESH_AT + timedelta(days=5)) == []
    paid = taobao_order("3300001", NOW - timedelta(hours=1), user_id="2200000099")[1]
    assert stack.deliver(paid).status == 200
    assert OrderRecord.get("taobao#3300001").shop_id == shop_id


def test_reconnecting_restores_the_shop(stack, platforms):
    shop_id = connected(stack, "taobao")
    platforms.replace(responses.POST, TAOBAO_TOKEN_URL, json={"error": "invalid_grant"}, status=400)
    tokens.refresh_due(REFRESH_AT)
    platforms.replace(
        responses.POST,
        TAOBAO_TOKEN_URL,
        json={
            "access_token": "a3",
            "refresh_token": "r3",
            "expires_in": 3600,
            "taobao_user_id": "2200000099",
        },
    )
    with time_machine.travel(REFRESH_AT, tick=False):
        assert connected(stack, "taobao") == shop_id
    assert ShopRecord.get(shop_id).status == "connected"
