"""The platforms' API clients: signed as specified, every answer mapped to one result."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
import requests
import responses

from chalicelib.config import OUTBOUND_TIMEOUT_VARIABLE
from chalicelib.platforms.api import CallOutcome
from chalicelib.platforms.jd import PLATFORM as JD
from chalicelib.platforms.taobao import PLATFORM as TAOBAO
from chalicelib.platforms.wire import parse_wire_time
from simulator.platforms import registry as simulated
from simulator.scenarios import DEMO_CREDENTIALS
from simulator.server import api_urls
from tests.support import NOW, oracle_sdk_sign

VECTORS = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "signature-vectors.json").read_text()
)["vectors"]
AGREE = {"refund_id": "R1", "amount": 5000, "refund_version": 1}
AUDIT = {"id": "880001", "status": 1, "remark": "ok"}


def session_for(simulator: str, seller: str) -> str:
    return requests.post(f"{simulator}/_sim/sessions", json={"seller": seller}, timeout=5).json()[
        "access_token"
    ]


def received(simulator: str) -> list[dict]:
    return requests.get(f"{simulator}/_sim/calls", timeout=5).json()


def test_the_taobao_call_matches_the_contracts_known_answer():
    vector = next(v for v in VECTORS if v["kind"] == "taobao-api" and "amount" in v["form"])
    with responses.RequestsMock() as mock:
        mock.add(
            responses.POST,
            "https://api.taobao.test/router",
            json={"rp_refunds_agree_response": {"succ": True}},
        )
        result = TAOBAO.call(
            "https://api.taobao.test/router",
            DEMO_CREDENTIALS["taobao"],
            "demo-session",
            "taobao.rp.refunds.agree",
            AGREE,
            parse_wire_time("2026-11-23 10:00:05"),
        )
        sent = dict(parse_qsl(mock.calls[0].request.body))
    assert result.outcome is CallOutcome.SUCCESS
    assert sent == {**vector["form"], "sign": vector["sign"]}


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
        "jingdong.pop.refund.audit",
        AUDIT,
        NOW,
    )
    assert (taobao.outcome, jd.outcome) == (CallOutcome.SUCCESS, CallOutcome.SUCCESS)
    taobao_form, jd_form = (call["params"] for call in received(simulator))
    # Checked by the test's own verifier, not the production signer.
    assert taobao_form["sign"] == oracle_sdk_sign("demo-secret", taobao_form, "hmac-sha256")
    assert jd_form["sign"] == oracle_sdk_sign("demo-jd-secret", jd_form, "md5")
    assert json.loads(jd_form["360buy_param_json"]) == AUDIT


@pytest.mark.parametrize(
    ("fault", "outcome", "code"),
    [
        ("rate_limit", CallOutcome.RETRYABLE, "7"),
        ("server_error", CallOutcome.RETRYABLE, "500"),
        ("invalid_session", CallOutcome.REFRESH_TOKEN, "27"),
    ],
)
def test_taobao_faults_map_to_what_the_caller_should_do(simulator, fault, outcome, code):
    requests.post(f"{simulator}/_sim/faults", json={"taobao": [fault]}, timeout=5)
    session = session_for(simulator, "2200000001")
    result = TAOBAO.call(
        api_urls(simulator)["taobao"],
        DEMO_CREDENTIALS["taobao"],
        session,
        "taobao.rp.refunds.agree",
        AGREE,
        NOW,
    )
    assert (result.outcome, result.code) == (outcome, code)


@pytest.mark.parametrize(
    ("platform", "method", "business", "code"),
    [
        (TAOBAO, "taobao.rp.refunds.agree", AGREE, "15"),
        (JD, "jingdong.pop.refund.audit", AUDIT, "66"),
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
    monkeypatch.setenv(OUTBOUND_TIMEOUT_VARIABLE, "0.3")
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
    assert (result.outcome, result.message) == (CallOutcome.PERMANENT, "Missing address")


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        ({"body": requests.Timeout()}, CallOutcome.RETRYABLE),
        ({"body": requests.ConnectionError()}, CallOutcome.RETRYABLE),
        ({"body": "<html>busy</html>", "status": 200}, CallOutcome.RETRYABLE),
        ({"json": {"error_response": {"code": "19001", "en_desc": "rate"}}}, CallOutcome.RETRYABLE),
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
                    "jingdong_pop_refund_audit_responce": {"code": "3", "msg": "already audited"}
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
            "jingdong.pop.refund.audit",
            AUDIT,
            NOW,
        )
    assert result.outcome is outcome
