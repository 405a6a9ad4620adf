"""Hypothesis against every public route: whatever arrives, the answer is a 2xx
or a specific 4xx (a code and a message, naming the field where there is
one), never a 5xx or a stack trace. Inputs tried are counted for the summary."""

from __future__ import annotations

import json
from urllib.parse import quote, urlencode

from hypothesis import given
from hypothesis import strategies as st

from tests.reliability.report import examples
from tests.support import JD_SHOP, TAOBAO_SHOP, oracle_signed_jd, oracle_signed_taobao

printable = st.text(max_size=30)
header_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
headers = st.dictionaries(
    st.sampled_from(["Content-Type", "Content-Length", "X-Anything", "Authorization", "Cookie"]),
    header_text,
)
json_bodies = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
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
    json_bodies.map(lambda value: json.dumps(value).encode()), st.binary(max_size=300)
)
# Real ids half the time, so the fuzz reaches past "not found".
shop_ids = st.one_of(st.sampled_from([TAOBAO_SHOP, JD_SHOP]), st.text(min_size=1, max_size=30))
entity_ids = st.one_of(
    st.sampled_from(["3010001", "R3010001", "sub_0", "act_0"]), st.text(min_size=1, max_size=30)
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
        st.sampled_from(["status", "limit", "cursor", "since", "until", "x"]), printable
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
    platform=st.sampled_from(["taobao", "jd", "nope"]),
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
    platform=st.sampled_from(["taobao", "jd"]),
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
