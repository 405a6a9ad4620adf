"""Seller actions: allowed by the case's state, mapped per platform, queued once."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from chalicelib.domain.actions import Action, ReturnAddress
from chalicelib.platforms.base import UnsupportedActionError
from chalicelib.platforms.jd import PLATFORM as JD
from chalicelib.platforms.taobao import PLATFORM as TAOBAO
from chalicelib.store.records import OutboxRecord
from simulator.scenarios import Message, jd_order, taobao_order
from tests.support import JD_SHOP, NOW, TAOBAO_SHOP, parsed

START = NOW - timedelta(days=4)
ORDER = taobao_order("3400001", START)
ADDRESS = {
    "address": "杭州市西湖区文三路 1 号",
    "name": "退货仓",
    "mobile": "13800000000",
    "postcode": "310012",
}


def act(stack, case_id: str, body, shop: str = TAOBAO_SHOP):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return stack.request(
        "POST",
        f"/shops/{shop}/after-sales/{case_id}/actions",
        raw,
        {"Authorization": f"Bearer {stack.api_key}"},
    )


def requested_return(stack, quality_issue: bool = False) -> str:
    messages = taobao_order("3400001", START, quality_issue=quality_issue)
    for message in messages[:9]:
        stack.deliver(message)
    return "R3400001"


def test_agreeing_a_return_is_queued_and_readable(stack):
    case_id = requested_return(stack)
    answer = act(stack, case_id, {"action": "agree_return", "return_address": ADDRESS})
    assert answer.status == 202 and answer.body["state"] == "queued"
    action_id = answer.body["action_id"]
    shown = stack.get(f"/shops/{TAOBAO_SHOP}/after-sales/{case_id}/actions/{action_id}").body
    assert (shown["action"], shown["state"], shown["case_id"]) == (
        "agree_return",
        "queued",
        case_id,
    )
    row = OutboxRecord.get(action_id)
    assert row.kind == "action" and json.loads(row.payload)["return_address"] == ADDRESS


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"action": "agree_return"}, 400, "return_address"),
        (
            {"action": "agree_return", "return_address": {"address": "x", "name": "y"}},
            400,
            "return_address.mobile",
        ),
        (
            {"action": "agree_return", "return_address": {**ADDRESS, "postcode": 310012}},
            400,
            "return_address.postcode",
        ),
        ({"action": "refuse"}, 400, "reason"),
        ({"action": "teleport"}, 400, "action"),
        ({"action": "agree_refund"}, 409, "action"),
        ({"action": "confirm_return_received"}, 409, "action"),
        (b"{not json", 400, "body"),
        (b"[]", 400, "body"),
    ],
)
def test_bad_or_premature_actions_are_refused_with_the_reason(stack, body, status, field):
    case_id = requested_return(stack)
    answer = act(stack, case_id, body)
    assert (answer.status, answer.body["field"]) == (status, field)
    assert [row for row in OutboxRecord.scan() if row.kind == "action"] == []


def test_the_postcode_is_optional_where_the_platform_does_not_need_it(stack):
    for message in jd_order("9400001", START)[:8]:
        stack.deliver(message)
    without = {part: ADDRESS[part] for part in ("address", "name", "mobile")}
    answer = act(
        stack, "afs-94000017", {"action": "agree_return", "return_address": without}, JD_SHOP
    )
    assert answer.status == 202
    queued = json.loads(OutboxRecord.get(answer.body["action_id"]).payload)
    assert queued["return_address"] == {**without, "postcode": None}


def test_refusing_a_quality_issue_is_a_409_citing_the_law(stack):
    case_id = requested_return(stack, quality_issue=True)
    answer = act(stack, case_id, {"action": "refuse", "reason": "no"})
    assert answer.status == 409 and "law.no_reason_return.condition" in answer.body["message"]


def test_a_finished_case_takes_no_action(stack):
    for message in ORDER:
        stack.deliver(message)
    answer = act(stack, "R3400001", {"action": "refuse", "reason": "too late"})
    assert (answer.status, answer.body["message"]) == (409, "the case is already refunded")


def test_a_jd_service_is_refunded_by_the_platform_not_the_seller(stack):
    for message in jd_order("9400001", START):
        stack.deliver(message)
    answer = act(stack, "afs-94000017", {"action": "agree_refund"}, JD_SHOP)
    assert answer.status == 409 and "confirm the return" in answer.body["message"]


def test_shipping_a_paid_order_is_queued_and_a_shipped_one_refused(stack):
    stack.deliver(ORDER[1])
    path = f"/shops/{TAOBAO_SHOP}/orders/3400001/ship"
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    missing = stack.request("POST", path, json.dumps({"carrier": "SF"}).encode(), headers)
    assert (missing.status, missing.body["field"]) == (400, "tracking_no")
    queued = stack.request(
        "POST", path, json.dumps({"tracking_no": "SF1", "carrier": "SF"}).encode(), headers
    )
    assert queued.status == 202
    stack.deliver(ORDER[2])
    again = stack.request(
        "POST", path, json.dumps({"tracking_no": "SF1", "carrier": "SF"}).encode(), headers
    )
    assert again.status == 409 and "shipped" in again.body["message"]


def test_another_shops_case_is_404(stack):
    requested_return(stack)
    from chalicelib.service import keys

    _, jd_only = keys.create_key("jd", [JD_SHOP], NOW)
    answer = stack.request(
        "POST",
        f"/shops/{TAOBAO_SHOP}/after-sales/R3400001/actions",
        json.dumps({"action": "agree_return", "return_address": ADDRESS}).encode(),
        {"Authorization": f"Bearer {jd_only}"},
    )
    assert answer.status == 404


def test_a_case_changed_while_queuing_is_a_409_and_nothing_is_queued(stack, faults):
    case_id = requested_return(stack)
    faults.fail_next(
        "TransactWriteItems",
        code="TransactionCanceledException",
        cancellation_reasons=["ConditionalCheckFailed", "None"],
    )
    answer = act(stack, case_id, {"action": "agree_return", "return_address": ADDRESS})
    assert (answer.status, answer.body["code"]) == (409, "changed_meanwhile")


REQUESTED, RETURNED = ORDER[8], ORDER[10]


def refund_version(message: Message) -> str:
    """The refund's `modified` as epoch milliseconds (platforms.md 2.1)."""
    modified = datetime.strptime(message.payload["modified"] + " +0800", "%Y-%m-%d %H:%M:%S %z")
    return str(int(modified.timestamp()) * 1000)


