"""Actions leave through the outbox queue to the simulated platforms: signed,
retried with backoff, refreshed once on an invalid session, failed with the
platform's message, dead-lettered after the budget, and sent at most once."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import requests
import responses
import time_machine

from chalicelib.domain.retry import PLATFORM_CALLS
from chalicelib.platforms import registry
from chalicelib.platforms.api import CallOutcome
from chalicelib.service import outbox
from chalicelib.settings import OUTBOUND_TIMEOUT_VARIABLE, platform_variable
from chalicelib.store import queues
from chalicelib.store.records import OutboxRecord, ShopRecord
from simulator.scenarios import DEMO_CREDENTIALS, Message, jd_order, taobao_order
from simulator.server import api_urls, issue_session
from tests.support import (
    JD_SHOP,
    NOW,
    PEER_TIMEOUT_SECONDS,
    TAOBAO_SHOP,
    drain,
    oracle_sdk_sign,
    set_env,
)

START = NOW - timedelta(days=4)
LATER = NOW.astimezone(UTC) + timedelta(seconds=1)


def platform_calls(simulator: str) -> list[dict]:
    return [
        call for call in requests.get(f"{simulator}/_sim/calls", timeout=5).json() if call["method"]
    ]


def fault(simulator: str, *faults: str, platform: str = "taobao") -> None:
    requests.post(f"{simulator}/_sim/faults", json={platform: list(faults)}, timeout=5)


def returned_case(stack) -> str:
    """A return the buyer has sent back: the seller may now agree the refund."""
    for message in taobao_order("3400001", START)[:11]:
        assert stack.deliver(message).status == 200
    return "R3400001"


def agree_refund(stack, case_id: str | None = None) -> str:
    case_id = case_id or returned_case(stack)
    answer = stack.request(
        "POST",
        f"/shops/{TAOBAO_SHOP}/after-sales/{case_id}/actions",
        json.dumps({"action": "agree_refund"}).encode(),
        {"Authorization": f"Bearer {stack.api_key}"},
    )
    assert answer.status == 202
    return answer.body["action_id"]


def shown(stack, action_id: str) -> dict:
    return stack.get(f"/shops/{TAOBAO_SHOP}/after-sales/R3400001/actions/{action_id}").body


def test_an_agreed_refund_reaches_the_platform_signed_and_shows_sent(
    outbound, simulator, capsys, log_stream
):
    action_id = agree_refund(outbound)
    assert shown(outbound, action_id)["state"] == "queued"
    capsys.readouterr()
    drain(LATER)
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]
    sent = [m for m in metrics if "Actions" in m]
    assert [(m["outcome"], m["Actions"]) for m in sent] == [("sent", [1.0])]
    assert any("ActionLatency" in m for m in metrics)
    (call,) = platform_calls(simulator)
    form = call["params"]
    assert call["method"] == "taobao.rp.refunds.agree"
    assert form["refund_infos"].startswith("R3400001|19900|") and form["session"] != ""
    # Checked by the test's own verifier, not the production signer.
    assert form["sign"] == oracle_sdk_sign(
        DEMO_CREDENTIALS["taobao"].app_secret, form, "hmac-sha256"
    )
    assert shown(outbound, action_id)["state"] == "sent"
    (attempt,) = OutboxRecord.get(action_id).attempts
    assert (attempt.attempt, attempt.outcome) == (1, "done")
    # The shop's session went to the platform, never to a log line.
    logged = log_stream.getvalue()
    assert action_id in logged and form["session"] not in logged


def test_a_redelivered_message_for_a_sent_action_sends_nothing(outbound, simulator):
    action_id = agree_refund(outbound)
    drain(LATER)
    # SQS delivers at least once: the same message again, as a redelivery would.
    row = OutboxRecord.get(action_id)
    queues.send(
        queues.OUTBOX,
        [
            queues.Message(
                {"outbox_id": action_id, "generation": row.generation}, "redelivery", "again-1"
            )
        ],
    )
    assert drain(LATER)["deliver_outbox"] == 1
    assert len(platform_calls(simulator)) == 1
    assert len(OutboxRecord.get(action_id).attempts) == 1


@pytest.mark.parametrize("lost_answer", ["timeout", "reset"])
def test_an_answer_lost_after_the_platform_acted_ends_sent_with_one_effect(
    outbound, simulator, monkeypatch, lost_answer
):
    """The platform carried the agree out but its answer never came: the retry is
    answered "already done", which, after a call of unknown outcome, means ours."""
    set_env(monkeypatch, {OUTBOUND_TIMEOUT_VARIABLE: str(PEER_TIMEOUT_SECONDS)})
    fault(simulator, lost_answer)
    action_id = agree_refund(outbound)
    drain(LATER)
    assert OutboxRecord.get(action_id).call_unresolved_since is not None
    drain(LATER + timedelta(seconds=PLATFORM_CALLS.longest_wait_seconds + 1))
    row = OutboxRecord.get(action_id)
    assert (row.state, row.error, row.call_unresolved_since) == ("sent", None, None)
    assert [a.outcome for a in row.attempts] == ["retry", "done"]
    assert "already done" in row.attempts[1].error
    accepted = [call for call in platform_calls(simulator) if call["carried_out"]]
    assert len(platform_calls(simulator)) == 2 and len(accepted) == 1


def test_already_done_by_someone_else_fails_with_the_platforms_message(outbound, simulator):
    """The seller agreed in the platform's own tools first: ShopHook's call, its
    first, was not what did it, so the action shows failed, saying why."""
    action_id = agree_refund(outbound)
    seller_session = issue_session(simulator, "2200000001")["access_token"]
    business = {"refund_infos": "R3400001|19900|1|aftersale"}
    by_hand = registry()["taobao"].call(
        api_urls(simulator)["taobao"],
        DEMO_CREDENTIALS["taobao"],
        str(seller_session),
        "taobao.rp.refunds.agree",
        business,
        NOW,
    )
    assert by_hand.outcome is CallOutcome.SUCCESS
    drain(LATER)
    result = shown(outbound, action_id)
    assert result["state"] == "failed"
    assert "状态不允许此操作" in result["error"]


def test_retryable_errors_back_off_with_jitter_then_succeed(outbound, simulator):
    fault(simulator, "rate_limit", "server_error")
    action_id = agree_refund(outbound)
    drain(LATER)
    assert shown(outbound, action_id)["state"] == "queued"
    # Hidden for the backoff: nothing is tried again at once.
    assert drain(LATER)["deliver_outbox"] == 0
    first_wait = PLATFORM_CALLS.wait_seconds(1, 0.999999)
    drain(LATER + timedelta(seconds=first_wait + 1))
    second_wait = PLATFORM_CALLS.wait_seconds(2, 0.999999)
    drain(LATER + timedelta(seconds=first_wait + second_wait + 2))
    row = OutboxRecord.get(action_id)
    assert [a.outcome for a in row.attempts] == ["retry", "retry", "done"]
    assert "App Call Limited" in row.attempts[0].error
    assert row.state == "sent" and row.error is None
    assert len(platform_calls(simulator)) == 3


def test_an_invalid_session_refreshes_the_token_once_and_retries(outbound, simulator):
    from chalicelib.service.tokens import unsealed

    before = unsealed(ShopRecord.get(TAOBAO_SHOP)).access_token
    fault(simulator, "invalid_session")
    action_id = agree_refund(outbound)
    drain(LATER)
    first, second = platform_calls(simulator)
    assert first["params"]["session"] == before
    assert second["params"]["session"] == unsealed(ShopRecord.get(TAOBAO_SHOP)).access_token
    assert second["params"]["session"] != before
    assert shown(outbound, action_id)["state"] == "sent"


def test_a_session_refused_after_refresh_fails_asking_to_reconnect(outbound, simulator):
    fault(simulator, "invalid_session", "invalid_session")
    action_id = agree_refund(outbound)
    drain(LATER)
    result = shown(outbound, action_id)
    assert result["state"] == "failed"
    assert "still refused after a token refresh" in result["error"]
    assert len(platform_calls(simulator)) == 2


def test_a_permanent_refusal_fails_with_the_platforms_message(outbound, monkeypatch):
    url = "https://api.taobao.test/router"
    set_env(monkeypatch, {platform_variable("taobao", "api_url"): url})
    action_id = agree_refund(outbound)
    refused = {"error_response": {"code": 50, "msg": "Refund closed", "sub_msg": "已关闭"}}
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, url, json=refused)
        drain(LATER)
        assert len(mock.calls) == 1
    result = shown(outbound, action_id)
    assert result["state"] == "failed"
    assert result["error"] == "50: Refund closed / 已关闭"
    # Permanent: not tried again.
    assert drain(LATER + timedelta(hours=2))["deliver_outbox"] == 0


def test_after_the_budget_the_action_is_dead_lettered_then_replayed(
    outbound, simulator, cli_isolation, capsys
):
    from shophook import cli

    fault(simulator, *["server_error"] * PLATFORM_CALLS.attempts)
    action_id = agree_refund(outbound)
    moment = LATER
    for _ in range(PLATFORM_CALLS.attempts + 1):
        drain(moment)
        moment += timedelta(seconds=PLATFORM_CALLS.longest_wait_seconds + 1)
    result = shown(outbound, action_id)
    assert result["state"] == "dead_lettered"
    assert len(platform_calls(simulator)) == PLATFORM_CALLS.attempts
    with time_machine.travel(moment, tick=False):
        capsys.readouterr()
        assert cli.main(["dlq", "list", "--json"]) == 0
        (listed,) = json.loads(capsys.readouterr().out)
        assert (listed["outbox_id"], listed["state"]) == (action_id, "dead_lettered")
        assert listed["attempts"] == PLATFORM_CALLS.attempts and "500" in listed["error"]
        # Listing holds the messages back for a minute; replay comes after that.
    with time_machine.travel(moment + timedelta(minutes=2), tick=False):
        assert cli.main(["dlq", "replay", "--queue", "outbox", "--json"]) == 0
        assert queues.dead_letters(queues.OUTBOX, limit=10, hold_seconds=0) == []
    assert shown(outbound, action_id)["state"] == "queued"
    drain(moment + timedelta(minutes=2))
    assert shown(outbound, action_id)["state"] == "sent"


def test_an_enqueue_failure_after_commit_is_sent_by_the_requeue_schedule(
    outbound, simulator, faults
):
    case_id = returned_case(outbound)
    drain(LATER)
    faults.fail_next("SendMessageBatch", code="ServiceUnavailable")
    action_id = agree_refund(outbound, case_id)
    # The action was committed; its message never reached the queue.
    assert drain(LATER)["deliver_outbox"] == 0
    assert platform_calls(simulator) == []
    assert outbox.requeue(LATER + timedelta(minutes=1)) == 0
    assert outbox.requeue(LATER + timedelta(minutes=4)) == 1
    drain(LATER + timedelta(minutes=4))
    assert shown(outbound, action_id)["state"] == "sent"
    assert OutboxRecord.get(action_id).unsent_shard is None


def test_an_action_for_a_shop_without_tokens_fails_asking_to_reconnect(outbound):
    action_id = agree_refund(outbound)
    outbound.request(
        "POST",
        f"/shops/{TAOBAO_SHOP}/disconnect",
        b"",
        {"Authorization": f"Bearer {outbound.api_key}"},
    )
    drain(LATER)
    result = shown(outbound, action_id)
    assert (result["state"], "reconnect" in result["error"]) == ("failed", True)


def request_action(stack, path: str, body: dict) -> str:
    answer = stack.request(
        "POST", path, json.dumps(body).encode(), {"Authorization": f"Bearer {stack.api_key}"}
    )
    assert answer.status == 202, answer.body
    return answer.body["action_id"]


def refund_version(message: Message) -> str:
    """The refund's `modified` as epoch milliseconds (platforms.md 2.1)."""
    modified = datetime.strptime(message.payload["modified"] + " +0800", "%Y-%m-%d %H:%M:%S %z")
    return str(int(modified.timestamp()) * 1000)


