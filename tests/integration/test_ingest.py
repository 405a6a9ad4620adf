"""Webhooks through the HTTP route into moto's DynamoDB, read back through the API."""

from __future__ import annotations

from datetime import timedelta

import pytest

from chalicelib.domain.ids import EntityRef
from chalicelib.domain.model import ThinMessage
from chalicelib.platforms import registry
from chalicelib.store import entities
from chalicelib.store.records import EventLogRecord, OrderRecord, OutboxRecord, QuarantineRecord
from simulator.scenarios import DEMO_CREDENTIALS, DEMO_SHOPS, Message, jd_order, taobao_order
from simulator.server import hold_records
from tests.catalogue import EVERY_TOPIC
from tests.support import (
    JD_SHOP,
    NOW,
    TAOBAO_SHOP,
    connect_with_tokens,
    drain,
    oracle_signed_taobao,
    parsed,
)

START = NOW - timedelta(days=6)
TAOBAO = taobao_order("3010001", START)
JD = jd_order("9001", START)
ORDER_PATH = f"/shops/{TAOBAO_SHOP}/orders/3010001"
SHOP_OF = {shop_id.partition(":")[0]: shop_id for shop_id in DEMO_SHOPS}


def entity_path(message: Message, kind: str, entity_id: str) -> str:
    shop = SHOP_OF[message.platform]
    return f"/shops/{shop}/{'orders' if kind == 'order' else 'after-sales'}/{entity_id}"


def delivered(request, stack, message: Message):
    """Delivered as the platform pushes it; a thin message then completed by its
    detail call, from what the simulated platform holds, as the queue runs it."""
    if not isinstance(parsed(message).event, ThinMessage):
        return stack.deliver(message)
    simulator = request.getfixturevalue("simulator")
    connect_with_tokens(simulator)
    hold_records(simulator, [message])
    answer = stack.deliver(message)
    drain(NOW)
    return answer


@pytest.mark.parametrize(
    ("message", "kind", "entity_id", "field", "expected"),
    EVERY_TOPIC,
    ids=[f"{m.topic}-{e}" for m, _, _, _, e in EVERY_TOPIC],
)
def test_every_topic_is_acked_and_visible_through_the_read_api(
    request, stack, message, kind, entity_id, field, expected
):
    if field == "shipment_status":  # a trace shows on an order the platform has named
        order = next(
            m for m, k, i, f, _ in EVERY_TOPIC if (k, i, f) == ("order", entity_id, "status")
        )
        assert delivered(request, stack, order).status == 200
    answer = delivered(request, stack, message)
    assert answer.status == 200
    assert answer.body == registry()[message.platform].ack()
    shown = stack.get(entity_path(message, kind, entity_id))
    assert shown.status == 200
    value = shown.body["shipment"]["status"] if field == "shipment_status" else shown.body[field]
    assert value == expected


def test_a_full_lifecycle_reads_back_in_the_canonical_shape(stack):
    for message in TAOBAO + JD:
        assert stack.deliver(message).status == 200
    order = stack.get(ORDER_PATH).body
    assert set(order) == {
        "shop_id",
        "platform",
        "order_id",
        "status",
        "total_fen",
        "shipping_fee_fen",
        "free_shipping",
        "items",
        "paid_at",
        "shipped_at",
        "shipment",
        "flags",
        "updated_at",
        "version",
    }
    assert order["shipment"] == {
        "tracking_no": "SF3010001",
        "carrier": "SF",
        "status": "delivered",
        "picked_up_at": (START + timedelta(hours=22)).isoformat(),
        "signed_at": (START + timedelta(hours=48)).isoformat(),
    }
    case = stack.get(f"/shops/{TAOBAO_SHOP}/after-sales/R3010001").body
    assert case["status"] == "refunded"
    assert [(d["rule"], d["outcome"]) for d in case["decisions"]] == [
        ("law.no_reason_return", "eligible")
    ]
    assert {d["rule"]: d["state"] for d in case["deadlines"]}["law.refund_after_return"] == "met"
    jd_open = stack.get(f"/shops/{JD_SHOP}/after-sales?status=open").body
    assert [c["case_id"] for c in jd_open["items"]] == ["afs-90017"]
    assert stack.get(f"/shops/{TAOBAO_SHOP}/after-sales?status=open").body["items"] == []


# The design's budget: one read and one transaction. What the change tells is
# read from its table's stream: no outbox row and no SQS send on the request path.
APPLIED = ["TransactGetItems", "TransactWriteItems"]


