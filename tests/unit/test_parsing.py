"""Wire to canonical: every topic, every malformed shape named by its field."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.ids import EntityKind, EntityRef
from chalicelib.domain.model import (
    CaseSnapshot,
    CaseState,
    LogisticsTrace,
    OrderSnapshot,
    ThinMessage,
)
from chalicelib.platforms import doudian, jd, taobao
from chalicelib.platforms.base import MalformedMessageError, VerifiedDelivery
from chalicelib.platforms.wire import yuan_to_fen
from chalicelib.store import codec
from simulator.scenarios import Message
from tests.catalogue import EVERY_TOPIC, _afs, _refund, _trade
from tests.support import SIGNATURE_VECTORS, parsed


def test_the_catalogue_covers_every_topic_of_both_platforms():
    covered = {message.topic for message, *_ in EVERY_TOPIC}
    assert covered == set(taobao.TOPICS) | set(jd.TOPICS) | set(doudian.TAGS)


@pytest.mark.parametrize(
    ("message", "kind", "entity_id", "field", "expected"),
    EVERY_TOPIC,
    ids=[f"{m.topic}-{e}" for m, _, _, _, e in EVERY_TOPIC],
)
def test_every_topic_parses_to_its_canonical_event(message, kind, entity_id, field, expected):
    inbound = parsed(message)
    assert inbound.message_id == message.message_id
    event = inbound.event
    if kind == "case":
        assert isinstance(event, CaseSnapshot)
        assert event.case_id == entity_id
        assert getattr(event, field) == expected
    elif field == "shipment_status":
        assert isinstance(event, LogisticsTrace)
        assert (event.order_id, event.status) == (entity_id, expected)
    elif isinstance(event, ThinMessage):  # the order shows once its detail call reads it
        assert event.needs == EntityRef.order(message.platform, entity_id)
    else:
        assert isinstance(event, OrderSnapshot)
        assert (event.order_id, event.status) == (entity_id, expected)
    if inbound.shop_id is not None:
        assert inbound.shop_id in ("taobao:2200000001", "jd:10000001", "doudian:30000001")


@pytest.mark.parametrize("phase", ["onsale", "aftersale"])
def test_a_taobao_refund_keeps_its_phase_for_the_calls_that_need_it(phase):
    refund = Message(
        "taobao", "p", _refund.topic, {**_refund.payload, "refund_phase": phase}, _refund.shop_ref
    )
    assert parsed(refund).event.platform_phase == phase
    assert parsed(_afs).event.platform_phase is None


def test_a_case_stored_before_the_phase_was_kept_still_decodes():
    snapshot = parsed(_refund).event
    held = CaseState("taobao", snapshot.case_id, "taobao:2200000001", snapshot)
    document = json.loads(codec.CASE.encode(held))
    del document["snapshot"]["platform_phase"]
    decoded = codec.CASE.decode(json.dumps(document))
    assert decoded == replace(held, snapshot=replace(snapshot, platform_phase=None))


def test_taobao_trade_fields_become_fen_and_shanghai_times():
    event = parsed(_trade).event
    assert event.total_fen == 19900
    assert event.items[0].price_fen == 9950
    assert event.paid_at.utcoffset().total_seconds() == 8 * 3600


def malformed(message: Message) -> MalformedMessageError:
    with pytest.raises(MalformedMessageError) as caught:
        parsed(message)
    return caught.value


def with_content(**changes: object) -> Message:
    return Message("taobao", "m", _trade.topic, {**_trade.payload, **changes}, _trade.shop_ref)


@pytest.mark.parametrize(
    ("message", "field"),
    [
        (with_content(payment="12.345"), "content.payment"),
        (with_content(payment=12.5), "content.payment"),
        (with_content(status="SHIPPED_MAYBE"), "content.status"),
        (with_content(free_shipping="yes"), "content.free_shipping"),
        (with_content(modified="2026/11/23"), "content.modified"),
        (with_content(items=[{"oid": "1"}]), "content.items.0.title"),
        (Message("taobao", "m", "taobao_trade_Unknown", _trade.payload, "1"), "topic"),
        (Message("jd", "m", "jd_pop_order_pay", {"orderId": "1"}), "360buy_param_json.venderId"),
        (Message("jd", "", "jd_pop_order_pay", {}), "msg_id"),
        (Message("jd", "m", "jd_pop_nothing", {}), "method"),
    ],
)
def test_malformed_messages_name_the_field(message, field):
    assert malformed(message).field == field


def test_missing_content_field_and_bad_json_are_named():
    assert malformed(with_content(tid=None)).field == "content.tid"
    body = json.dumps(
        {
            "id": "1",
            "topic": _trade.topic,
            "user_id": "1",
            "pub_time": "2026-11-23 10:00:00",
            "content": "{",
        }
    )
    with pytest.raises(MalformedMessageError) as caught:
        taobao.PLATFORM.parse(VerifiedDelivery("taobao", body.encode(), {}))
    assert caught.value.field == "content"
    with pytest.raises(MalformedMessageError) as caught:
        taobao.PLATFORM.parse(VerifiedDelivery("taobao", b"\xff{not json", {}))
    assert caught.value.field == "body"


@given(
    thin=st.sampled_from(
        [
            (_trade, "items", EntityKind.ORDER, "tid"),
            (_refund, "refund_fee", EntityKind.CASE, "refund_id"),
        ]
    ),
    dropped=st.sets(
        st.sampled_from(sorted({*_trade.payload, *_refund.payload} - {"tid", "refund_id"}))
    ),
)
def test_a_taobao_content_without_its_detail_is_thin_naming_what_to_fetch(thin, dropped):
    message, detail, kind, id_field = thin
    content = {
        name: value for name, value in message.payload.items() if name not in {detail, *dropped}
    }
    inbound = parsed(replace(message, payload=content))
    expected = EntityRef("taobao", kind, str(message.payload[id_field]))
    assert inbound.event == ThinMessage(expected)
    assert codec.EVENT.decode(codec.EVENT.encode(inbound.event)) == inbound.event
    # Without its id it cannot be completed: quarantined, the id named.
    del content[id_field]
    assert malformed(replace(message, payload=content)).field == f"content.{id_field}"


@given(st.binary(max_size=2000))
def test_taobao_parse_raises_only_malformed_on_any_bytes(body):
    try:
        taobao.PLATFORM.parse(VerifiedDelivery("taobao", body, {}))
    except MalformedMessageError as error:
        assert error.field


# Wire-like text: digits, a date's separators, quotes, escapes and CJK, with a
# bounded alphabet so that generating it is cheap.
wire_text = st.text('0123456789 -:.aZ"\\{}[]省收\x00', max_size=20)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | wire_text,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(wire_text, children, max_size=4)
    ),
    max_leaves=20,
)


@given(
    topic=st.sampled_from(jd.TOPICS),
    payload=st.dictionaries(
        st.sampled_from(
            ["orderId", "venderId", "orderState", "modified", "items", "id", "status", "waybill"]
        ),
        json_values,
    ),
)
def test_jd_parse_raises_only_malformed_on_any_payload(topic, payload):
    try:
        parsed(Message("jd", "m1", topic, payload))
    except MalformedMessageError as error:
        assert error.field.startswith(("360buy_param_json", "msg_id", "method"))


def test_deeply_nested_json_is_malformed_not_a_crash():
    body = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(MalformedMessageError):
        taobao.PLATFORM.parse(VerifiedDelivery("taobao", body, {}))


@given(st.integers(min_value=0, max_value=10**12 - 1), st.integers(min_value=0, max_value=99))
def test_yuan_strings_convert_exactly_to_fen(yuan, fen):
    assert yuan_to_fen(f"{yuan}.{fen:02d}") == yuan * 100 + fen
    assert yuan_to_fen(str(yuan)) == yuan * 100


@pytest.mark.parametrize(
    "text", ["", "1000000000000.00", "-1.00", "1.234", "1e3", "NaN", " 1.00", "01.00", "1."]
)
def test_invalid_yuan_strings_are_refused(text):
    with pytest.raises(ValueError):
        yuan_to_fen(text)


def test_the_contracts_doudian_push_vector_is_a_thin_message_for_its_order():
    """The push vector (signature-vectors.json, doudian-push): the platform's own
    pay message, without `update_time`, names the order to read and its shop."""
    (vector,) = [v for v in SIGNATURE_VECTORS if v["kind"] == "doudian-push"]
    (message,) = doudian.PLATFORM.messages(VerifiedDelivery("doudian", vector["body"].encode(), {}))
    inbound = doudian.PLATFORM.parse(message)
    assert (inbound.message_id, inbound.topic) == ("7000000000000000001", "101")
    assert inbound.shop_id == "doudian:30000001"
    assert inbound.event == ThinMessage(EntityRef.order("doudian", "4900000000001"))