TB = taobao_order("3400001", START)
JD = jd_order("9400001", START)
JD_APPLY = Message(
    "jd",
    "jd-9400001-apply",
    "jd_pop_refund_apply",
    {
        "id": "9400077",
        "orderId": "9400001",
        "venderId": "10000001",
        "applyRefundSum": "59.90",
        "status": "0",
        "reason": "不想要了",
        "applyTime": "2026-11-19 11:00:00",
        "modified": "2026-11-19 11:00:00",
    },
)
ADDRESS = {
    "address": "杭州市西湖区文三路 1 号",
    "name": "退货仓",
    "mobile": "13800000000",
    "postcode": "310012",
}
TB_CASE = f"/shops/{TAOBAO_SHOP}/after-sales/R3400001/actions"
JD_SERVICE = f"/shops/{JD_SHOP}/after-sales/afs-94000017/actions"
JD_APPLY_CASE = f"/shops/{JD_SHOP}/after-sales/refund-9400077/actions"
TB_STEP = {"refund_id": "R3400001", "refund_phase": "aftersale"}
REPLY = {"id": "9400077", "checkUserName": "shophook", "outWareStatus": 2}
# The API fields every call carries besides its business fields.
TOP_SYSTEM = {"method", "app_key", "session", "timestamp", "v", "format", "sign_method", "sign"}
JOS_SYSTEM = {"method", "app_key", "access_token", "timestamp", "v", "360buy_param_json", "sign"}