def test_one_webhook_costs_one_read_and_one_transaction(stack, aws_calls):
    answer = stack.deliver(TAOBAO[0])
    assert answer.status == 200
    assert aws_calls.operations == APPLIED
    aws_calls.clear()
    assert stack.deliver(TAOBAO[0]).status == 200
    assert aws_calls.operations == ["TransactGetItems"]
    # A case message reads its order in the same call, for the rules.
    aws_calls.clear()
    assert stack.deliver(TAOBAO[8]).status == 200
    assert aws_calls.operations == APPLIED
    aws_calls.clear()
    assert stack.deliver(JD[3]).status == 200
    assert aws_calls.operations == APPLIED
    aws_calls.clear()
    bad = Message(
        "taobao", "b-1", TAOBAO[1].topic, {**TAOBAO[1].payload, "payment": "x"}, "2200000001"
    )
    assert stack.deliver(bad).status == 422
    assert aws_calls.operations == ["UpdateItem"]


def test_an_order_change_re_decides_its_cases_in_the_same_write(stack, aws_calls):
    for message in TAOBAO[:2]:
        stack.deliver(message)
    stack.deliver(TAOBAO[8])  # the refund, noted on its order
    aws_calls.clear()
    assert stack.deliver(TAOBAO[2]).status == 200  # the ship message
    assert aws_calls.operations == ["TransactGetItems", *APPLIED]


def case_as_decided(stack, arrival: list[Message]) -> tuple[dict, dict]:
    """The case's view, less its version (which also counts its re-decisions),
    and the shop's pending deadlines (stored rows, which the sweeper works from)."""
    stack.reset()
    for message in arrival:
        assert stack.deliver(message).status == 200
    view = stack.get(f"/shops/{TAOBAO_SHOP}/after-sales/R3010001").body
    pending = stack.get(f"/shops/{TAOBAO_SHOP}/deadlines").body
    return {name: value for name, value in view.items() if name != "version"}, pending


def test_a_case_stored_before_its_orders_messages_ends_decided_as_in_order(stack):
    """Found by the duplicate storms: a refund stored before the ship message
    kept the unshipped clock, already breached, instead of the shipped one."""
    in_order = case_as_decided(stack, TAOBAO[:9])
    assert {"entity": "case:R3010001", "rule": "platform.refund_shipped_timeout"}.items() <= (
        in_order[1]["items"][0].items()
    )
    assert case_as_decided(stack, [TAOBAO[8], *TAOBAO[:8]]) == in_order
    assert case_as_decided(stack, [*TAOBAO[:2], TAOBAO[8], *TAOBAO[2:8]]) == in_order


def test_the_same_message_n_times_changes_state_once_with_the_same_ack(stack):
    answers = [stack.deliver(TAOBAO[1]) for _ in range(5)]
    assert {(a.status, str(a.body)) for a in answers} == {(200, "{'success': True}")}
    assert stack.get(ORDER_PATH).body["version"] == 1
    log = list(EventLogRecord.query("taobao#order#3010001"))
    assert len(log) == 1


def test_a_stale_message_lands_only_in_the_event_log(stack):
    stack.deliver(TAOBAO[2])
    before = stack.get(ORDER_PATH).body
    assert stack.deliver(TAOBAO[1]).status == 200
    assert stack.get(ORDER_PATH).body == before
    outcomes = sorted(entry.outcome for entry in EventLogRecord.query("taobao#order#3010001"))
    assert outcomes == ["applied", "stale"]


def test_an_entitys_log_is_in_arrival_order_whatever_its_message_ids(stack):
    """The log's rows are keyed by message id (the dedup): read back by arrival."""
    for minute, message_id in enumerate(["zz-first", "aa-second"]):
        webhook = _with(TAOBAO[1 + minute], message_id=message_id).signed(
            DEMO_CREDENTIALS["taobao"], NOW
        )
        answer = stack.request(
            "POST", webhook.path, webhook.body, webhook.headers, NOW + timedelta(minutes=minute)
        )
        assert answer.status == 200
    logged = entities.log(EntityRef.order("taobao", "3010001"))
    assert [entry.message_id for entry in logged] == ["zz-first", "aa-second"]


def test_a_message_logged_before_the_log_was_its_dedup_key_is_stale_when_delivered_again(stack):
    """Rows logged before the event log was the dedup key are keyed by arrival time
    and id (the inbox table held the id then): a redelivery after the deploy finds
    no row under its id and is decided again, and the state holding it already
    makes it stale: logged once more, nothing changed, nothing sent."""
    stack.deliver(TAOBAO[1])
    (row,) = EventLogRecord.query("taobao#order#3010001")
    row.delete()
    row.sequence = f"{row.received_at.isoformat()}#{row.message_id}"
    row.save()
    before, outbox = stack.get(ORDER_PATH).body, OutboxRecord.count()
    assert stack.deliver(TAOBAO[1]).status == 200
    assert stack.get(ORDER_PATH).body == before and OutboxRecord.count() == outbox
    outcomes = sorted(entry.outcome for entry in EventLogRecord.query("taobao#order#3010001"))
    assert outcomes == ["applied", "stale"]


