"""The platforms' API clients: signed as specified, every answer mapped to one result."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import parse_qsl

import pytest
import requests
import responses
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.actions import Action
from chalicelib.domain.model import SHANGHAI, CaseKind, CaseSnapshot, CaseStatus
from chalicelib.platforms.api import CallOutcome
from chalicelib.platforms.doudian import PLATFORM as DOUDIAN
from chalicelib.platforms.jd import PLATFORM as JD
from chalicelib.platforms.taobao import PLATFORM as TAOBAO
from chalicelib.platforms.wire import parse_wire_time
from chalicelib.settings import OUTBOUND_TIMEOUT_VARIABLE
from simulator.platforms import registry as simulated
from simulator.scenarios import DEMO_CREDENTIALS
from simulator.server import api_urls
from tests.support import (
    JD_REFUND_APPROVAL,
    JD_REPLY_VECTOR,
    NOW,
    PEER_TIMEOUT_SECONDS,
    SIGNATURE_VECTORS,
    oracle_blank,
    oracle_sdk_sign,
    set_env,
)

AGREE = {"refund_infos": "R1|5000|1763863205000|onsale"}
REPLY_REFUND = "jingdong.pop.afs.soa.refundapply.replyRefund"
VECTOR_TIME = parse_wire_time("2026-11-23 10:00:05")
DD_SHIP = DOUDIAN.ship_request("4900000000001", "SF4900000000001", "shunfeng")
DD_API = "https://openapi.doudian.test"


def session_for(simulator: str, seller: str) -> str:
    return requests.post(f"{simulator}/_sim/sessions", json={"seller": seller}, timeout=5).json()[
        "access_token"
    ]


def received(simulator: str) -> list[dict]:
    return requests.get(f"{simulator}/_sim/calls", timeout=5).json()


def without_empty(form: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in form.items() if value.strip()}


def sent_to(platform, url: str, access_token: str, method: str, business: dict) -> dict:
    """The form `platform.call` sends at the vectors' time (answered success)."""
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, url, json=simulated()[platform.name].success(method, {}))
        result = platform.call(
            url,
            DEMO_CREDENTIALS[platform.name],
            access_token,
            method,
            business,
            VECTOR_TIME,
        )
        assert result.outcome is CallOutcome.SUCCESS
        return dict(parse_qsl(mock.calls[0].request.body))


@pytest.mark.parametrize(
    ("platform", "case_id", "modified", "phase", "access_token", "known"),
    [
        (
            TAOBAO,
            "R1",
            datetime.fromtimestamp(1763863205, SHANGHAI),
            "onsale",
            "demo-session",
            next(v for v in SIGNATURE_VECTORS if "refund_infos" in v.get("form", {})),
        ),
        (JD, "refund-77001", VECTOR_TIME, None, "demo-jd-token", JD_REPLY_VECTOR),
    ],
    ids=["taobao", "jd"],
)
def test_agreeing_a_refund_is_the_contracts_known_answer(
    platform, case_id, modified, phase, access_token, known
):
    """From the case to the wire: the v2 fields, no empty field sent, the vector's sign."""
    refund = CaseSnapshot(
        case_id=case_id,
        order_id="9001",
        kind=CaseKind.REFUND_ONLY,
        status=CaseStatus.REQUESTED,
        platform_status="",
        amount_fen=5000,
        reason="",
        quality_issue=False,
        modified=modified,
        platform_phase=phase,
    )
    shop_id = f"{platform.name}:{simulated()[platform.name].demo_seller}"
    method, business = platform.action_request(shop_id, Action.AGREE_REFUND, refund, "", None)
    sent = sent_to(platform, "https://api.platform.test/router", access_token, method, business)
    assert sent == {**without_empty(known["form"]), "sign": known["sign"]}


blank_or_not = st.text(st.sampled_from(" \t\u3000\u00a0a中1"), max_size=4)


@given(
    platform=st.sampled_from([TAOBAO, JD]),
    business=st.dictionaries(st.text("abcxyz", min_size=1, max_size=6), blank_or_not, max_size=6),
)
def test_a_call_sends_no_blank_field_and_signs_what_it_sends(platform, business):
    method = {"taobao": "taobao.logistics.offline.send", "jd": REPLY_REFUND}[platform.name]
    fields = {f"biz_{name}": value for name, value in business.items()}
    sent = sent_to(platform, "https://api.platform.test/router", "token", method, fields)
    secret = DEMO_CREDENTIALS[platform.name].app_secret
    assert sent["sign"] == oracle_sdk_sign(secret, sent, sent.get("sign_method", "md5"))
    assert not any(oracle_blank(value) for value in sent.values())
    carried = json.loads(sent.get("360buy_param_json", "{}")) | {
        name: value for name, value in sent.items() if name.startswith("biz_")
    }
    assert carried == {name: value for name, value in fields.items() if not oracle_blank(value)}


