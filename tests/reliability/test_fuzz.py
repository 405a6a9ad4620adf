"""Hypothesis against every public route: whatever arrives, the answer is a 2xx
or a specific 4xx (a code and a message, naming the field where there is
one), never a 5xx or a stack trace. Inputs tried are counted for the summary.

Besides arbitrary text, the inputs reach for the classes a hostile review found
(issue 18): digits of other scripts, times at the ends of the calendar and the
offsets, cursors decoding to any JSON, ids and texts past every limit, bodies
past the cap, and well-signed messages carrying them."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone
from urllib.parse import quote, urlencode

from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.ids import MAX_ID_LENGTH
from chalicelib.platforms.wire import MAX_TEXT_LENGTH
from chalicelib.service.commands import MAX_BODY_BYTES
from chalicelib.store.records import EventLogRecord, QuarantineRecord
from simulator.scenarios import doudian_order, jd_order, taobao_order
from tests.reliability.report import examples
from tests.support import (
    JD_SHOP,
    NOW,
    TAOBAO_SHOP,
    oracle_signed_doudian,
    oracle_signed_jd,
    oracle_signed_taobao,
)

printable = st.text(max_size=30)
# `²`, `٣`, `５`: str.isdigit() says yes, int() may say no.
unicode_digits = st.text(st.characters(categories=["Nd", "No"]), min_size=1, max_size=4)
# Any moment of the calendar at any offset: years 1 and 9999 at ±14:00 overflow UTC.
extreme_times = st.builds(
    lambda moment, minutes: moment.replace(tzinfo=timezone(timedelta(minutes=minutes))).isoformat(),
    st.one_of(
        st.sampled_from([datetime.min, datetime.max.replace(microsecond=0)]),
        st.datetimes(),
    ),
    st.integers(-14 * 60, 14 * 60),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(["entity_key", "S", "N", "B", "x"]), children, max_size=3)
    ),
    max_leaves=8,
)
# A cursor is base64url JSON: any JSON, typed or not, in that wrapping.
typed_cursors = json_values.map(
    lambda value: base64.urlsafe_b64encode(json.dumps(value).encode()).decode()
)
# Ids and texts just past their limits, and far past them (a DynamoDB key's 2,048 bytes).
over_long = st.builds(
    lambda char, size: char * size,
    st.sampled_from(["9", "a", "订", "𝟗"]),
    st.sampled_from([MAX_ID_LENGTH + 1, MAX_TEXT_LENGTH + 1, 2100, 5000]),
)
hostile_text = st.one_of(printable, unicode_digits, extreme_times, typed_cursors, over_long)
header_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
headers = st.dictionaries(
    st.sampled_from(
        [
            "Content-Type",
            "Content-Length",
            "X-Anything",
            "Authorization",
            "Cookie",
            "app-id",
            "event-sign",
        ]
    ),
    header_text,
)
json_bodies = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | unicode_digits
    | extreme_times
    | over_long,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "action",
                    "reason",
                    "return_address",
                    "address",
                    "name",
                    "mobile",
                    "tracking_no",
                    "carrier",
                    "overrides",
                    "url",
                    "event_types",
                    "shops",
                    "delivery_id",
                    "since",
                    "until",
                ]
            ),
            children,
            max_size=4,
        )
    ),
    max_leaves=12,
)
bodies = st.one_of(
    json_bodies.map(lambda value: json.dumps(value).encode()),
    st.binary(max_size=300),
    st.sampled_from([MAX_BODY_BYTES + 1, 4 * MAX_BODY_BYTES]).map(
        lambda size: json.dumps({"reason": "r" * size}).encode()
    ),
)
# Real ids half the time, so the fuzz reaches past "not found".
shop_ids = st.one_of(
    st.sampled_from([TAOBAO_SHOP, JD_SHOP]), st.text(min_size=1, max_size=30), over_long
)
entity_ids = st.one_of(
    st.sampled_from(["3010001", "R3010001", "sub_0", "act_0"]),
    st.text(min_size=1, max_size=30),
    over_long,
)
API_ROUTES = [
    ("GET", "/shops/{shop}/orders/{entity}"),
    ("GET", "/shops/{shop}/after-sales"),
    ("GET", "/shops/{shop}/after-sales/{entity}"),
    ("GET", "/shops/{shop}/deadlines"),
    ("GET", "/shops/{shop}/policy"),
    ("PUT", "/shops/{shop}/policy"),
    ("POST", "/shops/{shop}/after-sales/{entity}/actions"),
    ("GET", "/shops/{shop}/after-sales/{entity}/actions/{entity}"),
    ("POST", "/shops/{shop}/orders/{entity}/ship"),
    ("POST", "/shops/{shop}/disconnect"),
    ("POST", "/subscriptions"),
    ("GET", "/subscriptions"),
    ("GET", "/subscriptions/{entity}"),
    ("DELETE", "/subscriptions/{entity}"),
    ("GET", "/subscriptions/{entity}/deliveries"),
    ("POST", "/subscriptions/{entity}/replay"),
]


def assert_specific(answer) -> None:
    assert answer.status < 500, answer.body
    assert "Traceback" not in str(answer.body)
    if answer.status >= 400:
        assert answer.body["code"] and answer.body["message"], answer.body


@examples(400, 5000)
@given(
    route=st.sampled_from(API_ROUTES),
    shop=shop_ids,
    entity=entity_ids,
    query=st.dictionaries(
        st.sampled_from(["status", "limit", "cursor", "before", "since", "until", "x"]),
        hostile_text,
    ),
    authorization=st.one_of(
        st.none(), header_text, header_text.map(lambda k: f"Bearer {k}"), st.just("valid")
    ),
    body=bodies,
    content_type=st.sampled_from([None, "application/json", "text/plain", "application/xml"]),
)
def test_no_input_to_any_api_route_is_a_5xx(
    shared_stack, tally, route, shop, entity, query, authorization, body, content_type
):
    method, template = route
    path = template.format(shop=quote(shop, safe=""), entity=quote(entity, safe=""))
    if query:
        path += "?" + urlencode(query)
    if authorization == "valid":
        authorization = f"Bearer {shared_stack.api_key}"
    sent = {"Authorization": authorization} if authorization is not None else {}
    if content_type:
        sent["Content-Type"] = content_type
    answer = shared_stack.request(method, path, body if method != "GET" else b"", sent)
    tally.inputs += 1
    assert_specific(answer)


@examples(150, 2000)
@given(
    platform=st.sampled_from(["taobao", "jd", "doudian", "nope"]),
    step=st.sampled_from(["connect", "callback"]),
    query=st.dictionaries(st.sampled_from(["code", "state", "error", "x"]), printable),
    cookie=st.one_of(st.none(), header_text, header_text.map(lambda v: f"shophook_connect={v}")),
)
def test_no_input_to_the_oauth_routes_is_a_5xx(shared_stack, tally, platform, step, query, cookie):
    path = f"/oauth/{platform}/{step}" + ("?" + urlencode(query) if query else "")
    answer = shared_stack.request("GET", path, headers={"Cookie": cookie} if cookie else {})
    tally.inputs += 1
    assert answer.status < 500 and "Traceback" not in str(answer.body)
    if answer.status >= 400:
        # A page for a person: what went wrong, in a title, never a trace.
        assert answer.headers["Content-Type"].startswith("text/html")
        assert "<h1>" in answer.body


@examples(200, 3000)
@given(
    platform=st.sampled_from(["taobao", "jd", "doudian"]),
    query=st.dictionaries(
        st.sampled_from(["app_key", "sign", "timestamp", "sign_method", "v", "x"]), printable
    ),
    header_values=headers,
    body=st.binary(max_size=3000),
)
def test_no_input_to_a_webhook_route_is_a_5xx(
    shared_stack, tally, platform, query, header_values, body
):
    answer = shared_stack.request(
        "POST", f"/webhooks/{platform}?{urlencode(query)}", body, header_values
    )
    tally.inputs += 1
    assert 400 <= answer.status < 500 or answer.status == 200
    assert "Traceback" not in str(answer.body)


@examples(150, 2000)
@given(body=st.binary(max_size=3000), method=st.sampled_from(["md5", "hmac-sha256"]))
def test_well_signed_taobao_garbage_is_a_named_422(shared_stack, tally, body, method):
    answer = shared_stack.send(oracle_signed_taobao(body, method))
    tally.inputs += 1
    assert answer.status == 422
    assert answer.body["field"]


@examples(100, 2000)
@given(
    payload=st.text(max_size=300),
    method=st.sampled_from(
        [
            "jd_pop_order_pay",
            "jd_pop_refund_apply",
            "jd_pop_afs_status",
            "jd_pop_logistics_trace",
            "nope",
        ]
    ),
    msg_id=st.text(max_size=10),
)
def test_well_signed_jd_garbage_is_a_named_422(shared_stack, tally, payload, method, msg_id):
    answer = shared_stack.send(oracle_signed_jd(method, msg_id, payload))
    tally.inputs += 1
    assert answer.status == 422
    assert answer.body["field"]


@examples(150, 2000)
@given(
    body=st.one_of(
        st.binary(max_size=3000),
        st.lists(json_values, max_size=4).map(lambda items: json.dumps(items).encode()),
        st.lists(
            st.fixed_dictionaries(
                {"tag": printable, "msg_id": printable, "data": printable | json_values}
            ),
            max_size=4,
        ).map(lambda items: json.dumps(items).encode()),
    )
)
def test_well_signed_doudian_garbage_is_quarantined_never_a_5xx(shared_stack, tally, body):
    """A push that is no array is a 422 naming the field; an array is acked with
    each message that cannot be applied quarantined (platforms.md 1.3)."""
    answer = shared_stack.send(oracle_signed_doudian(body))
    tally.inputs += 1
    assert answer.status in (200, 422), answer.body
    if answer.status == 422:
        assert answer.body["field"]


def test_content_types_get_shophooks_own_answer(shared_stack, tally):
    """Found by the fuzz: Chalice answered a GET sent with any Content-Type but
    JSON, and a JSON route sent text, with its own 415 in another error shape."""
    key = {"Authorization": f"Bearer {shared_stack.api_key}", "Content-Type": "text/plain"}
    read = shared_stack.request("GET", f"/shops/{TAOBAO_SHOP}/policy", headers=key)
    write = shared_stack.request("POST", "/subscriptions", b"{}", key)
    tally.inputs += 2
    assert read.status == 200
    assert (write.status, write.body["code"], write.body["field"]) == (
        415,
        "unsupported_media_type",
        "Content-Type",
    )


READ_ROUTES = [template for method, template in API_ROUTES if method == "GET"]


@examples(100, 2000)
@given(
    template=st.sampled_from(READ_ROUTES),
    shop=st.sampled_from([TAOBAO_SHOP, JD_SHOP]),
    entity=st.one_of(over_long, hostile_text.filter(bool)),
    query=st.dictionaries(
        st.sampled_from(["status", "limit", "cursor", "before"]), hostile_text, min_size=1
    ),
)
def test_no_hostile_id_or_parameter_from_a_valid_key_is_a_5xx(
    shared_stack, tally, template, shop, entity, query
):
    """The route fuzz above, past authentication every time: a valid key and one
    of its shops, so every id and parameter reaches the reads."""
    path = template.format(shop=quote(shop, safe=""), entity=quote(entity, safe=""))
    answer = shared_stack.get(f"{path}?{urlencode(query)}")
    tally.inputs += 1
    assert_specific(answer)


TAOBAO_TRADE = taobao_order("3800001", NOW)[1]
JD_ORDER = jd_order("3800002", NOW)[0]
# Where a hostile value can sit in a well-signed message: the message id, an id,
# a text, a count, an amount and a time, at the top and in an order line.
TAOBAO_FIELDS = ["id", "tid", "receiver_state", "payment", "modified", "title", "num", "oid"]
JD_FIELDS = [
    "msg_id",
    "orderId",
    "province",
    "orderTotalPrice",
    "modified",
    "skuName",
    "itemTotal",
    "skuId",
]
ITEM_FIELDS = {"title", "num", "oid", "skuName", "itemTotal", "skuId"}
hostile_values = st.one_of(
    hostile_text,
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([-5, 0, 10**30, True, None, 1.5]),
)


def _changed(payload: dict, field: str, value: object) -> dict:
    if field in ITEM_FIELDS:
        (item,) = payload["items"]
        return {**payload, "items": [{**item, field: value}]}
    return {**payload, field: value}


@examples(60, 1500)
@given(
    platform=st.sampled_from(["taobao", "jd"]),
    field_index=st.integers(0, len(TAOBAO_FIELDS) - 1),
    value=hostile_values,
)
def test_well_signed_messages_with_hostile_fields_are_stored_or_a_named_422(
    shared_stack, tally, platform, field_index, value
):
    """Over-long ids and texts, foreign digits, extreme times, counts and amounts
    out of range, wrong types: a message the platform signed is stored (200) or
    quarantined (422 naming the field), never a 5xx the platform would retry forever."""
    base = TAOBAO_TRADE if platform == "taobao" else JD_ORDER
    field = (TAOBAO_FIELDS if platform == "taobao" else JD_FIELDS)[field_index]
    message_id = str(value) if field in ("id", "msg_id") else base.message_id
    payload = base.payload if field in ("id", "msg_id") else _changed(base.payload, field, value)
    if platform == "taobao":
        body = {
            "id": message_id,
            "topic": base.topic,
            "user_id": base.shop_ref,
            "pub_time": "2026-11-23 10:00:00",
            "content": json.dumps(payload),
        }
        if field == "id":
            body["id"] = value
        answer = shared_stack.send(oracle_signed_taobao(json.dumps(body).encode()))
    else:
        answer = shared_stack.send(oracle_signed_jd(base.topic, message_id, json.dumps(payload)))
    tally.inputs += 1
    assert answer.status in (200, 422), answer.body
    if answer.status == 422:
        assert answer.body["field"]
    if isinstance(value, str) and len(value) > MAX_TEXT_LENGTH:
        assert answer.status == 422, (field, len(value))


DOUDIAN_CASE = next(m for m in doudian_order("3800003", NOW) if m.topic == "200")
DOUDIAN_FIELDS = [
    "msg_id",
    "aftersale_id",
    "p_id",
    "refund_amount",
    "update_time",
    "reason_code",
    "aftersale_type",
    "quality_issue",
]


@examples(60, 1500)
@given(field=st.sampled_from(DOUDIAN_FIELDS), value=hostile_values)
def test_well_signed_doudian_messages_with_hostile_fields_are_stored_or_quarantined(
    shared_stack, tally, field, value
):
    """The same values in a Doudian-style array: the push is acked, and the
    message is stored or held in the quarantine, never a 5xx."""
    shared_stack.reset()
    message = {
        "tag": DOUDIAN_CASE.topic,
        "msg_id": value if field == "msg_id" else DOUDIAN_CASE.message_id,
        "data": json.dumps(
            {**DOUDIAN_CASE.payload, **({} if field == "msg_id" else {field: value})}
        ),
    }
    answer = shared_stack.send(oracle_signed_doudian(json.dumps([message]).encode()))
    tally.inputs += 1
    assert answer.status == 200, answer.body
    assert EventLogRecord.count() + QuarantineRecord.count() == 1
    if isinstance(value, str) and len(value) > MAX_TEXT_LENGTH:
        assert QuarantineRecord.count() == 1, (field, len(value))


# JOS signs `name + value` with no separator, so a captured push could be
# replayed by splitting a field into an extra one. Contract v2 (platforms.md
# 1.2) refuses undocumented fields with 400 `unexpected_field`, before the
# signature is checked; `format` and `sign_method` are documented.
@examples(60, 1500)
@given(
    extra=st.dictionaries(
        st.sampled_from(["format", "sign_method", "x", "360buy", "msg", "param_json", "v2"]),
        hostile_text,
        min_size=1,
        max_size=3,
    ),
)
def test_well_signed_jd_pushes_with_undocumented_fields_are_never_a_5xx(shared_stack, tally, extra):
    answer = shared_stack.send(
        oracle_signed_jd(JD_ORDER.topic, JD_ORDER.message_id, json.dumps(JD_ORDER.payload), extra)
    )
    tally.inputs += 1
    if set(extra) - {"format", "sign_method"}:
        assert (answer.status, answer.body["code"]) == (400, "unexpected_field"), answer.body
    else:
        assert answer.status in (200, 422), answer.body