def test_a_message_for_an_unconnected_shop_is_acked_and_recorded(stack):
    stranger = taobao_order("4040404", START, user_id="999")[1]
    answer = stack.deliver(stranger)
    assert answer.status == 200
    logged = EventLogRecord.get("taobao#order#4040404", stranger.message_id)
    assert logged.outcome == "shop_not_connected"
    assert OrderRecord.count() == 0


def raw_taobao(body: bytes) -> tuple[str, bytes]:
    """Any body, signed by the oracle as the platform would."""
    webhook = oracle_signed_taobao(body, "md5")
    return webhook.path, webhook.body


def test_a_well_signed_malformed_message_is_quarantined_not_applied(stack):
    bad = Message(
        "taobao", "q-1", TAOBAO[1].topic, {**TAOBAO[1].payload, "payment": "lots"}, "2200000001"
    )
    for delivery in (1, 2):
        answer = stack.deliver(bad)
        assert answer.status == 422
        assert answer.body["field"] == "content.payment"
        assert answer.body["code"] == "malformed_message" and answer.body["success"] is False
        held = QuarantineRecord.get("taobao#q-1")
        assert held.deliveries == delivery
    assert held.raw_body == bad.signed(DEMO_CREDENTIALS["taobao"], NOW).body
    assert OrderRecord.count() == 0 and EventLogRecord.count() == 0


def test_a_body_without_a_readable_id_is_quarantined_by_its_hash(stack):
    path, body = raw_taobao(b"\x00\xff not json")
    answer = stack.request("POST", path, body, {"Content-Type": "application/json"})
    assert (answer.status, answer.body["field"]) == (422, "body")
    (held,) = list(QuarantineRecord.scan())
    assert held.message_key.startswith("taobao#sha256:") and held.raw_body == body


def test_a_message_naming_another_shop_than_the_owner_is_quarantined(stack):
    stack.deliver(TAOBAO[1])
    hijack = Message("taobao", "h-1", TAOBAO[2].topic, TAOBAO[2].payload, "2200000002")
    from chalicelib.service import shops

    shops.connect("taobao:2200000002", "other", NOW)
    answer = stack.deliver(hijack)
    assert (answer.status, answer.body["field"]) == (422, "shop_id")
    assert stack.get(ORDER_PATH).body["status"] == "paid"


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/webhooks/taobao?app_key=demo-app-key", 401, "missing_signature"),
        ("/webhooks/taobao", 401, "missing_app_key"),
    ],
)
def test_unsigned_requests_are_401_in_the_platform_shape(stack, path, status, code):
    answer = stack.request("POST", path, b"{}", {"Content-Type": "application/json"})
    assert (answer.status, answer.body["code"], answer.body["success"]) == (status, code, False)


def test_a_stale_timestamp_is_401(stack):
    answer = stack.send(TAOBAO[0].signed(DEMO_CREDENTIALS["taobao"], NOW - timedelta(minutes=11)))
    assert (answer.status, answer.body["code"]) == (401, "stale_timestamp")
    jd = stack.send(JD[0].signed(DEMO_CREDENTIALS["jd"], NOW + timedelta(minutes=11)))
    assert (jd.status, jd.body["code"]) == (401, "stale_timestamp")


def test_a_body_over_256_kib_is_413_before_anything_else(stack, aws_calls):
    path, body = raw_taobao(b"{" + b" " * (256 * 1024) + b"}")
    answer = stack.request("POST", path, body, {"Content-Type": "application/json"})
    assert (answer.status, answer.body["code"]) == (413, "body_too_large")
    assert aws_calls.operations == []


def test_an_unknown_platform_is_404(stack):
    answer = stack.request("POST", "/webhooks/amazon", b"{}", {"Content-Type": "application/json"})
    assert (answer.status, answer.body["code"]) == (404, "unknown_platform")


@pytest.mark.parametrize("operation", ["TransactGetItems", "TransactWriteItems"])
def test_a_storage_failure_is_503_and_the_redelivery_lands_exactly_once(stack, faults, operation):
    faults.fail_next(operation)
    failed = stack.deliver(TAOBAO[1])
    assert (failed.status, failed.body["code"]) == (503, "storage_unavailable")
    assert faults.injected == 1
    assert stack.get(ORDER_PATH).status == 404
    assert stack.deliver(TAOBAO[1]).status == 200
    assert stack.deliver(TAOBAO[1]).status == 200
    assert stack.get(ORDER_PATH).body["version"] == 1
    assert len(list(EventLogRecord.query("taobao#order#3010001"))) == 1


