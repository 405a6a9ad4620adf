"""Actions leave through the outbox queue to the simulated platforms: signed,
retried with backoff, refreshed once on an invalid session, failed with the
platform's message, dead-lettered after the budget, and sent at most once."""

from __future__ import annotations

import json
from datetime import UTC, timedelta

import pytest
import requests
import responses
import time_machine

from chalicelib.config import OUTBOUND_TIMEOUT_VARIABLE, api_url_variable
from chalicelib.domain.retry import PLATFORM_CALLS
from chalicelib.platforms import registry
from chalicelib.platforms.api import CallOutcome
from chalicelib.service import outbox
from chalicelib.store import queues
from chalicelib.store.records import OutboxRecord, ShopRecord
from simulator.scenarios import DEMO_CREDENTIALS, jd_order, taobao_order
from simulator.server import api_urls, issue_session
from tests.support import JD_SHOP, NOW, TAOBAO_SHOP, drain, oracle_sdk_sign

START = NOW - timedelta(days=4)
LATER = NOW.astimezone(UTC) + timedelta(seconds=1)


def platform_calls(simulator: str) -> list[dict]:
    return [
        call for call in requests.get(f"{simulator}/_sim/calls", timeout=5).json() if call["method"]
    ]


def fault(simulator: str, *faults: str) -> None:
    requests.post(f"{simulator}/_sim/faults", json={"taobao": list(faults)}, timeout=5)


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
    assert (form["refund_id"], form["amount"], form["session"] != "") == ("R3400001", "19900", True)
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
    monkeypatch.setenv(OUTBOUND_TIMEOUT_VARIABLE, "0.3")
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
    business = {"refund_id": "R3400001", "amount": 19900, "refund_version": 1}
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
    monkeypatch.setenv(api_url_variable("taobao"), url)
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


def test_shipping_an_order_marks_it_shipped_on_the_platform(outbound, simulator):
    for message in taobao_order("3400002", START)[:2]:
        outbound.deliver(message)
    answer = outbound.request(
        "POST",
        f"/shops/{TAOBAO_SHOP}/orders/3400002/ship",
        json.dumps({"tracking_no": "SF1234567", "carrier": "SF"}).encode(),
        {"Authorization": f"Bearer {outbound.api_key}"},
    )
    assert answer.status == 202
    drain(LATER)
    (call,) = platform_calls(simulator)
    assert call["method"] == "taobao.logistics.offline.send"
    assert (call["params"]["tid"], call["params"]["out_sid"]) == ("3400002", "SF1234567")


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


def test_a_jd_service_return_is_confirmed_through_jos_signed_md5(outbound, simulator):
    for message in jd_order("9400001", START):
        outbound.deliver(message)
    answer = outbound.request(
        "POST",
        f"/shops/{JD_SHOP}/after-sales/afs-94000017/actions",
        json.dumps({"action": "confirm_return_received"}).encode(),
        {"Authorization": f"Bearer {outbound.api_key}"},
    )
    assert answer.status == 202
    drain(LATER)
    (call,) = platform_calls(simulator)
    form = call["params"]
    assert call["method"] == "jingdong.pop.afs.receive"
    assert json.loads(form["360buy_param_json"]) == {"afsServiceId": "94000017"}
    assert form["sign"] == oracle_sdk_sign(DEMO_CREDENTIALS["jd"].app_secret, form, "md5")
    assert form["access_token"] != ""
