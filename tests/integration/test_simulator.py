"""The simulator's OAuth over real loopback HTTP, with ShopHook's connect on moto."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from chalicelib.service import oauth, tokens
from chalicelib.store.records import ShopRecord
from tests.support import NOW, approve, oracle_top_sign


@pytest.mark.parametrize(("platform", "seller"), [("taobao", "2200000077"), ("jd", "10000077")])
def test_connect_through_the_simulated_platform(stack, simulator, platform, seller):
    started = oauth.start(platform, NOW, "127.0.0.1")
    granted = approve(started.authorize_url, seller)
    shop = oauth.finish(platform, granted, started.browser_nonce, NOW)
    assert (shop.shop_id, shop.name) == (f"{platform}:{seller}", "Tea House")
    record = ShopRecord.get(shop.shop_id)
    refreshed = tokens.refresh_due(record.token_expires_at)
    assert refreshed.refreshed == [shop.shop_id]
    assert tokens.unsealed(ShopRecord.get(shop.shop_id)).access_token != shop.tokens.access_token


def test_a_denied_approval_and_a_reused_code_connect_nothing(stack, simulator):
    started = oauth.start("taobao", NOW, "127.0.0.1")
    denied = approve(started.authorize_url, "2200000078", decision="deny")
    with pytest.raises(oauth.ConnectError, match="not connected"):
        oauth.finish("taobao", denied, started.browser_nonce, NOW)
    started = oauth.start("taobao", NOW, "127.0.0.1")
    granted = approve(started.authorize_url, "2200000078")
    oauth.finish("taobao", granted, started.browser_nonce, NOW)
    again = oauth.start("taobao", NOW, "127.0.0.1")
    with pytest.raises(oauth.ConnectError, match="did not confirm"):
        oauth.finish(
            "taobao",
            {**granted, "state": parse_qs(urlparse(again.authorize_url).query)["state"][0]},
            again.browser_nonce,
            NOW,
        )


def test_the_simulator_refuses_a_wrong_client_secret(simulator):
    answer = requests.post(
        f"{simulator}/taobao/token",
        data={
            "grant_type": "authorization_code",
            "code": "x",
            "client_id": "demo-app-key",
            "client_secret": "guess",
        },
        timeout=5,
    )
    assert (answer.status_code, answer.json()) == (401, {"error": "invalid_client"})


def session_for(simulator: str, seller: str) -> str:
    answer = requests.post(f"{simulator}/_sim/sessions", json={"seller": seller}, timeout=5)
    return answer.json()["access_token"]


def taobao_call(
    simulator: str, session: str, secret: str = "demo-secret", **business
) -> requests.Response:
    form = {
        "method": "taobao.rp.refunds.agree",
        "app_key": "demo-app-key",
        "session": session,
        "timestamp": "2026-11-23 10:00:05",
        "v": "2.0",
        "format": "json",
        "sign_method": "hmac-sha256",
        "refund_id": "R1",
        "amount": "5000",
        "refund_version": "1",
        **business,
    }
    form["sign"] = oracle_top_sign(secret, form, b"", "hmac-sha256")
    return requests.post(f"{simulator}/taobao/router/rest", data=form, timeout=1)


def test_the_taobao_api_checks_signature_and_session_and_answers_in_its_shape(simulator):
    session = session_for(simulator, "2200000001")
    assert taobao_call(simulator, session).json() == {"rp_refunds_agree_response": {"succ": True}}
    assert taobao_call(simulator, session, secret="guess").json()["error_response"]["code"] == 25
    assert taobao_call(simulator, "stolen").json()["error_response"]["code"] == 27
    missing = taobao_call(simulator, session, method="taobao.rp.returngoods.agree")
    assert missing.json()["error_response"]["msg"] == "Missing address"
    received = requests.get(f"{simulator}/_sim/calls", timeout=5).json()
    assert [call["params"]["method"] for call in received] == ["taobao.rp.refunds.agree"] * 3 + [
        "taobao.rp.returngoods.agree"
    ]


def test_the_jd_api_checks_its_md5_signature_and_answers_responce(simulator):
    session = session_for(simulator, "10000001")
    form = {
        "method": "jingdong.pop.refund.audit",
        "app_key": "demo-jd-key",
        "access_token": session,
        "timestamp": "2026-11-23 10:00:05",
        "v": "2.0",
        "360buy_param_json": json.dumps({"id": "880001", "status": 1, "remark": "ok"}),
    }
    form["sign"] = oracle_top_sign("demo-jd-secret", form, b"", "md5")
    answer = requests.post(f"{simulator}/jd/routerjson", data=form, timeout=5).json()
    assert answer == {"jingdong_pop_refund_audit_responce": {"code": "0"}}
    form["sign"] = "0" * 32
    assert (
        requests.post(f"{simulator}/jd/routerjson", data=form, timeout=5).json()["error_response"][
            "code"
        ]
        == "4"
    )


def test_queued_faults_hit_the_next_calls_in_order(simulator):
    session = session_for(simulator, "2200000001")
    queued = requests.post(
        f"{simulator}/_sim/faults",
        json={"taobao": ["rate_limit", "server_error", "invalid_session", "timeout"]},
        timeout=5,
    )
    assert queued.status_code == 200
    assert taobao_call(simulator, session).json()["error_response"]["code"] == 7
    assert taobao_call(simulator, session).status_code == 500
    assert taobao_call(simulator, session).json()["error_response"]["code"] == 27
    # Carried out, the answer held back: the same step again is refused.
    with pytest.raises(requests.Timeout):
        taobao_call(simulator, session)
    repeated = taobao_call(simulator, session).json()["error_response"]
    assert (repeated["code"], repeated["sub_code"]) == (15, "isv.status-not-allowed")
    # Carried out, then the connection dropped.
    requests.post(f"{simulator}/_sim/faults", json={"taobao": ["reset"]}, timeout=5)
    with pytest.raises(requests.ConnectionError):
        taobao_call(simulator, session, refund_id="R2")
    assert "error_response" in taobao_call(simulator, session, refund_id="R2").text
    assert "succ" in taobao_call(simulator, session, refund_id="R3").text
    # A reset forgets the steps taken and the calls seen.
    assert requests.post(f"{simulator}/_sim/reset", timeout=5).status_code == 200
    assert requests.get(f"{simulator}/_sim/calls", timeout=5).json() == []
    assert "succ" in taobao_call(simulator, session).text
    refused = requests.post(f"{simulator}/_sim/faults", json={"taobao": ["meteor"]}, timeout=5)
    assert refused.status_code == 400
