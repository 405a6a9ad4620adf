"""The simulator's OAuth over real loopback HTTP, with ShopHook's connect on moto."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from chalicelib.service import oauth, tokens
from chalicelib.store.records import ShopRecord
from tests.support import JD_REFUND_APPROVAL, NOW, approve, oracle_sdk_sign


@pytest.mark.parametrize(("platform", "seller"), [("taobao", "2200000077"), ("jd", "10000077")])
def test_connect_through_the_simulated_platform(stack, simulator, platform, seller):
    started = oauth.start(platform, NOW, "127.0.0.1")
    granted = approve(started.authorize_url, seller)
    shop = oauth.finish(platform, granted, started.browser_nonce, NOW).shop
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
        "refund_infos": "R1|5000|1763863205000|onsale",
        **business,
    }
    form["sign"] = oracle_sdk_sign(secret, form, "hmac-sha256")
    return requests.post(f"{simulator}/taobao/router/rest", data=form, timeout=1)


def test_the_taobao_api_checks_signature_and_session_and_answers_in_its_shape(simulator):
    session = session_for(simulator, "2200000001")
    assert taobao_call(simulator, session).json() == {
        "rp_refunds_agree_response": {"succ": True, "msg": "退款成功"}
    }
    assert taobao_call(simulator, session, secret="guess").json()["error_response"]["code"] == 25
    assert taobao_call(simulator, "stolen").json()["error_response"]["code"] == 27
    missing = taobao_call(simulator, session, method="taobao.rp.returngoods.agree")
    assert missing.json()["error_response"] == {
        "code": 40,
        "msg": "Missing required arguments",
        "sub_code": "isv.missing-parameter",
        "sub_msg": "Missing required arguments: refund_id",
    }
    received = requests.get(f"{simulator}/_sim/calls", timeout=5).json()
    assert [call["params"]["method"] for call in received] == ["taobao.rp.refunds.agree"] * 3 + [
        "taobao.rp.returngoods.agree"
    ]


@pytest.mark.parametrize(
    ("change", "code", "sub_code"),
    [
        # The v1 call: no refund_infos.
        (
            {"refund_infos": "", "refund_id": "R1", "amount": "5000", "refund_version": "1"},
            40,
            "isv.missing-parameter",
        ),
        ({"method": "taobao.rp.refunds.refuse", "refund_id": "R1", "refuse_message": "no"}, 22, ""),
        ({"method": "taobao.rp.returngoods.confirm", "refund_id": "R1"}, 22, ""),
        ({"refund_infos": "R1|5000|1763863205000"}, 41, "isv.invalid-parameter"),
        ({"refund_infos": "R1|50.00|1763863205000|onsale"}, 41, "isv.invalid-parameter"),
        (
            {
                "method": "taobao.refund.refuse",
                "refund_id": "R1",
                "refuse_message": "no",
                "refund_phase": "later",
                "refund_version": "1763863205000",
            },
            41,
            "isv.invalid-parameter",
        ),
    ],
)
def test_the_taobao_gateway_refuses_old_methods_and_fields(simulator, change, code, sub_code):
    session = session_for(simulator, "2200000001")
    error = taobao_call(simulator, session, **change).json()["error_response"]
    assert (error["code"], error["sub_code"]) == (code, sub_code)


def jd_call(simulator: str, method: str, business: dict, sign: str = "") -> dict:
    form = {
        "method": method,
        "app_key": "demo-jd-key",
        "access_token": session_for(simulator, "10000001"),
        "timestamp": "2026-11-23 10:00:05",
        "v": "2.0",
        "360buy_param_json": json.dumps(business),
    }
    form["sign"] = sign or oracle_sdk_sign("demo-jd-secret", form, "md5")
    return requests.post(f"{simulator}/jd/routerjson", data=form, timeout=5).json()


RECEIPT = {
    "buId": "10000001",
    "operatePin": "shophook",
    "operateNick": "shophook",
    "serviceId": "94000017",
    "orderId": "9400001",
}


def test_the_jd_api_checks_its_md5_signature_and_answers_responce(simulator):
    method = "jingdong.pop.afs.soa.refundapply.replyRefund"
    assert jd_call(simulator, method, JD_REFUND_APPROVAL) == {
        "jingdong_pop_afs_soa_refundapply_replyRefund_responce": {"replyResult": {"success": True}}
    }
    assert (
        jd_call(simulator, method, JD_REFUND_APPROVAL, sign="0" * 32)["error_response"]["code"]
        == "4"
    )


@pytest.mark.parametrize(
    ("method", "business", "code"),
    [
        ("jingdong.pop.refund.audit", {"id": "77001", "status": 1, "remark": "ok"}, "3"),
        ("jingdong.pop.afs.receive", {"afsServiceId": "94000017"}, "3"),
        (
            "jingdong.pop.order.shipment",
            {"orderId": "1", "waybill": "JDV1", "logisticsId": "JD"},
            "6",
        ),
        ("jingdong.pop.afs.soa.refundapply.replyRefund", {**JD_REFUND_APPROVAL, "status": 2}, "7"),
        (
            "jingdong.pop.afs.soa.refundapply.replyRefund",
            {**JD_REFUND_APPROVAL, "rejectType": 5},
            "7",
        ),
        ("jingdong.asc.receive.register", {**RECEIPT, "operatePin": ""}, "6"),
        ("jingdong.asc.receive.register", {**RECEIPT, "buId": "10000002"}, "7"),
    ],
)
def test_the_jd_gateway_refuses_old_methods_and_fields(simulator, method, business, code):
    assert jd_call(simulator, method, business)["error_response"]["code"] == code


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
        taobao_call(simulator, session, refund_infos="R2|5000|1763863205000|onsale")
    assert "error_response" in taobao_call(simulator, session, refund_infos="R2|1|1|onsale").text
    assert "succ" in taobao_call(simulator, session, refund_infos="R3|1|1|onsale").text
    # A reset forgets the steps taken and the calls seen.
    assert requests.post(f"{simulator}/_sim/reset", timeout=5).status_code == 200
    assert requests.get(f"{simulator}/_sim/calls", timeout=5).json() == []
    assert "succ" in taobao_call(simulator, session).text
    refused = requests.post(f"{simulator}/_sim/faults", json={"taobao": ["meteor"]}, timeout=5)
    assert refused.status_code == 400


def test_jd_faults_answer_busy_and_invalid_token_with_distinct_codes(simulator):
    requests.post(
        f"{simulator}/_sim/faults", json={"jd": ["rate_limit", "invalid_session"]}, timeout=5
    )
    method = "jingdong.pop.afs.soa.refundapply.replyRefund"
    busy, invalid_token = (jd_call(simulator, method, JD_REFUND_APPROVAL) for _ in range(2))
    assert busy["error_response"]["code"] == "5001"
    assert invalid_token["error_response"]["code"] == "19"