def test_a_concurrent_update_is_retried_with_a_fresh_read(stack, aws_calls, faults):
    # aws_calls is registered first, so it also sees the call the fault answers.
    stack.deliver(TAOBAO[0])
    faults.fail_next(
        "TransactWriteItems",
        code="TransactionCanceledException",
        cancellation_reasons=["None", "ConditionalCheckFailed", "None"],
    )
    aws_calls.clear()
    assert stack.deliver(TAOBAO[1]).status == 200
    assert aws_calls.operations == APPLIED * 2
    assert stack.get(ORDER_PATH).body["status"] == "paid"


def test_losing_the_store_once_race_is_a_duplicate_not_an_error(stack, faults):
    faults.fail_next(
        "TransactWriteItems",
        code="TransactionCanceledException",
        cancellation_reasons=["ConditionalCheckFailed", "None", "None"],
    )
    assert stack.deliver(TAOBAO[1]).body == {"success": True}


def _with_item(message: Message, **changes: object) -> Message:
    """The message with its first order line changed."""
    (item, *rest) = message.payload["items"]
    payload = {**message.payload, "items": [{**item, **changes}, *rest]}
    return Message(message.platform, message.message_id, message.topic, payload, message.shop_ref)


def _with(message: Message, message_id: str | None = None, **changes: object) -> Message:
    return Message(
        message.platform,
        message_id or message.message_id,
        message.topic,
        {**message.payload, **changes},
        message.shop_ref,
    )


LONG_ID = "9" * 1001
WIDE_ID = "订" * 600  # 1,800 bytes: over the limit in bytes long before 2,048 characters
OVER_LONG = [
    (_with(TAOBAO[1], message_id=LONG_ID), "body.id"),
    (_with(TAOBAO[1], message_id=WIDE_ID), "body.id"),
    (_with(TAOBAO[1], tid="3" * 2100), "content.tid"),
    (_with(TAOBAO[1], message_id="long-tid", tid="3" * 2100), "content.tid"),
    (_with(JD[0], message_id=LONG_ID), "msg_id"),
    (_with(JD[0], message_id=WIDE_ID), "msg_id"),
    (_with(JD[0], orderId="9" * 2100), "360buy_param_json.orderId"),
    (_with(TAOBAO[1], receiver_state="浙" * 1001), "content.receiver_state"),
    (_with_item(TAOBAO[1], title="t" * 1001), "content.items.0.title"),
    (_with_item(JD[0], skuName="s" * 1001), "360buy_param_json.items.0.skuName"),
]


@pytest.mark.parametrize(("message", "field"), OVER_LONG, ids=[f for _, f in OVER_LONG])
def test_over_long_ids_and_texts_are_a_named_422_kept_whole_under_a_bounded_key(
    stack, message, field
):
    """Issue 18: a well-signed message with a 1,000-character id or a 2,100-character
    tid got a 503 forever (DynamoDB's key limits): now a 422 at parse, naming the
    field, and in the quarantine whole, under a key of bounded size, every time."""
    sent = message.signed(DEMO_CREDENTIALS[message.platform], NOW)
    for delivery in (1, 2):
        answer = stack.send(sent)
        assert (answer.status, answer.body["field"]) == (422, field), answer.body
        (held,) = list(QuarantineRecord.scan())
        assert held.deliveries == delivery
    assert held.raw_body == sent.body
    assert len(held.message_key.encode()) <= 160
    if message.platform == "jd" and field == "msg_id":
        assert held.message_id == message.message_id
    assert OrderRecord.count() == 0 and EventLogRecord.count() == 0


QUANTITIES = [
    (_with_item(TAOBAO[1], num=-5), "content.items.0.num"),
    (_with_item(TAOBAO[1], num=0), "content.items.0.num"),
    (_with_item(TAOBAO[1], num=10**30), "content.items.0.num"),
    (_with_item(JD[0], itemTotal=-5), "360buy_param_json.items.0.itemTotal"),
    (_with_item(JD[0], itemTotal=10**30), "360buy_param_json.items.0.itemTotal"),
    (_with(TAOBAO[1], payment="-5.00"), "content.payment"),
    (_with(TAOBAO[1], payment="1" + "0" * 30), "content.payment"),
]


@pytest.mark.parametrize(("message", "field"), QUANTITIES, ids=[f for _, f in QUANTITIES])
def test_quantities_and_amounts_out_of_bounds_are_a_named_422(stack, message, field):
    answer = stack.deliver(message)
    assert (answer.status, answer.body["field"]) == (422, field), answer.body
    assert QuarantineRecord.count() == 1 and OrderRecord.count() == 0