def test_signed_calls_succeed_against_the_simulated_platforms(simulator):
    urls = api_urls(simulator)
    taobao = TAOBAO.call(
        urls["taobao"],
        DEMO_CREDENTIALS["taobao"],
        session_for(simulator, "2200000001"),
        "taobao.rp.refunds.agree",
        AGREE,
        NOW,
    )
    jd = JD.call(
        urls["jd"],
        DEMO_CREDENTIALS["jd"],
        session_for(simulator, "10000001"),
        REPLY_REFUND,
        JD_REFUND_APPROVAL,
        NOW,
    )
    assert (taobao.outcome, jd.outcome) == (CallOutcome.SUCCESS, CallOutcome.SUCCESS)
    taobao_form, jd_form = (call["params"] for call in received(simulator))
    # Checked by the test's own verifier, not the production signer.
    assert taobao_form["sign"] == oracle_sdk_sign("demo-secret", taobao_form, "hmac-sha256")
    assert jd_form["sign"] == oracle_sdk_sign("demo-jd-secret", jd_form, "md5")
    assert json.loads(jd_form["360buy_param_json"]) == JD_REFUND_APPROVAL


@pytest.mark.parametrize(
    ("platform", "method", "business", "fault", "outcome", "code"),
    [
        (TAOBAO, "taobao.rp.refunds.agree", AGREE, "rate_limit", CallOutcome.RETRYABLE, "7"),
        (TAOBAO, "taobao.rp.refunds.agree", AGREE, "server_error", CallOutcome.RETRYABLE, "500"),
        (
            TAOBAO,
            "taobao.rp.refunds.agree",
            AGREE,
            "invalid_session",
            CallOutcome.REFRESH_TOKEN,
            "27",
        ),
        (JD, REPLY_REFUND, JD_REFUND_APPROVAL, "rate_limit", CallOutcome.RETRYABLE, "5001"),
        (JD, REPLY_REFUND, JD_REFUND_APPROVAL, "server_error", CallOutcome.RETRYABLE, "500"),
        (JD, REPLY_REFUND, JD_REFUND_APPROVAL, "invalid_session", CallOutcome.REFRESH_TOKEN, "19"),
        (DOUDIAN, *DD_SHIP, "rate_limit", CallOutcome.RETRYABLE, "isv.traffic-limited"),
        (DOUDIAN, *DD_SHIP, "server_error", CallOutcome.RETRYABLE, "500"),
        (
            DOUDIAN,
            *DD_SHIP,
            "invalid_session",
            CallOutcome.REFRESH_TOKEN,
            "isv.access-token-expired",
        ),
    ],
)
def test_faults_map_to_what_the_caller_should_do(
    simulator, platform, method, business, fault, outcome, code
):
    requests.post(f"{simulator}/_sim/faults", json={platform.name: [fault]}, timeout=5)
    session = session_for(simulator, simulated()[platform.name].demo_seller)
    url, credentials = api_urls(simulator)[platform.name], DEMO_CREDENTIALS[platform.name]
    result = platform.call(url, credentials, session, method, business, NOW)
    assert (result.outcome, result.code) == (outcome, code)


@pytest.mark.parametrize(
    ("platform", "method", "business", "code"),
    [
        (TAOBAO, "taobao.rp.refunds.agree", AGREE, "15"),
        (JD, REPLY_REFUND, JD_REFUND_APPROVAL, "66"),
        (DOUDIAN, *DD_SHIP, "isv.status-not-allowed"),
    ],
)
def test_repeating_a_step_the_platform_took_is_answered_already_done(
    simulator, platform, method, business, code
):
    session = session_for(simulator, simulated()[platform.name].demo_seller)
    url = api_urls(simulator)[platform.name]
    credentials = DEMO_CREDENTIALS[platform.name]
    first = platform.call(url, credentials, session, method, business, NOW)
    again = platform.call(url, credentials, session, method, business, NOW)
    assert first.outcome is CallOutcome.SUCCESS
    assert (again.outcome, again.code, again.uncertain) == (CallOutcome.ALREADY_DONE, code, False)


@pytest.mark.parametrize("fault", ["timeout", "reset"])
def test_a_call_without_an_answer_is_retryable_and_uncertain(simulator, monkeypatch, fault):
    set_env(monkeypatch, {OUTBOUND_TIMEOUT_VARIABLE: str(PEER_TIMEOUT_SECONDS)})
    requests.post(f"{simulator}/_sim/faults", json={"taobao": [fault]}, timeout=5)
    session = session_for(simulator, "2200000001")
    url, credentials = api_urls(simulator)["taobao"], DEMO_CREDENTIALS["taobao"]
    result = TAOBAO.call(url, credentials, session, "taobao.rp.refunds.agree", AGREE, NOW)
    assert (result.outcome, result.uncertain) == (CallOutcome.RETRYABLE, True)