# Each seller action as platforms.md 2.1 and 2.2 spell its call: the messages
# that bring the case or order there, the request, the method and its fields.
CONTRACT_CALLS = {
    "taobao agree refund": (
        TB[:11],
        TB_CASE,
        {"action": "agree_refund"},
        "taobao.rp.refunds.agree",
        {"refund_infos": f"R3400001|19900|{refund_version(TB[10])}|aftersale"},
    ),
    "taobao confirm returned goods": (
        TB[:11],
        TB_CASE,
        {"action": "confirm_return_received"},
        "taobao.rp.refunds.agree",
        {"refund_infos": f"R3400001|19900|{refund_version(TB[10])}|aftersale"},
    ),
    "taobao refuse a request": (
        TB[:9],
        TB_CASE,
        {"action": "refuse", "reason": "worn"},
        "taobao.refund.refuse",
        {**TB_STEP, "refund_version": refund_version(TB[8]), "refuse_message": "worn"},
    ),
    "taobao refuse returned goods": (
        TB[:11],
        TB_CASE,
        {"action": "refuse", "reason": "12"},
        "taobao.rp.returngoods.refuse",
        {**TB_STEP, "refund_version": refund_version(TB[10]), "refuse_reason_id": "12"},
    ),
    "taobao agree a return": (
        TB[:9],
        TB_CASE,
        {"action": "agree_return", "return_address": ADDRESS},
        "taobao.rp.returngoods.agree",
        {
            **TB_STEP,
            "refund_version": refund_version(TB[8]),
            "name": "退货仓",
            "address": "杭州市西湖区文三路 1 号",
            "post": "310012",
            "mobile": "13800000000",
        },
    ),
    "taobao ship": (
        TB[:2],
        f"/shops/{TAOBAO_SHOP}/orders/3400001/ship",
        {"tracking_no": "SF1234567", "carrier": "SF"},
        "taobao.logistics.offline.send",
        {"tid": "3400001", "out_sid": "SF1234567", "company_code": "SF"},
    ),
    "jd agree a return": (
        JD[:8],
        JD_SERVICE,
        {"action": "agree_return", "return_address": ADDRESS},
        "jingdong.pop.afs.audit",
        {
            "afsServiceId": "94000017",
            "approve": True,
            "remark": "ok",
            "returnAddress": "杭州市西湖区文三路 1 号 退货仓 13800000000",
        },
    ),
    "jd confirm returned goods": (
        JD,
        JD_SERVICE,
        {"action": "confirm_return_received"},
        "jingdong.asc.receive.register",
        {
            "buId": "10000001",
            "operatePin": "shophook",
            "operateNick": "shophook",
            "serviceId": "94000017",
            "orderId": "9400001",
        },
    ),
    "jd agree a refund apply": (
        [JD[0], JD_APPLY],
        JD_APPLY_CASE,
        {"action": "agree_refund"},
        "jingdong.pop.afs.soa.refundapply.replyRefund",
        {**REPLY, "status": 1, "remark": "ok"},
    ),
    "jd refuse a refund apply": (
        [JD[0], JD_APPLY],
        JD_APPLY_CASE,
        {"action": "refuse", "reason": "已发货"},
        "jingdong.pop.afs.soa.refundapply.replyRefund",
        {**REPLY, "status": 2, "remark": "已发货", "rejectType": 5},
    ),
    "jd ship": (
        JD[:1],
        f"/shops/{JD_SHOP}/orders/9400001/ship",
        {"tracking_no": "JDV1", "carrier": "JD"},
        "jingdong.pop.order.shipment",
        {"orderId": "9400001", "logiCoprId": "JD", "logiNo": "JDV1"},
    ),
}


