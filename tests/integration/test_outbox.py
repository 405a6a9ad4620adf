"""What the rules' changes tell, once the stream consumer has read them: an
automatic action's outbox row, and events (delivered to every subscription
that wants them: here, one that wants every event)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from chalicelib.store.records import OutboxRecord
from simulator.scenarios import Message, taobao_order
from tests.support import NOW, TAOBAO_SHOP, told

pytestmark = pytest.mark.usefixtures("every_event")
START = NOW - timedelta(hours=5)


def outbox() -> dict[str, list[OutboxRecord]]:
    rows: dict[str, list[OutboxRecord]] = {}
    for row in told():
        rows.setdefault(row.type, []).append(row)
    return rows


def refund_only(tid: str, amount: str) -> Message:
    """A refund-only request an hour after payment, before anything ships."""
    refund = taobao_order(tid, START, return_requested_after=1)[8]
    payload = {
        **refund.payload,
        "has_good_return": False,
        "refund_phase": "onsale",
        "good_status": "BUYER_NOT_RECEIVED",
        "refund_fee": amount,
    }
    return Message("taobao", f"{refund.message_id}-only", refund.topic, payload, refund.shop_ref)


def test_an_opted_in_auto_agree_is_a_decision_and_an_outbox_action(stack):
    answer = stack.request(
        "PUT",
        f"/shops/{TAOBAO_SHOP}/policy",
        json.dumps(
            {"overrides": {"seller.auto_agree_unshipped_refund": {"max_amount_fen": 20000}}}
        ).encode(),
        {"Authorization": f"Bearer {stack.api_key}"},
    )
    assert answer.status == 200
    stack.deliver(taobao_order("3080001", START)[1])  # paid, not shipped
    stack.deliver(refund_only("3080001", "150.00"))
    case = stack.get(f"/shops/{TAOBAO_SHOP}/after-sales/R3080001").body
    assert ("seller.auto_agree_unshipped_refund", "auto_action") in [
        (d["rule"], d["outcome"]) for d in case["decisions"]
    ]
    (action,) = outbox()["agree_refund"]
    assert action.kind == "action" and json.loads(action.payload)["case_id"] == "R3080001"
    # Redelivery of the same message writes nothing more.
    stack.deliver(refund_only("3080001", "150.00"))
    assert len(outbox()["agree_refund"]) == 1


def test_without_opting_in_nothing_is_agreed_automatically(stack):
    stack.deliver(taobao_order("3080002", START)[1])
    stack.deliver(refund_only("3080002", "1.00"))
    assert "agree_refund" not in outbox()
    assert "after_sale.opened" in outbox()


def test_postage_on_a_free_shipping_order_is_a_compliance_event(stack):
    paid = taobao_order("3080003", START)[1]
    charged = Message(
        "taobao", "charged", paid.topic, {**paid.payload, "post_fee": "8.00"}, paid.shop_ref
    )
    stack.deliver(charged)
    order = stack.get(f"/shops/{TAOBAO_SHOP}/orders/3080003").body
    assert [flag["rule"] for flag in order["flags"]] == ["platform.free_shipping_surcharge"]
    (event,) = outbox()["compliance.flagged"]
    body = json.loads(event.payload)
    assert body["type"] == "compliance.flagged"
    assert body["data"]["order"]["order_id"] == "3080003"
    assert event.event_id.startswith("evt_")