def test_a_refusal_is_permanent_with_the_platforms_message(simulator):
    session = session_for(simulator, "2200000001")
    result = TAOBAO.call(
        api_urls(simulator)["taobao"],
        DEMO_CREDENTIALS["taobao"],
        session,
        "taobao.rp.returngoods.agree",
        {"refund_id": "R1"},
        NOW,
    )
    assert (result.outcome, result.code) == (CallOutcome.PERMANENT, "40")
    assert result.message == "Missing required arguments / Missing required arguments: refund_phase"


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        ({"body": requests.Timeout()}, CallOutcome.RETRYABLE),
        ({"body": requests.ConnectionError()}, CallOutcome.RETRYABLE),
        ({"body": "<html>busy</html>", "status": 200}, CallOutcome.RETRYABLE),
        ({"json": {"error_response": {"code": "19001", "en_desc": "rate"}}}, CallOutcome.RETRYABLE),
        ({"json": {"error_response": {"code": "190", "en_desc": "busy"}}}, CallOutcome.RETRYABLE),
        (
            {"json": {"error_response": {"code": "19", "en_desc": "invalid token"}}},
            CallOutcome.REFRESH_TOKEN,
        ),
        (
            {"json": {"error_response": {"code": "50", "en_desc": "system busy"}}},
            CallOutcome.RETRYABLE,
        ),
        ({"json": {"error_response": {"code": "4", "en_desc": "bad sign"}}}, CallOutcome.PERMANENT),
        (
            {"json": {"error_response": {"code": "66", "en_desc": "status"}}},
            CallOutcome.ALREADY_DONE,
        ),
        (
            {
                "json": {
                    "jingdong_pop_afs_soa_refundapply_replyRefund_responce": {
                        "code": "3",
                        "msg": "already audited",
                    }
                }
            },
            CallOutcome.PERMANENT,
        ),
    ],
)
def test_jd_answers_map_to_one_result_type(answer, outcome):
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, "https://api.jd.test/routerjson", **answer)
        result = JD.call(
            "https://api.jd.test/routerjson",
            DEMO_CREDENTIALS["jd"],
            "t",
            REPLY_REFUND,
            JD_REFUND_APPROVAL,
            NOW,
        )
    assert result.outcome is outcome


@pytest.mark.parametrize(
    ("answer", "outcome", "code"),
    [
        ({"body": requests.Timeout()}, CallOutcome.RETRYABLE, "timeout"),
        ({"body": "<html>busy</html>", "status": 200}, CallOutcome.RETRYABLE, "not_json"),
        ({"json": {"code": 10000, "msg": "success", "data": {}}}, CallOutcome.SUCCESS, ""),
        (
            {"json": {"code": 60000, "msg": "busy", "sub_code": "isv.traffic-limited"}},
            CallOutcome.RETRYABLE,
            "isv.traffic-limited",
        ),
        ({"json": {"code": 60000, "msg": "busy"}}, CallOutcome.RETRYABLE, "60000"),
        (
            {"json": {"code": 40003, "msg": "x", "sub_code": "isv.access-token-expired"}},
            CallOutcome.REFRESH_TOKEN,
            "isv.access-token-expired",
        ),
        (
            {"json": {"code": 40003, "msg": "x", "sub_code": "isv.access-token-no-existed"}},
            CallOutcome.REFRESH_TOKEN,
            "isv.access-token-no-existed",
        ),
        (
            {"json": {"code": 40003, "msg": "x", "sub_code": "isv.signature-invalid"}},
            CallOutcome.PERMANENT,
            "isv.signature-invalid",
        ),
        (
            {"json": {"code": 50002, "msg": "x", "sub_code": "isv.status-not-allowed"}},
            CallOutcome.ALREADY_DONE,
            "isv.status-not-allowed",
        ),
        ({"json": [1, 2]}, CallOutcome.RETRYABLE, "not_an_object"),
    ],
)
def test_doudian_answers_map_to_one_result_type(answer, outcome, code):
    method, business = DD_SHIP
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, f"{DD_API}/order/logisticsAdd", **answer)
        result = DOUDIAN.call(DD_API, DEMO_CREDENTIALS["doudian"], "t", method, business, NOW)
    assert (result.outcome, result.code) == (outcome, code)


def test_a_doudian_call_is_the_contracts_request():
    """platforms.md 2.4: the method in the path and the query, the sign over the
    sorted compact param_json, the access token in the query."""
    method, business = DD_SHIP
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, f"{DD_API}/order/logisticsAdd", json={"code": 10000, "data": {}})
        at = datetime.fromtimestamp(1763863205, UTC)
        DOUDIAN.call(DD_API, DEMO_CREDENTIALS["doudian"], "tok", method, business, at)
        (sent,) = mock.calls
    query = dict(parse_qsl(sent.request.url.partition("?")[2]))
    assert sent.request.body == (
        b'{"company_code":"shunfeng","logistics_code":"SF4900000000001","order_id":"4900000000001"}'
    )
    assert query == {
        "app_key": "demo-dd-key",
        "method": "order.logisticsAdd",
        "v": "2",
        "timestamp": "1763863205",
        "access_token": "tok",
        "sign_method": "hmac-sha256",
        # The contract's known answer (signature-vectors.json, doudian-api).
        "sign": "ea86882c05ab06fd92c27f4b4e8355d2dbcd80f3620855ee4b05385ff09e7f39",
    }