def refund_step(message: Message) -> dict[str, str]:
    version = refund_version(message)
    return {"refund_id": "R3400001", "refund_phase": "aftersale", "refund_version": version}


@pytest.mark.parametrize(
    ("message", "action", "reason", "method", "fields"),
    [
        (
            REQUESTED,
            Action.REFUSE,
            "worn",
            "taobao.refund.refuse",
            {**refund_step(REQUESTED), "refuse_message": "worn"},
        ),
        (
            REQUESTED,
            Action.AGREE_RETURN,
            "",
            "taobao.rp.returngoods.agree",
            {
                **refund_step(REQUESTED),
                "name": "退货仓",
                "address": "杭州市西湖区文三路 1 号",
                "post": "310012",
                "mobile": "13800000000",
            },
        ),
        (
            RETURNED,
            Action.AGREE_REFUND,
            "",
            "taobao.rp.refunds.agree",
            {"refund_infos": f"R3400001|19900|{refund_version(RETURNED)}|aftersale"},
        ),
        (
            RETURNED,
            Action.CONFIRM_RETURN_RECEIVED,
            "",
            "taobao.rp.refunds.agree",
            {"refund_infos": f"R3400001|19900|{refund_version(RETURNED)}|aftersale"},
        ),
        (
            RETURNED,
            Action.REFUSE,
            "12",
            "taobao.rp.returngoods.refuse",
            {**refund_step(RETURNED), "refuse_reason_id": "12"},
        ),
    ],
)
def test_taobao_maps_each_action_to_its_method_and_fields(message, action, reason, method, fields):
    case = parsed(message).event
    address = ReturnAddress(**ADDRESS)
    assert TAOBAO.action_request(TAOBAO_SHOP, action, case, reason, address) == (method, fields)


def test_taobao_refuses_what_its_calls_cannot_say():
    requested, returned = parsed(REQUESTED).event, parsed(RETURNED).event
    without_postcode = ReturnAddress("杭州市西湖区文三路 1 号", "退货仓", "13800000000")
    cases = [
        (Action.AGREE_RETURN, requested, "", without_postcode, "return_address.postcode"),
        (Action.REFUSE, returned, "worn", None, "refuse reason id"),
        (
            Action.AGREE_REFUND,
            replace(returned, platform_phase=None),
            "",
            None,
            "phase (onsale or aftersale) is not known",
        ),
    ]
    for action, case, reason, address, why in cases:
        with pytest.raises(UnsupportedActionError, match=re.escape(why)):
            TAOBAO.action_request(TAOBAO_SHOP, action, case, reason, address)


def test_jd_maps_refund_applies_services_and_shipping_to_their_methods_and_fields():
    apply_case = parsed(
        Message(
            "jd",
            "m",
            "jd_pop_refund_apply",
            {
                "id": "77",
                "orderId": "1",
                "venderId": "10000001",
                "applyRefundSum": "1.00",
                "status": "0",
                "reason": "",
                "applyTime": "2026-11-23 09:00:00",
                "modified": "2026-11-23 09:00:00",
            },
        )
    ).event
    reply = {"id": "77", "checkUserName": "shophook", "outWareStatus": 2}
    assert JD.action_request(JD_SHOP, Action.AGREE_REFUND, apply_case, "", None) == (
        "jingdong.pop.afs.soa.refundapply.replyRefund",
        {**reply, "status": 1, "remark": "ok"},
    )
    assert JD.action_request(JD_SHOP, Action.REFUSE, apply_case, "no", None) == (
        "jingdong.pop.afs.soa.refundapply.replyRefund",
        {**reply, "status": 2, "remark": "no", "rejectType": 5},
    )
    service = parsed(jd_order("9400002", START)[-1]).event
    assert JD.action_request(JD_SHOP, Action.CONFIRM_RETURN_RECEIVED, service, "", None) == (
        "jingdong.asc.receive.register",
        {
            "buId": "10000001",
            "operatePin": "shophook",
            "operateNick": "shophook",
            "serviceId": "94000027",
            "orderId": "9400002",
            "receiveRemark": "",
        },
    )
    assert TAOBAO.ship_request("1", "SF1", "SF") == (
        "taobao.logistics.offline.send",
        {"tid": "1", "out_sid": "SF1", "company_code": "SF"},
    )
    assert JD.ship_request("1", "JDV1", "JD") == (
        "jingdong.pop.order.shipment",
        {"orderId": "1", "logiCoprId": "JD", "logiNo": "JDV1"},
    )