@pytest.mark.parametrize(
    ("messages", "path", "body", "method", "business"),
    CONTRACT_CALLS.values(),
    ids=CONTRACT_CALLS.keys(),
)
def test_each_action_reaches_the_platform_as_the_contract_spells_it(
    outbound, simulator, messages, path, body, method, business
):
    """Checked against the fields above and the test's own signature oracle, not
    the production signer; no field goes out empty."""
    for message in messages:
        assert outbound.deliver(message).status == 200
    action_id = request_action(outbound, path, body)
    drain(LATER)
    (call,) = platform_calls(simulator)
    form = call["params"]
    assert (call["method"], call["carried_out"]) == (method, True), call["answer"]
    if "360buy_param_json" in form:
        assert set(form) == JOS_SYSTEM
        assert json.loads(form["360buy_param_json"]) == business
    else:
        assert form.keys() - TOP_SYSTEM == business.keys()
        assert {name: form[name] for name in business} == business
    assert all(value.strip() for value in form.values())
    secret = DEMO_CREDENTIALS[call["platform"]].app_secret
    assert form["sign"] == oracle_sdk_sign(secret, form, form.get("sign_method", "md5"))
    assert OutboxRecord.get(action_id).state == "sent"


def test_a_jd_invalid_access_token_refreshes_the_token_once_and_retries(outbound, simulator):
    """JD-style code 19 as Taobao-style 27: refresh through the simulated OAuth, then
    one retry with the new token."""
    from chalicelib.service.tokens import unsealed

    before = unsealed(ShopRecord.get(JD_SHOP)).access_token
    fault(simulator, "invalid_session", platform="jd")
    for message in JD:
        outbound.deliver(message)
    action_id = request_action(outbound, JD_SERVICE, {"action": "confirm_return_received"})
    drain(LATER)
    first, second = platform_calls(simulator)
    assert json.loads(first["answer"])["error_response"]["code"] == "19"
    assert first["params"]["access_token"] == before
    refreshed = unsealed(ShopRecord.get(JD_SHOP)).access_token
    assert second["params"]["access_token"] == refreshed != before
    assert second["carried_out"]
    row = OutboxRecord.get(action_id)
    assert (row.state, [attempt.outcome for attempt in row.attempts]) == ("sent", ["done"])


def test_a_jd_access_token_refused_after_refresh_fails_asking_to_reconnect(outbound, simulator):
    fault(simulator, "invalid_session", "invalid_session", platform="jd")
    for message in JD:
        outbound.deliver(message)
    action_id = request_action(outbound, JD_SERVICE, {"action": "confirm_return_received"})
    drain(LATER)
    row = OutboxRecord.get(action_id)
    assert row.state == "failed" and "still refused after a token refresh" in row.error
    assert len(platform_calls(simulator)) == 2
